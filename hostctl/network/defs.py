"""Network definitions: the built-in `bridge` network and the declared ones.

A network is declared in /etc/hostctl/networks/NAME.yaml:

    subnet: 10.90.5.0/24        # optional: 10.90.X.0/24 picked from the name
    gateway: 10.90.5.1          # optional: the subnet's first address
    internal: false             # true: no gateway, no masquerade, no way out
    ipv6_subnet: fd00:90:5::/64 # optional: containers also get an IPv6 address
    bridge: hc-backend          # optional: the host's bridge interface name
    ip_range: 10.90.5.100-10.90.5.199  # optional: the addresses leased (or a CIDR)
    dns: [192.0.2.53]           # optional: members' name servers (their own dns: wins)
    disable_dns: false          # true: members' /etc/hosts does not list the others
    mtu: 1500                   # optional: the bridge's and the containers' MTU
    labels: {team: web}         # optional: shown by `hostctl network inspect`

Errors name FILE:LINE:KEY like the container declarations do. `bridge.yaml` there
replaces the built-in default network's settings. A podman quadlet `NAME.network` file
declares NAME too, in that directory or among the container declarations
(hostctl.network.quadlet); the first file found for a name wins, in this order:
NAME.yaml, NAME.yml, NAME.network in the networks directory, then NAME.network in each
declaration directory by priority.

A user declares networks in ~/.config/hostctl/networks/NAME.yaml (the user scope's
config directory): the same keys but ipv6_subnet, and no `bridge.yaml` (a user's
`bridge` is pasta's per-container network). hostctl.network.holder runs them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.declarations.resource_keys import NETWORK_KEYS
from hostctl.declarations.yaml_nodes import BOOL, NULL, Context, pairs, scalar_text, type_error
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.paths import Paths, Scope

DEFAULT = "bridge"
DEFAULT_SUBNET = "10.89.0.0/16"  # podman's default is 10.88.0.0/16; stay clear of it
DEFAULT_BRIDGE = "hostctl0"
AUTO_SUBNETS = "10.90.{}.0/24"
RESERVED = ("host", "none")
USER_RESERVED = "online"  # hostctl-network-NAME.service: not the wait unit's name
KEYS = tuple(k.key for k in NETWORK_KEYS)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Network:
    """One bridge network: its addresses, and whether it has a way out."""

    name: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    bridge: str
    internal: bool = False
    ipv6_subnet: ipaddress.IPv6Network | None = None
    source: Path | None = None  # None: the built-in default
    # From quadlet .network keys (hostctl.network.quadlet):
    ip_range: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
    names: bool = True  # members' /etc/hosts lists the other members (DisableDNS=false)
    dns: tuple[str, ...] = ()  # name servers for members without their own
    mtu: int | None = None
    labels: tuple[tuple[str, str], ...] = ()  # (name, value), as declared

    @property
    def ipv6_gateway(self) -> ipaddress.IPv6Address | None:
        return next(self.ipv6_subnet.hosts()) if self.ipv6_subnet else None


def networks_dir(paths: Paths) -> Path:
    return paths.config / "networks"


def bridge_name(name: str) -> str:
    """A bridge interface name (at most 15 bytes) for network NAME."""
    candidate = f"hc-{name}"
    if _IFNAME.fullmatch(candidate):
        return candidate
    return "hc-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def auto_subnet(name: str) -> ipaddress.IPv4Network:
    """The /24 a network without `subnet:` gets: stable, derived from its name."""
    return ipaddress.IPv4Network(AUTO_SUBNETS.format(zlib.crc32(name.encode()) % 256))


def builtin() -> Network:
    subnet = ipaddress.IPv4Network(DEFAULT_SUBNET)
    return Network(DEFAULT, subnet, next(subnet.hosts()), DEFAULT_BRIDGE)


def _compose(text: str, source: Path) -> MappingNode | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise DeclarationError(f"invalid YAML: {err.problem}", where=f"{source}{line}",
                               hint="check the YAML syntax") from None
    if node is None or (isinstance(node, ScalarNode) and node.tag == NULL):
        return None  # an empty file: every setting defaults
    if not isinstance(node, MappingNode):
        raise DeclarationError("the top level must be a mapping of settings",
                               where=f"{source}:{node.start_mark.line + 1}",
                               hint=f"allowed keys: {', '.join(KEYS)}")
    return node


def _address(node: Node, context: Context, key: str, kind: type[IPNetwork]) -> IPNetwork:
    text = scalar_text(node, context, key)
    try:
        value = ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise context.error(node, key, f"{text!r} is not a subnet: {err}",
                            "write ADDRESS/PREFIX with no host bits, e.g. 10.90.5.0/24") from None
    if not isinstance(value, kind):
        family = "IPv4" if kind is ipaddress.IPv4Network else "IPv6"
        raise context.error(node, key, f"{text!r} is not an {family} subnet", None)
    if value.num_addresses < 4:
        raise context.error(node, key, f"{text} is too small", "use a prefix of /30 or shorter")
    return value


def _bool(node: Node, context: Context, key: str) -> bool:
    if not isinstance(node, ScalarNode) or node.tag != BOOL:
        raise type_error(node, context, key, "true or false")
    return node.value.lower() in ("true", "yes", "on", "y")


def parse(text: str, source: Path, name: str, *, user: bool = False) -> Network:
    """Validate network NAME's declaration TEXT, read from SOURCE (a user's with USER)."""
    if not _NAME.fullmatch(name) or name in RESERVED:
        raise DeclarationError(f"{name!r} cannot name a network", where=str(source),
                               hint="letters, digits, _ . - ; not host or none")
    if user and name == DEFAULT:
        raise DeclarationError(
            f"{DEFAULT!r} cannot name a user network: it is the rootless default (pasta, "
            "one per container)", where=str(source), hint="give the network another name")
    if user and name == USER_RESERVED:
        raise DeclarationError(
            f"{name!r} cannot name a user network: its unit would be "
            "hostctl-network-online.service, the user's wait for the network",
            where=str(source), hint="give the network another name")
    context = Context(source)
    top = _compose(text, source)
    found: dict[str, tuple[Node, Node]] = {}
    for key, key_node, value_node in pairs(top, context, "") if top else ():
        if key not in KEYS:
            raise context.error(key_node, key, f"unknown key {key!r}",
                                f"allowed keys: {', '.join(KEYS)}")
        if user and key == "ipv6_subnet":
            raise context.error(key_node, key, "user networks are IPv4 only",
                                "remove ipv6_subnet:, or declare the network in "
                                "/etc/hostctl/networks for rootful containers")
        found[key] = (key_node, value_node)
    return _network(name, source, found, context)


def _network(name: str, source: Path, found: dict[str, tuple[Node, Node]],
             context: Context) -> Network:
    default = builtin() if name == DEFAULT else None
    subnet = default.subnet if default else auto_subnet(name)
    if "subnet" in found:
        subnet = _address(found["subnet"][1], context, "subnet", ipaddress.IPv4Network)  # type: ignore[assignment]
    gateway = next(subnet.hosts())
    if "gateway" in found:
        node = found["gateway"][1]
        text = scalar_text(node, context, "gateway")
        try:
            gateway = ipaddress.IPv4Address(text)
        except ValueError:
            raise context.error(node, "gateway", f"{text!r} is not an IPv4 address",
                                f"an address inside {subnet}") from None
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise context.error(node, "gateway", f"{gateway} is not a host address of {subnet}",
                                "leave gateway out to use the subnet's first address")
    internal = _bool(found["internal"][1], context, "internal") if "internal" in found else False
    ipv6 = None
    if "ipv6_subnet" in found:
        ipv6 = _address(found["ipv6_subnet"][1], context, "ipv6_subnet", ipaddress.IPv6Network)
    bridge = default.bridge if default else bridge_name(name)
    if "bridge" in found:
        node = found["bridge"][1]
        bridge = scalar_text(node, context, "bridge")
        if not _IFNAME.fullmatch(bridge):
            raise context.error(node, "bridge", f"{bridge!r} is not an interface name",
                                "1 to 15 letters, digits, _ . -")
    return Network(name, subnet, gateway, bridge, internal, ipv6,  # type: ignore[arg-type]
                   source, **_quadlet_keys(found, context, subnet))  # type: ignore[arg-type]


def _quadlet_keys(found: dict[str, tuple[Node, Node]], context: Context,
                  subnet: ipaddress.IPv4Network) -> dict[str, object]:
    """ip_range, dns, disable_dns and mtu: the keys quadlet .network files brought."""
    from hostctl.declarations.checks import Invalid
    from hostctl.network import quadlet

    more: dict[str, object] = {}
    if "ip_range" in found:
        node = found["ip_range"][1]
        try:
            more["ip_range"] = quadlet.ip_range(scalar_text(node, context, "ip_range"), subnet)
        except Invalid as err:
            raise context.invalid(node, "ip_range", err) from None
    if "dns" in found:
        node = found["dns"][1]
        items = node.value if isinstance(node, SequenceNode) else [node]
        servers = []
        for item in items:
            text = scalar_text(item, context, "dns")
            try:
                servers.append(str(ipaddress.ip_address(text)))
            except ValueError:
                raise context.error(item, "dns", f"{text!r} is not an IP address",
                                    "e.g. [192.0.2.53]") from None
        more["dns"] = tuple(servers)
    if "disable_dns" in found:
        more["names"] = not _bool(found["disable_dns"][1], context, "disable_dns")
    if "labels" in found:
        more["labels"] = _labels(found["labels"][1], context)
    if "mtu" in found:
        node = found["mtu"][1]
        text = scalar_text(node, context, "mtu")
        if not text.isdigit() or not 68 <= int(text) <= 65535:
            raise context.error(node, "mtu", f"{text!r} is not an MTU", "68 to 65535")
        more["mtu"] = int(text)
    return more


def _labels(node: Node, context: Context) -> tuple[tuple[str, str], ...]:
    from hostctl.declarations.checks import Invalid
    from hostctl.declarations.values import parse_label_name, single_line

    if not isinstance(node, MappingNode):
        raise type_error(node, context, "labels", "a mapping of NAME: VALUE")
    labels = []
    for name, key_node, value_node in pairs(node, context, "labels"):
        try:
            labels.append((parse_label_name(name), single_line(
                scalar_text(value_node, context, f"labels.{name}"), "value")))
        except Invalid as err:
            raise context.invalid(key_node, f"labels.{name}", err) from None
    return tuple(labels)


def load(path: Path, *, user: bool = False) -> Network:
    name = path.name.removesuffix(".yaml").removesuffix(".yml").removesuffix(".network")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path)) from None
    if path.name.endswith(".network"):
        return parse_quadlet(text, path, name, user=user)
    return parse(text, path, name, user=user)


def parse_quadlet(text: str, source: Path, name: str, *, user: bool = False) -> Network:
    """Validate network NAME's quadlet .network TEXT, read from SOURCE."""
    from hostctl.network import quadlet

    parse("", source, name, user=user)  # the rules for the name itself
    read = quadlet.read(text, source, name, user=user)
    subnet = read.subnet or (builtin().subnet if name == DEFAULT else auto_subnet(name))
    bridge = read.bridge or (DEFAULT_BRIDGE if name == DEFAULT else bridge_name(name))
    if not _IFNAME.fullmatch(bridge):
        raise DeclarationError(f"{bridge!r} is not an interface name",
                               where=read.where.get("InterfaceName", str(source)),
                               hint="1 to 15 letters, digits, _ . -")
    return Network(name, subnet, read.gateway or next(subnet.hosts()), bridge, read.internal,
                   read.ipv6_subnet, source, ip_range=read.ip_range, names=read.names,
                   dns=read.dns, mtu=read.mtu, labels=tuple(read.labels.items()))


def network_files(paths: Paths) -> dict[str, Path]:
    """name -> the file declaring it, for every network file of the scope (see above)."""
    from hostctl.declarations.dirs import declaration_dirs

    found: dict[str, Path] = {}
    folder = networks_dir(paths)
    for pattern in ("*.yaml", "*.yml", "*.network"):
        for path in sorted(folder.glob(pattern)):
            found.setdefault(path.name.rsplit(".", 1)[0], path)
    for directory in declaration_dirs(paths.scope):
        for path in sorted(directory.glob("*.network")):
            if path.is_file():
                found.setdefault(path.name.removesuffix(".network"), path)
    return found


def _file(name: str, paths: Paths) -> Path | None:
    if not _NAME.fullmatch(name):
        return None
    return network_files(paths).get(name)


def declared(paths: Paths) -> dict[str, Network]:
    """Every network of the scope by name, checked for clashing subnets and bridge names:
    the built-in default and /etc/hostctl/networks, or a user's own declarations; and
    the networks the installed compose projects own."""
    user = paths.scope is Scope.USER
    found = {} if user else {DEFAULT: builtin()}
    for path in network_files(paths).values():
        network = load(path, user=user)
        found[network.name] = network
    if not user:  # a user's networks have namespaces of their own each
        _check_clashes(list(found.values()))
        found.update(_compose_networks(paths, found)[0])
    else:  # as find_user() finds them: the projects' subnets do not avoid the files'
        owned = _compose_networks(paths, {})[0]
        found.update({name: net for name, net in owned.items() if name not in found})
    return found


def _compose_networks(paths: Paths, taken: dict[str, Network]
                      ) -> tuple[dict[str, Network], dict[str, DeclarationError]]:
    """The networks installed compose projects own (hostctl.compose.networks)."""
    from hostctl.compose.networks import project_networks

    return project_networks(paths, taken)


def _check_clashes(networks: list[Network]) -> None:
    for i, one in enumerate(networks):
        for other in networks[i + 1:]:
            if one.bridge == other.bridge:
                raise DeclarationError(
                    f"networks {one.name} and {other.name} both use bridge {one.bridge}",
                    where=str(other.source or one.source), hint="set `bridge:` in one of them")
            if one.subnet.overlaps(other.subnet):
                raise DeclarationError(
                    f"subnet {other.subnet} of {other.name} overlaps {one.subnet} of {one.name}",
                    where=str(other.source or one.source),
                    hint="set a different `subnet:` in one of them")


def user_file(name: str, paths: Paths) -> Path | None:
    """The file declaring a user's network NAME, None when there is none (or NAME cannot
    name a user network)."""
    if not _NAME.fullmatch(name) or name in (*RESERVED, DEFAULT, USER_RESERVED):
        return None
    return _file(name, paths)


def find_user(name: str, paths: Paths, where: str | None = None) -> Network:
    """A user's declared network NAME (only its own file is read: each user network has
    namespaces of its own, so their subnets may overlap), or a network one of the user's
    compose projects owns (hostctl.compose.networks)."""
    path = _file(name, paths)
    if path is not None:
        return load(path, user=True)  # which refuses bridge and online
    owned = user_project_network(name, paths)
    if owned is not None:
        return owned
    raise RuntimeFailure(
        f"network {name!r} is not declared", where=where,
        hint=f"write {networks_dir(paths)}/{name}.yaml (an empty file gives defaults), "
             f"or use host, none or bridge")


def user_project_network(name: str, paths: Paths) -> Network | None:
    """User network NAME as one of the user's installed compose projects owns it; None
    when none does (or NAME cannot name a user network); the project's error when its
    network is left out."""
    if not _NAME.fullmatch(name) or name in (*RESERVED, DEFAULT, USER_RESERVED):
        return None
    found, problems = _compose_networks(paths, {})
    if name in problems:
        raise problems[name]
    return found.get(name)


def find(name: str, paths: Paths, where: str | None = None) -> Network:
    """The network a container names; an error naming the container's key otherwise."""
    networks = declared(paths)
    if name not in networks and paths.scope is Scope.SYSTEM:
        problem = _compose_networks(paths, networks)[1].get(name)
        if problem is not None:
            raise problem
    if name not in networks:
        folder = networks_dir(paths)
        raise RuntimeFailure(
            f"network {name!r} is not declared", where=where,
            hint=f"write {folder}/{name}.yaml (an empty file gives defaults), "
                 f"or use host, none or bridge")
    return networks[name]
