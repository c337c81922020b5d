"""Boot with many containers: hostctl vs quadlet-style podman 4.3.1 units, 50 each.

In one systemd test host with a network namespace of its own, 50 containers on the
default bridge network are enabled (hostctl: declarations with `install: WantedBy:
multi-user.target`; podman: units as quadlet writes them, `podman run --rm --replace
--runtime runc --sdnotify=conmon -d ...`, enabled for multi-user.target), one kind at a
time (the other kind's units masked), and the guest is rebooted. Measured: from the
start of systemd in the guest (the manager's UserspaceTimestamp: the guest's boot start)
to the last container's first journal line of that boot. Kinds:

- hostctl: the reboot of a host that ran the containers: their starts use the records
  the last starts kept (hostctl.launcher.record), the network wired anew;
- hostctl, no records: the kept records removed before the reboot, every start a full one
  (as the first boot after a deploy whose containers never ran);
- podman 4.3.1.

The kinds are booted in turns, N rounds; medians are printed with the ratios, the load
average, and how many of hostctl's starts were recorded ones.

    sudo .venv/bin/python bench/boot.py [--count 50] [--rounds 2] [--no-podman]
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
UNITS = "/etc/systemd/system"
KEPT = "/var/lib/hostctl/launch"  # hostctl.launcher.record.kept_path's directory
HOSTCTL_KINDS = ("hostctl", "hostctl, no records")
PODMAN = "podman 4.3.1"


def _declare_hostctl(host: TestHost, ref: str, count: int) -> list[str]:
    names = [f"boot-h{i:02d}" for i in range(count)]
    host.run(["mkdir", "-p", DECLS])
    for name in names:
        decl = {"image": ref, "command": CMD, "stop_timeout": 5,
                "install": {"WantedBy": "multi-user.target"}}
        host.write_file(f"{DECLS}/{name}.yaml", json.dumps(decl))
    return names


def _declare_podman(host: TestHost, ref: str, count: int) -> list[str]:
    names = [f"boot-p{i:02d}" for i in range(count)]
    for name in names:
        text = podman_unit_text(podman_argv(ref, name, "bridge", []), name)
        host.write_file(f"{UNITS}/{name}.service", text + "[Install]\nWantedBy=multi-user.target\n")
    return names


def _select(host: TestHost, kind: str, hostctl_units: list[str],
            podman_units: list[str]) -> None:
    """Enable KIND's containers for the next boot, and only those. hostctl's declarations
    stay as they are (their units are masked while podman's boot), as on a host that
    reboots: their records are not made stale by the bench."""
    hostctl_services = [f"{u}.service" for u in hostctl_units]
    if kind in HOSTCTL_KINDS:
        host.run(["systemctl", "unmask", "-q", *hostctl_services])
        if podman_units:
            host.run(["systemctl", "disable", "-q", *podman_units])
        if kind != "hostctl":
            host.sh(f"rm -f {KEPT}/boot-h*.record")
    else:
        # stopped first, as a shutdown stops them: a unit masked while it runs loses its
        # ExecStopPost= (the cleanup) and leaves its writable layer behind
        host.run(["systemctl", "stop", *hostctl_services])
        host.run(["systemctl", "mask", "-q", *hostctl_services])
        host.run(["systemctl", "enable", "-q", *podman_units])
    host.run(["systemctl", "daemon-reload"])


def _recorded(host: TestHost, units: list[str]) -> int:
    """How many of UNITS started from their records in this boot."""
    from hostctl.launcher.record import RECORDED_START

    lines = host.run(["journalctl", "-b", "--no-pager", "-o", "cat",
                      *(f"_SYSTEMD_UNIT={u}.service" for u in units)]).stdout
    return lines.count(RECORDED_START)


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
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    podman = not args.no_podman and shutil.which("podman") is not None
    storage = Path(tempfile.mkdtemp(prefix="bench-boot-", dir="/var/tmp"))
    try:
        # ShowStatus=error: with a status line per unit on the guest's console, 50
        # containers stopping fill its pseudo TTY faster than systemd-nspawn drains it,
        # and the guest's PID 1, blocked writing to it, hangs its shutdown until the
        # harness kills it (an unclean stop, which the next boot's starts must clean up)
        files = {"/etc/containers/containers.conf": "[containers]\npids_limit = 0\n",
                 "/etc/systemd/system.conf.d/bench-quiet.conf": "[Manager]\nShowStatus=error\n"}
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
    host.run(["systemctl", "daemon-reload"])
    # as on a host that ran them: started once, so their starts kept records
    host.run(["systemctl", "start", *(f"{u}.service" for u in hostctl_units)])
    podman_units: list[str] = []
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        podman_units = _declare_podman(host, ref, count)
    kinds = {"hostctl": hostctl_units, "hostctl, no records": hostctl_units,
             **({PODMAN: podman_units} if podman else {})}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind, units in kinds.items():
            _select(host, kind, hostctl_units, [f"{u}.service" for u in podman_units])
            host.reboot()
            took = _boot_time(host, units)
            load = Path("/proc/loadavg").read_text().split()[:3]
            recorded = (f", {_recorded(host, units)} of {len(units)} starts recorded"
                        if kind in HOSTCTL_KINDS else "")
            print(f"round {round_ + 1}, {kind}: last first line {took:.0f} ms after the "
                  f"guest's systemd started (machine load {' '.join(load)}{recorded})",
                  flush=True)
            times[kind].append(took)
    medians = {kind: statistics.median(found) for kind, found in times.items()}
    print(f"boot with {count} containers, median of {rounds} (from the guest's systemd "
          "start to the last container's first line):")
    for kind, value in medians.items():
        ratio = f"  {value / medians[PODMAN]:.2f}x podman" if podman else ""
        print(f"  {kind:<20} {value:8.0f} ms{ratio}")


if __name__ == "__main__":
    main()
