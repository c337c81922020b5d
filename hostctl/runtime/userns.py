"""Rootless: the launcher's own user and mount namespace.

A user's launcher enters a new user namespace in which it is root (its own uid maps to
0) and, when /etc/subuid and /etc/subgid give the user a range and newuidmap/newgidmap
are installed, the range maps to 1..N so images with files owned by several uids work;
otherwise only the user's own uid is mapped. In that namespace the launcher may mount
the kernel's unprivileged overlay (with userxattr) and run runc as "root". The mount
namespace dies with the container; nothing is mounted in the host's namespace.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hostctl.errors import HostctlError, RuntimeFailure
from hostctl.proc import which

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


@dataclass(frozen=True)
class IdMap:
    """A user's mapping: its own id becomes 0, its sub-id range (if any) 1..count."""

    own: int
    sub_start: int | None = None
    sub_count: int = 0

    @property
    def size(self) -> int:
        """How many ids the namespace has (0..size-1)."""
        return 1 + self.sub_count

    def triples(self) -> tuple[tuple[int, int, int], ...]:
        """(inside, outside, count) lines for uid_map/gid_map."""
        lines = [(0, self.own, 1)]
        if self.sub_start is not None and self.sub_count:
            lines.append((1, self.sub_start, self.sub_count))
        return tuple(lines)

    def to_host(self, inside: int) -> int | None:
        """The host id of namespace id INSIDE, None when it is not mapped."""
        for start, outside, count in self.triples():
            if start <= inside < start + count:
                return outside + inside - start
        return None


def sub_range(path: Path, name: str, own: int) -> tuple[int, int] | None:
    """The first NAME (or uid OWN) range in /etc/subuid-style PATH: (start, count)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(own)):
            continue
        if fields[1].isdigit() and fields[2].isdigit() and int(fields[2]) > 0:
            return int(fields[1]), int(fields[2])
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def id_maps(uid: int, gid: int, *, etc: Path = Path("/etc")) -> tuple[IdMap, IdMap]:
    """The (uid, gid) maps for the calling user: sub-ids when usable, else single."""
    name = _user_name(uid)
    subuid = sub_range(etc / "subuid", name, uid)
    subgid = sub_range(etc / "subgid", name, uid)
    tools = all(_has(t) for t in ("newuidmap", "newgidmap"))
    if subuid is None or subgid is None or not tools:
        return IdMap(uid), IdMap(gid)
    return IdMap(uid, *subuid), IdMap(gid, *subgid)


def _has(tool: str) -> bool:
    try:
        which(tool)
    except HostctlError:
        return False
    return True


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _map_arguments(idmap: IdMap) -> list[str]:
    return [str(n) for triple in idmap.triples() for n in triple]


def enter(uids: IdMap, gids: IdMap, *, flags: int = CLONE_NEWUSER | CLONE_NEWNS) -> None:
    """Move this (single-threaded) process into a new user + mount namespace, as root.

    FLAGS may ask for other namespaces with the user namespace (a user network's holder
    takes a network namespace instead of a mount namespace)."""
    helper = None
    multi = len(uids.triples()) > 1
    if multi:
        # newuidmap must run outside the new namespace: start it first, let it wait.
        script = 'read _ && "$1" "$3" $4 && "$2" "$3" $5'
        helper = subprocess.Popen(
            ["/bin/sh", "-c", script, "sh", which("newuidmap"), which("newgidmap"),
             str(os.getpid()), " ".join(_map_arguments(uids)), " ".join(_map_arguments(gids))],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    libc = _libc()
    if libc.unshare(flags | CLONE_NEWUSER) != 0:
        err = os.strerror(ctypes.get_errno())
        if helper is not None:
            helper.kill()
            helper.wait()
        raise RuntimeFailure(f"cannot create a user namespace: {err}",
                             hint="check sysctl user.max_user_namespaces and "
                             "kernel.unprivileged_userns_clone")
    if helper is not None:
        _, stderr = helper.communicate(b"go\n")
        if helper.returncode != 0:
            raise RuntimeFailure(
                f"newuidmap/newgidmap failed: {stderr.decode(errors='replace').strip()}",
                hint="check the user's ranges in /etc/subuid and /etc/subgid")
    else:
        Path("/proc/self/uid_map").write_text(f"0 {uids.own} 1\n")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/gid_map").write_text(f"0 {gids.own} 1\n")
    if flags & CLONE_NEWNS:
        _private_mounts(libc)


def _private_mounts(libc: ctypes.CDLL) -> None:
    # Nothing mounted here may propagate back to the host's namespace.
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise RuntimeFailure(f"cannot make mounts private: {os.strerror(ctypes.get_errno())}")


def join(pid: int, network: str, *, owner: str | None = None, hint: str | None = None
         ) -> None:
    """Move this (single-threaded) process into the user namespace of process PID (the
    holder of user network NETWORK, or of OWNER, such as "pod NAME", with HINT for
    when it is gone; the maps are the ones enter() would make) and a new mount
    namespace: root there, as after enter(). The user owns that namespace, so it has
    every capability in it."""
    libc = _libc()
    owner = owner or f"network {network}"
    try:
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RuntimeFailure(f"cannot open the user namespace of {owner}: {err.strerror}",
                             hint=hint or f"restart it: systemctl --user restart "
                                  f"hostctl-network-{network}.service") from None
    try:
        if libc.setns(fd, CLONE_NEWUSER) != 0:
            raise RuntimeFailure(f"cannot join the user namespace of {owner}: "
                                 f"{os.strerror(ctypes.get_errno())}",
                                 hint=f"the {owner.split()[0]}'s holder must belong to this user")
    finally:
        os.close(fd)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise RuntimeFailure(f"cannot create a mount namespace: "
                             f"{os.strerror(ctypes.get_errno())}")
    _private_mounts(libc)


def private_mount_namespace() -> None:
    """Move this (single-threaded) process into a new mount namespace whose mounts do not
    propagate to the host's: whatever it mounts goes away with it, even if it is killed."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise RuntimeFailure(f"cannot create a mount namespace: "
                             f"{os.strerror(ctypes.get_errno())}")
    _private_mounts(libc)
