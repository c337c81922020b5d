"""The end of every start, full or recorded: runc create, MAINPID=, start, READY=1."""

from __future__ import annotations

import os
import sys
import time

from hostctl.errors import RuntimeFailure
from hostctl.launcher.notify import barrier, notify
from hostctl.runtime.runc import Runc

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from collections.abc import Callable


def say(message: str) -> None:
    """One line to stderr, which the unit sends to the journal."""
    print(f"hostctl: {message}", file=sys.stderr, flush=True)


def drop_container_output() -> None:
    """`log_driver: none`: runc hands this process's stdout and stderr to the container,
    so both become /dev/null; this process's own messages (say()) still reach the
    journal through a copy of stderr that runc does not inherit."""
    kept = os.dup(2)  # not inheritable
    # stays open for the rest of this process, as stderr itself would
    sys.stderr = open(kept, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    finally:
        os.close(devnull)


def _create(runtime: Runc, name: str, bundle: str, pid_file: str, *, ready_by_container: bool
            ) -> int:
    """runc create, again if systemd removed the container's new cgroup under it: after a
    quick restart, systemd's late "cgroup empty" handling of the previous run can trim the
    still-empty UNIT/container that runc has just made."""
    for attempt in range(3):
        try:
            return runtime.create(name, bundle, pid_file, notify=ready_by_container)
        except RuntimeFailure as err:
            vanished = "cgroup" in err.message and "no such file or directory" in err.message
            if attempt == 2 or not vanished:
                raise
            runtime.delete(name)
            say("the unit's cgroup was being cleaned up from the last run: creating again")
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def run_to_end(runtime: Runc, name: str, bundle: str,
               attach: Callable[[int], None] | None) -> None:
    """Type=oneshot: create and start the container as this process's child (a
    subreaper's), forward the stop signal systemd sends here, and exit with the
    container's status once it ended."""
    import contextlib
    import signal

    from hostctl.runtime.libc import errno, set_child_subreaper

    if set_child_subreaper() != 0:
        raise RuntimeFailure(f"cannot become the container's reaper (errno {errno()})")
    pid = _create(runtime, name, bundle, os.path.join(bundle, "pid"), ready_by_container=False)
    if attach is not None:
        attach(pid)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    if not runtime.start_created(name, pid):
        runtime.start(name, log_file=os.path.join(bundle, "runtime.log"))
    while True:
        try:
            waited, status = os.waitpid(-1, 0)
        except ChildProcessError:
            say("the container's init is gone and its status with it")
            os._exit(1)
        if waited == pid:
            break
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        say(f"the container ended with {'signal ' + str(-code) if code < 0 else code}")
    sys.stdout.flush()
    os._exit(code if code >= 0 else 128 - code)


def hand_off(runtime: Runc, name: str, bundle: str, *, reference: str,
             ready_by_container: bool, ready_when_healthy: bool = False, user: bool = False,
             oneshot: bool = False, attach: Callable[[int], None] | None = None) -> None:
    """Create and start container NAME from BUNDLE and make its init the unit's main PID.

    ATTACH(pid) runs between create and start (networking). With READY_BY_CONTAINER
    (`notify: true`) the container itself says READY=1: runc start waits for it. With
    READY_WHEN_HEALTHY (`notify: healthy`) READY=1 waits until its health check passed
    (hostctl.health.wait; USER: a user's container). With ONESHOT (Type=oneshot) this
    process runs the container to its end instead and exits with its status.
    """
    if oneshot:
        run_to_end(runtime, name, bundle, attach)  # does not return
    pid = _create(runtime, name, bundle, os.path.join(bundle, "pid"),
                  ready_by_container=ready_by_container)
    if attach is not None:
        attach(pid)
    # Hand the init to systemd while it still waits in `runc init` for the start: it
    # is alive and already systemd's child (runc create has exited), so systemd takes
    # it as the main process and collects its exit status even if the container ends
    # the moment it starts. BARRIER=1 waits until systemd has taken it: otherwise a
    # container that ends at once can be reaped as a stranger, its status lost, and the
    # launcher's own exit taken for the unit's result.
    log_file = os.path.join(bundle, "runtime.log")
    if ready_by_container:
        notify(f"MAINPID={pid}", f"STATUS=starting {reference}")
        barrier()
        # runc start relays the container's READY=1 and returns once it came. systemd
        # can drop that datagram ("Cannot find unit for notify message of PID"): runc
        # start may be gone before systemd looks up its cgroup. The launcher is a process
        # systemd knows, so it says READY=1 again.
        runtime.start(name, notify=True, log_file=log_file)
        notify("READY=1", f"STATUS=running {reference}")
        return
    if ready_when_healthy:
        # MAINPID first, for the reasons below; READY=1 once the check passed. This
        # process stays in the unit (its supervisor cgroup) only while it activates.
        notify(f"MAINPID={pid}", f"STATUS=starting {reference}")
        barrier()
        if not runtime.start_created(name, pid):
            runtime.start(name, log_file=log_file)
        from hostctl.health.wait import until_healthy

        until_healthy(name, user, reference)
        return
    # Ready is said with MAINPID, before the start: a container that exits 0 at once
    # would otherwise end before READY=1 and fail its start ("protocol"). Should the
    # start itself fail (the init died in between), the unit fails with it.
    notify(f"MAINPID={pid}", "READY=1", f"STATUS=running {reference}")
    barrier()
    if not runtime.start_created(name, pid):
        runtime.start(name, log_file=log_file)
