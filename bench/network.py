"""Network cost: start latency added by network setup, and throughput through a
published port, each against `network: host` measured in the same run.

Inside a systemd test host with its own network namespace (nothing touches this
machine's network). Start latency: from `systemctl start` to the container's first
journal line (the guest's clock just before the start, the line's
__REALTIME_TIMESTAMP), median of N runs, for `network: host`, `network: bridge`
without ports and with one published port. Containers on `host` are started again
from the launcher's start record (hostctl.launcher.record), which bridged ones do not
get, so `host (full start)` also runs `network: host` with its record removed before
each start: the same launcher path as the bridged ones, the peer for what network
setup itself adds. Throughput: 256 MiB sent by a Python
client in the guest to a container's busybox nc listener, on host networking (the
container's port directly), through a rootful published port (hostctl's DNAT rules), and
through a rootless published port (pasta), each the best of 3.

    sudo .venv/bin/python bench/network.py [--runs 10] [--mib 256]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import netguest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
LINE = "bench-first-line"
SINK = ["sh", "-c", "while true; do nc -l -p 9000 > /dev/null; done"]


def _declare(host: TestHost, name: str, **settings: object) -> None:
    decl = {"image": netguest.IMAGE, "stop_timeout": 1, **settings}
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", json.dumps(decl))


def _latency_ms(host: TestHost, unit: str, before: str = "") -> float:
    host.run(["systemctl", "stop", unit], check=False)
    out = host.sh(f"{before}t=$(date +%s%6N); systemctl start {unit}; echo $t").stdout
    started = int(out.split()[-1])
    for _ in range(200):
        journal = host.run(["journalctl", "--no-pager", "-o", "json", "-u", unit,
                            f"--since=@{started // 1_000_000 - 1}"]).stdout
        stamps = [int(e["__REALTIME_TIMESTAMP"]) for e in map(json.loads, journal.splitlines())
                  if str(e.get("MESSAGE", "")).strip() == LINE
                  and int(e["__REALTIME_TIMESTAMP"]) >= started]
        if stamps:
            return (min(stamps) - started) / 1000
        time.sleep(0.05)
    raise RuntimeError(f"{unit}: no first line:\n{host.journal(unit)}")


FULL = "host (full start)"


def _unit(kind: str) -> str:
    return "lat-" + kind.split(" ")[0].replace("+", "-") + ("-full" if kind == FULL else "")


def start_latency(host: TestHost, runs: int) -> dict[str, float]:
    command = ["sh", "-c", f"echo {LINE}; exec sleep 600"]
    kinds = {"host": {"network": "host"}, FULL: {"network": "host"},
             "bridge": {"network": "bridge"},
             "bridge+port": {"network": "bridge", "ports": ["8099:80"]}}
    for name, settings in kinds.items():
        _declare(host, _unit(name), command=command, **settings)
    host.run(["systemctl", "daemon-reload"])
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(runs + 1):  # the first round pulls and warms caches: dropped
        for name in kinds:
            before = f"rm -f /run/hostctl/launch/{_unit(name)}.record; " if name == FULL else ""
            samples[name].append(_latency_ms(host, f"{_unit(name)}.service", before))
    for name in kinds:
        host.run(["systemctl", "stop", f"{_unit(name)}.service"])
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


SEND = """\
import socket, sys, time
port, mib = int(sys.argv[1]), int(sys.argv[2])
chunk = bytes(1 << 20)
with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
    start = time.monotonic()
    for _ in range(mib):
        sock.sendall(chunk)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):
        pass
    print(time.monotonic() - start)
"""


def _send_seconds(host: TestHost, port: int, mib: int) -> float:
    """MIB MiB sent by a Python client in the guest to 127.0.0.1:PORT until the
    listener closes; best of 3 (the guest has no nc of its own)."""
    python = str(Path(sys.executable))
    best = float("inf")
    for _ in range(3):
        out = host.run([python, "-c", SEND, str(port), str(mib)], timeout=120).stdout
        best = min(best, float(out.split()[-1]))
        time.sleep(0.3)  # the container's loop starts its next listener
    return best


def throughput(host: TestHost, mib: int) -> dict[str, float]:
    _declare(host, "tp-host", command=SINK, network="host")
    _declare(host, "tp-bridge", command=SINK, ports=["9001:9000"])
    host.run(["systemctl", "daemon-reload"])
    results = {}
    for unit, port in (("tp-host", 9000), ("tp-bridge", 9001)):
        host.run(["systemctl", "start", unit])
        time.sleep(0.3)
        results[unit] = mib / _send_seconds(host, port, mib)
        host.run(["systemctl", "stop", unit])
    results["tp-rootless"] = mib / _rootless_seconds(host, mib)
    return results


def _rootless_seconds(host: TestHost, mib: int) -> float:
    host.run(["useradd", "-m", "bench"])
    host.run(["loginctl", "enable-linger", "bench"])
    uid = host.run(["id", "-u", "bench"]).stdout.strip()
    while host.run(["systemctl", "is-active", f"user@{uid}.service"],
                   check=False).stdout.strip() != "active":
        time.sleep(0.2)
    user = ["runuser", "-u", "bench", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}"]
    folder = "/home/bench/.config/hostctl/containers"
    host.run([*user, "mkdir", "-p", folder])
    decl = {"image": netguest.IMAGE, "command": SINK, "ports": ["9002:9000"]}
    host.run([*user, "sh", "-c", f"cat > {folder}/tp.yaml"], input=json.dumps(decl))
    host.run([*user, "systemctl", "--user", "daemon-reload"])
    host.run([*user, "systemctl", "--user", "start", "tp"])
    try:
        time.sleep(0.3)
        return _send_seconds(host, 9002, mib)
    finally:
        host.run([*user, "systemctl", "--user", "stop", "tp"], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput")
    args = parser.parse_args()
    host = netguest.boot()
    try:
        host.run([HOSTCTL, "install"])
        latency = start_latency(host, args.runs)
        rates = {} if args.latency_only else throughput(host, args.mib)
    finally:
        host.close()
    print(f"start latency, median of {args.runs} (systemctl start -> first line):")
    for name, value in latency.items():
        extra = "" if name == "host" else f"  ({value - latency['host']:+.1f} ms over host"
        if name.startswith("bridge"):
            extra += f", {value - latency[FULL]:+.1f} ms over a full start on host"
        print(f"  network: {name:<18} {value:7.1f} ms{extra}{')' if extra else ''}")
    if not rates:
        return
    base = rates["tp-host"]
    print(f"throughput, {args.mib} MiB to a busybox nc listener, best of 3:")
    print(f"  host networking        {base:8.0f} MiB/s")
    print(f"  rootful published port {rates['tp-bridge']:8.0f} MiB/s  "
          f"(ratio {rates['tp-bridge'] / base:.2f} of host)")
    print(f"  rootless (pasta) port  {rates['tp-rootless']:8.0f} MiB/s  "
          f"(ratio {rates['tp-rootless'] / base:.2f} of host)")


if __name__ == "__main__":
    main()
