"""A user network's namespaces, kept by its user unit (podman's "rootless netns").

Rootless containers on a declared user network share one user namespace and one
network namespace per network, both made by `hostctl network-hold --user NAME`, the
ExecStart of the generated unit hostctl-network-NAME.service (Type=notify):

1. it forks the holder, which unshares a user and a network namespace (the same id
   maps as the launchers: hostctl.runtime.userns.enter, newuidmap run from outside),
   brings lo up, makes the bridge hc-NAME with the gateway address, and (unless the
   network is internal) turns on ip_forward and route_localnet on the bridge and
   masquerades the subnet's traffic that leaves it; then it execs `sleep infinity`,
   which keeps the namespaces alive;
2. it starts pasta from outside on the holder's namespaces: pasta gives the network
   namespace an interface copied from the host's (its way out) and forwards the host
   ports the network's members publish (the generator passes their union as --tcp and
   --udp) to the same ports inside, where each member's DNAT rules take them on;
3. it records the holder's and pasta's PIDs and the forwarded ports in
   $XDG_RUNTIME_DIR/hostctl/network/holders/NAME.json, tells systemd MAINPID=holder and
   READY=1, and exits. Two processes stay per network, holder and pasta, not per
   container; stopping the unit ends both (they are in its cgroup).

Members join the holder's user namespace (hostctl.network.usernet). ExecStopPost runs
`hostctl network-release --user NAME`, which removes the record and everything members
left under the run directory for the network (their namespaces died with the holder's).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from hostctl import proc
from hostctl.declarations.model import Port, Protocol
from hostctl.errors import RuntimeFailure
from hostctl.network import defs, pasta, rules
from hostctl.paths import Paths
from hostctl.runtime import netns
from hostctl.runtime.holding import fork_holder

Forward = tuple[str | None, int, str]  # (host IP or None for every address, port, protocol)


def unit_name(network: str) -> str:
    return f"hostctl-network-{network}.service"


def restart_hint(network: str) -> str:
    return f"systemctl --user daemon-reload && systemctl --user restart {unit_name(network)}"


def _folder(paths: Paths) -> Path:
    from hostctl.network import state_dir

    return state_dir(paths) / "holders"


def record_path(paths: Paths, network: str) -> Path:
    return _folder(paths) / f"{network}.json"


def ipam_dir(paths: Paths) -> Path:
    from hostctl.network import state_dir

    return state_dir(paths) / "ipam"


@dataclass(frozen=True)
class Holder:
    """A running user network: its holder process, pasta, and what pasta forwards."""

    network: str
    pid: int
    start: str  # the holder's start time (/proc/PID/stat field 22): its identity
    pasta: int
    forwards: tuple[Forward, ...]

    @property
    def identity(self) -> str:
        return f"{self.pid}:{self.start}"

    def forwards_port(self, port: Port) -> bool:
        """Whether pasta forwards PORT's host port (on its address, or on every one)."""
        return any(number == port.host_port and proto == str(port.protocol)
                   and (ip is None or ip == port.host_ip)
                   for ip, number, proto in self.forwards)


def start_time(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def running(paths: Paths, network: str) -> Holder | None:
    """NETWORK's holder when its process still runs, else None."""
    try:
        data = json.loads(record_path(paths, network).read_text())
        holder = Holder(network, int(data["pid"]), str(data["start"]), int(data["pasta"]),
                        tuple((f[0], int(f[1]), str(f[2])) for f in data["forwards"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if start_time(holder.pid) != holder.start:
        return None
    return holder


def parse_forwards(tcp: str, udp: str) -> tuple[Forward, ...]:
    """--tcp/--udp lists ([IP/]PORT,..., or none) as forwards."""
    found: list[Forward] = []
    for proto, text in (("tcp", tcp), ("udp", udp)):
        for item in filter(None, text.split(",")):
            if item == "none":
                continue
            ip, _, number = item.rpartition("/")
            try:
                port = int(number)
                if ip:
                    ipaddress.ip_address(ip)
            except ValueError:
                raise RuntimeFailure(f"bad forwarded port {item!r} (--{proto})",
                                     hint="[IP/]PORT,... or none") from None
            found.append((ip or None, port, proto))
    return tuple(sorted(set(found), key=lambda f: (f[2], f[1], f[0] or "")))


def format_forwards(forwards: tuple[Forward, ...], proto: str) -> str:
    """The --tcp or --udp argument for FORWARDS (none when there is none)."""
    items = [f"{ip}/{port}" if ip else str(port) for ip, port, p in forwards if p == proto]
    return ",".join(items) or "none"


def forwards_of(ports: list[Port]) -> tuple[Forward, ...]:
    """The forwards publishing PORTS need (the generator's union over members)."""
    return tuple(sorted({(p.host_ip, p.host_port, str(p.protocol)) for p in ports},
                        key=lambda f: (f[2], f[1], f[0] or "")))


def _wire(network: defs.Network, lock: Path) -> None:
    """In the holder's fresh namespaces: lo, the bridge and the way out."""
    netns._loopback_up()
    bridge = network.bridge
    proc.run(["ip", "link", "add", bridge, "type", "bridge"])
    if not network.internal:
        prefix = network.subnet.prefixlen
        proc.run(["ip", "addr", "add", f"{network.gateway}/{prefix}", "dev", bridge])
    proc.run(["ip", "link", "set", bridge, "up"])
    if network.internal:
        return  # no forwarding, no masquerade: members reach only each other
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # pasta splices connections to the host's 127.0.0.1:PORT to this namespace's
    # loopback: the DNAT in OUTPUT sends them on to the bridge (hostctl.network.ports).
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1\n")
    subnet = str(network.subnet)
    masquerade = (f"-A POSTROUTING -s {subnet} ! -d {subnet}"
                  f' -m comment --comment "hostctl network {network.name}" -j MASQUERADE')
    rules.add([("4", "nat", masquerade)], f"network {network.name}", lock)


def _setup(network: defs.Network, lock: Path) -> None:
    """In the holder: the user and network namespaces, then the wiring."""
    from hostctl.runtime import userns

    uids, gids = userns.id_maps(os.getuid(), os.getgid())
    userns.enter(uids, gids, flags=userns.CLONE_NEWNET)
    _wire(network, lock)


def _fork_holder(network: defs.Network, lock: Path) -> int:
    """Fork the holder; its PID once its namespaces are wired."""
    pid, said = fork_holder(lambda: _setup(network, lock))
    if said != "ok":
        raise RuntimeFailure(f"cannot set up network {network.name}'s namespaces: {said}",
                             where=str(network.source or f"network {network.name}"),
                             hint="check user.max_user_namespaces, the user's /etc/subuid "
                                  "range and that iproute2 and iptables are installed")
    return pid


def _start_pasta(pid: int, forwards: tuple[Forward, ...], pid_file: Path) -> int:
    """pasta on the holder's namespaces; its PID."""
    ports = [Port(ip, number, number, Protocol(proto)) for ip, number, proto in forwards]
    pasta.start(pid, ports, pid_file)  # the holder's own user namespace: pasta joins it too
    for _ in range(50):  # pasta writes the file before it daemonizes; be safe anyway
        with contextlib.suppress(OSError, ValueError):
            return int(pid_file.read_text().strip())
        time.sleep(0.02)
    raise RuntimeFailure("pasta did not write its PID file", where=str(pid_file))


def hold(name: str, paths: Paths, forwards: tuple[Forward, ...]) -> int:
    """The network unit's ExecStart: start NAME's holder and pasta, tell systemd."""
    from hostctl.launcher.notify import notify

    network = defs.find_user(name, paths)
    release(name, paths)  # what a crashed run left
    folder = _folder(paths)
    folder.mkdir(parents=True, exist_ok=True)
    pid = _fork_holder(network, folder / "rules.lock")
    try:
        pasta_pid = _start_pasta(pid, forwards, folder / f"{name}.pasta.pid")
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    record = {"pid": pid, "start": start_time(pid), "pasta": pasta_pid,
              "forwards": [list(f) for f in forwards]}
    partial = folder / f".{name}.json.tmp"
    partial.write_text(json.dumps(record))
    partial.replace(record_path(paths, name))
    notify(f"MAINPID={pid}", "READY=1",
           f"STATUS=network {name}: {network.subnet} on {network.bridge}")
    return 0


def _end(pid: int, start: str | None, comm: tuple[str, ...]) -> None:
    """Kill PID if it is still the process recorded (start time, or its name)."""
    if start is not None and start_time(pid) != start:
        return
    with contextlib.suppress(OSError):
        if start is None and not Path(f"/proc/{pid}/comm").read_text().startswith(comm):
            return
        os.kill(pid, signal.SIGKILL)


def release(name: str, paths: Paths) -> None:
    """The network unit's ExecStopPost (and the first thing of every hold): end what is
    left of NAME's holder and pasta, and remove the network's state under the run dir:
    the record, leases, attachments and member records (the members' interfaces and
    rules lived in the holder's namespace, gone with it)."""
    from hostctl.network import cni, state_dir

    path = record_path(paths, name)
    # no record (or a torn one): no process of it to end; the unit's cgroup holds any
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text())
        _end(int(data["pid"]), str(data["start"]), ())
        _end(int(data["pasta"]), None, ("pasta", "passt"))
    path.unlink(missing_ok=True)
    (_folder(paths) / f"{name}.pasta.pid").unlink(missing_ok=True)
    shutil.rmtree(ipam_dir(paths) / name, ignore_errors=True)
    shutil.rmtree(state_dir(paths) / "members" / name, ignore_errors=True)
    for cache in (state_dir(paths) / "cni").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            if cni.Attachment.from_json(cache.read_text()).network == name:
                cache.unlink()
