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

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from pathlib import Path

from hostctl import proc
from hostctl.errors import RuntimeFailure

NETNS_DIR = Path("/run/netns")
PREFIX = "hostctl-"

_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 4096, 16384, 1 << 20
_MNT_DETACH = 2
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str, container: str) -> RuntimeFailure:
    code = ctypes.get_errno()
    return RuntimeFailure(f"cannot {what} for the network namespace: {os.strerror(code)}",
                          where=f"container {container}",
                          hint="networking needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")


def name_for(container: str) -> str:
    return f"{PREFIX}{container}"


def path_for(container: str) -> Path:
    return NETNS_DIR / name_for(container)


def _shared_dir(libc: ctypes.CDLL, container: str) -> None:
    """Make /run/netns a shared mount point, binding it onto itself the first time."""
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = bytes(NETNS_DIR)
    while libc.mount(b"none", target, b"none", _MS_SHARED | _MS_REC, None) != 0:
        if ctypes.get_errno() != errno.EINVAL:
            raise _fail(f"share {NETNS_DIR}", container)
        if libc.mount(target, target, b"none", _MS_BIND | _MS_REC, None) != 0:
            raise _fail(f"bind {NETNS_DIR}", container)


def _loopback_up() -> None:
    """Set IFF_UP on lo, in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _no_dad() -> None:
    """No IPv6 duplicate address detection on the interfaces made in the calling thread's
    namespace (netavark does the same): the container's address would otherwise stay
    tentative, dropping what is sent to it, for a second or two after its start. The
    addresses come from hostctl's IPAM, so they are unique on the bridge anyway."""
    # no such file: no IPv6 in this kernel, nothing to turn off
    with (contextlib.suppress(FileNotFoundError),
          open("/proc/sys/net/ipv6/conf/default/accept_dad", "w") as handle):
        handle.write("0\n")


def _make(libc: ctypes.CDLL, target: Path, failure: list[str]) -> None:
    """In a thread of its own: a new namespace, lo up, pinned by a bind mount on TARGET."""
    if libc.unshare(_CLONE_NEWNET) != 0:
        failure.append(f"unshare: {os.strerror(ctypes.get_errno())}")
        return
    try:
        _loopback_up()
        _no_dad()
    except OSError as err:
        failure.append(f"bring lo up ({err.strerror})")
        return
    source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
    if libc.mount(source, bytes(target), b"none", _MS_BIND, None) != 0:
        failure.append(f"mount {os.strerror(ctypes.get_errno())}")


def create(container: str) -> Path:
    """A fresh namespace for CONTAINER with its loopback up; its path."""
    libc = _libc()
    _shared_dir(libc, container)
    target = path_for(container)
    try:
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        remove(container)
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    failure: list[str] = []
    worker = threading.Thread(target=_make, args=(libc, target, failure), daemon=True)
    worker.start()
    worker.join()
    if failure:
        target.unlink(missing_ok=True)
        raise RuntimeFailure(f"cannot create the network namespace {target}: {failure[0]}",
                             where=f"container {container}",
                             hint="networking needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
    return target


def ipv6_bridge(bridge: str) -> None:
    """Make BRIDGE without IPv6 duplicate address detection, if it does not exist yet,
    before the bridge plugin (which then adopts it) gives it the network's gateway
    addresses: a fresh bridge's IPv6 gateway would stay tentative for a second or two,
    not answering the containers' neighbour solicitations, so their first IPv6 replies
    would be lost. One `ip` the first time a network is used after boot."""
    conf = Path("/proc/sys/net/ipv6/conf")
    if (conf / bridge).exists() or not conf.exists():
        return
    proc.run(["ip", "link", "add", bridge, "type", "bridge"], check=False)  # lost a race: fine
    try:
        (conf / bridge / "accept_dad").write_text("0\n")
    except OSError as err:
        raise RuntimeFailure(f"cannot turn off IPv6 DAD on bridge {bridge}: {err.strerror}",
                             where=f"bridge {bridge}",
                             hint="networking needs root (CAP_NET_ADMIN)") from None


def remove(container: str) -> None:
    """Delete CONTAINER's namespace if it exists (unmount, then remove the file)."""
    target = path_for(container)
    if not os.path.lexists(target):
        return
    _libc().umount2(bytes(target), _MNT_DETACH)  # EINVAL: not mounted (a crash midway)
    target.unlink(missing_ok=True)


def ours() -> list[str]:
    """The containers that have a hostctl namespace now."""
    try:
        return sorted(p.name[len(PREFIX):] for p in NETNS_DIR.iterdir()
                      if p.name.startswith(PREFIX))
    except OSError:
        return []
