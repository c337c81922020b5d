"""Named network namespaces, one per container on a bridge network, made in-process.

The namespace exists before the container, so the CNI plugins wire it while `runc
create` joins it, and it outlives the container's processes, so DEL at stop still finds
the container's interface. It is made as iproute2's `ip netns add` makes it, without
forking `ip` twice: /run/netns is a shared bind mount of itself (so the mounts in it
propagate to other mount namespaces), a short-lived thread unshares a new network
namespace, brings its loopback up and bind-mounts /proc/thread-self/ns/net onto
/run/netns/hostctl-NAME; the thread's exit leaves the mount holding the namespace.
/run/netns is a tmpfs: a reboot leaves none behind. Removal is `ip netns delete`'s:
a lazy unmount, then the file is removed.
"""

from __future__ import annotations

import _thread
import fcntl
import os
import sys
from _socket import AF_INET, SOCK_DGRAM, socket

from hostctl.errors import RuntimeFailure
from hostctl.runtime import libc

NETNS_DIR = "/run/netns"
PREFIX = "hostctl-"

_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 4096, 16384, 1 << 20
_MNT_DETACH = 2
_EINVAL = 22
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_HINT = "networking needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"


def name_for(container: str) -> str:
    return f"{PREFIX}{container}"


def path_for(container: str) -> str:
    return f"{NETNS_DIR}/{name_for(container)}"


def _shared_dir(container: str) -> None:
    """Make /run/netns a shared mount point, binding it onto itself the first time."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    target = NETNS_DIR.encode()
    while libc.mount(b"none", target, b"none", _MS_SHARED | _MS_REC, None) != 0:
        if libc.errno() != _EINVAL:
            raise _fail(f"share {NETNS_DIR}", container)
        if libc.mount(target, target, b"none", _MS_BIND | _MS_REC, None) != 0:
            raise _fail(f"bind {NETNS_DIR}", container)


def _fail(what: str, container: str) -> RuntimeFailure:
    return RuntimeFailure(f"cannot {what} for the network namespace: "
                          f"{os.strerror(libc.errno())}", where=f"container {container}",
                          hint=_HINT)


def _loopback_up() -> None:
    """Set IFF_UP on lo, in the calling thread's network namespace (struct ifreq: the
    name in 16 bytes, then the flags as a native short)."""
    sock = socket(AF_INET, SOCK_DGRAM)
    try:
        request = b"lo".ljust(16, b"\0") + bytes(2)
        answer = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)
        flags = int.from_bytes(answer[16:18], sys.byteorder) | _IFF_UP
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, answer[:16] + flags.to_bytes(2, sys.byteorder))
    finally:
        sock.close()


def _no_dad() -> None:
    """No IPv6 duplicate address detection on the interfaces made in the calling thread's
    namespace (netavark does the same): the container's address would otherwise stay
    tentative, dropping what is sent to it, for a second or two after its start. The
    addresses come from hostctl's IPAM, so they are unique on the bridge anyway."""
    try:
        with open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as handle:
            handle.write("0\n")
    except FileNotFoundError:  # no IPv6 in this kernel, nothing to turn off
        return


def _make(target: str, failure: list[str], done: _thread.LockType) -> None:
    """In a thread of its own: a new namespace, lo up, pinned by a bind mount on TARGET."""
    try:
        if libc.unshare(_CLONE_NEWNET) != 0:
            failure.append(f"unshare: {os.strerror(libc.errno())}")
            return
        try:
            _loopback_up()
            _no_dad()
        except OSError as err:
            failure.append(f"bring lo up ({err.strerror})")
            return
        source = f"/proc/self/task/{_thread.get_native_id()}/ns/net".encode()
        if libc.mount(source, target.encode(), b"none", _MS_BIND, None) != 0:
            failure.append(f"mount {os.strerror(libc.errno())}")
    finally:
        done.release()


def create(container: str) -> str:
    """A fresh namespace for CONTAINER with its loopback up; its path. (os, _thread and
    _ctypes only: the recorded start makes it this way too, hostctl.launcher.quicknet)"""
    _shared_dir(container)
    target = path_for(container)
    try:
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        remove(container)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    failure: list[str] = []
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_make, (target, failure, done))
    done.acquire()  # released by the thread as it ends; its namespace ends with it
    if failure:
        _unlink(target)
        raise RuntimeFailure(f"cannot create the network namespace {target}: {failure[0]}",
                             where=f"container {container}", hint=_HINT)
    return target


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def ipv6_bridge(bridge: str) -> None:
    """Make BRIDGE without IPv6 duplicate address detection, if it does not exist yet,
    before the bridge plugin (which then adopts it) gives it the network's gateway
    addresses: a fresh bridge's IPv6 gateway would stay tentative for a second or two,
    not answering the containers' neighbour solicitations, so their first IPv6 replies
    would be lost. One `ip` the first time a network is used after boot."""
    conf = "/proc/sys/net/ipv6/conf"
    if os.path.exists(f"{conf}/{bridge}") or not os.path.exists(conf):
        return
    from hostctl import proc

    proc.run(["ip", "link", "add", bridge, "type", "bridge"], check=False)  # lost a race: fine
    try:
        with open(f"{conf}/{bridge}/accept_dad", "w") as handle:
            handle.write("0\n")
    except OSError as err:
        raise RuntimeFailure(f"cannot turn off IPv6 DAD on bridge {bridge}: {err.strerror}",
                             where=f"bridge {bridge}",
                             hint="networking needs root (CAP_NET_ADMIN)") from None


def remove(container: str) -> None:
    """Delete CONTAINER's namespace if it exists (unmount, then remove the file)."""
    target = path_for(container)
    if not os.path.lexists(target):
        return
    libc.umount2(target.encode(), _MNT_DETACH)  # EINVAL: not mounted (a crash midway)
    _unlink(target)


def ours() -> list[str]:
    """The containers that have a hostctl namespace now."""
    try:
        return sorted(n[len(PREFIX):] for n in os.listdir(NETNS_DIR) if n.startswith(PREFIX))
    except OSError:
        return []
