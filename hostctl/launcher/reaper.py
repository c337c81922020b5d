"""Keeping the container's exit status when it ends before systemd adopts it.

After `runc create`, runc exits and the container's init is re-parented to the nearest
subreaper. If that were systemd and the container exited at once, systemd would reap it
before learning from MAINPID= that it matters, and refuse the MAINPID of a dead process:
the unit would report the launcher's status 0 instead of the container's. So the launcher
is a subreaper: a container that has already ended is its zombie child, whose status it
collects and exits with; a running one is handed to systemd and re-parented to it when
the launcher exits.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def exit_status_if_ended(pid: int) -> int | None:
    """PID's exit status as a shell reports it (128+N for signal N), None if it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # not our child (not re-parented to us): systemd watches it
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(
        status
    )
