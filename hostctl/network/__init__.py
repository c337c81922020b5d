"""Container networking: what the launcher asks of it at each start and stop.

The launcher calls, in order: plan() before writing config.json, attach() after
`runc create` and before `runc start` (the container's init exists, paused), and
detach() at stop and before every start (stale state after a crash). detach() is
idempotent.

Modes (`network:`): host (the host's namespace), none (a namespace with loopback only),
bridge (the default: the built-in network `bridge`) or a declared network's name;
rootful, `networks:` adds more (bridge or declared) networks as eth1, eth2 ..., wired
after eth0 in the same thread, each with its own attachment cache (NAME+ethN.json).
Rootful: plan() makes a named namespace per container and starts wiring it (the CNI
plugins, then hostctl's iptables rules) in a thread, so that this overlaps the rest of
the launcher's work and `runc create` joining the namespace; attach() waits for it,
before `runc start`. Rootless: runc makes the namespace and pasta connects it in
attach(); on a user's declared network, attach() wires it inside the network holder's
namespace instead (hostctl.network.usernet). docs/networking.md has the whole story.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.network import cni, defs, pasta, ports, replay, resolv, rules
from hostctl.paths import Paths, Scope
from hostctl.runtime import netns, peers

if TYPE_CHECKING:
    from hostctl.declarations.model import Container, Port

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
    # A pod member (hostctl.pod.member): (type, path) of the pod's IPC and UTS
    # namespaces, its /dev/shm directory, its hosts file and its host name.
    pod_namespaces: tuple[tuple[str, str], ...] = ()
    shm: str | None = None
    hosts_file: str | None = None
    hostname: str | None = None


def state_dir(paths: Paths) -> Path:
    """Attachments, member records, IPAM leases and pasta PIDs: under the run dir."""
    return paths.run / "network"


def _attachment_file(paths: Paths, name: str, ifname: str = cni.IFNAME) -> Path:
    """NAME's attachment on its first network (eth0), or on a later one (NAME+eth1...:
    `+` is in no container name)."""
    stem = name if ifname == cni.IFNAME else f"{name}+{ifname}"
    return state_dir(paths) / "cni" / f"{stem}.json"


def _attachment_files(paths: Paths, name: str) -> list[Path]:
    """Every attachment cache of NAME, its later networks' (last first) before eth0's."""
    more = (state_dir(paths) / "cni").glob(f"{glob.escape(name)}+eth*.json")
    return [*sorted(more, reverse=True), _attachment_file(paths, name)]


def addresses(paths: Paths, name: str) -> list[str]:
    """The addresses NAME (a container, or a pod's NAME-pod) has on its networks now (IPv4
    first, its first network's first); none when it is not attached."""
    found: list[str] = []
    for path in reversed(_attachment_files(paths, name)):
        try:
            found += cni.Attachment.from_json(path.read_text()).addresses()
        except (OSError, ValueError, KeyError):
            continue
    return sorted(found, key=lambda a: ":" in a)


def _pasta_pid(paths: Paths, name: str) -> Path:
    return state_dir(paths) / "pasta" / f"{name}.pid"


def _hosts_file(paths: Paths, name: str) -> Path:
    """The container's hosts file in its bundle (see launcher.config.etc_files)."""
    return paths.containers / name / "hosts"


def _resolv(container: Container, own_netns: bool, network_dns: tuple[str, ...] = ()) -> str:
    """resolv.conf: the container's own DNS= servers, else its network's, else the host's."""
    return resolv.shape(resolv.host_resolv(own_netns), container.dns or network_dns,
                        container.dns_search, container.dns_options)


def plan(container: Container, paths: Paths) -> NetworkPlan:
    """Decide (and, rootful, build) the container's network before config.json."""
    if container.pod is not None:
        from hostctl.pod import member

        return member.plan(container, paths)
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
        if container.networks:
            from hostctl.errors import RuntimeFailure

            raise RuntimeFailure("a user's container joins one network",
                                 where=container.where("networks"),
                                 hint="rootless networks (pasta, a user network's holder) "
                                 "take one container interface; drop `networks:`")
        if mode != defs.DEFAULT:
            from hostctl.network import usernet

            return usernet.plan(container, paths)
        return _plan_rootless(container, mode)
    more = tuple(defs.find(name, paths, container.where("networks"))
                 for name in container.networks)
    return _plan_bridge(container, paths, defs.find(mode, paths, where), more)


def _no_ports(container: Container, why: str) -> None:
    if container.ports:
        from hostctl.errors import RuntimeFailure

        raise RuntimeFailure(f"ports cannot be published with {why}",
                             where=container.where("ports"),
                             hint="remove `ports:` or use a network with a way out")


def _plan_rootless(container: Container, mode: str) -> NetworkPlan:
    if container.ip or container.ip6:
        from hostctl.errors import RuntimeFailure

        key = "ip" if container.ip else "ip6"
        raise RuntimeFailure("a user's bridge network (pasta) has no static addresses",
                             where=container.where(key),
                             hint="declare a network (networks/NAME.yaml) and put the "
                             "container on it, or drop the address")
    ports.check_unbound(container.ports, container.where("ports"))
    extra = resolv.extra_hosts(container.add_hosts, resolv.default_gateway(),
                               container.where("add_hosts"))
    return NetworkPlan("new", extra, _resolv(container, True), mode)


def _plan_bridge(container: Container, paths: Paths, network: defs.Network,
                 more: tuple[defs.Network, ...] = ()) -> NetworkPlan:
    """NETWORK (eth0: ports, default route) and MORE (eth1, ...: their subnets only)."""
    if network.internal:
        _no_ports(container, f"the internal network {network.name}")
    ports.check(container.ports, network.ipv6_subnet is not None, container.where("ports"),
                network.name)
    hosts = resolv.extra_hosts(container.add_hosts, str(network.gateway),
                               container.where("add_hosts"))
    path = _connect(container, paths, (network, *more))
    for joined in (network, *more):
        if joined.name != defs.DEFAULT and joined.names:  # names on named networks only
            members = peers.Members(state_dir(paths) / "members", joined.name)
            with members.locked():
                hosts += peers.peer_lines(joined.name, members.all(), container.name)
    return NetworkPlan(str(path), hosts, _resolv(container, True, network.dns), network.name)


class _Wiring:
    """ADD through the CNI chain, then hostctl's rules, for each of the container's
    networks in turn, in a thread of its own; cached before ADD, after ADD and before the
    rules, so a crash midway is undone by the next detach()."""

    def __init__(self, attachments: list[cni.Attachment], networks: list[defs.Network],
                 paths: Paths):
        self.attachments = attachments
        self.error: BaseException | None = None
        self.networks = networks
        self._paths = paths
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for index, network in enumerate(self.networks):
                self.attachments[index] = self._wire(self.attachments[index], network)
        except BaseException as err:  # handed to the launcher by wait()
            self.error = err

    def _wire(self, attachment: cni.Attachment, net: defs.Network) -> cni.Attachment:
        cache = _attachment_file(self._paths, attachment.container, attachment.ifname)
        if net.ipv6_subnet is not None:
            netns.ipv6_bridge(net.bridge)
        done = cni.add(attachment)
        name, published = done.container, done.ports
        subnets = [str(net.subnet)] + ([str(net.ipv6_subnet)] if net.ipv6_subnet else [])
        wanted = rules.for_container(name, done.addresses(), subnets, net.bridge, net.internal)
        wanted += ports.for_container(name, published, done.addresses(), subnets)
        localnet = ports.needs_route_localnet(published)
        if localnet:
            wanted.append(rules.loopback_guard(name, net.bridge))
        done = dataclasses.replace(done, rules=tuple(wanted))
        _write_cache(cache, done)
        rules.add(wanted, f"container {name}", state_dir(self._paths) / "rules.lock")
        if localnet:  # after the guard is in place
            ports.route_localnet(net.bridge)
        return done

    def wait(self) -> list[cni.Attachment]:
        """The attachments, first network first, once wired."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.attachments


_wiring: dict[str, _Wiring] = {}  # container name -> its wiring, between plan and attach
# container name -> its attachment and network, once attach() has waited for the wiring
_attached: dict[str, tuple[cni.Attachment, defs.Network]] = {}


def _connect(container: Container, paths: Paths, networks: tuple[defs.Network, ...]) -> str:
    """A namespace for the container, its wiring to NETWORKS started (the first with the
    ports and the static addresses); the namespace path."""
    network, ipam = networks[0], state_dir(paths) / "ipam"
    cache = _attachment_file(paths, container.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with _ports_locked(paths, bool(container.ports)):
        # the check and the record under one lock: two starts cannot both take a port
        ports.check_free(container.ports, _published(paths, container.name),
                         container.where("ports"))
        ports.check_unbound(container.ports, container.where("ports"))
        path = netns.create(container.name)
        attachment = cni.Attachment(container.name, network.name, str(path),
                                    cni.conflist(network, ipam,
                                                 cni.requested_ips(container, network)),
                                    ports=container.ports)
        _write_cache(cache, attachment)
        replay.write_claims(cache, container.ports)  # what the recorded starts check
    attachments = [attachment]
    for index, more in enumerate(networks[1:], start=1):
        attachments.append(cni.Attachment(
            container.name, more.name, str(path),
            cni.conflist(more, ipam, default_route=False), ifname=f"eth{index}"))
        _write_cache(_attachment_file(paths, container.name, f"eth{index}"), attachments[-1])
    _wiring[container.name] = _Wiring(attachments, list(networks), paths)
    return path


def _write_cache(path: Path, attachment: cni.Attachment) -> None:
    """Replace PATH at once: other starts read every cache for the ports they hold."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(attachment.to_json())
    partial.replace(path)


@contextlib.contextmanager
def _ports_locked(paths: Paths, needed: bool) -> Iterator[None]:
    if not needed:
        yield
        return
    lock = state_dir(paths) / "ports.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _published(paths: Paths, own: str) -> dict[str, tuple[Port, ...]]:
    """The host ports the other attached containers publish, by container."""
    taken = {}
    for path in (state_dir(paths) / "cni").glob("*.json"):
        if path.stem == own:
            continue
        try:
            attachment = cni.Attachment.from_json(path.read_text())
        except (OSError, ValueError, KeyError):
            continue
        if attachment.ports:
            taken[attachment.container] = attachment.ports
    return taken


def attach(container: Container, pid: int, paths: Paths) -> None:
    """Rootless: connect the created container's namespace with pasta, or put it on its
    user network (hostctl.network.usernet). Rootful: wait for
    the wiring plan() started (its failure is raised here), then record the container's
    addresses for its network's names and bring every member's hosts file up to date."""
    if container.network in (HOST, NONE) or container.pod is not None:
        return
    if paths.scope is Scope.USER:
        if container.network != defs.DEFAULT:
            from hostctl.network import usernet

            usernet.attach(container, pid, paths)
            return
        pasta.start(pid, container.ports, _pasta_pid(paths, container.name))
        return
    wiring = _wiring.pop(container.name, None)
    if wiring is None:
        return
    attachments = wiring.wait()
    _attached[container.name] = (attachments[0], wiring.networks[0])
    for attachment, network in zip(attachments, wiring.networks, strict=True):
        if attachment.network == defs.DEFAULT or not network.names:
            continue
        members = peers.Members(state_dir(paths) / "members", attachment.network)
        with members.locked():
            members.add(peers.Member(container.name, tuple(attachment.addresses()),
                                     _hosts_file(paths, container.name),
                                     container.aliases_on(attachment.network)))
            peers.refresh_all(members)


def detach(name: str, paths: Paths) -> None:
    """Release what plan()/attach() set up for NAME; safe when nothing was set up."""
    if paths.scope is Scope.USER:
        from hostctl.network import usernet

        pasta.stop(_pasta_pid(paths, name))
        usernet.detach(name, paths)
        return
    wiring = _wiring.pop(name, None)
    if wiring is not None:  # the start failed between plan() and attach()
        with contextlib.suppress(Exception):  # the start's own error is being reported
            wiring.wait()
    for cache in _attachment_files(paths, name):
        try:
            attachment: cni.Attachment | None = cni.Attachment.from_json(cache.read_text())
        except (OSError, ValueError, KeyError):
            attachment = None
        if attachment is not None:
            _leave_names(paths, attachment.network, name)
            for failure in rules.delete(attachment.rules) + cni.delete(attachment):
                print(f"hostctl: network cleanup of {name}: {failure}", file=sys.stderr)
        if cache != _attachment_file(paths, name):
            cache.unlink(missing_ok=True)
    netns.remove(name)
    cache = _attachment_file(paths, name)
    cache.unlink(missing_ok=True)
    replay.claims_file(cache).unlink(missing_ok=True)


def for_record(container: Container, paths: Paths
               ) -> tuple[dict[str, Any] | None, list[str], list[str],
                          list[tuple[str, str, list[str]]]] | None:
    """What a start record (hostctl.launcher.recording) needs of CONTAINER's network, once
    attach() is done: the replay (None on host and none networks), the paths whose
    content and whose presence it depends on; None when this network's start cannot be
    replayed (a user network: its holder's namespace is joined anew at each start).
    Rootless, on the default network: pasta's command line and PID file (pasta runs
    anew at each start: hostctl.launcher.quickuser), with pasta itself present."""
    if container.network in (HOST, NONE) or container.pod is not None:
        return None, [], [], []  # a pod's member: its pod's unit wires the network
    if paths.scope is Scope.USER:
        if container.network != defs.DEFAULT or container.networks:
            return None
        from hostctl.launcher.record import NETNS_PLACEHOLDER

        pid_file = _pasta_pid(paths, container.name)
        command = pasta.for_record(container.ports, pid_file, NETNS_PLACEHOLDER)
        return {"pasta": command, "pid_file": str(pid_file)}, [], [command[0]], []
    found = _attached.get(container.name)
    if found is None or container.networks:
        return None  # several networks: the replay wires one (recording.eligible)
    attachment, network = found
    part = replay.for_record(attachment, network, paths,
                             _attachment_file(paths, container.name),
                             _hosts_file(paths, container.name),
                             container.aliases_on(network.name))
    if part is None:
        return None
    return (part, *replay.inputs(network, paths))


def _leave_names(paths: Paths, network: str, name: str) -> None:
    members = peers.Members(state_dir(paths) / "members", network)
    if not members.folder.exists():
        return
    with members.locked():
        members.discard(name)
        peers.refresh_all(members)
