"""Boot with many containers: hostctl vs quadlet-style podman 4.3.1 units, 50 each.

In one systemd test host with a network namespace of its own, 50 containers on the
default bridge network are enabled (hostctl: declarations with `install: WantedBy:
multi-user.target`; podman: units as quadlet writes them, `podman run --rm --replace
--runtime runc --sdnotify=conmon -d ...`, enabled for multi-user.target), one kind at a
time, and the guest is rebooted. Measured: from the start of systemd in the guest
(the manager's UserspaceTimestamp: the guest's boot start; the start of
multi-user.target's activation is printed too) to the last container's first journal
line of that boot. The kinds are booted in turns, N rounds, medians printed with the
ratio and the load average.

    sudo .venv/bin/python bench/boot.py [--count 50] [--rounds 3] [--no-podman]

Records of recorded starts live in the run directory: every start at boot is a full one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.start import CMD, LINE, podman_argv, podman_unit_text  # noqa: E402
from tests.support import netguest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
DECLS = "/etc/hostctl/containers"
PARKED = "/etc/hostctl/parked"
UNITS = "/etc/systemd/system"


def _declare_hostctl(host: TestHost, ref: str, count: int) -> list[str]:
    names = [f"boot-h{i:02d}" for i in range(count)]
    host.run(["mkdir", "-p", PARKED, DECLS])
    for name in names:
        decl = {"image": ref, "command": CMD, "stop_timeout": 5,
                "install": {"WantedBy": "multi-user.target"}}
        host.write_file(f"{PARKED}/{name}.yaml", json.dumps(decl))
    return names


def _declare_podman(host: TestHost, ref: str, count: int) -> list[str]:
    names = [f"boot-p{i:02d}" for i in range(count)]
    for name in names:
        text = podman_unit_text(podman_argv(ref, name, "bridge", []), name)
        host.write_file(f"{UNITS}/{name}.service", text + "[Install]\nWantedBy=multi-user.target\n")
    return names


def _select(host: TestHost, kind: str, podman_units: list[str]) -> None:
    """Enable KIND's containers for the next boot, and only those."""
    if kind == "hostctl":
        host.sh(f"mv {PARKED}/*.yaml {DECLS}/ 2>/dev/null || true")
        if podman_units:
            host.run(["systemctl", "disable", "-q", *podman_units])
    else:
        host.sh(f"mv {DECLS}/boot-h*.yaml {PARKED}/ 2>/dev/null || true")
        host.run(["systemctl", "enable", "-q", *podman_units])
    host.run(["systemctl", "daemon-reload"])


def _boot_time(host: TestHost, units: list[str], timeout: float = 300) -> float:
    """After a reboot: ms from systemd's start to the last unit's first line, on the
    monotonic clock (the kernel's, which systemd and the journal stamp alike)."""
    started = int(host.run(["systemctl", "show", "-P", "UserspaceTimestampMonotonic"]).stdout)
    deadline = time.monotonic() + timeout
    firsts: dict[str, int] = {}
    while len(firsts) < len(units):
        # By unit, the message compared here: conmon's journald entries do not match
        # MESSAGE= exactly.
        journal = host.run(["journalctl", "-b", "--no-pager", "-o", "json",
                            *(f"_SYSTEMD_UNIT={u}.service" for u in units)]).stdout
        for line in journal.splitlines():
            entry = json.loads(line)
            if not isinstance(entry.get("MESSAGE"), str) or entry["MESSAGE"].strip() != LINE:
                continue
            unit = str(entry.get("_SYSTEMD_UNIT", "")).removesuffix(".service")
            stamp = int(entry["__MONOTONIC_TIMESTAMP"])
            if unit in units and (unit not in firsts or stamp < firsts[unit]):
                firsts[unit] = stamp
        if time.monotonic() > deadline:
            missing = sorted(set(units) - set(firsts))
            raise RuntimeError(f"no first line from {len(missing)} units: {missing[:5]}...")
        time.sleep(0.5)
    return (max(firsts.values()) - started) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    podman = not args.no_podman and shutil.which("podman") is not None
    storage = Path(tempfile.mkdtemp(prefix="bench-boot-", dir="/var/tmp"))
    try:
        files = {"/etc/containers/containers.conf": "[containers]\npids_limit = 0\n"}
        with TestHost(nspawn_args=["--private-network", f"--bind={storage}:/var/lib/containers"],
                      files=files, boot_timeout=300, poweroff_timeout=300) as host:
            run(host, args.count, args.rounds, podman)
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def run(host: TestHost, count: int, rounds: int, podman: bool) -> None:
    host.sh(netguest.UPLINK)
    netguest.serve_image(host)
    host.run([HOSTCTL, "install"])
    ref = netguest.IMAGE
    hostctl_units = _declare_hostctl(host, ref, count)
    host.run([HOSTCTL, "pull", ref])
    podman_units: list[str] = []
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        podman_units = _declare_podman(host, ref, count)
    kinds = {"hostctl": hostctl_units, **({"podman 4.3.1": podman_units} if podman else {})}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind, units in kinds.items():
            _select(host, "hostctl" if kind == "hostctl" else "podman",
                    [f"{u}.service" for u in podman_units])
            host.reboot()
            took = _boot_time(host, units)
            load = Path("/proc/loadavg").read_text().split()[:3]
            print(f"round {round_ + 1}, {kind}: last first line {took:.0f} ms after the "
                  f"guest's systemd started (machine load {' '.join(load)})", flush=True)
            times[kind].append(took)
    medians = {kind: statistics.median(found) for kind, found in times.items()}
    print(f"boot with {count} containers, median of {rounds} (from the guest's systemd "
          "start to the last container's first line):")
    for kind, value in medians.items():
        print(f"  {kind:<14} {value:8.0f} ms")
    if podman:
        print(f"  hostctl / podman {medians['hostctl'] / medians['podman 4.3.1']:.2f}x")

if __name__ == "__main__":
    main()
