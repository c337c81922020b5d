"""Start latency and resident overhead: hostctl vs bare `runc run` vs podman 4.3.1.

From `systemctl start` to the container's first line in the journal, measured inside
a systemd test host: the guest's clock just before `systemctl start`, and the line's
__REALTIME_TIMESTAMP (no polling loop in the measurement). Median of N runs each, taken in
turns (so a drift of the load weighs on all alike), in
the same run for all three, all on the host's network and with runc. Then 20
containers of each kind: the resident memory that is not the containers' own
processes (hostctl: none; podman: its conmon processes).

    sudo .venv/bin/python bench/start.py [--runs 20] [--no-podman]

podman (Debian's 4.3.1) is a bench-only package: `apt-get install podman`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.imagebuild import busybox_image, push  # noqa: E402
from tests.support.registry import Registry  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
LINE = "bench-first-line"
CMD = ["sh", "-c", f"echo {LINE}; exec sleep 600"]
MANY = 20


def _start_latency_ms(host: TestHost, unit: str) -> float:
    host.run(["systemctl", "stop", unit], check=False)
    host.run(["systemctl", "reset-failed", unit], check=False)
    out = host.sh(f"t=$(date +%s%6N); systemctl start {unit}; echo $t").stdout
    started = int(out.split()[-1])
    for _ in range(200):
        journal = host.run(["journalctl", "--no-pager", "-o", "json", "-u", unit,
                            f"--since=@{started // 1_000_000 - 1}"]).stdout
        entries = [json.loads(line) for line in journal.splitlines()]
        stamps = [int(e["__REALTIME_TIMESTAMP"]) for e in entries
                  if str(e.get("MESSAGE", "")).strip() == LINE
                  and int(e["__REALTIME_TIMESTAMP"]) >= started]
        if stamps:
            return (min(stamps) - started) / 1000
        host.run(["sleep", "0.05"])
    tail = host.run(["journalctl", "--no-pager", "-n", "15", "-u", unit]).stdout
    raise RuntimeError(f"{unit}: no {LINE!r} in the journal:\n{tail}")


def _hostctl_unit(host: TestHost, ref: str, name: str) -> str:
    decl = {"image": ref, "command": CMD, "stop_timeout": 1, "network": "host"}
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", json.dumps(decl))
    return f"{name}.service"


def _runc_unit(host: TestHost, rootfs: str) -> str:
    bundle = "/var/lib/bench-runc"
    host.sh(f"mkdir -p {bundle} && cd {bundle} && rm -f config.json && runc spec")
    config = json.loads(host.read_file(f"{bundle}/config.json"))
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"].update(terminal=False, args=CMD)
    host.write_file(f"{bundle}/config.json", json.dumps(config))
    host.write_file("/etc/systemd/system/bench-runc.service", f"""\
[Service]
ExecStart=/usr/sbin/runc run --bundle {bundle} bench-runc
ExecStopPost=-/usr/sbin/runc delete --force bench-runc
TimeoutStopSec=1
""")
    return "bench-runc.service"


def _podman_unit(host: TestHost, ref: str, name: str) -> str:
    argv = " ".join(["/usr/bin/podman", "run", "--rm", "--replace", "--name", name,
                     "--pids-limit=-1", "--cgroups=split", "--sdnotify=conmon", "-d",
                     "--log-driver=journald", "--network=host", "--runtime=runc",
                     "--tls-verify=false", ref, *(f"'{a}'" for a in CMD)])
    host.write_file(f"/etc/systemd/system/{name}.service", f"""\
[Service]
Type=notify
NotifyAccess=all
KillMode=mixed
Delegate=yes
ExecStart={argv}
ExecStop=/usr/bin/podman rm -f -i --time 1 {name}
ExecStopPost=-/usr/bin/podman rm -f -i --time 1 {name}
TimeoutStopSec=5
""")
    return f"{name}.service"


def _interleaved(host: TestHost, units: dict[str, str], runs: int) -> dict[str, list[float]]:
    """RUNS start latencies of each unit, taken in turns (the order rotating each round),
    so that a drift of the machine's load weighs on all of them alike. A start that
    fails (podman now and then: status 219/CGROUP) is tried again, and said."""
    times: dict[str, list[float]] = {label: [] for label in units}
    labels = list(units)
    for label in labels:
        _start_latency_ms(host, units[label])  # warm: image pulled, caches filled
    for round_ in range(runs):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            for attempt in (1, 2):
                try:
                    times[label].append(_start_latency_ms(host, units[label]))
                    break
                except RuntimeError as err:
                    if attempt == 2:
                        raise
                    print(f"{label}: a start failed, trying again: "
                          f"{str(err).splitlines()[0]}")
    for unit in units.values():
        host.run(["systemctl", "stop", unit], check=False)
    return times


def _foreign_rss_kb(host: TestHost, units: list[str], container_comms: set[str]) -> tuple[int,
                                                                                           int]:
    """(processes, RSS kB) in the units' cgroups that are not the containers' own."""
    count = rss = 0
    for unit in units:
        cg = host.run(["systemctl", "show", "-P", "ControlGroup", unit]).stdout.strip()
        pids = host.sh(f"find /sys/fs/cgroup{cg} -name cgroup.procs -exec cat {{}} +").stdout
        for pid in pids.split():
            status = host.sh(f"cat /proc/{pid}/status 2>/dev/null || true").stdout
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields and fields["Name"].strip() not in container_comms:
                count += 1
                rss += int(fields.get("VmRSS", "0 kB").split()[0])
    return count, rss


def _conmon_rss_kb(host: TestHost) -> tuple[int, int]:
    out = host.sh("ps -C conmon -o rss= || true").stdout.split()
    return len(out), sum(int(x) for x in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    podman = not args.no_podman and shutil.which("podman") is not None
    containers = Path(tempfile.mkdtemp(prefix="bench-containers-", dir="/var/tmp"))
    try:
        with Registry() as registry:
            push(registry.host, "bench/busybox", "1", busybox_image())
            ref = f"{registry.host}/bench/busybox:1"
            files = {"/etc/containers/containers.conf": "[containers]\npids_limit = 0\n"}
            with TestHost(nspawn_args=[f"--bind={containers}:/var/lib/containers"],
                          files=files) as host:
                report(host, ref, args.runs, podman)
    finally:
        shutil.rmtree(containers, ignore_errors=True)


def report(host: TestHost, ref: str, runs: int, podman: bool) -> None:
    host.run([HOSTCTL, "install"])
    hostctl_unit = _hostctl_unit(host, ref, "bench-hostctl")
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", hostctl_unit])
    snapshot = host.sh("ls -d /var/lib/hostctl/storage/snapshots/*/ | head -1").stdout.strip()
    runc_unit = _runc_unit(host, snapshot or "/var/lib/hostctl/storage")
    units = {"hostctl": hostctl_unit, "runc (floor)": runc_unit}
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        units["podman 4.3.1"] = _podman_unit(host, ref, "bench-podman")
    host.run(["systemctl", "daemon-reload"])
    record = "/run/hostctl/launch/bench-hostctl.record"
    before = host.run(["stat", "-c", "%i", record], check=False).stdout.strip()
    times = _interleaved(host, units, runs)
    after = host.run(["stat", "-c", "%i", record], check=False).stdout.strip()
    reused = "every start recorded" if before and before == after else "full starts too"
    print(f"hostctl: {reused} (record inode {before} -> {after})")
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"start to first journal line, median of {runs}:")
    for label, value in medians.items():
        quartiles = statistics.quantiles(times[label], n=4)
        print(f"  {label:<14} {value:8.1f} ms   (quartiles {quartiles[0]:.1f} .. "
              f"{quartiles[2]:.1f}, taken in turns)")
    print(f"  hostctl / floor  {medians['hostctl'] / medians['runc (floor)']:.2f}x")
    if podman:
        print(f"  hostctl / podman {medians['hostctl'] / medians['podman 4.3.1']:.2f}x")
    many = [_hostctl_unit(host, ref, f"bench-m{i}") for i in range(MANY)]
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", *many])
    count, rss = _foreign_rss_kb(host, many, {"sleep"})
    print(f"with {MANY} hostctl containers: {count} non-container processes, {rss} kB RSS")
    host.run(["systemctl", "stop", *many])
    if podman:
        pods = [_podman_unit(host, ref, f"bench-p{i}") for i in range(MANY)]
        host.run(["systemctl", "daemon-reload"])
        host.run(["systemctl", "start", *pods], timeout=300)
        count, rss = _conmon_rss_kb(host)
        print(f"with {MANY} podman containers: {count} conmon processes, {rss} kB RSS")
        host.run(["systemctl", "stop", *pods], timeout=300)


if __name__ == "__main__":
    main()
