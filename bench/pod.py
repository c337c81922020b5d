"""Pod start latency: hostctl vs podman 4.3.1 starting the same pod the way quadlet does.

A pod of 3 members, each printing a first line and sleeping, on the host's network (as
bench/start.py: no network wiring in either). From `systemctl start NAME-pod` to the
last of the three members' first lines in the journal, measured inside a systemd test
host: the guest's clock just before the start, and the lines' __REALTIME_TIMESTAMP.
hostctl: a .pod file and three .container members (Pod=), its pod unit holding the IPC
and UTS namespaces by bind mounts. podman: the units quadlet 4.x generates for the same
files (the pod unit runs `podman pod create --infra-conmon-pidfile ... --exit-policy
stop` then `podman pod start`, each member `podman run --pod ... --sdnotify=conmon -d`),
always with --runtime runc (for the infra container too: a global option of `pod
create`). Median of N runs each, taken in turns, after one warm start each: hostctl's
timed starts are the recorded ones (the pod's setup record, hostctl.pod.quick, and its
members' start records), as every start but the first after a boot is.

    sudo .venv/bin/python bench/pod.py [--runs 10] [--no-podman]

podman (Debian's 4.3.1) is a bench-only package: `apt-get install podman`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.peerhost import registry_guest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
MEMBERS = 3
DECLS = "/etc/hostctl/containers"
UNITS = "/etc/systemd/system"


def _line(member: str) -> str:
    return f"first-line-of-{member}"


def _cmd(member: str) -> list[str]:
    # exits at SIGTERM, so a stop is not a kill after the timeout for either
    return ["sh", "-c", f"trap 'exit 0' TERM; echo {_line(member)}; sleep 600 & wait"]


def _hostctl_pod(host: TestHost, ref: str, pod: str) -> tuple[str, list[str]]:
    host.write_file(f"{DECLS}/{pod}.pod", "[Pod]\nNetwork=host\n")
    members = [f"{pod}-m{i}" for i in range(MEMBERS)]
    for member in members:
        exec_line = " ".join(json.dumps(word) for word in _cmd(member))
        host.write_file(f"{DECLS}/{member}.container", (
            f"[Container]\nImage={ref}\nPod={pod}.pod\nStopTimeout=5\nExec={exec_line}\n"))
    return f"{pod}-pod.service", [f"{m}.service" for m in members]


def _podman_pod(host: TestHost, ref: str, pod: str) -> tuple[str, list[str]]:
    """The units quadlet (podman 4.x/5.x) writes for a .pod with Network=host and its
    .container members, with --runtime runc."""
    podman = "/usr/bin/podman"
    members = [f"{pod}-m{i}" for i in range(MEMBERS)]
    wants = "".join(f"Wants={m}.service\nBefore={m}.service\n" for m in members)
    host.write_file(f"{UNITS}/{pod}-pod.service", f"""\
[Unit]
{wants}
[Service]
SyslogIdentifier=%N
ExecStart={podman} pod start systemd-{pod}
ExecStop={podman} pod stop --ignore --time=1 systemd-{pod}
ExecStopPost={podman} pod rm --ignore --force systemd-{pod}
ExecStartPre={podman} --runtime runc pod create --infra-conmon-pidfile=%t/%N.pid --replace \
--exit-policy stop --infra-name systemd-{pod}-infra --name systemd-{pod} --network host
Environment=PODMAN_SYSTEMD_UNIT=%n
Type=forking
Restart=on-failure
PIDFile=%t/%N.pid
""")
    for member in members:
        argv = " ".join([
            podman, "run", "--name", f"systemd-{member}", "--cidfile=%t/%N.cid", "--replace",
            "--rm", "--cgroups=split", "--sdnotify=conmon", "-d", "--runtime", "runc",
            "--log-driver=journald", "--pod", f"systemd-{pod}",
            "--tls-verify=false", ref, *(json.dumps(a) for a in _cmd(member))])
        host.write_file(f"{UNITS}/{member}.service", f"""\
[Unit]
BindsTo={pod}-pod.service
After={pod}-pod.service
[Service]
Environment=PODMAN_SYSTEMD_UNIT=%n
KillMode=mixed
ExecStartPre=/bin/rm -f %t/%N.cid
ExecStop={podman} rm -v -f -i --cidfile=%t/%N.cid
ExecStopPost=-{podman} rm -v -f -i --cidfile=%t/%N.cid
ExecStopPost=-/bin/rm -f %t/%N.cid
Delegate=yes
Type=notify
NotifyAccess=all
SyslogIdentifier=%N
ExecStart={argv}
TimeoutStopSec=5
""")
    return f"{pod}-pod.service", [f"{m}.service" for m in members]


def _all_first_lines_ms(host: TestHost, pod_unit: str, members: list[str]) -> float:
    """From `systemctl start POD_UNIT` to the last member's first line in the journal."""
    host.run(["systemctl", "stop", pod_unit, *members], check=False)
    host.run(["systemctl", "reset-failed", pod_unit, *members], check=False)
    out = host.sh(f"t=$(date +%s%6N); systemctl start {pod_unit}; echo $t").stdout
    started = int(out.split()[-1])
    wanted = {_line(m.removesuffix(".service").removeprefix("systemd-")) for m in members}
    for _ in range(400):
        journal = host.run(["journalctl", "--no-pager", "-o", "json",
                            f"--since=@{started // 1_000_000 - 1}",
                            *(f"--unit={m}" for m in members)]).stdout
        stamps: dict[str, int] = {}
        for line in journal.splitlines():
            entry = json.loads(line)
            text = str(entry.get("MESSAGE", "")).strip()
            stamp = int(entry["__REALTIME_TIMESTAMP"])
            if text in wanted and stamp >= started:
                stamps[text] = min(stamps.get(text, stamp), stamp)
        if len(stamps) == len(wanted):
            return (max(stamps.values()) - started) / 1000
        host.run(["sleep", "0.05"])
    tail = host.run(["journalctl", "--no-pager", "-n", "30", "-o", "cat",
                     *(f"--unit={m}" for m in members)]).stdout
    raise RuntimeError(f"{pod_unit}: not every member's first line arrived:\n{tail}")


def _interleaved(host: TestHost, pods: dict[str, tuple[str, list[str]]], runs: int
                 ) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label in pods}
    labels = list(pods)
    for label in labels:
        _all_first_lines_ms(host, *pods[label])  # warm: images, caches, pause image
    for round_ in range(runs):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            times[label].append(_all_first_lines_ms(host, *pods[label]))
    for pod_unit, members in pods.values():
        host.run(["systemctl", "stop", pod_unit, *members], check=False)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs: at least 2 (the report prints quartiles)")
    podman = not args.no_podman and shutil.which("podman") is not None
    with registry_guest() as (host, ref):
        report(host, ref, args.runs, podman)


def report(host: TestHost, ref: str, runs: int, podman: bool) -> None:
    host.run([HOSTCTL, "install"])
    pods = {"hostctl": _hostctl_pod(host, ref, "hpod")}
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        pods["podman 4.3.1"] = _podman_pod(host, ref, "ppod")
    host.run(["systemctl", "daemon-reload"])
    times = _interleaved(host, pods, runs)
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"pod of {MEMBERS}: start to every member's first journal line, median of {runs} "
          f"(load average {os.getloadavg()[0]:.1f}):")
    for label, value in medians.items():
        quartiles = statistics.quantiles(times[label], n=4)
        print(f"  {label:<14} {value:8.1f} ms   (quartiles {quartiles[0]:.1f} .. "
              f"{quartiles[2]:.1f}, taken in turns)")
    if podman:
        ratio = medians["hostctl"] / medians["podman 4.3.1"]
        print(f"  hostctl / podman {ratio:.2f}x (target: at most 0.5x)")


if __name__ == "__main__":
    main()
