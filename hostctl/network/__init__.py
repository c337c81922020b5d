"""Container networking: what the launcher asks of it at each start and stop.

The launcher calls, in order: plan() before writing config.json, attach() after
`runc create` and before `runc start` (the container's init exists, paused), and
detach() at stop and before every start (stale state after a crash). detach() is
idempotent.

Modes (`network:`): host (the host's namespace), none (a namespace with loopback only),
bridge (the default: the built-in network `bridge`) or a declared network's name.
Rootful: a named namespace per container, wired by the CNI plugins in plan(), before
runc joins it. Rootless: runc makes the namespace and pasta connects it in attach().
docs/networking.md has the whole story.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hostctl.network import cni, defs, names, netns, pasta, resolv
from hostctl.paths import Paths, Scope

if TYPE_CHECKING:
    from hostctl.declarations.model import Container

HOST, NONE = "host", "none"


@dataclass(frozen=True)
class NetworkPlan:
    """What the OCI config needs from the network setup."""

    # None: share the host's network namespace; "new": runc makes a fresh one;
    # otherwise the path of an existing namespace to join.
    namespace: str | None
    hosts: tuple[tuple[str, str], ...]  # (address, names) lines for /etc/hosts
    resolv_conf: str  # the container's whole /etc/resolv.conf
    network: str = HOST  # the network joined (host, none, or a network's name)
    addresses: tuple[str, ...] = ()  # the container's addresses on it


def state_dir(paths: Paths) -> Path:
    """Attachments, member records, IPAM leases and pasta PIDs: under the run dir."""
    return paths.run / "network"


def _attachment_file(paths: Paths, name: str) -> Path:
    return state_dir(paths) / "cni" / f"{name}.json"


def _pasta_pid(paths: Paths, name: str) -> Path:
    return state_dir(paths) / "pasta" / f"{name}.pid"


def _hosts_file(paths: Paths, name: str) -> Path:
    """The container's hosts file in its bundle (see launcher.config.etc_files)."""
    return paths.containers / name / "hosts"


def _resolv(container: Container, own_netns: bool) -> str:
    return resolv.shape(resolv.host_resolv(own_netns), container.dns,
                        container.dns_search, container.dns_options)


def plan(container: Container, paths: Paths) -> NetworkPlan:
    """Decide (and, rootful, build) the container's network before config.json."""
    mode = container.network
    where = container.where("network")
    if mode == HOST:
        extra = resolv.extra_hosts(container.add_hosts, "127.0.0.1", container.where("add_hosts"))
        return NetworkPlan(None, extra, _resolv(container, False))
    if mode == NONE:
        _no_ports(container, "network: none")
        extra = resolv.extra_hosts(container.add_hosts, None, container.where("add_hosts"))
        return NetworkPlan("new", extra, _resolv(container, True), NONE)
    if paths.scope is Scope.USER:
        return _plan_rootless(container, mode, where)
    return _plan_bridge(container, paths, defs.find(mode, paths, where))


def _no_ports(container: Container, why: str) -> None:
    if container.ports:
        from hostctl.errors import RuntimeFailure

        raise RuntimeFailure(f"ports cannot be published with {why}",
                             where=container.where("ports"),
                             hint="remove `ports:` or use a network with a way out")


def _plan_rootless(container: Container, mode: str, where: str) -> NetworkPlan:
    if mode != defs.DEFAULT:
        from hostctl.errors import RuntimeFailure

        raise RuntimeFailure(
            f"rootless containers cannot join network {mode!r}", where=where,
            hint="rootless containers use pasta: `network: bridge` (the default) or host")
    extra = resolv.extra_hosts(container.add_hosts, resolv.default_gateway(),
                               container.where("add_hosts"))
    return NetworkPlan("new", extra, _resolv(container, True), mode)


def _plan_bridge(container: Container, paths: Paths, network: defs.Network) -> NetworkPlan:
    if network.internal:
        _no_ports(container, f"the internal network {network.name}")
    extra = resolv.extra_hosts(container.add_hosts, str(network.gateway),
                               container.where("add_hosts"))
    attachment = _connect(container, paths, network)
    addresses = tuple(attachment.addresses())
    hosts = extra
    if network.name != defs.DEFAULT:  # as docker and podman: names on named networks only
        members = names.Members(state_dir(paths) / "members", network.name)
        with members.locked():
            own = names.Member(container.name, addresses, _hosts_file(paths, container.name))
            members.add(own)
            current = members.all()
            for peer in current:
                if peer.container != container.name:
                    names.rewrite_peers(peer, network.name, current)
        hosts += names.peer_lines(network.name, current, container.name)
    return NetworkPlan(attachment.netns, hosts, _resolv(container, True), network.name,
                       addresses)


def _connect(container: Container, paths: Paths, network: defs.Network) -> cni.Attachment:
    """A namespace for the container, wired to NETWORK; cached before ADD so a crash
    midway is undone by the next detach()."""
    path = netns.create(container.name)
    ipam = state_dir(paths) / "ipam"
    attachment = cni.Attachment(container.name, network.name, str(path),
                                cni.conflist(network, container.ports, ipam))
    cache = _attachment_file(paths, container.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(attachment.to_json())
    try:
        attachment = cni.add(attachment)
    except BaseException:
        detach(container.name, paths)
        raise
    cache.write_text(attachment.to_json())
    return attachment


def attach(container: Container, pid: int, paths: Paths) -> None:
    """Rootless: connect the created container's namespace with pasta. Rootful: make
    sure the container's own hosts file lists the peers that joined meanwhile."""
    if container.network in (HOST, NONE):
        return
    if paths.scope is Scope.USER:
        pasta.start(pid, container.ports, _pasta_pid(paths, container.name))
        return
    if container.network != defs.DEFAULT:
        members = names.Members(state_dir(paths) / "members", container.network)
        with members.locked():
            names.refresh_all(members)


def detach(name: str, paths: Paths) -> None:
    """Release what plan()/attach() set up for NAME; safe when nothing was set up."""
    if paths.scope is Scope.USER:
        pasta.stop(_pasta_pid(paths, name))
        return
    cache = _attachment_file(paths, name)
    try:
        attachment: cni.Attachment | None = cni.Attachment.from_json(cache.read_text())
    except (OSError, ValueError, KeyError):
        attachment = None
    if attachment is not None:
        _leave_names(paths, attachment.network, name)
        for failure in cni.delete(attachment):
            print(f"hostctl: network cleanup of {name}: {failure}", file=sys.stderr)
    netns.remove(name)
    cache.unlink(missing_ok=True)


def _leave_names(paths: Paths, network: str, name: str) -> None:
    members = names.Members(state_dir(paths) / "members", network)
    if not members.folder.exists():
        return
    with members.locked():
        members.discard(name)
        names.refresh_all(members)
