"""What `hostctl network ls|inspect` shows: declared networks and who is attached."""

from __future__ import annotations

from dataclasses import dataclass, field

from hostctl.errors import HostctlError
from hostctl.network import cni, defs, ports
from hostctl.paths import Paths, Scope
from hostctl.runtime import netns


@dataclass(frozen=True)
class Attached:
    container: str
    addresses: tuple[str, ...]
    netns: str
    ports: tuple[str, ...]  # as declared: [HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTO
    check: str | None  # None: CNI CHECK passed (or was not asked for)


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool
    ipv6_subnet: str | None
    source: str | None
    containers: tuple[Attached, ...]
    labels: dict[str, str] = field(default_factory=dict)


def _attachments(paths: Paths) -> list[cni.Attachment]:
    from hostctl.network import state_dir

    found = []
    for path in sorted((state_dir(paths) / "cni").glob("*.json")):
        try:
            found.append(cni.Attachment.from_json(path.read_text()))
        except (OSError, ValueError, KeyError):
            continue
    return found


def _info(network: defs.Network, attachments: list[cni.Attachment],
          check: bool) -> NetworkInfo:
    attached = tuple(
        Attached(a.container, tuple(a.addresses()), a.netns,
                 tuple(ports.label(p) for p in a.ports), cni.check(a) if check else None)
        for a in attachments if a.network == network.name)
    return NetworkInfo(network.name, str(network.subnet), str(network.gateway),
                       network.bridge, network.internal,
                       str(network.ipv6_subnet) if network.ipv6_subnet else None,
                       str(network.source) if network.source else None, attached,
                       dict(network.labels))


def list_networks(paths: Paths) -> list[NetworkInfo]:
    """Every network of the scope with the containers attached now (a user's: the ones
    declared in ~/.config/hostctl/networks and its compose projects' own; its `bridge` is
    pasta's, not listed)."""
    attachments = _attachments(paths)
    return [_info(n, attachments, False) for n in defs.declared(paths).values()]


def inspect_network(name: str, paths: Paths, check: bool = False) -> NetworkInfo:
    """One network; CHECK runs the CNI CHECK of each attached container."""
    if paths.scope is Scope.USER:
        if check:
            raise HostctlError("--check is for rootful networks",
                               hint="a user network's interfaces are in its own namespace: "
                                    "see `systemctl --user status hostctl-network-NAME`")
        return _info(defs.find_user(name, paths), _attachments(paths), False)
    network = defs.find(name, paths)
    return _info(network, _attachments(paths), check)


def stray_namespaces(paths: Paths) -> list[str]:
    """hostctl namespaces that no attachment accounts for (a crash midway)."""
    known = {a.container for a in _attachments(paths)}
    return [name for name in netns.ours() if name not in known]
