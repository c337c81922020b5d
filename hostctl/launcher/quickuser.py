"""The recorded start of a user's container (rootless), as its last full start made it.

hostctl.launcher.record says when a record is current; hostctl.launcher.quick replays a
system container's. A user's full start also enters a user namespace (the user's own
id and /etc/subuid range, written by newuidmap and newgidmap) and, on the default
network, connects the container's namespace with pasta after `runc create`. Here the
maps are the recorded ones, and the network namespace is made by the launcher itself
(a thread unshares it, the launcher keeps it open and hands runc its path), so pasta
connects it while the overlay is mounted and `runc create` runs, with the command line
the last start ran. It imports no declaration, image or network code.

Any doubt before the user namespace is entered means None: the caller runs the full
start. Once entered, the launcher cannot leave it: a start that fails after that
(pasta refused a port, say) is undone and the full start runs in the same namespace
(entered() tells hostctl.launcher.launch so). The compiled launcher
(hostctl/launcher/launchfast.c) does the same start without Python; when it falls back
once in the namespace, it execs this launcher with the maps in ENTERED_ENV.
"""

from __future__ import annotations

import os

from hostctl import __version__
from hostctl.errors import RuntimeFailure
from hostctl.launcher import record as records
from hostctl.launcher.handoff import hand_off, say
from hostctl.launcher.quick import (
    in_background,
    prepare,
    remove_started,
    shared_store_lock,
    write_bundle,
)
from hostctl.runtime import cgroups, libc
from hostctl.runtime.runc import Runc

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from hostctl.runtime.userns import IdMap

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
ROUTES = "/proc/net/route"
SIGPIPE = 13  # Linux's number (the signal module's import costs a start its enums)

RECORDED_START = records.RECORDED_START
# the maps of the user namespace the compiled launcher entered before it fell back:
# "UID_MAP;GID_MAP", each its triples' numbers joined by spaces
ENTERED_ENV = "HOSTCTL_ENTERED_MAPS"

_entered: list[dict[str, Any]] = []  # the maps, once in the user namespace made here


class Doubt(Exception):
    """The recorded start cannot go on (pasta failed): undo it, start in full."""


def entered() -> bool:
    """Whether this process already entered its user namespace (a recorded start that
    fell back to the full start)."""
    return bool(_entered)


def entered_maps() -> tuple[IdMap, IdMap]:
    """The (uid, gid) maps of the user namespace entered here (inside it, the launcher's
    own ids are 0: hostctl.runtime.userns.id_maps would not find them)."""
    from hostctl.runtime.userns import IdMap

    found = []
    for key in ("uid_map", "gid_map"):
        own, sub = _entered[0][key][0][1], _entered[0][key][1:]
        found.append(IdMap(own, sub[0][1], sub[0][2]) if sub else IdMap(own))
    return found[0], found[1]


def default_route() -> str | None:
    """The gateway field of the host's IPv4 default route in /proc/net/route, as text (a
    user's container's host-gateway address comes from it: hostctl.network.resolv)."""
    try:
        with open(ROUTES) as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
            return fields[2]
    return None


def applies(record: dict[str, Any] | None) -> bool:
    """Whether RECORD can start a user's container: a user's record, current, with the
    host's default route it was made with."""
    return record is not None and stale(record) is None


def stale(record: dict[str, Any]) -> str | None:
    """Why RECORD cannot start a user's container (in words for the journal); None when
    it can."""
    rootless = record.get("rootless")
    if not isinstance(record.get("store"), str) or not isinstance(rootless, dict):
        return "a record of another layout"
    changed = records.stale_input(record, __version__)
    if changed is None and rootless.get("route") != default_route():
        return "the host's default route"
    return changed


def inherited_maps(text: str) -> dict[str, list[list[int]]]:
    """ENTERED_ENV's TEXT as the record's maps (its "uid_map" and "gid_map")."""
    found = {}
    for key, part in zip(("uid_map", "gid_map"), text.split(";"), strict=True):
        numbers = [int(n) for n in part.split()]
        found[key] = [numbers[i:i + 3] for i in range(0, len(numbers), 3)]
    return found


def launch_recorded(name: str) -> int | None:
    """Start user container NAME from its record; None when a full start is needed
    (always once the compiled launcher entered the user namespace: it fell back)."""
    inherited = os.environ.pop(ENTERED_ENV, None)  # not the full start's environment
    if inherited is not None:
        _entered.append(inherited_maps(inherited))
        return None
    if not os.environ.get("INVOCATION_ID"):
        return None  # not started by systemd: no record applies
    record, kept = records.load_for_start(name, True)
    if record is None:
        return None
    changed = stale(record)
    if changed is not None:
        say(f"the recorded start does not apply ({changed}): starting in full")
        return None
    if kept:  # the first start since a boot (or a login): this one's stop and starts use it
        records.restore(name, record, True)
    lock = shared_store_lock(record["store"])
    if lock is None:
        return None
    rootless, net = record["rootless"], record.get("net")
    try:  # the network namespace is made (by a thread) while newuidmap and newgidmap run
        made = enter(rootless, _network_namespace if net is not None else None)
    except BaseException:  # the next start is a full one, which says what is wrong
        records.drop(name, True)
        raise
    _entered.append(rootless)
    # Leaving the unit's cgroup waits for an RCU grace period (about 10 ms): in a thread,
    # while the namespace, pasta and the overlay are made.
    unit_cgroup = in_background(cgroups.unit_cgroup)
    pasta: list[int] = []  # pasta's first process, until reaped
    try:
        prepare(record)
        netns_fd = made() if made is not None else None
        if net is not None and netns_fd is not None:
            pasta.append(_spawn_pasta(net["pasta"], net["pid_file"], netns_fd))
        os.close(lock)
        lock = -1
        unit = unit_cgroup()
        if unit is None:
            raise RuntimeFailure("cannot find this unit's cgroup in /proc/self/cgroup",
                                 hint="hostctl needs the unified cgroup hierarchy (v2)")
        netns = f"/proc/{os.getpid()}/fd/{netns_fd}" if netns_fd is not None else None
        write_bundle(record, cgroups.container_cgroup(unit), netns)

        def attach(_pid: int) -> None:
            if pasta:
                pasta_ready(pasta.pop())

        say(RECORDED_START)
        hand_off(Runc(record["runc_root"], record["runtime"]), name, record["bundle"],
                 reference=record["reference"], ready_by_container=record["notify"],
                 ready_when_healthy=record["notify_healthy"], user=True, attach=attach)
    except Doubt as doubt:
        say(f"the recorded start does not apply ({doubt}): starting in full")
        remove_started(name, True)
        return None
    except BaseException:
        if pasta:  # its PID file written before the cleanup reads it
            _reap(pasta.pop())
        remove_started(name, True)
        raise
    finally:
        if lock >= 0:
            os.close(lock)
    if record["health_timer"]:
        from hostctl.health.run import start_timer

        start_timer(name, True)
    return 0


def enter(rootless: dict[str, Any], meanwhile: Callable[[], int] | None = None
          ) -> Callable[[], int] | None:
    """Become root of a new user and mount namespace with the recorded id maps (with
    newuidmap and newgidmap, started first: they must run outside the namespace).
    MEANWHILE runs in a thread of its own once the namespace exists, while the maps are
    written; what waits for its result is returned."""
    uid_map, gid_map, tools = rootless["uid_map"], rootless["gid_map"], rootless["tools"]
    go_read, go_write = os.pipe()
    helpers = [_map_helper(tool, idmap, go_read, go_write)
               for tool, idmap in zip(tools, (uid_map, gid_map), strict=False)]
    os.close(go_read)
    failed = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0
    error = os.strerror(libc.errno()) if failed else ""
    if not failed:
        os.write(go_write, b"go" * len(helpers))  # each reads its own "go"
    os.close(go_write)  # the helpers see the end of the pipe: "go", or nothing
    waiting = in_background(meanwhile) if meanwhile is not None and not failed else None
    statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in helpers]
    if failed:
        raise RuntimeFailure(f"cannot create a user namespace: {error}",
                             hint="check sysctl user.max_user_namespaces and "
                             "kernel.unprivileged_userns_clone")
    if any(statuses):
        raise RuntimeFailure(f"newuidmap/newgidmap failed (exit {statuses})",
                             hint="check the user's ranges in /etc/subuid and /etc/subgid")
    if not tools:  # the user's own ids only, written by the launcher itself
        _write(f"/proc/{os.getpid()}/uid_map", " ".join(map(str, uid_map[0])) + "\n")
        _write(f"/proc/{os.getpid()}/setgroups", "deny")
        _write(f"/proc/{os.getpid()}/gid_map", " ".join(map(str, gid_map[0])) + "\n")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise RuntimeFailure(f"cannot make mounts private: {os.strerror(libc.errno())}")
    return waiting


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _map_helper(tool: str, triples: list[list[int]], go: int, go_write: int) -> int:
    """A child that waits for "go" on GO, then runs TOOL for this process with TRIPLES
    (its copy of the pipe's write end GO_WRITE closed: the launcher's closing it says
    no "go" comes)."""
    argv = [tool, str(os.getpid()), *(str(n) for triple in triples for n in triple)]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper process
        try:
            os.close(go_write)
            if os.read(go, 2) == b"go":
                os.execv(tool, argv)
        finally:
            os._exit(127)
    return pid


def _network_namespace() -> int:
    """A new network namespace (owned by this process's user namespace), open: made by
    a thread of its own, which leaves this process's own namespace as it is."""
    if libc.unshare(CLONE_NEWNET) != 0:
        raise RuntimeFailure(f"cannot create a network namespace: {os.strerror(libc.errno())}")
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def pasta_argv(command: list[str], netns_fd: int) -> list[str]:
    """The recorded pasta COMMAND for the namespace open at NETNS_FD (pasta's own)."""
    placeholder = records.NETNS_PLACEHOLDER
    return [f"/proc/self/fd/{netns_fd}" if arg == placeholder else arg for arg in command]


def _spawn_pasta(command: list[str], pid_file: str, netns_fd: int) -> int:
    """Start pasta (it daemonizes once the namespace is connected); its PID."""
    os.makedirs(os.path.dirname(pid_file), exist_ok=True)
    argv = pasta_argv(command, netns_fd)
    os.set_inheritable(netns_fd, True)
    try:
        # SIGPIPE back to its default (Python ignores it): pasta takes an ignored SIGPIPE
        # for a failure to install its own handlers
        return os.posix_spawn(argv[0], argv, dict(os.environ), setsigdef=(SIGPIPE,))
    finally:
        os.set_inheritable(netns_fd, False)


def _reap(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def pasta_ready(pid: int) -> None:
    """Wait until pasta has connected the namespace (its first process exits 0)."""
    status = _reap(pid)
    if status != 0:
        raise Doubt(f"pasta exited with {status}")
