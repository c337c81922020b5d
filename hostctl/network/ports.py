"""Published ports of a rootful container: hostctl's own DNAT rules.

They replace the CNI portmap plugin, which forks iptables about fifteen times per
container; these rules go in with the container's other rules (hostctl.network.rules),
in the same single `iptables-restore` per family. For a port HOST_PORT:CONTAINER_PORT
of protocol P, per container address ADDR on subnet NET:

nat PREROUTING (top)  to a local address [-d HOST_IP], P --dport HOST_PORT
                      -> DNAT ADDR:CONTAINER_PORT
nat OUTPUT (top)      the same, for connections the host itself opens
nat POSTROUTING       -s NET -d ADDR, P --dport CONTAINER_PORT, DNAT'd -> MASQUERADE (hairpin)
nat POSTROUTING       -s 127.0.0.0/8 -d ADDR, P --dport CONTAINER_PORT -> MASQUERADE (IPv4
                      loopback; the bridge gets route_localnet so the kernel routes it)

Hairpin: a container reaching a published port of its own network through a host
address must see the answer come from that address, not straight from the peer, so such
connections leave with the bridge's address as source. 127.0.0.1 works as with portmap:
route_localnet on the bridge lets a packet from 127.0.0.1 leave towards the container,
and the masquerade gives it the bridge's address. The shared rule made with hostctl's
chains (hostctl.network.rules) drops what route_localnet would otherwise let in: packets
to 127.0.0.0/8 from outside the host that are not replies or DNAT'd. IPv6 has no
route_localnet: ::1 cannot be published, and IPv6 rules leave ::1 alone, so a client
trying [::1] first is refused at once and falls back to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hostctl.declarations.model import Port, Protocol
from hostctl.errors import RuntimeFailure
from hostctl.network.rules import Rule

LOOPBACK4 = ipaddress.IPv4Network("127.0.0.0/8")
LOOPBACK6 = ipaddress.IPv6Address("::1")
PROC_CONF = Path("/proc/sys/net/ipv4/conf")


def label(port: Port) -> str:
    """PORT as written in a declaration: [IP:]HOST:CONTAINER/PROTO."""
    ip = port.host_ip
    prefix = "" if ip is None else (f"[{ip}]:" if ":" in ip else f"{ip}:")
    return f"{prefix}{port.host_port}:{port.container_port}/{port.protocol}"


def families(port: Port) -> tuple[int, ...]:
    """The IP versions PORT is published on: both without HOST_IP."""
    if port.host_ip is None:
        return (4, 6)
    return (ipaddress.ip_address(port.host_ip).version,)


def _dest(port: Port) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The one host address PORT is bound to; None for every address of its family."""
    if port.host_ip is None:
        return None
    ip = ipaddress.ip_address(port.host_ip)
    return None if ip.is_unspecified else ip


def check(ports: Sequence[Port], has_ipv6: bool, where: str, network: str) -> None:
    """Refuse ports that cannot be published on NETWORK, before anything is made."""
    for port in ports:
        ip = _dest(port)
        if ip == LOOPBACK6:
            raise RuntimeFailure(
                f"{label(port)}: ::1 cannot be published (IPv6 has no route_localnet)",
                where=where, hint="publish on 127.0.0.1 instead, or on every address")
        if families(port) == (6,) and not has_ipv6:
            raise RuntimeFailure(f"{label(port)}: network {network} has no IPv6 subnet",
                                 where=where,
                                 hint=f"set ipv6_subnet: in network {network}'s file, "
                                      "or publish on an IPv4 address")


def overlaps(one: Port, other: Port) -> bool:
    """Whether ONE and OTHER claim the same host port (same protocol, addresses
    overlapping: equal, or one of them on every address of the other's family)."""
    if one.protocol != other.protocol or one.host_port != other.host_port:
        return False
    if not set(families(one)) & set(families(other)):
        return False
    mine, theirs = _dest(one), _dest(other)
    return mine is None or theirs is None or mine == theirs


def check_free(ports: Sequence[Port], taken: dict[str, tuple[Port, ...]], where: str) -> None:
    """Refuse PORTS when another container of TAKEN (name -> its ports) holds one."""
    for port in ports:
        for holder, theirs in sorted(taken.items()):
            clash = next((p for p in theirs if overlaps(port, p)), None)
            if clash is not None:
                raise RuntimeFailure(
                    f"host port {port.host_port}/{port.protocol} ({label(port)}) is already "
                    f"published by container {holder} ({label(clash)})",
                    where=where,
                    hint=f"stop {holder} (systemctl stop {holder}) or publish another "
                         "host port")


def check_unbound(ports: Sequence[Port], where: str) -> None:
    """Refuse PORTS when a process on the host (a server, a rootless container's pasta)
    has the host port bound: the DNAT rules would hide it from outside, or it would
    hide the container from the host, depending on who asks. Tested by binding the
    port, as the kernel would refuse the container's own listener there; a process that
    binds the port after the container started is not seen (nothing holds it open)."""
    import errno
    import socket

    for port in ports:
        kind = socket.SOCK_STREAM if port.protocol is Protocol.TCP else socket.SOCK_DGRAM
        for version in families(port):
            family = socket.AF_INET if version == 4 else socket.AF_INET6
            address = port.host_ip or ("0.0.0.0" if version == 4 else "::")
            try:
                probe = socket.socket(family, kind)
            except OSError:  # no IPv6 on this host: nothing can hold a v6 port
                continue
            with probe:
                if version == 6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if kind == socket.SOCK_STREAM:  # connections in TIME_WAIT don't count
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((address, port.host_port))
                except OSError as err:
                    if err.errno == errno.EADDRINUSE:
                        raise RuntimeFailure(
                            f"host port {port.host_port}/{port.protocol} ({label(port)}) is "
                            f"in use on the host by {_holder(port)}", where=where,
                            hint="stop that process or publish another host port") from None
                    if err.errno == errno.EADDRNOTAVAIL and port.host_ip is not None:
                        raise RuntimeFailure(
                            f"{label(port)}: {port.host_ip} is not an address of this host",
                            where=where,
                            hint="publish on one of the host's addresses (ip -brief "
                                 "address), or without HOST_IP on every address") from None
                    # EACCES: a privileged port probed from a rootless launcher; pasta
                    # (which publishes there) gives its own error
                    if err.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT,
                                         errno.EACCES):
                        raise


def _holder(port: Port) -> str:
    """Who has PORT bound ("nginx (PID 812)"), from /proc/net and /proc/*/fd; vaguer when
    the socket or its process cannot be seen (another user's, another namespace's)."""
    inodes = set()
    # both tables: a dual-stack listener on [::] holds the IPv4 port too
    for table in (f"/proc/net/{port.protocol}", f"/proc/net/{port.protocol}6"):
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:  # no IPv6: no table
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            listening = port.protocol is Protocol.UDP or state == "0A"
            if listening and int(local.rsplit(":", 1)[1], 16) == port.host_port:
                inodes.add(f"socket:[{inode}]")
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                with open(f"/proc/{pid}/comm") as handle:
                    return f"{handle.read().strip()} (PID {pid})"
        except OSError:  # gone, or not ours to look at
            continue
    return "another process"


def _to(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _reaches_loopback(port: Port) -> bool:
    ip = _dest(port)
    return 4 in families(port) and (ip is None or ip in LOOPBACK4)


def for_container(name: str, ports: Sequence[Port], addresses: Sequence[str],
                  subnets: Sequence[str]) -> list[Rule]:
    """The DNAT and masquerade rules publishing PORTS of container NAME (ADDRESSES on
    SUBNETS, in the same order of families)."""
    tag = f'-m comment --comment "hostctl {name}"'
    found: dict[Rule, None] = {}  # ordered, without duplicates
    for address in addresses:
        ip = ipaddress.ip_address(address)
        family = str(ip.version)
        host = f"{ip}/{ip.max_prefixlen}"
        net = next((s for s in subnets if ip in ipaddress.ip_network(s)), host)
        for port in (p for p in ports if ip.version in families(p)):
            proto = f"-p {port.protocol} -m {port.protocol}"
            match = f"-m addrtype --dst-type LOCAL{_dest_match(port, ip.version)}"
            dnat = (f"{match} {proto} --dport {port.host_port} {tag}"
                    f" -j DNAT --to-destination {_to(ip, port.container_port)}")
            found[(family, "nat", f"-I PREROUTING {dnat}")] = None
            found[(family, "nat", f"-I OUTPUT {dnat}")] = None
            back = f"-d {host} {proto} --dport {port.container_port}"
            found[(family, "nat", f"-A POSTROUTING -s {net} {back} -m conntrack"
                                  f" --ctstate DNAT {tag} -j MASQUERADE")] = None
            if ip.version == 4 and _reaches_loopback(port):
                found[(family, "nat", f"-A POSTROUTING -s {LOOPBACK4} {back} {tag}"
                                      " -j MASQUERADE")] = None
    return list(found)


def _dest_match(port: Port, version: int) -> str:
    ip = _dest(port)
    if ip is not None:
        return f" -d {ip}/{ip.max_prefixlen}"
    return f" ! -d {LOOPBACK6}/128" if version == 6 else ""


def needs_route_localnet(ports: Iterable[Port]) -> bool:
    return any(_reaches_loopback(p) for p in ports)


def route_localnet(bridge: str) -> None:
    """Let packets from 127.0.0.1 be routed out of BRIDGE (to a container's port): what
    the portmap plugin sets too. It stays on the bridge, like the bridge."""
    path = PROC_CONF / bridge / "route_localnet"
    try:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
    except OSError as err:
        raise RuntimeFailure(f"cannot set {path}: {err.strerror}",
                             where=f"bridge {bridge}",
                             hint="publishing on 127.0.0.1 needs root in the host's "
                                  "network namespace") from None


def to_json(ports: Sequence[Port]) -> list[list[Any]]:
    return [[p.host_ip, p.host_port, p.container_port, str(p.protocol)] for p in ports]


def from_json(data: Iterable[Sequence[Any]]) -> tuple[Port, ...]:
    return tuple(Port(ip, int(host), int(inner), Protocol(proto))
                 for ip, host, inner, proto in data)
