"""A rootful pod's IPC and UTS namespaces and its /dev/shm: made and pinned by mounts.

Kept apart from hostctl.pod.holder (it imports only os, ctypes and threading) so the
recorded pod setup (hostctl.pod.quick) can make them without the declaration code.
"""

from __future__ import annotations

import ctypes
import os
import threading

from hostctl.errors import RuntimeFailure

_CLONE_NEWIPC, _CLONE_NEWUTS = 0x08000000, 0x04000000
_MS_BIND = 4096
SHM_DEFAULT = 64 << 20  # podman's /dev/shm size


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _pin(lib: ctypes.CDLL, hostname: str, targets: dict[str, str], failure: list[str]) -> None:
    """In a thread of its own: new IPC and UTS namespaces, the host name set, each pinned
    by a bind mount of its nsfs file on its target."""
    if lib.unshare(_CLONE_NEWIPC | _CLONE_NEWUTS) != 0:
        failure.append(f"unshare: {os.strerror(ctypes.get_errno())}")
        return
    name = hostname.encode()
    if lib.sethostname(name, len(name)) != 0:
        failure.append(f"sethostname: {os.strerror(ctypes.get_errno())}")
        return
    task = f"/proc/self/task/{threading.get_native_id()}/ns"
    for kind, target in targets.items():
        if lib.mount(f"{task}/{kind}".encode(), target.encode(), b"none", _MS_BIND, None) != 0:
            failure.append(f"mount {kind}: {os.strerror(ctypes.get_errno())}")
            return


def namespaces(lib: ctypes.CDLL, folder: str, hostname: str) -> None:
    """FOLDER/ipc and FOLDER/uts: new namespaces (the UTS one named HOSTNAME), pinned."""
    targets = {kind: os.path.join(folder, kind) for kind in ("ipc", "uts")}
    for target in targets.values():
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    failure: list[str] = []
    worker = threading.Thread(target=_pin, args=(lib, hostname, targets, failure), daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise RuntimeFailure(f"cannot make the pod's namespaces: {failure[0]}",
                             where=f"pod {os.path.basename(folder)}",
                             hint="a pod's namespaces need root (CAP_SYS_ADMIN)")


def shm(lib: ctypes.CDLL, folder: str, size: int | None) -> str:
    """FOLDER/shm: a tmpfs of SIZE bytes (None: podman's 64M), the members' /dev/shm."""
    target = os.path.join(folder, "shm")
    os.mkdir(target, 0o755)
    options = f"mode=1777,size={size or SHM_DEFAULT}".encode()
    if lib.mount(b"shm", target.encode(), b"tmpfs", 2 | 4 | 8, options) != 0:  # nosuid,nodev,noexec
        raise RuntimeFailure(f"cannot mount the pod's /dev/shm: "
                             f"{os.strerror(ctypes.get_errno())}",
                             where=f"pod {os.path.basename(folder)}",
                             hint="a pod's /dev/shm needs root (CAP_SYS_ADMIN)")
    return target
