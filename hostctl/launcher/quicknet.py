"""The recorded start's network: a rootful container wired to its bridge network again,
as its last full start wired it (hostctl.network.replay wrote down how).

connect() checks the host ports (the claims of the other attached containers, and a
bind as hostctl.network.ports.check_unbound does), makes the namespace, caches the
attachment, then starts the wiring in a thread of its own: the bridge plugin's ADD
asking host-local for the address the last start had, the attachment cache with its
result, the recorded iptables-restore batches, route_localnet, the names of a named
network's members. That runs while `runc create` joins the namespace; the launcher
waits for it before `runc start`. release() is the unit's ExecStopPost's half: the
rules, DEL (which releases the address), the namespace, the cache.

Anything that does not go as recorded (the address taken, a restore refused, the
bridge gone, a port held) raises Doubt: the launcher undoes what was done and runs the
full start, which has the errors and hints. Imports: os, _thread, fcntl, marshal,
_socket (hostctl.runtime.peers only for a named network's members).
"""

from __future__ import annotations

import _thread
import fcntl
import marshal
import os

from hostctl.launcher.handoff import say
from hostctl.launcher.record import json_string
from hostctl.runtime import netns

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from typing import Any

_EADDRINUSE, _EADDRNOTAVAIL = 98, 99


class Doubt(Exception):  # not an error: the full start runs instead
    """The recorded network cannot be replayed as it is."""


def connect(name: str, net: dict[str, Any]) -> Wiring:
    """Check the ports, make the namespace, cache the attachment, start the wiring. What a
    boot removed is made as the full start makes it: the run directory's, a missing
    bridge (an IPv6 network's without DAD first, hostctl.runtime.netns.ipv6_bridge; the
    plugin makes it), hostctl's shared chains (_with_chains)."""
    os.makedirs(net["cni_dir"], exist_ok=True)  # after a boot: the run directory is new
    if net["ipv6_bridge"] and not os.path.isdir(f"/sys/class/net/{net['bridge']}"):
        netns.ipv6_bridge(net["bridge"])
    lock = None
    if net["ports_lock"] is not None:  # as network._connect: check and claim under one lock
        lock = os.open(net["ports_lock"], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if net["claims"]:
            _check_claims(name, net)
            _check_unbound(net["probes"])
        netns.create(name)
        _write(net["cache"], net["cache_before"])
        _write(net["claims_file"], marshal.dumps(net["claims"]))
    finally:
        if lock is not None:
            os.close(lock)
    return Wiring(net)


def _check_claims(name: str, net: dict[str, Any]) -> None:
    """Doubt when another attached container claims one of NET's host ports (or when an
    attachment has no claims file: one from before them)."""
    mine = net["claims"]
    for entry in os.listdir(net["cni_dir"]):
        if not entry.endswith(".json") or entry == f"{name}.json":
            continue
        try:
            with open(os.path.join(net["cni_dir"], entry[:-5] + ".ports"), "rb") as handle:
                theirs = marshal.loads(handle.read())
        except (OSError, EOFError, ValueError, TypeError) as err:
            raise Doubt(f"no port claims for {entry[:-5]}") from err
        for proto, port, version, address in mine:
            for other in theirs:
                if (other[0], other[1], other[2]) == (proto, port, version) and \
                        (not address or not other[3] or address == other[3]):
                    raise Doubt(f"host port {port}/{proto} is published by {entry[:-5]}")


def _check_unbound(probes: list[tuple[int, str, int, bool]]) -> None:
    """Doubt when a process on the host has one of the host ports bound."""
    import _socket

    for version, address, port, tcp in probes:
        family = _socket.AF_INET if version == 4 else _socket.AF_INET6
        kind = _socket.SOCK_STREAM if tcp else _socket.SOCK_DGRAM
        try:
            probe = _socket.socket(family, kind)
        except OSError:
            continue  # no IPv6 here: nothing holds a v6 port
        try:
            if version == 6:
                probe.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            if tcp:
                probe.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            probe.bind((address, port))
        except OSError as err:
            if err.errno in (_EADDRINUSE, _EADDRNOTAVAIL):
                raise Doubt(f"host port {port} is taken or {address} gone") from err
        finally:
            probe.close()


def _write(path: str, data: str | bytes) -> None:
    """Replace PATH at once (other starts read the caches)."""
    folder, base = os.path.split(path)
    partial = os.path.join(folder, f".{base}.tmp")
    with open(partial, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.replace(partial, path)


def _run(argv: list[str], env: dict[str, str] | None, data: bytes) -> tuple[int, str]:
    """Run ARGV with DATA as stdin; its exit status and its output (stdout and stderr)."""
    child_in, feed = os.pipe()
    drain, child_out = os.pipe()
    try:
        pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, child_in, 0),
                                           (os.POSIX_SPAWN_DUP2, child_out, 1),
                                           (os.POSIX_SPAWN_DUP2, child_out, 2)])
    finally:
        os.close(child_in)
        os.close(child_out)
    try:
        os.write(feed, data)  # a pipe holds 64 KiB: more than a plugin config or a batch
    finally:
        os.close(feed)
    chunks = []
    with open(drain, "rb") as handle:
        chunks.append(handle.read())
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _plugin(net: dict[str, Any], command: str) -> tuple[int, str]:
    env = {**net["plugin_env"], "CNI_COMMAND": command}
    return _run([net["plugin"]], env, net["add"] if command == "ADD" else net["del"])


class Wiring:
    """ADD, the attachment cache, the rules and the names, in a thread of its own."""

    def __init__(self, net: dict[str, Any]) -> None:
        self._net = net
        self._error: BaseException | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._bundle = _thread.allocate_lock()  # released once the hosts file is written
        self._bundle.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._wire()
        except BaseException as err:  # handed to the launcher by wait()
            self._error = err
        finally:
            self._done.release()

    def _wire(self) -> None:
        net = self._net
        status, output = _plugin(net, "ADD")
        if status != 0:
            raise Doubt(f"the bridge plugin refused the recorded address: {output.strip()}")
        if any(json_string(address) not in output for address in net["addresses"]):
            raise Doubt(f"the bridge plugin gave other addresses than {net['addresses']}")
        _write(net["cache"], net["cache_after"].replace(net["result_placeholder"],
                                                        output.strip(), 1))
        for family, (tool, batch, _undo) in net["restore"].items():
            status, output = _run([tool, "--noflush", "-w"], None, batch.encode())
            if status != 0:
                status, output = _with_chains(net, family, tool, batch)
            if status != 0:
                raise Doubt(f"{os.path.basename(tool)} refused the recorded rules: "
                            f"{output.strip()}")
        if net["localnet"] is not None:
            with open(net["localnet"], "r+") as handle:
                if handle.read().strip() != "1":
                    handle.seek(0)  # a sysctl takes a write at offset 0 only
                    handle.write("1\n")
        if net["members"] is not None:
            self._bundle.acquire()  # the recorded hosts file is in place: now the peers
            _join_names(net)

    def bundle_written(self) -> None:
        """The bundle's hosts file is written: the peers may be put in."""
        self._bundle.release()

    def wait(self, _pid: int = 0) -> None:
        """Until the wiring is done (the hand-off's attach); its Doubt or error raised."""
        self._done.acquire()
        self._done.release()  # a second wait() returns at once
        if self._error is not None:
            raise self._error

    def settle(self) -> None:
        """Until the wiring is done, whatever its outcome (a failed start, whose own error
        is reported, undoes it next)."""
        self._done.acquire()
        self._done.release()


def _with_chains(net: dict[str, Any], family: str, tool: str, batch: str) -> tuple[int, str]:
    """As hostctl.network.rules' restore after a failed one, under the same lock: BATCH
    again (another start may have made the chains meanwhile), else hostctl's missing
    shared chains made (after a boot, by the first start), then BATCH once more."""
    lister, chains = net["chains"][family]
    os.makedirs(os.path.dirname(net["rules_lock"]), exist_ok=True)
    lock = os.open(net["rules_lock"], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status, output = _run([tool, "--noflush", "-w"], None, batch.encode())
        if status == 0:
            return status, output
        missing = [lines for chain, lines in chains
                   if _run([lister, "-w", "-t", "filter", "-S", chain], None, b"")[0] != 0]
        if missing:
            _run([tool, "--noflush", "-w"], None,
                 "\n".join(["*filter", *missing, "COMMIT"]).encode() + b"\n")
        return _run([tool, "--noflush", "-w"], None, batch.encode())
    finally:
        os.close(lock)


def _join_names(net: dict[str, Any]) -> None:
    """As network.attach: record this member's addresses, refresh every member's hosts."""
    from pathlib import Path

    from hostctl.runtime import peers

    members = peers.Members(Path(net["members"]), net["network"])
    container = os.path.basename(net["cache"])[:-5]
    with members.locked():
        members.add(peers.Member(container, tuple(a.split("/")[0] for a in net["addresses"]),
                                 Path(net["hosts"]), tuple(net["aliases"])))
        peers.refresh_all(members)


def _not_as_recorded(name: str, what: str, output: str) -> bool:
    say(f"network cleanup of {name}: {what} failed ({output.strip() or 'no message'}): "
        "cleaning up the full way")
    return False


def release(name: str, net: dict[str, Any]) -> bool:
    """Undo what a start from NET wired: the names, the rules, DEL (the address goes back
    to host-local), the namespace, the cache. False when the full detach must finish
    it (no cache: the start did not get that far; a restore refused: rule by rule)."""
    if not os.path.exists(net["cache"]):
        return False
    if net["members"] is not None:
        from pathlib import Path

        from hostctl.runtime import peers

        members = peers.Members(Path(net["members"]), net["network"])
        with members.locked():
            members.discard(name)
            peers.refresh_all(members)
    for tool, _batch, undo in net["restore"].values():
        status, output = _run([tool, "--noflush", "-w"], None, undo.encode())
        if status != 0:
            return _not_as_recorded(name, os.path.basename(tool), output)
    status, output = _plugin(net, "DEL")
    if status != 0:
        return _not_as_recorded(name, "the bridge plugin's DEL", output)
    netns.remove(name)
    for path in (net["cache"], net["claims_file"]):
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
    return True
