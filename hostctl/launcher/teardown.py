"""Removing one container's runtime state: what every cleanup does, network aside.

Plain os calls on str paths, so the recorded cleanup (hostctl.launcher.quick) can use it
without the imports of hostctl.launcher.state."""

from __future__ import annotations

import os

from hostctl.runtime.rootfs import remove_rootfs
from hostctl.runtime.runc import Runc


def tear_down(runtime: Runc, name: str, bundle: str, scratch: str, runtime_file: str) -> None:
    """Delete runc container NAME (if its state exists), unmount the rootfs, remove the
    writable layer, the bundle and the runtime marker; safe to call twice."""
    import shutil

    if os.path.exists(os.path.join(runtime.root, name)):
        runtime.delete(name)
    remove_rootfs(scratch, os.path.join(bundle, "rootfs"))
    shutil.rmtree(bundle, ignore_errors=True)
    if os.path.lexists(runtime_file):
        os.unlink(runtime_file)
