"""mount(2)/umount2(2) through libc: no fork per mount on the start path."""

from __future__ import annotations

import errno
import os

from hostctl.errors import RuntimeFailure
from hostctl.runtime import libc

MNT_DETACH = 2


def mount(source: str, target: str, fstype: str, options: str, *, flags: int = 0) -> None:
    rc = libc.mount(source.encode(), target.encode(), fstype.encode(), flags, options.encode())
    if rc != 0:
        err = libc.errno()
        raise RuntimeFailure(
            f"mounting {fstype} on {target} failed: {os.strerror(err)}",
            hint="overlayfs needs a kernel with overlay support and an upper dir that is"
            " not itself on overlayfs",
        )


def umount(target: str) -> bool:
    """Unmount TARGET (lazily if busy); False when nothing was mounted there."""
    if libc.umount2(target.encode(), 0) == 0:
        return True
    err = libc.errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    if libc.umount2(target.encode(), MNT_DETACH) == 0:
        return True
    raise RuntimeFailure(f"unmounting {target} failed: {os.strerror(libc.errno())}")
