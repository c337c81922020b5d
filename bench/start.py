"""Start latency and resident overhead: hostctl vs bare `runc run` vs podman 4.3.1.

From `systemctl start` to the container's first line in the journal, measured inside
a systemd test host with a network namespace of its own: the guest's clock just before
`systemctl start`, and the line's __REALTIME_TIMESTAMP (no polling loop in the
measurement). Median of N runs each, taken in turns (so a drift of the load weighs on
all alike), in the same run for every kind, all with runc:

- host: `network: host` (podman --network=host); the floor is `runc run` of `runc
  spec`'s config (host network, no seccomp); "hostctl host, py" is the same container
  started by the Python launcher instead of the compiled one (hostctl install builds
  it where there is a C compiler: hostctl/launcher/launchfast.c);
- bridge: the default network with one published port (podman's default CNI network);
- named: a declared network (podman network create) with one published port;
- rootless bridge: a lingering user's container on its default network, started by
  `systemctl --user start`: hostctl's with pasta, podman's (the user's own storage, on
  the kernel's overlay, the same image from the guest's registry) with slirp4netns, its
  rootless default (podman 4.3.1 has no pasta networking; scripts/setup.sh installs
  slirp4netns); hostctl's again with its start record removed before each start (a full start),
  with `runtime: crun` (which runs rootless here, where rootful it cannot raise
  RLIMIT_MEMLOCK), and "hostctl rootless, py": started by the Python launcher instead of
  the compiled one.

Then 20 containers on the host network: the resident memory that is not the containers'
own processes (hostctl: none; podman: its conmon processes).

    sudo .venv/bin/python bench/start.py [--runs 9] [--no-podman] [--kinds host,bridge]

podman (Debian's 4.3.1) is a bench-only package: `apt-get install podman`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hostctl.launcher.quickuser import RECORDED_START  # noqa: E402
from tests.support import netguest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
LINE = "bench-first-line"
# Ends on SIGTERM (a shell as PID 1 would ignore it): a stop takes no stop timeout, and
# the cleanup gets all of TimeoutStopSec= even on a loaded machine.
CMD = ["sh", "-c", f'trap "exit 0" TERM; echo {LINE}; sleep 600 & wait']
MANY = 20
USER = "benchuser"
KINDS = ("host", "bridge", "named", "rootless")
PORTS = {"bridge": 18081, "named": 18082, "rootless": 18083, "rootless-full": 18084,
         "rootless-crun": 18085, "rootless-py": 18086}
NETWORK = "benchnet"


@dataclass(frozen=True)
class Unit:
    """A unit to start: a system unit, or a user unit of USER (uid)."""

    name: str
    uid: str = ""
    forget: str = ""  # a start record removed before each start: every start a full one

    def systemctl(self) -> str:
        if not self.uid:
            return "systemctl"
        return (f"runuser -u {USER} -- env XDG_RUNTIME_DIR=/run/user/{self.uid} "
                "systemctl --user")

    def journal_match(self) -> list[str]:
        """The unit's lines: a user unit's by its identifier (SyslogIdentifier=%N), as
        rootless podman 4.3.1 moves its conmon into a scope of its own (podman-PID.scope),
        whose lines do not name the unit."""
        if self.uid:
            return [f"SYSLOG_IDENTIFIER={self.name.removesuffix('.service')}"]
        return ["-u", self.name]


def _start_latency_ms(host: TestHost, unit: Unit) -> float:
    host.sh(f"{unit.systemctl()} stop {unit.name}; {unit.systemctl()} reset-failed "
            f"{unit.name}", check=False)
    if unit.forget:  # and the compiled launcher's fast record beside it
        host.run(["rm", "-f", unit.forget, unit.forget.removesuffix(".record") + ".fast"])
    out = host.sh(f"t=$(date +%s%6N); {unit.systemctl()} start {unit.name}; echo $t").stdout
    started = int(out.split()[-1])
    for _ in range(200):
        journal = host.run(["journalctl", "--no-pager", "-o", "json", *unit.journal_match(),
                            f"--since=@{started // 1_000_000 - 1}"]).stdout
        entries = [json.loads(line) for line in journal.splitlines()]
        stamps = [int(e["__REALTIME_TIMESTAMP"]) for e in entries
                  if str(e.get("MESSAGE", "")).strip() == LINE
                  and int(e["__REALTIME_TIMESTAMP"]) >= started]
        if stamps:
            return (min(stamps) - started) / 1000
        host.run(["sleep", "0.05"])
    tail = host.run(["journalctl", "--no-pager", "-n", "15", *unit.journal_match()]).stdout
    raise RuntimeError(f"{unit.name}: no {LINE!r} in the journal:\n{tail}")


def _hostctl_decl(ref: str, kind: str) -> str:
    decl: dict[str, object] = {"image": ref, "command": CMD, "stop_timeout": 5}
    if kind == "host":
        decl["network"] = "host"
    else:
        decl["ports"] = [f"{PORTS[kind]}:80"]
    if kind == "rootless-crun":
        decl["runtime"] = "crun"
    if kind == "named":
        decl["network"] = NETWORK
    return json.dumps(decl)


def _hostctl_unit(host: TestHost, ref: str, name: str, kind: str = "host",
                  uid: str = "") -> Unit:
    if uid:
        folder = f"/home/{USER}/.config/hostctl/containers"
        host.run(["runuser", "-u", USER, "--", "mkdir", "-p", folder])
        host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {folder}/{name}.yaml"],
                 input=_hostctl_decl(ref, kind))
        return Unit(f"{name}.service", uid)
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", _hostctl_decl(ref, kind))
    return Unit(f"{name}.service")


def _python_launcher(host: TestHost, unit: Unit) -> Unit:
    """UNIT started by the Python launcher even where `hostctl install` built the
    compiled one (hostctl/launcher/launchfast.c): what the compiled launcher buys."""
    name = unit.name.removesuffix(".service")
    scope, user = ("user", "--user ") if unit.uid else ("system", "")
    host.write_file(f"/etc/systemd/{scope}/{unit.name}.d/python.conf", f"""\
[Service]
ExecStart=
ExecStart={sys.executable} -sSE {REPO}/hostctl/launcher/entry.py launch {user}{name}
""")
    return unit


def _runc_unit(host: TestHost, rootfs: str) -> Unit:
    bundle = "/var/lib/bench-runc"
    host.sh(f"mkdir -p {bundle} && cd {bundle} && rm -f config.json && runc spec")
    config = json.loads(host.read_file(f"{bundle}/config.json"))
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"].update(terminal=False, args=CMD)
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "network"]
    host.write_file(f"{bundle}/config.json", json.dumps(config))
    host.write_file("/etc/systemd/system/bench-runc.service", f"""\
[Service]
ExecStart=/usr/sbin/runc run --bundle {bundle} bench-runc
ExecStopPost=-/usr/sbin/runc delete --force bench-runc
TimeoutStopSec=5
""")
    return Unit("bench-runc.service")


def podman_argv(ref: str, name: str, network: str, ports: list[str]) -> str:
    """podman run as quadlet writes it (hostctl's generator reference: quadlet.md)."""
    return " ".join(["/usr/bin/podman", "run", "--rm", "--replace", "--name", name,
                     "--pids-limit=-1", "--cgroups=split", "--sdnotify=conmon", "-d",
                     "--log-driver=journald", f"--network={network}", "--runtime=runc",
                     *(f"--publish={p}" for p in ports), "--tls-verify=false", ref,
                     *(f"'{a}'" for a in CMD)])


def podman_unit_text(argv: str, name: str) -> str:
    return f"""\
[Unit]
Wants=network-online.target
After=network-online.target
[Service]
Type=notify
NotifyAccess=all
KillMode=mixed
Delegate=yes
SyslogIdentifier=%N
Environment=PODMAN_SYSTEMD_UNIT=%n
ExecStart={argv}
ExecStop=/usr/bin/podman rm -f -i --time 1 {name}
ExecStopPost=-/usr/bin/podman rm -f -i --time 1 {name}
TimeoutStopSec=5
"""


def _podman_unit(host: TestHost, ref: str, name: str, kind: str = "host") -> Unit:
    network = {"host": "host", "bridge": "bridge", "named": NETWORK}[kind]
    ports = [f"{PORTS[kind] + 100}:80"] if kind != "host" else []
    host.write_file(f"/etc/systemd/system/{name}.service",
                    podman_unit_text(podman_argv(ref, name, network, ports), name))
    return Unit(f"{name}.service")


def _podman_user_unit(host: TestHost, ref: str, name: str, uid: str) -> Unit:
    """USER's podman container on its rootless default network (slirp4netns), as quadlet
    writes a user unit: the image pulled into the user's own storage first. That storage
    uses the kernel's overlay: podman would take vfs here (no fuse-overlayfs), which
    copies the image for every container and starts about 1.4x slower."""
    config = f"/home/{USER}/.config/containers"
    host.run(["runuser", "-u", USER, "--", "mkdir", "-p", config])
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {config}/storage.conf"],
             input='[storage]\ndriver = "overlay"\n')
    host.run(["runuser", "-u", USER, "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
              "podman", "pull", "--tls-verify=false", ref], timeout=300)
    folder = f"/home/{USER}/.config/systemd/user"
    argv = podman_argv(ref, name, "slirp4netns", [f"{PORTS['rootless'] + 100}:80"])
    host.run(["runuser", "-u", USER, "--", "mkdir", "-p", folder])
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {folder}/{name}.service"],
             input=podman_unit_text(argv, name))
    return Unit(f"{name}.service", uid)


def _interleaved(host: TestHost, units: dict[str, Unit], runs: int) -> dict[str, list[float]]:
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
        host.sh(f"{unit.systemctl()} stop {unit.name}", check=False)
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
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-podman", action="store_true")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"a comma-separated subset of {','.join(KINDS)}")
    args = parser.parse_args()
    podman = not args.no_podman and shutil.which("podman") is not None
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    containers = Path(tempfile.mkdtemp(prefix="bench-containers-", dir="/var/tmp"))
    try:
        files = {"/etc/containers/containers.conf": "[containers]\npids_limit = 0\n"}
        with TestHost(nspawn_args=["--private-network",
                                   f"--bind={containers}:/var/lib/containers"],
                      files=files) as host:
            host.sh(netguest.UPLINK)
            netguest.serve_image(host)  # the guest's own registry (its own loopback)
            report(host, netguest.IMAGE, args.runs, podman, kinds)
    finally:
        shutil.rmtree(containers, ignore_errors=True)


def _units(host: TestHost, ref: str, podman: bool, kinds: list[str]) -> dict[str, Unit]:
    """The units to time, by label; every hostctl unit started once (image pulled)."""
    host.run([HOSTCTL, "install"])
    host.write_file(f"/etc/hostctl/networks/{NETWORK}.yaml", "subnet: 10.95.0.0/24\n")
    units: dict[str, Unit] = {}
    for kind in (k for k in kinds if k != "rootless"):
        units[f"hostctl {kind}"] = _hostctl_unit(host, ref, f"bench-hostctl-{kind}", kind)
    if "host" in kinds:
        units["hostctl host, py"] = _python_launcher(
            host, _hostctl_unit(host, ref, "bench-hostctl-hostpy", "host"))
    host.run(["systemctl", "daemon-reload"])
    for unit in units.values():
        host.run(["systemctl", "start", unit.name])
    if "rootless" in kinds:
        uid = host.lingering_user(USER)
        unit = _hostctl_unit(host, ref, "bench-hostctl-rootless", "rootless", uid)
        host.sh(f"{unit.systemctl()} daemon-reload")
        units["hostctl rootless"] = unit
        # the same container, started in full every time (the record removed): "before"
        full = _hostctl_unit(host, ref, "bench-hostctl-rootfull", "rootless-full", uid)
        units["hostctl rootless, full start"] = Unit(
            full.name, uid, f"/run/user/{uid}/hostctl/launch/bench-hostctl-rootfull.record")
        # and with crun (recorded starts too), which runs rootless here
        units["hostctl rootless, crun"] = _hostctl_unit(host, ref, "bench-hostctl-rootcrun",
                                                        "rootless-crun", uid)
        # and by the Python launcher: what the compiled one buys
        units["hostctl rootless, py"] = _python_launcher(host, _hostctl_unit(
            host, ref, "bench-hostctl-rootpy", "rootless-py", uid))
        if podman:
            units["podman rootless"] = _podman_user_unit(host, ref, "bench-podman-rootless",
                                                         uid)
        host.sh(f"{unit.systemctl()} daemon-reload")
        # once every declaration is in place (a file added next to a declaration is an
        # input of its record): the image pulled, a record written
        for started in (unit, units["hostctl rootless, crun"], units["hostctl rootless, py"]):
            host.sh(f"{started.systemctl()} start {started.name}")
    if "host" in kinds:
        snapshot = host.sh("for d in /var/lib/hostctl/storage/snapshots/*/; do "
                           "[ -e $d/bin/sh ] && echo $d && break; done; true").stdout.strip()
        units["runc floor"] = _runc_unit(host, snapshot or "/var/lib/hostctl/storage")
    if podman:
        host.run(["podman", "pull", "--tls-verify=false", ref])
        if "named" in kinds:
            host.run(["podman", "network", "create", "--subnet", "10.96.0.0/24", NETWORK])
        for kind in (k for k in kinds if k != "rootless"):
            units[f"podman {kind}"] = _podman_unit(host, ref, f"bench-podman-{kind}", kind)
    host.run(["systemctl", "daemon-reload"])
    return units


def report(host: TestHost, ref: str, runs: int, podman: bool, kinds: list[str]) -> None:
    units = _units(host, ref, podman, kinds)
    records = {label: f"{f'/run/user/{unit.uid}' if unit.uid else '/run'}/hostctl/launch/"
               f"{unit.name.removesuffix('.service')}.record"
               for label, unit in units.items() if label.startswith("hostctl")
               and not unit.forget}
    before = {label: host.run(["stat", "-c", "%i", path], check=False).stdout.strip()
              for label, path in records.items()}
    print(f"load average before: {host.read_file('/proc/loadavg').strip()}")
    times = _interleaved(host, units, runs)
    print(f"load average after: {host.read_file('/proc/loadavg').strip()}")
    for label, path in records.items():
        after = host.run(["stat", "-c", "%i", path], check=False).stdout.strip()
        reused = "every start recorded" if before[label] and before[label] == after \
            else "full starts too"
        print(f"{label}: {reused} (record inode {before[label] or '-'} -> {after or '-'})")
    for label, unit in units.items():
        if label.startswith("hostctl") and unit.uid:  # what the user's launcher said
            lines = host.run(["journalctl", "--no-pager", "-o", "cat",
                              *unit.journal_match()]).stdout
            print(f"{label}: {lines.count(RECORDED_START)} recorded starts, "
                  f"{lines.count('does not apply')} fell back to the full start")
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"start to first journal line, median of {runs}:")
    for label, value in medians.items():
        quartiles = statistics.quantiles(times[label], n=4)
        print(f"  {label:<18} {value:8.1f} ms   (quartiles {quartiles[0]:.1f} .. "
              f"{quartiles[2]:.1f}, taken in turns)")
    if "hostctl host" in medians and "runc floor" in medians:
        print(f"  hostctl host / floor     {medians['hostctl host'] / medians['runc floor']:.2f}x")
    if "hostctl host, py" in medians and "runc floor" in medians:
        ratio = medians["hostctl host, py"] / medians["runc floor"]
        print(f"  hostctl host, py / floor {ratio:.2f}x  (the Python launcher)")
    for kind in kinds:
        if f"podman {kind}" in medians:
            ratio = medians[f"hostctl {kind}"] / medians[f"podman {kind}"]
            print(f"  hostctl / podman, {kind:<8} {ratio:.2f}x")
    if "podman rootless" in medians and "hostctl rootless, py" in medians:
        ratio = medians["hostctl rootless, py"] / medians["podman rootless"]
        print(f"  hostctl / podman, rootless, py {ratio:.2f}x  (the Python launcher)")
    if "podman rootless" in medians and "hostctl rootless, full start" in medians:
        ratio = medians["hostctl rootless, full start"] / medians["podman rootless"]
        print(f"  hostctl / podman, rootless, full start {ratio:.2f}x")
    if "host" in kinds:
        resident(host, ref, podman)


def resident(host: TestHost, ref: str, podman: bool) -> None:
    """The resident memory next to MANY containers on the host network."""
    many = [_hostctl_unit(host, ref, f"bench-m{i}").name for i in range(MANY)]
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", *many])
    count, rss = _foreign_rss_kb(host, many, {"sh", "sleep"})
    print(f"with {MANY} hostctl containers: {count} non-container processes, {rss} kB RSS")
    host.run(["systemctl", "stop", *many])
    if podman:
        pods = [_podman_unit(host, ref, f"bench-p{i}").name for i in range(MANY)]
        host.run(["systemctl", "daemon-reload"])
        host.run(["systemctl", "start", *pods], timeout=300)
        count, rss = _conmon_rss_kb(host)
        print(f"with {MANY} podman containers: {count} conmon processes, {rss} kB RSS")
        host.run(["systemctl", "stop", *pods], timeout=300)


if __name__ == "__main__":
    main()
