"""A container's root filesystem: an overlay of the image's layer snapshots plus its own
upper directory, so a start copies nothing and each start begins from the image."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hostctl.runtime.mount import mount, umount


def _lowerdir(snapshots: list[Path], base: Path) -> str:
    """Top layer first, as overlayfs wants, relative to BASE to keep the option short."""
    names = []
    for snap in reversed(snapshots):
        try:
            names.append(str(snap.relative_to(base)))
        except ValueError:
            names.append(str(snap))
    return ":".join(names)


def mount_rootfs(snapshots: list[Path], layer_base: Path, scratch: Path, target: Path,
                 *, rootless: bool = False) -> None:
    """Mount the overlay at TARGET, with upper/work dirs fresh under SCRATCH."""
    upper, work = scratch / "upper", scratch / "work"
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    lowers = list(snapshots)
    if not lowers:
        empty = scratch / "empty"
        empty.mkdir(exist_ok=True)
        lowers = [empty]
    options = f"lowerdir={_lowerdir(lowers, layer_base)},upperdir={upper},workdir={work}"
    if rootless:
        options += ",userxattr"
    # Relative lowerdirs are resolved against the caller's cwd at mount time.
    cwd = os.open(".", os.O_RDONLY)
    try:
        os.chdir(layer_base)
        mount("overlay", str(target), "overlay", options)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def remove_rootfs(scratch: Path, target: Path) -> None:
    """Unmount TARGET and delete the container's writable layer; safe to call twice."""
    if target.exists():
        umount(str(target))
    shutil.rmtree(scratch, ignore_errors=True)
