"""Rootless containers on a user's declared network: members of its holder's namespaces.

The launcher of a member joins the holder's user namespace (hostctl.runtime.userns.join,
done by the launcher before anything else) instead of making one, so runc makes the
container's network namespace owned by the holder's user namespace, where the launcher
is root. Then, in a thread that has entered the holder's network namespace:

- attach(): the CNI bridge plugin's ADD (host-local IPAM, leases under the user's run
  dir) puts the container's eth0 on the holder's bridge, and the DNAT rules of its
  published ports (hostctl.network.ports, without the host address: pasta has bound
  that already) take what pasta delivers: PREROUTING for connections arriving through
  pasta's tap interface, OUTPUT (with route_localnet on the bridge and a masquerade of
  127.0.0.0/8) for those pasta splices through the namespace's loopback;
- detach(): DEL, the rules deleted, the host end of the veth removed if it is still
  there. A cached attachment whose holder is not the running one needs nothing: its
  namespace, rules and leases are gone with the old holder.

Names work as on rootful named networks (hostctl.runtime.peers, under the user's run
directory).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from hostctl import proc
from hostctl.errors import RuntimeFailure
from hostctl.network import cni, defs, holder, ports, resolv, rules
from hostctl.paths import Paths
from hostctl.runtime import peers

if TYPE_CHECKING:
    from hostctl.declarations.model import Container, Port
    from hostctl.network import NetworkPlan

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000


def running_holder(container: Container, paths: Paths) -> holder.Holder:
    """The holder of the user network CONTAINER names; a clear error when it is not up."""
    network = defs.find_user(container.network, paths, container.where("network"))
    found = holder.running(paths, network.name)
    if found is None:
        raise RuntimeFailure(
            f"network {network.name} is not running", where=container.where("network"),
            hint=f"systemctl --user start {holder.unit_name(network.name)} (the container's "
                 "unit requires it; run `systemctl --user daemon-reload` if it is missing)")
    return found


def _in_holder(pid: int, func: Callable[[], T]) -> T:
    """FUNC's result, run in a thread that entered holder PID's network namespace (the
    calling process must be in the holder's user namespace)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    raise RuntimeFailure("cannot enter the network's namespace: "
                                         f"{os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
            outcome.append(func())
        except BaseException as err:  # handed to the caller
            outcome.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[return-value]


def _unbound(published: tuple[Port, ...]) -> tuple[Port, ...]:
    """PORTS as the holder's namespace sees them: pasta has bound the host address."""
    return tuple(dataclasses.replace(p, host_ip=None) for p in published)


def plan(container: Container, paths: Paths) -> NetworkPlan:
    """Check the network, its holder and the ports; the member's hosts and resolv.conf."""
    from hostctl.network import (
        NetworkPlan,
        _attachment_file,
        _no_ports,
        _ports_locked,
        _published,
        _resolv,
        _write_cache,
        state_dir,
    )

    network = defs.find_user(container.network, paths, container.where("network"))
    if network.internal:
        _no_ports(container, f"the internal network {network.name}")
    where = container.where("ports")
    ports.check(container.ports, False, where, network.name)
    running = running_holder(container, paths)
    for port in container.ports:
        if not running.forwards_port(port):
            raise RuntimeFailure(
                f"{ports.label(port)}: host port {port.host_port}/{port.protocol} is not "
                f"forwarded by network {network.name} (its pasta started before this port "
                "was declared)", where=where,
                hint=f"restart the network to forward it: {holder.restart_hint(network.name)}")
    cache = _attachment_file(paths, container.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    mine = _unbound(container.ports)
    with _ports_locked(paths, bool(container.ports)):
        taken = {name: _unbound(held) for name, held in _published(paths, container.name).items()}
        ports.check_free(mine, taken, where)
        _write_cache(cache, cni.Attachment(
            container.name, network.name, "", cni.conflist(network, holder.ipam_dir(paths),
                                                       cni.requested_ips(container, network)),
            ports=mine, holder=running.identity))
    hosts = resolv.extra_hosts(container.add_hosts, resolv.default_gateway(),
                               container.where("add_hosts"))
    if network.names:
        members = peers.Members(state_dir(paths) / "members", network.name)
        with members.locked():
            hosts += peers.peer_lines(network.name, members.all(), container.name)
    return NetworkPlan("new", hosts, _resolv(container, True, network.dns), network.name)


def attach(container: Container, pid: int, paths: Paths) -> None:
    """Put container PID (created, paused) on its network, its ports published, and
    bring every member's hosts file up to date."""
    from hostctl.network import _attachment_file, _hosts_file, _write_cache, state_dir

    network = defs.find_user(container.network, paths, container.where("network"))
    running = running_holder(container, paths)
    cache = _attachment_file(paths, container.name)
    planned = cni.Attachment.from_json(cache.read_text())
    if planned.holder != running.identity:
        raise RuntimeFailure(f"network {network.name} was restarted during the start",
                             where=container.where("network"), hint="start the container again")

    def wire() -> cni.Attachment:
        done = cni.add(dataclasses.replace(planned, netns=f"/proc/{pid}/ns/net"))
        done = dataclasses.replace(done, netns="")  # DEL: the namespace dies with the container
        wanted = ports.for_container(container.name, done.ports, done.addresses(),
                                     [str(network.subnet)])
        done = dataclasses.replace(done, rules=tuple(wanted))
        _write_cache(cache, done)
        rules.add(wanted, f"container {container.name}", state_dir(paths) / "rules.lock")
        return done

    attached = _in_holder(running.pid, wire)
    if not network.names:
        return
    members = peers.Members(state_dir(paths) / "members", network.name)
    with members.locked():
        members.add(peers.Member(container.name, tuple(attached.addresses()),
                                 _hosts_file(paths, container.name),
                                 container.aliases_on(network.name)))
        peers.refresh_all(members)


def _host_veths(attachment: cni.Attachment) -> list[str]:
    """The host ends of the container's veth, from ADD's result."""
    interfaces = (attachment.result or {}).get("interfaces", [])
    bridge = attachment.config["plugins"][0].get("bridge")
    return [str(i["name"]) for i in interfaces
            if not i.get("sandbox") and i.get("name") and i.get("name") != bridge]


def detach(name: str, paths: Paths) -> None:
    """Undo attach() (or plan()) for container NAME; safe when nothing was set up."""
    from hostctl.network import _attachment_file, _leave_names

    cache = _attachment_file(paths, name)
    try:
        attachment = cni.Attachment.from_json(cache.read_text())
    except (OSError, ValueError, KeyError):
        return
    if not attachment.holder:
        return  # not a user network's attachment
    _leave_names(paths, attachment.network, name)
    running = holder.running(paths, attachment.network)
    if running is not None and running.identity == attachment.holder:
        def undo() -> list[str]:
            failures = rules.delete(attachment.rules) + cni.delete(attachment)
            for veth in _host_veths(attachment):  # gone already unless the netns lingers
                proc.run(["ip", "link", "del", veth], check=False)
            return failures

        try:
            failures = _in_holder(running.pid, undo)
        except RuntimeFailure as err:
            failures = [err.message]
        for failure in failures:
            print(f"hostctl: network cleanup of {name}: {failure}", file=sys.stderr)
    cache.unlink(missing_ok=True)


def cached_network(name: str, paths: Paths) -> str | None:
    """The user network container NAME was last attached to (for its cleanup)."""
    from hostctl.network import _attachment_file

    try:
        attachment = cni.Attachment.from_json(_attachment_file(paths, name).read_text())
    except (OSError, ValueError, KeyError):
        return None
    return attachment.network if attachment.holder else None


def detach_other(name: str, paths: Paths, network: str) -> None:
    """Undo container NAME's attachment to a user network other than NETWORK (its
    declaration changed after a start whose cleanup never ran): in a child process that
    joins that network's holder, since the launcher joins NETWORK's. Call before the
    launcher enters a user namespace."""
    cached = cached_network(name, paths)
    if cached is None or cached == network:
        return
    found = holder.running(paths, cached)
    if found is None:
        detach(name, paths)  # its namespace is gone: only the records are left
        return
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        status = 1
        try:
            from hostctl.runtime.userns import join

            join(found.pid, cached)
            detach(name, paths)
            status = 0
        except BaseException as err:
            print(f"hostctl: network cleanup of {name}: {err}", file=sys.stderr)
        finally:
            os._exit(status)
    os.waitpid(child, 0)
