"""The container's /etc/resolv.conf and its extra /etc/hosts lines.

resolv.conf starts from the host's. In a container with its own network namespace the
host's loopback name servers (127.0.0.53 of systemd-resolved, a local dnsmasq) cannot
be reached, so they are left out, and systemd-resolved's upstream list is used when the
host's file only names its stub, as podman does. `dns`, `dns_search` and `dns_options`
replace the corresponding lines when given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

HOST_RESOLV = Path("/etc/resolv.conf")
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
HOST_GATEWAY = "host-gateway"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _nameservers(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines()
            if line.split()[:1] == ["nameserver"] and len(line.split()) > 1]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def host_resolv(own_netns: bool) -> str:
    """The host's resolv.conf as a container with (or without) its own namespace needs it."""
    text = _read(HOST_RESOLV)
    if not own_netns:
        return text
    servers = _nameservers(text)
    if servers and all(_is_loopback(s) for s in servers):
        upstream = _read(RESOLVED_UPSTREAM)
        if any(not _is_loopback(s) for s in _nameservers(upstream)):
            text = upstream
    return "".join(line + "\n" for line in text.splitlines()
                   if not (line.split()[:1] == ["nameserver"] and len(line.split()) > 1
                           and _is_loopback(line.split()[1])))


def shape(base: str, dns: Sequence[str], search: Sequence[str],
          options: Sequence[str]) -> str:
    """BASE with its nameserver / search / options lines replaced by those given."""
    replace = {"nameserver": bool(dns), "search": bool(search), "domain": bool(search),
               "options": bool(options)}
    kept = [line for line in base.splitlines()
            if not replace.get(line.split()[0] if line.split() else "", False)]
    if search:
        kept.append("search " + " ".join(search))
    kept += [f"nameserver {server}" for server in dns]
    if options:
        kept.append("options " + " ".join(options))
    return "".join(line + "\n" for line in kept)


def extra_hosts(add_hosts: Sequence[tuple[str, str]], gateway: str | None,
                where: str) -> tuple[tuple[str, str], ...]:
    """(address, name) lines from `add_hosts`; host-gateway becomes GATEWAY."""
    from hostctl.errors import RuntimeFailure

    lines = []
    for name, address in add_hosts:
        if address == HOST_GATEWAY:
            if gateway is None:
                raise RuntimeFailure(
                    f"{name}: host-gateway has no address with this network", where=where,
                    hint="give an address, or use a bridge network or host")
            address = gateway
        lines.append((address, name))
    return tuple(lines)


def default_gateway() -> str | None:
    """The host's IPv4 default gateway (from /proc/net/route), for pasta's host-gateway."""
    for line in _read(Path("/proc/net/route")).splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
            return str(ipaddress.IPv4Address(bytes.fromhex(fields[2])[::-1]))
    return None
