"""Network cost: start latency added by network setup, and throughput through a
published port, each against `network: host` measured in the same run, for rootful
containers and for a user's rootless ones.

Inside a systemd test host with its own network namespace (nothing touches this
machine's network). Start latency: from `systemctl start` (`systemctl --user start`,
run as the user, for rootless containers) to the container's first journal line (the
guest's clock just before the start, the line's __REALTIME_TIMESTAMP), median of N
runs, all kinds taking turns in each round. Rootful: `network: host`, `network: bridge`
without ports and with one published port. Containers on `host` are started again
from the launcher's start record (hostctl.launcher.record), which bridged ones do not
get, so `host (full start)` also runs `network: host` with its record removed before
each start: the same launcher path as the bridged ones, the peer for what network
setup itself adds. Rootless (a lingering user `bench`; user-scope starts have no
record, so each is a full one): `network: host`, the default `bridge` (a pasta per
container) and a user network (~/.config/hostctl/networks/benchnet.yaml; its unit,
hostctl-network-benchnet.service, is started before the first round and stays up, so
the member's start joins a running holder), each against rootless `host`.
Throughput: 256 MiB sent by a Python client in the guest to a container's busybox nc
listener, on host networking (the container's port directly), through a rootful
published port (hostctl's DNAT rules), through a rootless published port (the
container's own pasta) and through a port published by a user network's member (the
network's pasta, then the member's DNAT rules in the holder's namespace), each the
best of 3; the clients connect to 127.0.0.1, so both pasta paths are its loopback
splice.

    sudo .venv/bin/python bench/network.py [--runs 10] [--mib 256] [--latency-only]
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
USER = "bench"
USER_NET = "benchnet"
NET_UNIT = f"hostctl-network-{USER_NET}.service"


def _declare(host: TestHost, name: str, **settings: object) -> None:
    decl = {"image": netguest.IMAGE, "stop_timeout": 1, **settings}
    host.write_file(f"/etc/hostctl/containers/{name}.yaml", json.dumps(decl))


class Rootless:
    """The lingering user `bench` in the guest: its rootless containers and its user
    network, declared before its manager's first daemon-reload (the network's unit
    forwards the ports its members declared when it starts)."""

    def __init__(self, host: TestHost) -> None:
        self.host = host
        self.uid = host.lingering_user(USER)
        self.env = f"XDG_RUNTIME_DIR=/run/user/{self.uid}"
        config = f"/home/{USER}/.config/hostctl"
        self.containers = f"{config}/containers"
        self.run("mkdir", "-p", self.containers, f"{config}/networks")
        self.write(f"{config}/networks/{USER_NET}.yaml", "subnet: 10.95.0.0/24\n")

    def run(self, *argv: str, check: bool = True) -> str:
        out: str = self.host.run(["runuser", "-u", USER, "--", "env", self.env, *argv],
                                 check=check).stdout
        return out

    def sh(self, script: str) -> str:
        """SCRIPT's output, run by sh as the user with its XDG_RUNTIME_DIR (one runuser:
        what the script times does not include runuser's PAM session)."""
        return self.run("sh", "-c", script)

    def write(self, path: str, text: str) -> None:
        self.host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {path}"], input=text)

    def declare(self, name: str, **settings: object) -> None:
        decl = {"image": netguest.IMAGE, "stop_timeout": 1, **settings}
        self.write(f"{self.containers}/{name}.yaml", json.dumps(decl))

    def systemctl(self, *argv: str, check: bool = True) -> str:
        return self.run("systemctl", "--user", *argv, check=check)

    def network_pid(self) -> str:
        """The MainPID of the user network's unit (its holder), "0" when it is down."""
        return self.systemctl("show", "-P", "MainPID", NET_UNIT).strip()


def _first_line_ms(host: TestHost, match: str, started: int, unit: str) -> float:
    """Milliseconds from STARTED (µs, the guest's clock) to LINE in the journal entries
    that MATCH (a journalctl match or option) selects."""
    for _ in range(200):
        journal = host.run(["journalctl", "--no-pager", "-o", "json", match,
                            f"--since=@{started // 1_000_000 - 1}"]).stdout
        stamps = [int(e["__REALTIME_TIMESTAMP"]) for e in map(json.loads, journal.splitlines())
                  if str(e.get("MESSAGE", "")).strip() == LINE
                  and int(e["__REALTIME_TIMESTAMP"]) >= started]
        if stamps:
            return (min(stamps) - started) / 1000
        time.sleep(0.05)
    said = host.run(["journalctl", "--no-pager", "-o", "cat", match]).stdout
    raise RuntimeError(f"{unit}: no first line:\n{said}")


def _latency_ms(host: TestHost, unit: str, before: str = "") -> float:
    host.run(["systemctl", "stop", unit], check=False)
    out = host.sh(f"{before}t=$(date +%s%6N); systemctl start {unit}; echo $t").stdout
    return _first_line_ms(host, f"--unit={unit}", int(out.split()[-1]), unit)


def _user_latency_ms(user: Rootless, unit: str) -> float:
    out = user.sh(f"systemctl --user stop {unit}; "
                  f"t=$(date +%s%6N); systemctl --user start {unit} && echo $t")
    return _first_line_ms(user.host, f"_SYSTEMD_USER_UNIT={unit}", int(out.split()[-1]), unit)


FULL = "host (full start)"
ROOTLESS = {"rootless host": {"network": "host"},
            "rootless bridge": {"network": "bridge"},  # a pasta per container
            "rootless user net": {"network": USER_NET}}


def _unit(kind: str) -> str:
    if kind in ROOTLESS:
        return "lat-" + kind.replace(" ", "-")
    return "lat-" + kind.split(" ")[0].replace("+", "-") + ("-full" if kind == FULL else "")


def declare_rootless(user: Rootless) -> None:
    """Every rootless container of the bench, then the user manager's daemon-reload."""
    command = ["sh", "-c", f"echo {LINE}; exec sleep 600"]
    for name, settings in ROOTLESS.items():
        user.declare(_unit(name), command=command, **settings)
    user.declare("tp-rootless", command=SINK, ports=["9002:9000"])
    user.declare("tp-usernet", command=SINK, network=USER_NET, ports=["9003:9000"])
    user.systemctl("daemon-reload")


def start_latency(host: TestHost, user: Rootless, runs: int) -> dict[str, float]:
    command = ["sh", "-c", f"echo {LINE}; exec sleep 600"]
    kinds = {"host": {"network": "host"}, FULL: {"network": "host"},
             "bridge": {"network": "bridge"},
             "bridge+port": {"network": "bridge", "ports": ["8099:80"]}}
    for name, settings in kinds.items():
        _declare(host, _unit(name), command=command, **settings)
    host.run(["systemctl", "daemon-reload"])
    user.systemctl("start", NET_UNIT)  # up before the first round: not part of any start
    holder = user.network_pid()
    samples: dict[str, list[float]] = {name: [] for name in [*kinds, *ROOTLESS]}
    for _ in range(runs + 1):  # the first round pulls and warms caches: dropped
        for name in kinds:
            before = f"rm -f /run/hostctl/launch/{_unit(name)}.record; " if name == FULL else ""
            samples[name].append(_latency_ms(host, f"{_unit(name)}.service", before))
        for name in ROOTLESS:
            samples[name].append(_user_latency_ms(user, f"{_unit(name)}.service"))
    for name in kinds:
        host.run(["systemctl", "stop", f"{_unit(name)}.service"])
    for name in ROOTLESS:
        user.systemctl("stop", f"{_unit(name)}.service")
    if user.network_pid() != holder:
        raise RuntimeError(f"{NET_UNIT} did not stay up through the rounds (holder {holder}, "
                           f"now {user.network_pid()})")
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


def throughput(host: TestHost, user: Rootless, mib: int) -> dict[str, float]:
    _declare(host, "tp-host", command=SINK, network="host")
    _declare(host, "tp-bridge", command=SINK, ports=["9001:9000"])
    host.run(["systemctl", "daemon-reload"])
    results = {}
    for unit, port in (("tp-host", 9000), ("tp-bridge", 9001)):
        host.run(["systemctl", "start", unit])
        time.sleep(0.3)
        results[unit] = mib / _send_seconds(host, port, mib)
        host.run(["systemctl", "stop", unit])
    for unit, port in (("tp-rootless", 9002), ("tp-usernet", 9003)):
        user.systemctl("start", unit)  # tp-usernet: its network's pasta forwards 9003
        try:
            time.sleep(0.3)
            results[unit] = mib / _send_seconds(host, port, mib)
        finally:
            user.systemctl("stop", unit, check=False)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput")
    args = parser.parse_args()
    host = netguest.boot()
    try:
        host.run([HOSTCTL, "install"])
        user = Rootless(host)
        declare_rootless(user)
        latency = start_latency(host, user, args.runs)
        rates = {} if args.latency_only else throughput(host, user, args.mib)
        user.systemctl("stop", NET_UNIT, check=False)
    finally:
        host.close()
    print(f"start latency, median of {args.runs} (systemctl start -> first line):")
    for name, value in latency.items():
        if name == "host":
            extra = ""
        elif name == "rootless host":
            extra = f"  ({value - latency[FULL]:+.1f} ms over a full start on host"
        elif name in ROOTLESS:
            extra = f"  ({value - latency['rootless host']:+.1f} ms over rootless host"
        else:
            extra = f"  ({value - latency['host']:+.1f} ms over host"
        if name.startswith("bridge"):
            extra += f", {value - latency[FULL]:+.1f} ms over a full start on host"
        if name == "rootless user net":
            extra += f"; {NET_UNIT} already running"
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
    print(f"  user network port      {rates['tp-usernet']:8.0f} MiB/s  "
          f"(ratio {rates['tp-usernet'] / base:.2f} of host; its pasta, then DNAT)")


if __name__ == "__main__":
    main()
