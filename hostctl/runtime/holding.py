"""Holder processes: a child that makes namespaces, says "ok" through a pipe, then
becomes `sleep infinity`, so the namespaces live exactly as long as it does (a user
network's holder, hostctl.network.holder; a rootless pod's, hostctl.pod.rootless)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

SLEEP = "/bin/sleep"


def fork_holder(setup: Callable[[], None]) -> tuple[int, str]:
    """Fork a holder that runs SETUP in the child; (its PID, what it said: "ok" once
    SETUP is done, else why not). A holder that did not say "ok" is killed and reaped."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the holder process
        os.close(read_end)
        _hold(setup, write_end)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
    said = b"".join(chunks).decode(errors="replace")
    if said != "ok":
        end(pid)
    return pid, said


def end(pid: int) -> None:
    """Kill the holder PID (our child) and reap it."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _hold(setup: Callable[[], None], report: int) -> None:  # pragma: no cover - the child
    try:
        setup()
    except BaseException as err:  # reported through the pipe; the parent raises it
        os.write(report, f"{err}".encode(errors="replace") or b"failed")
        os._exit(1)
    os.write(report, b"ok")
    try:
        os.execv(SLEEP, ["sleep", "infinity"])  # closes REPORT (close-on-exec)
    except OSError as err:
        os.write(report, f" but cannot run {SLEEP}: {err.strerror}".encode())
        os._exit(1)
