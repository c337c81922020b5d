"""Where a recorded start's time goes, piece by piece, in a systemd test host.

- systemd: from `systemctl start` of a oneshot unit to its first instruction, for `sh`
  and for the launcher's interpreter (`python3 -sSE`);
- the recorded start's imports (hostctl.launcher.quick, python -X importtime);
- `runc create` (then `runc delete`) of a hostctl container's own config.json: as it is,
  without its seccomp filter, with the filter for x86_64 only, and `runc spec`'s config
  (bench/start.py's floor); `crun create` of the same configs, when crun can run here.

- rootless: `runc create` and `crun create` of a user's container's config.json (from
  its start record: pasta's network namespace, the user's sub-id maps), run by the
  user in a user namespace of its own (`unshare --map-auto`) in a delegated scope, as
  the recorded start runs it, with the same variants.

Medians of N, each piece alone; the machine's load average printed with them.

    sudo .venv/bin/python bench/startpath.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import netguest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
PYTHON = str(Path(sys.executable).parent / "python")
BUNDLE = "/var/lib/bench-path"
FIRST = "date +%s%6N > /run/bench-first"


def _unit_latency_ms(host: TestHost, unit: str) -> float:
    out = host.sh(f"t=$(date +%s%6N); systemctl start {unit}; echo $t; "
                  "cat /run/bench-first").stdout.split()
    return (int(out[-1]) - int(out[-2])) / 1000


def _median(values: list[float]) -> float:
    return statistics.median(values)


def systemd_fork(host: TestHost, runs: int) -> dict[str, float]:
    python_first = (f"{PYTHON} -sSE -c \"import time; "
                    "open('/run/bench-first', 'w').write(str(time.time_ns() // 1000))\"")
    units = {"sh": f"/bin/sh -c '{FIRST.replace('%', '%%')}'", "python3 -sSE": python_first}
    found = {}
    for label, command in units.items():
        name = f"bench-fork-{label.split()[0]}.service"
        host.write_file(f"/etc/systemd/system/{name}",
                        f"[Service]\nType=oneshot\nExecStart={command}\n")
        host.run(["systemctl", "daemon-reload"])
        found[label] = _median([_unit_latency_ms(host, name) for _ in range(runs)])
    return found


def imports_ms(host: TestHost, runs: int) -> float:
    code = (f"import sys, time; t = time.perf_counter(); sys.path[0] = '{REPO}'; "
            "import hostctl.launcher.quick; print((time.perf_counter() - t) * 1000)")
    return _median([float(host.run([PYTHON, "-sSE", "-c", code]).stdout) for _ in range(runs)])


def _bundle(host: TestHost, config: dict[str, Any], name: str) -> None:
    host.sh(f"mkdir -p {BUNDLE}/{name}")
    host.write_file(f"{BUNDLE}/{name}/config.json", json.dumps(config))


def _floor_config(host: TestHost, config: dict[str, Any]) -> dict[str, Any]:
    """bench/start.py's floor: `runc spec`'s config (no seccomp) on CONFIG's root and
    process, host network."""
    host.sh(f"mkdir -p {BUNDLE}/spec && cd {BUNDLE}/spec && rm -f config.json && runc spec")
    floor: dict[str, Any] = json.loads(host.read_file(f"{BUNDLE}/spec/config.json"))
    floor["root"] = config["root"]
    floor["process"].update(terminal=False, args=config["process"]["args"])
    floor["linux"]["namespaces"] = [n for n in floor["linux"]["namespaces"]
                                    if n["type"] != "network"]
    return floor


def runtime_create_ms(host: TestHost, runs: int) -> dict[str, float]:
    decl = {"image": netguest.IMAGE, "command": ["sleep", "600"], "network": "host",
            "stop_timeout": 1}
    host.write_file("/etc/hostctl/containers/bench-path.yaml", json.dumps(decl))
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "start", "bench-path"])
    config: dict[str, Any] = json.loads(
        host.read_file("/run/hostctl/containers/bench-path/config.json"))
    host.run(["systemctl", "stop", "bench-path"])
    rootfs = host.sh("for d in /var/lib/hostctl/storage/snapshots/*/; do "
                     "[ -e $d/bin/sh ] && echo $d && break; done").stdout.strip()
    config["root"] = {"path": rootfs, "readonly": True}
    config["mounts"] = [m for m in config["mounts"]
                        if not str(m["source"]).startswith("/run/hostctl")]
    config["linux"]["cgroupsPath"] = "/bench-path"
    variants = {"as hostctl writes it": config}
    plain = json.loads(json.dumps(config))
    del plain["linux"]["seccomp"]
    variants["without seccomp"] = plain
    native = json.loads(json.dumps(config))
    native["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64"]
    variants["seccomp x86_64 only"] = native
    variants["runc spec's (the floor's)"] = _floor_config(host, config)
    found: dict[str, float] = {}
    for label, variant in variants.items():
        name = label.split()[0] + str(len(found))
        _bundle(host, variant, name)
        for runtime in ("runc", "crun"):
            times = []
            for _ in range(runs):
                out = host.sh(f"t=$(date +%s%6N); {runtime} create --bundle {BUNDLE}/{name} "
                              f"bp 2>&1 >/dev/null; rc=$?; u=$(date +%s%6N); "
                              f"{runtime} delete -f bp >/dev/null 2>&1; echo $rc $t $u",
                              check=False).stdout.split()
                if out[-3] != "0":
                    print(f"{runtime} create ({label}) failed: {' '.join(out[:-3])[:300]}")
                    break
                times.append((int(out[-1]) - int(out[-2])) / 1000)
            if times:
                found[f"{runtime} create, {label}"] = _median(times)
    return found


USER = "pathuser"
# Run by USER in its own user namespace, in a delegated scope: ARGV[1] the record,
# ARGV[2] the runs. Prints "RUNTIME|VARIANT|MS" (or "|failed: ..." in place of MS).
ROOTLESS_CREATE = r"""
import json, marshal, os, statistics, subprocess, sys, time
record = marshal.loads(open(sys.argv[1], "rb").read())
config = json.loads(record["config"])
scope = open("/proc/self/cgroup").read().strip().split("::")[-1]
os.makedirs(f"/sys/fs/cgroup{scope}/supervisor", exist_ok=True)  # runc needs it empty
open(f"/sys/fs/cgroup{scope}/supervisor/cgroup.procs", "w").write(str(os.getpid()))
config["linux"]["cgroupsPath"] = f"{scope}/container"
config["linux"]["namespaces"] = [n if n["type"] != "network" else {"type": "network"}
                                 for n in config["linux"]["namespaces"]]
config["root"] = {"path": [d for d in record["lowerdirs"]
                           if os.path.lexists(d + "/bin/sh")][0], "readonly": True}
config["mounts"] = [m for m in config["mounts"] if not m["source"].startswith("/run/user")]
plain = json.loads(json.dumps(config))
del plain["linux"]["seccomp"]
native = json.loads(json.dumps(config))
native["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64"]
work = os.path.join(os.environ["XDG_RUNTIME_DIR"], "bench-path")
variants = {"as hostctl writes it": config, "without seccomp": plain,
            "seccomp x86_64 only": native}
for runtime in ("runc", "crun"):
    for label, variant in variants.items():
        bundle = os.path.join(work, str(len(label)))
        os.makedirs(bundle, exist_ok=True)
        with open(os.path.join(bundle, "config.json"), "w") as handle:
            json.dump(variant, handle)
        argv = [runtime, "--root", os.path.join(work, "root")]
        times, failed = [], ""
        for _ in range(int(sys.argv[2])):
            with open(os.path.join(work, "err"), "w+") as err:
                start = time.perf_counter()
                done = subprocess.run([*argv, "create", "--bundle", bundle, "bp"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=err)
                times.append((time.perf_counter() - start) * 1000)
                subprocess.run([*argv, "delete", "-f", "bp"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                if done.returncode != 0:
                    err.seek(0)
                    failed = "failed: " + err.read().strip()[:200]
                    break
        print(f"{runtime}|{label}|{failed or statistics.median(times)}", flush=True)
"""


def rootless_create_ms(host: TestHost, runs: int) -> dict[str, str]:
    """runc and crun create of a user's container's config, as the recorded start runs
    them (hostctl.launcher.quickuser): medians (ms) or why they failed, by label."""
    uid = host.lingering_user(USER)
    folder = f"/home/{USER}/.config/hostctl/containers"
    decl = {"image": netguest.IMAGE, "command": ["sleep", "600"], "ports": ["18090:80"],
            "stop_timeout": 1}
    host.run(["runuser", "-u", USER, "--", "mkdir", "-p", folder])
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {folder}/bench-path.yaml"],
             input=json.dumps(decl))
    user = (f"runuser -u {USER} -- env XDG_RUNTIME_DIR=/run/user/{uid} "
            f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{uid}/bus")
    host.sh(f"{user} systemctl --user daemon-reload && {user} systemctl --user start "
            f"bench-path && {user} systemctl --user stop bench-path")
    host.write_file("/var/tmp/bench-rootless-create.py", ROOTLESS_CREATE)
    host.run(["chmod", "644", "/var/tmp/bench-rootless-create.py"])
    out = host.sh(f"{user} systemd-run --user --scope -q -p Delegate=yes unshare --map-auto "
                  "--map-root-user --mount python3 /var/tmp/bench-rootless-create.py "
                  f"/run/user/{uid}/hostctl/launch/bench-path.record {runs}",
                  timeout=600).stdout
    found = {}
    for line in out.splitlines():
        runtime, label, value = line.split("|", 2)
        found[f"rootless {runtime} create, {label}"] = value
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # crun raises RLIMIT_MEMLOCK for its eBPF device filter, which needs CAP_SYS_RESOURCE
    # above the hard limit: where the machine has neither (a sandbox whose bounding set
    # lacks it, hard limit 8 MiB), crun create fails and is reported as such.
    with TestHost(nspawn_args=["--private-network"]) as host:
        print(f"RLIMIT_MEMLOCK (hard) in the guest: {host.sh('ulimit -Hl').stdout.strip()}")
        host.sh(netguest.UPLINK)
        netguest.serve_image(host)
        host.run([HOSTCTL, "install"])
        print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
        for label, value in systemd_fork(host, args.runs).items():
            print(f"systemctl start to the first instruction, {label:<14} {value:7.1f} ms")
        print(f"the recorded start's imports (python -sSE)             "
              f"{imports_ms(host, args.runs):7.1f} ms")
        for label, value in runtime_create_ms(host, args.runs).items():
            print(f"{label:<50} {value:7.1f} ms")
        for label, text in rootless_create_ms(host, args.runs).items():
            shown = f"{float(text):7.1f} ms" if not text.startswith("failed") else text
            print(f"{label:<50} {shown}")
        print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
