"""Cost of one health check: hostctl's lean check vs bare `runc exec` vs podman 4.3.1,
and journal lines written by checks at a 1 s interval.

Inside a systemd test host, with the same busybox image and `true` as the check:
- hostctl: what NAME-healthcheck.service runs (`PYTHON -sSE .../entry.py health-timer
  NAME`: the lean exec of the container's process, the state updated under its lock);
- hostctl, runc exec: the same on a second container whose checks are kept on
  `runc exec --process` (the path the lean exec falls back to);
- runc exec (floor): `runc exec NAME true` on the same container;
- podman: `podman healthcheck run NAME` (4.3.1, Debian's).
CPU (user + system of the process and the children it waits for, from bash's `time`;
and the whole guest's, from its cgroup's cpu.stat) and wall time per check, over N runs
each, taken in turns. Then each kind checked every second for
--seconds: the journal lines its checks wrote (hostctl: its health units' journal;
podman: its transient units' and podman's own lines).

    sudo .venv/bin/python bench/healthcheck.py [--runs 50] [--seconds 60] [--no-podman]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.peerhost import registry_guest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
ENTRY = str(REPO / "hostctl" / "launcher" / "entry.py")
# Run in the test host: keep a container's checks on runc exec / say which path they take.
REMEMBER = ("import sys; sys.path.insert(0, sys.argv[1]); from hostctl.health import status; "
            "status.remember(status.bundle_dir(sys.argv[2], False), 'lean', "
            "{'why': 'kept on runc exec by the benchmark'})")
WHY = ("import sys; sys.path.insert(0, sys.argv[1]); from hostctl.health import status; "
       "print(status.load_store(status.bundle_dir(sys.argv[2], False))['lean']['why'])")
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]


def _declare(host: TestHost, ref: str, name: str, interval: str) -> None:
    decl = {"image": ref, "command": LOOP, "stop_timeout": 1, "network": "host",
            "health_cmd": ["true"], "health_interval": interval}
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", json.dumps(decl))


def _podman(host: TestHost, ref: str, name: str, interval: str) -> None:
    host.run(["podman", "run", "-d", "--replace", "--name", name, "--pids-limit=-1",
              "--network=host", "--runtime=runc", "--tls-verify=false",
              "--health-cmd=true", f"--health-interval={interval}", ref, *LOOP])


def _timed(host: TestHost, command: str, runs: int) -> tuple[float, float, float]:
    """(CPU ms, guest CPU ms, wall ms) per run of COMMAND, RUNS times in a loop under
    bash's time. CPU: the command and the children it waited for; guest CPU: the whole
    guest's cgroup (cpu.stat), which also counts what the command left to others
    (podman's conmon, journald writing its lines, systemd running transient units)."""
    script = ("u() { sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat; }; b=$(u); "
              f"TIMEFORMAT='%R %U %S'; time (for i in $(seq {runs}); do "
              f"{command} >/dev/null 2>&1 || exit 9; done); echo $(( $(u) - b ))")
    # In a transient unit of the guest's: all of it in the guest's cgroup (a command
    # run with nsenter stays in the machine's).
    done = host.run(["systemd-run", "--quiet", "--wait", "--pipe", "bash", "-c", script],
                    check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{command}: exit {done.returncode}: {done.stderr}")
    real, user, system = (float(x) for x in done.stderr.split()[-3:])
    guest = int(done.stdout.split()[-1]) / 1000
    return (user + system) * 1000 / runs, guest / runs, real * 1000 / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    podman = not args.no_podman and shutil.which("podman") is not None
    with registry_guest() as (host, ref):
        report(host, ref, args.runs, args.seconds, podman)


def report(host: TestHost, ref: str, runs: int, seconds: int, podman: bool) -> None:
    host.run([HOSTCTL, "install"])
    _declare(host, ref, "bench-check", "0")  # no timer: only the runs measured here
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", "bench-check.service"])
    # The same check kept on `runc exec` (what the lean exec replaces): its first check
    # writes the store, then the store says to use runc.
    _declare(host, ref, "bench-runc", "0")
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", "bench-runc.service"])
    host.run([sys.executable, "-sSE", ENTRY, "health-timer", "bench-runc"])
    host.run([sys.executable, "-c", REMEMBER, str(REPO), "bench-runc"])
    commands = {
        "hostctl": f"{sys.executable} -sSE {ENTRY} health-timer bench-check",
        "hostctl, runc exec": f"{sys.executable} -sSE {ENTRY} health-timer bench-runc",
        "runc exec (floor)": "runc --root /run/hostctl/runc exec bench-check true",
    }
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        _podman(host, ref, "bench-podman", "1h")
        commands["podman 4.3.1"] = "podman healthcheck run bench-podman"
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in commands}
    for command in commands.values():  # warm
        _timed(host, command, 3)
    rounds = 5
    for round_ in range(rounds):
        labels = list(commands)
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            results[label].append(_timed(host, commands[label], max(1, runs // rounds)))
    for name in ("bench-check", "bench-runc"):
        why = host.run([sys.executable, "-c", WHY, str(REPO), name]).stdout.strip()
        print(f"{name}: {'lean exec' if not why else f'runc exec ({why})'}")
    log = json.loads(host.read_file("/run/hostctl/containers/bench-check/health.json"))
    print(f"hostctl's state after the runs: {log['status']}, last exit code "
          f"{log['log'][-1]['exit_code']}")
    print(f"one health check (`true`), mean of {runs} runs in turns:")
    for label, values in results.items():
        cpu, guest, wall = (sum(v[n] for v in values) / len(values) for n in range(3))
        print(f"  {label:<20} CPU {cpu:6.1f} ms   guest CPU {guest:6.1f} ms   "
              f"wall {wall:6.1f} ms")
    host.run(["systemctl", "stop", "bench-check.service", "bench-runc.service"])
    if podman:
        host.run(["podman", "rm", "-f", "-t", "1", "bench-podman"])
    journal_lines(host, ref, seconds, podman)


def journal_lines(host: TestHost, ref: str, seconds: int, podman: bool) -> None:
    """Journal lines written by SECONDS of checks at a 1 s interval, for each kind."""
    _declare(host, ref, "bench-quiet", "1s")
    host.run(["systemctl", "daemon-reload"])
    cursor = host.run(["journalctl", "-n", "0", "--show-cursor", "-q"]).stdout.split()[-1]
    host.run(["systemctl", "start", "bench-quiet.service"])
    if podman:
        _podman(host, ref, "bench-pquiet", "1s")
    time.sleep(seconds)
    entries = [json.loads(line) for line in host.run(
        ["journalctl", "--no-pager", "-o", "json", f"--after-cursor={cursor}"],
        timeout=120).stdout.splitlines()]
    state = json.loads(host.read_file("/run/hostctl/containers/bench-quiet/health.json"))
    podman_id = ""
    if podman:
        podman_id = host.run(["podman", "inspect", "-f", "{{.Id}}", "bench-pquiet"]
                             ).stdout.strip()

    def about(entry: dict[str, str], *words: str) -> bool:
        text = " ".join(str(entry.get(k, "")) for k in ("MESSAGE", "UNIT", "_SYSTEMD_UNIT",
                                                         "SYSLOG_IDENTIFIER"))
        return any(word and word in text for word in words)

    ours = [e for e in entries if about(e, "bench-quiet-healthcheck")]
    print(f"journal lines in {seconds} s of checks every second:")
    print(f"  hostctl: {len(ours)} (status {state['status']}; "
          + "; ".join(str(e.get("MESSAGE")) for e in ours) + ")")
    if podman:
        theirs = [e for e in entries if about(e, podman_id, "bench-pquiet", "podman")]
        print(f"  podman 4.3.1: {len(theirs)}")
        host.run(["podman", "rm", "-f", "-t", "1", "bench-pquiet"], check=False)
    host.run(["systemctl", "stop", "bench-quiet.service"], check=False)


if __name__ == "__main__":
    main()
