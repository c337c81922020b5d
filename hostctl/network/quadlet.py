"""Reading podman quadlet `.network` files onto hostctl's named networks.

A `NAME.network` file declares the network NAME, as /etc/hostctl/networks/NAME.yaml
does (hostctl.network.defs); it is found there or among the container declarations (where
a quadlet directory moved as a whole puts it), and a container's `Network=NAME.network`
names it. Unlike podman, the network is called NAME (not systemd-NAME) and no unit is
generated for it: a rootful network is wired when a member starts, a user network has
its holder unit (hostctl-network-NAME.service). KEY_TABLE says how each key maps (it
feeds docs/declarations.md); other keys and sections are refused, naming FILE:LINE:KEY.
"""

from __future__ import annotations

import ipaddress
import zlib
from pathlib import Path

from hostctl.declarations.checks import Invalid
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, split_words, unquote
from hostctl.declarations.values import parse_bool
from hostctl.errors import DeclarationError

SUFFIX = ".network"
# [Network] key -> (the network YAML key with the same meaning, or "", what it does).
KEY_TABLE: dict[str, tuple[str, str]] = {
    "Subnet": ("subnet, ipv6_subnet", "the IPv4 subnet, and an IPv6 one (rootful only); one "
               "of each"),
    "Gateway": ("gateway", "the IPv4 gateway; needs Subnet= (as in podman)"),
    "IPRange": ("ip_range", "the addresses leased to containers: a CIDR or START-END inside the "
                "subnet; one"),
    "IPv6": ("ipv6_subnet", "true: dual stack; the IPv6 Subnet=, else fd00:90:X::/64 from "
             "the name (rootful only)"),
    "Internal": ("internal", "no gateway, no masquerade, no way out"),
    "DisableDNS": ("disable_dns", "true: a member's /etc/hosts does not list the other members"),
    "DNS": ("dns", "name servers of the members' resolv.conf (a container's own DNS= wins)"),
    "InterfaceName": ("bridge", "the bridge's interface name"),
    "Driver": ("", "bridge only"),
    "IPAMDriver": ("", "host-local only"),
    "Options": ("mtu", "mtu=N only: the bridge's and the containers' MTU"),
    "NetworkDeleteOnStop": ("", "true only for a user network, which always goes with its "
                            "holder unit; a rootful network has no unit"),
    "NetworkName": ("", "only the file's own name: hostctl names a network after its file "
                    "(podman: systemd-NAME)"),
    "Label": ("labels", "NAME=VALUE labels recorded with the network (`hostctl network "
              "inspect`)"),
}
KEYS = tuple(KEY_TABLE)
_NOT_HERE = {
    "ServiceName": "hostctl generates no unit for a network (a user network's unit is "
    "hostctl-network-NAME.service)",
    "PodmanArgs": "hostctl does not run podman",
    "GlobalArgs": "hostctl does not run podman",
    "ContainersConfModule": "hostctl does not read containers.conf modules",
}


class Read:
    """What a .network file says, in the YAML declaration's terms."""

    def __init__(self) -> None:
        self.subnet: ipaddress.IPv4Network | None = None
        self.ipv6_subnet: ipaddress.IPv6Network | None = None
        self.gateway: ipaddress.IPv4Address | None = None
        self.ip_range: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
        self.ipv6 = False
        self.internal = False
        self.names = True
        self.dns: tuple[str, ...] = ()
        self.bridge: str | None = None
        self.mtu: int | None = None
        self.labels: dict[str, str] = {}
        self.where: dict[str, str] = {}


def read(text: str, source: Path, name: str, *, user: bool) -> Read:
    """The settings of network NAME's .network TEXT (from SOURCE; a user's with USER)."""
    try:
        entries = parse_unit_text(text)
    except SyntaxProblem as err:
        raise DeclarationError(err.message, where=f"{source}:{err.line}", hint=err.hint) from None
    found = Read()
    ranges: list[str] = []
    for entry in entries:
        where = f"{source}:{entry.line}:{entry.key}"
        try:
            if entry.section != "Network":
                raise Invalid(
                    f"section [{entry.section}] is not supported in a .network file",
                    "hostctl generates no unit for a network: only [Network] is read",
                )
            value = unquote(entry.value)
            _entry(found, entry.key, value, name, user, ranges)
        except Invalid as err:
            raise DeclarationError(err.message, where=where, hint=err.hint) from None
        found.where.setdefault(entry.key, where)
    try:
        _finish(found, ranges, name, user)
    except _Late as err:
        raise DeclarationError(err.message, where=found.where.get(err.key, str(source)),
                               hint=err.hint) from None
    return found


class _Late(Invalid):
    def __init__(self, key: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.key = key


def _entry(found: Read, key: str, value: str, name: str, user: bool,
           ranges: list[str]) -> None:
    if key in _NOT_HERE:
        raise Invalid(f"unsupported key {key!r}", _NOT_HERE[key])
    if key not in KEYS:
        from hostctl.declarations.checks import suggest

        raise Invalid(f"unsupported key {key!r}",
                      f"{suggest(key, KEYS)}supported [Network] keys: {', '.join(KEYS)}")
    if key == "Subnet":
        subnet = _subnet(value)
        if isinstance(subnet, ipaddress.IPv4Network):
            if found.subnet is not None:
                raise Invalid("a second IPv4 Subnet=", "hostctl networks have one IPv4 subnet")
            found.subnet = subnet
        else:
            if user:
                raise Invalid("user networks are IPv4 only",
                              "declare the network in /etc/hostctl/networks for rootful "
                              "containers, or drop the IPv6 Subnet=")
            if found.ipv6_subnet is not None:
                raise Invalid("a second IPv6 Subnet=", "hostctl networks have one IPv6 subnet")
            found.ipv6_subnet = subnet
    elif key == "Gateway":
        try:
            gateway = ipaddress.ip_address(value)
        except ValueError:
            raise Invalid(f"{value!r} is not an IP address", "e.g. 192.168.55.1") from None
        if not isinstance(gateway, ipaddress.IPv4Address):
            raise Invalid("an IPv6 Gateway= is not supported",
                          "the IPv6 subnet's first address is its gateway")
        if found.gateway is not None:
            raise Invalid("a second Gateway=", "give one")
        found.gateway = gateway
    elif key == "IPRange":
        ranges.append(value)
    elif key == "IPv6":
        found.ipv6 = parse_bool(value)
        if found.ipv6 and user:
            raise Invalid("user networks are IPv4 only", "drop IPv6=")
    elif key == "Internal":
        found.internal = parse_bool(value)
    elif key == "DisableDNS":
        found.names = not parse_bool(value)
    elif key == "DNS":
        for word in split_words(value):
            try:
                found.dns += (str(ipaddress.ip_address(word)),)
            except ValueError:
                raise Invalid(f"{word!r} is not an IP address", "e.g. DNS=192.0.2.53") from None
    elif key == "Label":
        from hostctl.declarations.values import parse_label_name

        for word in split_words(value):
            label, equals, text = word.partition("=")
            if not equals:
                raise Invalid(f"{word!r} has no '='", "write NAME=VALUE")
            found.labels[parse_label_name(label)] = text
    elif key == "InterfaceName":
        found.bridge = value
    elif key == "Driver" and value != "bridge":
        raise Invalid(f"driver {value!r} is not supported", "hostctl networks are bridges")
    elif key == "IPAMDriver" and value != "host-local":
        raise Invalid(f"IPAM driver {value!r} is not supported",
                      "hostctl leases addresses itself (host-local)")
    elif key == "Options":
        for word in split_words(value):
            option, _, setting = word.partition("=")
            if option != "mtu" or not setting.isdigit() or not 68 <= int(setting) <= 65535:
                raise Invalid(f"option {word!r} is not supported", "only mtu=N (68 to 65535)")
            found.mtu = int(setting)
    elif key == "NetworkDeleteOnStop" and parse_bool(value) and not user:
        raise Invalid(
            "a rootful network cannot be deleted on stop",
            "hostctl has no unit for a rootful network; its bridge is made when the "
            "first member starts. Drop NetworkDeleteOnStop= (a user network always goes "
            "with its holder unit)",
        )
    elif key == "NetworkName" and value != name:
        raise Invalid(
            f"the network would be named {value!r}, not {name!r}",
            f"hostctl names a network after its file: name it {value}{SUFFIX} and drop "
            "NetworkName=",
        )


def _subnet(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        value = ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise Invalid(f"{text!r} is not a subnet: {err}",
                      "ADDRESS/PREFIX with no host bits, e.g. 10.90.5.0/24") from None
    if value.num_addresses < 4:
        raise Invalid(f"{text} is too small", "use a prefix of /30 or shorter")
    return value


def _finish(found: Read, ranges: list[str], name: str, user: bool) -> None:
    if found.subnet is None and (found.gateway is not None or ranges):
        key = "Gateway" if found.gateway is not None else "IPRange"
        raise _Late(key, "cannot set gateway or range without subnet", "add Subnet=")
    if found.subnet is not None and found.gateway is not None and (
        found.gateway not in found.subnet
        or found.gateway in (found.subnet.network_address, found.subnet.broadcast_address)
    ):
        raise _Late("Gateway", f"{found.gateway} is not a host address of {found.subnet}",
                    "give an address inside Subnet=")
    if len(ranges) > 1:
        raise _Late("IPRange", "cannot set more ranges than subnets",
                    "give one IPRange= for the IPv4 subnet")
    if ranges:
        assert found.subnet is not None
        try:
            found.ip_range = ip_range(ranges[0], found.subnet)
        except Invalid as err:
            raise _Late("IPRange", err.message, err.hint) from None
    if found.ipv6 and found.ipv6_subnet is None and not user:
        digest = zlib.crc32(name.encode()) % 0x10000
        found.ipv6_subnet = ipaddress.IPv6Network(f"fd00:90:{digest:x}::/64")
    if found.ipv6_subnet is not None and not found.ipv6 and not user:
        found.ipv6 = True  # an IPv6 Subnet= is dual stack, as podman makes it


def ip_range(text: str, subnet: ipaddress.IPv4Network
             ) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """The first and last address leased to containers, from a CIDR or START-END inside
    SUBNET (never its network or broadcast address)."""
    try:
        if "-" in text:
            start_text, _, end_text = text.partition("-")
            start = ipaddress.IPv4Address(start_text.strip())
            end = ipaddress.IPv4Address(end_text.strip())
        else:
            block = ipaddress.IPv4Network(text, strict=True)
            start, end = block.network_address, block.broadcast_address
    except ValueError:
        raise Invalid(f"{text!r} is not an IPv4 range",
                    "a CIDR inside the subnet or START-END, e.g. 10.90.5.128/25") from None
    if start not in subnet or end not in subnet or start > end:
        raise Invalid(f"{text} is not inside {subnet}",
                    "give addresses of the subnet's hosts")
    # the subnet's own network and broadcast addresses are never leased
    start = max(start, subnet.network_address + 1)
    end = min(end, subnet.broadcast_address - 1)
    if start > end:
        raise Invalid(f"{text} leaves no address to lease",
                    "the subnet's network and broadcast addresses are never given out; "
                    "widen the range")
    return start, end
