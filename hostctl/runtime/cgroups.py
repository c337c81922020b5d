"""Placing the container in a sub-cgroup of the unit's own cgroup (Delegate=yes).

On every container's start path: plain os calls, no pathlib."""

from __future__ import annotations

import os

CGROUP2_ROOT = "/sys/fs/cgroup"
SUPERVISOR = "supervisor"  # the launcher's sub-cgroup of the unit's (leave_unit_cgroup)


def own_cgroup() -> str | None:
    """This process's cgroup v2 path, e.g. /system.slice/app.service; None on v1 only."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def is_unified() -> bool:
    return os.path.exists(os.path.join(CGROUP2_ROOT, "cgroup.controllers"))


def container_cgroup(unit_cgroup: str) -> str:
    return unit_cgroup.rstrip("/") + "/container"


def leave_unit_cgroup(unit_cgroup: str) -> None:
    """Move this process into UNIT/supervisor so the unit's cgroup itself holds no process.

    cgroup v2 forbids enabling controllers for children of a cgroup that has processes;
    runc enables them for UNIT/container, so the launcher must not sit in UNIT.
    """
    target = os.path.join(CGROUP2_ROOT, unit_cgroup.lstrip("/"), SUPERVISOR)
    try:
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))
    except OSError:
        return  # not delegated to us: runc still works where no controllers are enabled


_unit: list[str | None] = []  # unit_cgroup()'s answer, once it has left the unit's cgroup


def unit_cgroup() -> str | None:
    """The unit's cgroup when systemd started us, after leaving it for a sub-cgroup.

    The same answer on every call: a second call must not take UNIT/supervisor (where the
    first one moved us) for the unit's cgroup."""
    if _unit:
        return _unit[0]
    found = None
    if os.environ.get("INVOCATION_ID"):
        found = own_cgroup()
        if found and found.endswith("/" + SUPERVISOR):
            # already left: the compiled launcher (hostctl/launcher/launchfast.c) did so
            # before it handed the start to this one (a unit's own cgroup is NAME.service)
            found = found[:-len(SUPERVISOR) - 1] or "/"
        elif found and is_unified():
            leave_unit_cgroup(found)
    _unit.append(found)
    return found
