"""Placing the container in a sub-cgroup of the unit's own cgroup (Delegate=yes)."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP2_ROOT = Path("/sys/fs/cgroup")


def own_cgroup() -> str | None:
    """This process's cgroup v2 path, e.g. /system.slice/app.service; None on v1 only."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def is_unified() -> bool:
    return (CGROUP2_ROOT / "cgroup.controllers").exists()


def container_cgroup(unit_cgroup: str) -> str:
    return unit_cgroup.rstrip("/") + "/container"


def leave_unit_cgroup(unit_cgroup: str) -> None:
    """Move this process into UNIT/supervisor so the unit's cgroup itself holds no process.

    cgroup v2 forbids enabling controllers for children of a cgroup that has processes;
    runc enables them for UNIT/container, so the launcher must not sit in UNIT.
    """
    target = CGROUP2_ROOT / unit_cgroup.lstrip("/") / "supervisor"
    try:
        target.mkdir(exist_ok=True)
        (target / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return  # not delegated to us: runc still works where no controllers are enabled
