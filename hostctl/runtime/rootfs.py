"""A container's root filesystem: an overlay of the image's layer snapshots plus its own
upper directory, so a start copies nothing and each start begins from the image.

On every container's start path: plain os calls on str paths, no pathlib."""

from __future__ import annotations

import os

from hostctl.runtime.mount import mount, umount

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def _lowerdir(snapshots: Sequence[str], base: str) -> str:
    """Top layer first, as overlayfs wants, relative to BASE to keep the option short."""
    names = []
    prefix = base.rstrip("/") + "/"
    for snap in reversed(snapshots):
        names.append(snap[len(prefix):] if snap.startswith(prefix) else snap)
    return ":".join(names)


def overlay_options(snapshots: Sequence[str], layer_base: str, scratch: str, *,
                    rootless: bool = False) -> str:
    """The overlay's mount options: SNAPSHOTS relative to LAYER_BASE (the mount is made
    with LAYER_BASE as the working directory), upper and work dirs under SCRATCH."""
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    options = f"lowerdir={_lowerdir(snapshots, layer_base)},upperdir={upper},workdir={work}"
    return options + ",userxattr" if rootless else options


def mount_rootfs(snapshots: Sequence[Path | str], layer_base: Path | str, scratch: Path | str,
                 target: Path | str, *, rootless: bool = False) -> None:
    """Mount the overlay at TARGET, with upper/work dirs fresh under SCRATCH."""
    scratch, target, base = str(scratch), str(target), str(layer_base)
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    for d in (upper, work, target):
        os.makedirs(d, exist_ok=True)
    lowers = [str(s) for s in snapshots]
    if not lowers:
        empty = os.path.join(scratch, "empty")
        os.makedirs(empty, exist_ok=True)
        lowers = [empty]
    options = overlay_options(lowers, base, scratch, rootless=rootless)
    # Relative lowerdirs are resolved against the caller's cwd at mount time.
    cwd = os.open(".", os.O_RDONLY)
    try:
        os.chdir(base)
        mount("overlay", target, "overlay", options)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def remove_rootfs(scratch: Path | str, target: Path | str) -> None:
    """Unmount TARGET and delete the container's writable layer; safe to call twice."""
    import shutil

    if os.path.exists(target):
        umount(str(target))
    shutil.rmtree(scratch, ignore_errors=True)
