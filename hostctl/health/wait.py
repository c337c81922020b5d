"""`notify: healthy`: the launcher waits, while the unit is activating, until the
container is healthy, then says READY=1.

It runs the same steps as the timer (startup probes, then checks) at their intervals,
the first one interval after the start, as the timer would. Before each wait it sends
EXTEND_TIMEOUT_USEC so that a long start period or startup phase does not run into
TimeoutStartSec; only a startup probe without a retry limit is left to the unit's start
timeout (it could otherwise keep the unit activating for ever). When the container
becomes unhealthy before it was ever healthy, its startup probe failed too often, or
its init ends, the wait kills the init (the unit's main process: the start fails and
`restart:` applies) and raises with the check's last output.
"""

from __future__ import annotations

import time

from hostctl.errors import RuntimeFailure
from hostctl.health import status
from hostctl.health.check import report, step
from hostctl.health.run import Container, kill, say
from hostctl.launcher.notify import extend_timeout, notify

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from typing import Any

MARGIN = 30.0  # seconds of start timeout beyond the next check's own deadline


def _phase(state: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return spec["startup"] if status.in_startup(state, spec) else spec


def _bounded(state: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether the wait is sure to end: anything but an unlimited startup phase."""
    return not status.in_startup(state, spec) or bool(int(spec["startup"]["retries"] or 0))


def _fail(container: Container, message: str, last: dict[str, Any] | None) -> RuntimeFailure:
    """The error for a start that cannot become healthy, said before the init is killed:
    systemd then ends this process too (the main process died while activating)."""
    output = (last or {}).get("output") or "no output"
    error = RuntimeFailure(f"{container.name} {message}; the check's last output: {output}",
                           hint="see `hostctl inspect` for the last results")
    say(f"{container.name}: start failed: {error}", 3)
    if container.pid is not None:
        kill(container.pid)  # the main process: the unit's start fails
    return error


def until_healthy(name: str, user: bool, reference: str) -> None:
    """Wait until container NAME (just started) is healthy, then READY=1 (see above)."""
    container = Container(name, user)
    store = status.load_store(container.bundle)
    if store is None:  # no check after all: ready now
        notify("READY=1", f"STATUS=running {reference} (no health check)")
        return
    spec, state = store["spec"], store["state"]
    last: dict[str, Any] | None = None
    while True:
        phase = _phase(state, spec)
        interval = float(phase["interval"]) or 1.0
        if _bounded(state, spec):
            extend_timeout(interval + float(phase["timeout"]) + MARGIN)
        what = "startup probe" if phase is not spec else "health check"
        notify(f"STATUS=waiting for the {what} of {reference}")
        time.sleep(interval)
        if not container.running():
            raise _fail(container, "ended before it became healthy", last)
        done = step(container, store)
        if done is None:
            raise _fail(container, "lost its state before it became healthy", last)
        report(container, done)
        state, last = done.state, done.entry
        if done.after == status.HEALTHY:
            notify("READY=1", f"STATUS=running {reference} (healthy)")
            return
        if done.after == status.UNHEALTHY:
            raise _fail(container, "became unhealthy before it was ever healthy", last)
        if done.probe == status.PROBE_RESTART:
            raise _fail(container, "failed its startup probe too often", last)
