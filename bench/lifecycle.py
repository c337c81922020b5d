"""Health checks and auto-update: hostctl vs podman 4.3.1, side by side in the same run.

All inside one systemd test host, images from a registry on loopback (marked insecure
in a registries.conf given to podman alone), podman always with runc.

1. One health check (`test -e /` in an idle busybox container): hostctl's lean check
   process (the ExecStart of NAME-healthcheck.service, run by hand) and the
   `hostctl healthcheck NAME` command, against `podman healthcheck run CTR` on an
   equivalent quadlet-style podman unit; and, as the floor, a bare `runc exec` of the
   same check in hostctl's container. Each run goes through a small wrapper in the
   guest that is a child subreaper (so conmon's double fork comes back to it), waits
   for the command, then reaps every leftover descendant: CPU = user+sys of the whole
   process tree (runc, conmon included); wall = until the command itself exits. The
   kinds take turns (the order rotating each round); medians and quartiles of N runs.
   (Not counted for either: systemd's and journald's own work for the check.)
2. Journal lines per hour of a healthy container checked every 30 s. Checking every
   30 s for an hour is too slow for a benchmark, so each kind gets a window of CHECKS
   checks at a short interval (2 s) once it is healthy, and every entry of the guest's
   whole journal between two cursors is counted; the checks are counted by the check
   itself (it appends a line to a file in the container), and the guest's background
   (a window of up to 30 s with no check timer running) is subtracted. Lines per check
   x 120 checks/hour = lines per hour: each check is one activation of the check unit
   whatever the interval, so the lines per check do not depend on it.
3. `auto-update --dry-run` over 20 running containers (20 images on the registry, a
   newer one pushed under every tag, so all 20 are pending): `hostctl auto-update
   --dry-run --format json` over 20 declared containers with `auto_update: registry`
   against `podman auto-update --dry-run --format json` over 20 quadlet-style units
   (Type=notify, `podman run --rm --replace --sdnotify=conmon --runtime runc --label
   io.containers.autoupdate=registry --label PODMAN_SYSTEMD_UNIT=%n ...`). Wall and CPU
   through the same wrapper, in turns; both must report 20 pending.

    sudo .venv/bin/python bench/lifecycle.py [--runs 20] [--checks 30] [--interval 2]
                                             [--podman-only]

podman (Debian's 4.3.1) is a bench-only package: `apt-get install podman`.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.imagebuild import DEFAULT_PATH, ImageSpec, busybox_image, push  # noqa: E402
from tests.support.registry import Registry  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
PODMAN = ["/usr/bin/podman", "--runtime", "runc"]
RUNC = "/usr/sbin/runc"
HOSTCTL_RUNC_ROOT = "/run/hostctl/runc"  # where hostctl's system containers are, runc's --root
# podman's registries.conf, marking the loopback registry insecure (podman 4.3.1's
# auto-update has no --tls-verify). Given to podman alone: hostctl speaks plain HTTP to
# a loopback registry by itself (with the entry it would try HTTPS first, then HTTP).
PODMAN_REGISTRIES = "/etc/bench/podman-registries.conf"
PODMAN_ENV = {"CONTAINERS_REGISTRIES_CONF": PODMAN_REGISTRIES}
SLEEP = ["sleep", "86400"]  # every image's command
CHECK = "test -e /"
COUNTER = "/tmp/bench-checks"  # in the container: one line per check (part 2)
COUNTING_CHECK = f"echo . >> {COUNTER}"
MANY = 20
# Unit and container names carry a token of this run: test hosts booted at the same time
# on this machine share one cgroup2 subtree (systemd-nspawn --keep-unit from the root
# cgroup: /payload), so same-named units in two guests would share a cgroup.
RUN = f"lc{secrets.token_hex(2)}"
WRAPPER = "/usr/local/lib/bench-rusage.py"
# Runs ARGV; prints JSON: wall seconds until ARGV exits, user and sys seconds of the
# whole process tree (a child subreaper: orphans such as conmon's come back to it and
# are reaped here, so their rusage is in RUSAGE_CHILDREN), the exit status and output.
WRAPPER_CODE = """\
import ctypes, json, os, resource, subprocess, sys, time
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
out = proc.communicate()[0]
wall = time.monotonic() - start
lingering, deadline = 0, time.monotonic() + 10
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        if time.monotonic() > deadline:
            lingering = 1
            break
        time.sleep(0.002)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "rc": proc.returncode, "lingering": lingering,
                  "out": out.decode(errors="replace")}))
"""

Sample = dict[str, float]


def measure(host: TestHost, argv: list[str], timeout: float = 120) -> tuple[Sample, str]:
    """({"wall": s, "cpu": s}, output) of one run of ARGV in the guest, through the wrapper."""
    env = PODMAN_ENV if argv[0] == PODMAN[0] else None
    done = host.run(["/usr/bin/python3", "-I", WRAPPER, *argv], timeout=timeout, env=env)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{argv!r} exited with {result['rc']}:\n{result['out']}")
    if result["lingering"]:
        raise RuntimeError(f"{argv!r} left processes running for 10 s after it exited")
    return {"wall": result["wall"], "cpu": result["cpu"]}, str(result["out"])


def in_turns(host: TestHost, kinds: dict[str, list[str]], runs: int) -> dict[str, list[Sample]]:
    """RUNS samples of each kind, taken in turns (the order rotating each round, so a
    drift of the machine's load weighs on all alike), after one untimed warm-up run each."""
    labels = list(kinds)
    for label in labels:
        measure(host, kinds[label])
    samples: dict[str, list[Sample]] = {label: [] for label in labels}
    for round_ in range(runs):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            samples[label].append(measure(host, kinds[label])[0])
    return samples


def print_samples(samples: dict[str, list[Sample]], peer: str, judged: str, metric: str,
                  target: float) -> None:
    """Median and quartiles of each kind, each kind's ratio to PEER's medians, and
    whether JUDGED's ratio of METRIC (cpu or wall) is within TARGET."""
    width = max(map(len, samples)) + 2
    medians: dict[str, Sample] = {}
    for label, values in samples.items():
        medians[label] = {}
        parts = []
        for key, unit in (("cpu", "ms CPU"), ("wall", "ms wall")):
            series = [v[key] * 1000 for v in values]
            q1, _, q3 = statistics.quantiles(series, n=4)
            medians[label][key] = statistics.median(series)
            parts.append(f"{medians[label][key]:7.1f} {unit} ({q1:.1f} .. {q3:.1f})")
        print(f"  {label:<{width}}" + "   ".join(parts))
    for label in samples:
        if label == peer:
            continue
        ratio = {key: medians[label][key] / medians[peer][key] for key in ("cpu", "wall")}
        verdict = ""
        if label == judged:
            met = "meets" if ratio[metric] <= target else "MISSES"
            verdict = f"  -> {met} the target ({metric} at most {target}x podman's)"
        print(f"  {label} / podman: CPU {ratio['cpu']:.2f}x, wall {ratio['wall']:.2f}x{verdict}")


# ---- podman units -------------------------------------------------------------------------

def podman_unit(host: TestHost, name: str, ref: str, *extra: str) -> str:
    """A quadlet-style unit (as podman 4.4's quadlet would write for a .container file)
    running REF's own command with the podman run options EXTRA."""
    argv = " ".join([*PODMAN, "run", "--rm", "--replace", "--name", name, "--pids-limit=-1",
                     "--cgroups=split", "--sdnotify=conmon", "-d", "--network=host",
                     "--label", "PODMAN_SYSTEMD_UNIT=%n", *extra, ref])
    host.write_file(f"/etc/systemd/system/{name}.service", f"""\
[Unit]
Description=bench podman container {name}

[Service]
Environment=PODMAN_SYSTEMD_UNIT=%n CONTAINERS_REGISTRIES_CONF={PODMAN_REGISTRIES}
Type=notify
NotifyAccess=all
KillMode=mixed
Delegate=yes
SyslogIdentifier=%N
ExecStart={argv}
ExecStop=/usr/bin/podman rm -f -i --time 1 {name}
ExecStopPost=-/usr/bin/podman rm -f -i --time 1 {name}
TimeoutStopSec=10
""")
    return f"{name}.service"


def hostctl_declare(host: TestHost, name: str, ref: str, **settings: object) -> str:
    decl = {"image": ref, "network": "host", "stop_timeout": 1, **settings}
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", json.dumps(decl))
    return f"{name}.service"


def start_units(host: TestHost, units: list[str]) -> None:
    """Start UNITS; a unit that failed (podman now and then: 219/CGROUP in this guest)
    is started once more, and said."""
    host.run(["systemctl", "start", *units], check=False, timeout=300)
    for unit in units:
        if host.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active":
            continue
        print(f"  ({unit} did not start; starting it once more)")
        host.run(["systemctl", "reset-failed", unit], check=False)
        done = host.run(["systemctl", "start", unit], check=False, timeout=120)
        if done.returncode != 0:
            journal = host.run(["journalctl", "--no-pager", "-n", "20", "-u", unit]).stdout
            raise RuntimeError(f"{unit} does not start:\n{journal}")


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def podman_status(host: TestHost, name: str) -> str:
    return host.run([*PODMAN, "inspect", "-f", "{{.State.Health.Status}}", name],
                    check=False).stdout.strip()


def hostctl_status(host: TestHost, name: str) -> str:
    done = host.run(["cat", f"/run/hostctl/containers/{name}/health.json"], check=False)
    if done.returncode != 0:
        return ""
    status: str = json.loads(done.stdout).get("status", "")
    return status


# ---- 1. one health check ------------------------------------------------------------------

def lean_check_argv(host: TestHost, unit: str) -> list[str]:
    """The argv of UNIT's ExecStart, as systemd resolved it."""
    shown = host.run(["systemctl", "show", "-P", "ExecStart", unit]).stdout
    if "argv[]=" not in shown:
        raise RuntimeError(f"{unit} has no ExecStart: {shown!r}")
    return shown.split("argv[]=", 1)[1].split(" ;", 1)[0].split()


def one_check(host: TestHost, ref: str, runs: int, hostctl: bool) -> None:
    pod, ours = f"{RUN}-hc-podman", f"{RUN}-hc-hostctl"
    units = [podman_unit(host, pod, ref, "--health-cmd", f"'{CHECK}'", "--health-interval=1h")]
    if hostctl:
        units.append(hostctl_declare(host, ours, ref, health_cmd=CHECK, health_interval=3600))
    host.run(["systemctl", "daemon-reload"])
    start_units(host, units)
    wait_for(f"{pod} healthy", lambda: podman_status(host, pod) == "healthy")
    kinds = {"podman healthcheck run": [*PODMAN, "healthcheck", "run", pod]}
    if hostctl:  # its first check comes after the interval: the warm-up run makes it healthy
        lean = lean_check_argv(host, f"{ours}-healthcheck.service")
        kinds["hostctl lean check"] = lean
        kinds["hostctl healthcheck (CLI)"] = [HOSTCTL, "healthcheck", ours]
        kinds["runc exec (floor)"] = [RUNC, "--root", HOSTCTL_RUNC_ROOT, "exec", ours,
                                      "/bin/sh", "-c", CHECK]
    samples = in_turns(host, kinds, runs)
    print(f"1. one health check ({CHECK!r}), median (quartiles) of {runs}, in turns; "
          f"CPU = user+sys of the process tree:")
    print(f"  (podman = {' '.join(kinds['podman healthcheck run'])})")
    if hostctl:
        print(f"  (hostctl lean check = {' '.join(lean)})")
    print_samples(samples, "podman healthcheck run", "hostctl lean check", "cpu", 0.3)
    host.run(["systemctl", "stop", *units], timeout=120)


# ---- 2. journal lines per check -----------------------------------------------------------

def cursor(host: TestHost) -> str:
    out = host.run(["journalctl", "--no-pager", "-n", "1", "-o", "json"]).stdout
    value: str = json.loads(out)["__CURSOR"]
    return value


def lines_between(host: TestHost, first: str, last: str) -> list[str]:
    """The guest's journal entries after cursor FIRST up to cursor LAST (included), as
    'UNIT: MESSAGE' lines."""
    if first == last:
        return []
    out = host.run(["journalctl", "--no-pager", "-o", "json", f"--after-cursor={first}"]).stdout
    found = []
    for line in out.splitlines():
        entry = json.loads(line)
        source = entry.get("_SYSTEMD_UNIT") or entry.get("SYSLOG_IDENTIFIER", "?")
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # journalctl's form of a message that is not UTF-8
            message = bytes(message).decode(errors="replace")
        found.append(f"{source}: {message}")
        if entry["__CURSOR"] == last:
            return found
    raise RuntimeError(f"cursor {last} not found after {first}")


def kinds_of_lines(lines: list[str]) -> Counter[str]:
    """LINES by kind: container IDs, podman's event timestamps and mount units' random
    suffixes replaced, so that the lines of every check look alike."""
    kinds: Counter[str] = Counter()
    for line in lines:
        line = re.sub(r"\b[0-9a-f]{12,64}\b", "ID", line)
        line = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \+0000 UTC m=\+[\d.]+ ", "", line)
        line = re.sub(r"-runc\.\w+\.mount", "-runc.XXXXXX.mount", line)
        kinds[line[:160]] += 1
    return kinds


def checks_done(host: TestHost, pid: str) -> int:
    done = host.run(["cat", f"/proc/{pid}/root{COUNTER}"], check=False)
    return len(done.stdout.splitlines()) if done.returncode == 0 else 0


def journal_window(host: TestHost, pid: str, checks: int) -> tuple[int, float, list[str]]:
    """(checks done, seconds, journal lines) over a window of about CHECKS checks of the
    container whose init is PID."""
    before, first, start = checks_done(host, pid), cursor(host), time.monotonic()
    wait_for(f"{checks} checks", lambda: checks_done(host, pid) - before >= checks,
             timeout=checks * 5 + 30)
    last, seconds, after = cursor(host), time.monotonic() - start, checks_done(host, pid)
    return after - before, seconds, lines_between(host, first, last)


def healthy_pid(host: TestHost, kind: str, unit: str, name: str) -> str:
    """The PID (in the guest) of container NAME's init, once it is healthy and its
    counting check has run."""
    if kind == "podman":
        wait_for(f"{name} healthy", lambda: podman_status(host, name) == "healthy")
        pid = host.run([*PODMAN, "inspect", "-f", "{{.State.Pid}}", name]).stdout.strip()
    else:
        wait_for(f"{name} healthy", lambda: hostctl_status(host, name) == "healthy")
        pid = host.run(["systemctl", "show", "-P", "MainPID", unit]).stdout.strip()
    wait_for(f"{name}'s first counted check", lambda: checks_done(host, pid) > 0)
    return pid


def journal_lines(host: TestHost, ref: str, checks: int, interval: float, hostctl: bool) -> None:
    counting = f"'{COUNTING_CHECK}'"
    pod, ours = f"{RUN}-hj-podman", f"{RUN}-hj-hostctl"
    kinds = [("podman", podman_unit(host, pod, ref, "--health-cmd", counting,
                                    f"--health-interval={interval:g}s"), pod)]
    if hostctl:
        kinds.append(("hostctl", hostctl_declare(host, ours, ref, health_cmd=COUNTING_CHECK,
                                                 health_interval=interval), ours))
    host.run(["systemctl", "daemon-reload"])
    results: dict[str, tuple[int, float, list[str]]] = {}
    for label, unit, name in kinds:
        start_units(host, [unit])
        pid = healthy_pid(host, label, unit, name)
        results[label] = journal_window(host, pid, checks)
        host.run(["systemctl", "stop", unit], timeout=120)
    seconds = min(30.0, max(window[1] for window in results.values()))
    first = cursor(host)
    time.sleep(seconds)
    background = lines_between(host, first, cursor(host))
    rate = len(background) / seconds
    print(f"2. journal lines of a healthy container's checks (the guest's whole journal "
          f"between two cursors, checks every {interval:g} s; background: "
          f"{len(background)} lines in {seconds:.0f} s without checks, subtracted):")
    for line, count in kinds_of_lines(background).most_common():
        print(f"    background: {count:4d} x {line}")
    per_hour = {}
    for label, (done, window, lines) in results.items():
        per_check = max(0.0, len(lines) - rate * window) / done
        per_hour[label] = per_check * 3600 / 30
        print(f"  {label:<8} {len(lines):4d} lines / {done} checks in {window:.0f} s = "
              f"{per_check:.2f} per check -> {per_hour[label]:6.0f} lines/hour at one "
              f"check per 30 s")
    for label, (_, _, lines) in results.items():
        if any("start-limit-hit" in line for line in lines):
            print(f"  WARNING: {label}'s check unit hit systemd's start limit: the interval "
                  f"is too short for a fair count")
        print(f"    {label}'s lines by kind:")
        for line, count in kinds_of_lines(lines).most_common():
            print(f"      {count:4d} x {line}")
        if not lines:
            print("      (none)")
    if hostctl:
        verdict = "meets" if per_hour["hostctl"] == 0 else "MISSES"
        print(f"  hostctl {per_hour['hostctl']:.0f} vs podman {per_hour['podman']:.0f} "
              f"lines/hour ({verdict} the target of 0)")


# ---- 3. auto-update --dry-run -------------------------------------------------------------

def pending(output: str) -> int:
    """How many entries of an auto-update --format json output say pending."""
    start = output.find("[")
    entries = json.loads(output[start:]) if start >= 0 else []
    return sum(1 for e in entries
               if str(e.get("Updated", e.get("updated", ""))).lower() == "pending")


def app_image(app: int, version: int) -> ImageSpec:
    """Image VERSION of app number APP: each app its own image (config), one busybox layer."""
    return busybox_image(Cmd=SLEEP, Env=[DEFAULT_PATH, f"APP={app}", f"VERSION={version}"])


def auto_update(host: TestHost, registry: str, runs: int, hostctl: bool) -> None:
    refs = [f"{registry}/bench/app{i}:latest" for i in range(MANY)]
    for i in range(MANY):
        push(registry, f"bench/app{i}", "latest", app_image(i, 1))
    pods = [podman_unit(host, f"{RUN}-au-podman-{i}", ref,
                        "--label", "io.containers.autoupdate=registry")
            for i, ref in enumerate(refs)]
    ours = [hostctl_declare(host, f"{RUN}-au-hostctl-{i}", ref, auto_update="registry")
            for i, ref in enumerate(refs) if hostctl]
    host.run(["systemctl", "daemon-reload"])
    start_units(host, pods + ours)
    for i in range(MANY):  # a newer image under every tag: all 20 pending
        push(registry, f"bench/app{i}", "latest", app_image(i, 2))
    kinds = {"podman auto-update --dry-run": [*PODMAN, "auto-update", "--dry-run",
                                              "--format", "json"]}
    if hostctl:
        kinds["hostctl auto-update --dry-run"] = [HOSTCTL, "auto-update", "--dry-run",
                                                  "--format", "json"]
    for label, argv in kinds.items():
        output = measure(host, argv)[1]
        found = pending(output)
        if found != MANY:
            raise RuntimeError(f"{label}: {found} of {MANY} containers pending, not {MANY}")
    samples = in_turns(host, kinds, runs)
    print(f"3. auto-update --dry-run over {MANY} running containers, all {MANY} pending "
          f"(both said so), median (quartiles) of {runs}, in turns:")
    print_samples(samples, "podman auto-update --dry-run", "hostctl auto-update --dry-run",
                  "wall", 0.5)
    host.run(["systemctl", "stop", *pods, *ours], timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each timed kind")
    parser.add_argument("--checks", type=int, default=30, help="checks per journal window")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between checks in the journal windows (below 2 s, "
                        "systemd's default start limit of 5 starts in 10 s cuts podman's "
                        "transient check unit short)")
    parser.add_argument("--podman-only", action="store_true",
                        help="the podman side alone (no ratios), e.g. to check the harness")
    parser.add_argument("--parts", default="1,2,3",
                        help="which parts to run, comma-separated (1: one check, 2: journal "
                        "lines, 3: auto-update --dry-run); default all")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"1", "2", "3"}:
        parser.error("--parts takes 1, 2 and 3, comma-separated")
    hostctl = not args.podman_only
    if shutil.which("podman") is None:
        sys.exit("podman not found: apt-get install -y podman (a bench-only package)")
    containers = Path(tempfile.mkdtemp(prefix="bench-containers-", dir="/var/tmp"))
    started, load = time.monotonic(), Path("/proc/loadavg").read_text().split()[:3]
    try:
        with Registry() as registry:
            push(registry.host, "bench/busybox", "1",
                 busybox_image(Cmd=SLEEP))
            ref = f"{registry.host}/bench/busybox:1"
            files = {
                "/etc/containers/containers.conf":
                    '[containers]\npids_limit = 0\n[engine]\nruntime = "runc"\n',
                PODMAN_REGISTRIES:
                    f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n',
                WRAPPER: WRAPPER_CODE,
            }
            with TestHost(nspawn_args=[f"--bind={containers}:/var/lib/containers"],
                          files=files, masks=["podman.service"]) as host:
                host.run([HOSTCTL, "install"])
                host.run([*PODMAN, "pull", ref], env=PODMAN_ENV)
                if "1" in parts:
                    one_check(host, ref, args.runs, hostctl)
                if "2" in parts:
                    journal_lines(host, ref, args.checks, args.interval, hostctl)
                if "3" in parts:
                    auto_update(host, registry.host, args.runs, hostctl)
    finally:
        shutil.rmtree(containers, ignore_errors=True)
    print(f"(whole run {time.monotonic() - started:.0f} s; this machine's load average "
          f"{' '.join(load)} at the start, "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end)")


if __name__ == "__main__":
    main()
