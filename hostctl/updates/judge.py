"""Judging a restarted container: did the new image take?

An update (or a rollback) counts as failed when
- the restart job does not finish "done" (the launcher failed, the start timed out);
- the container's init exits within the grace period (the unit leaves active, or its
  main PID or restart count changes: Restart= brought up another one);
- it has a health check and the check says unhealthy, or it is not healthy within
  start period + interval x retries + timeout (+ a margin), the time the check itself
  needs to give up; a container that exits meanwhile fails at once.
Otherwise it counts as running once the grace period is over (and, with a check, it is
healthy). watch() polls; verdict() is the pure rule it applies to each sample.

Health state comes from the shared per-container files (hostctl.paths runtime dir):
healthcheck.json present = this start has a check; health.json {"status": ...}.
read_health() and check_timing() are the only readers here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.paths import Paths

GRACE = 10.0  # seconds a restarted container must keep running
MARGIN = 5.0  # seconds added to the time a health check needs to give up
POLL = 0.25
_RUNNING = ("active", "reloading")


@dataclass(frozen=True)
class Sample:
    """The unit and its container's health at one moment."""

    active_state: str
    sub_state: str
    main_pid: int
    restarts: int
    exit_status: int
    health: str | None  # None: no health check; else starting | healthy | unhealthy
    last_check: str = ""  # the last check's result, for the reason


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Timing:
    """How long a health check takes to decide (seconds)."""

    start_period: float
    interval: float
    retries: int
    timeout: float
    startup: float = 0.0  # what a startup probe may take before the regular check runs

    @property
    def deadline(self) -> float:
        """Seconds after the start by which a container must be healthy."""
        return (self.startup + self.start_period + self.interval * self.retries
                + self.timeout + MARGIN)


def verdict(first: Sample, now: Sample, elapsed: float, grace: float,
            deadline: float | None) -> Verdict | None:
    """The judgement at ELAPSED seconds after the restart (None: keep watching).
    FIRST is the sample right after the restart job, DEADLINE the health deadline
    (None: the container has no health check)."""
    if now.active_state not in _RUNNING or now.main_pid != first.main_pid \
            or now.restarts != first.restarts:
        return Verdict(False, f"exited after {elapsed:.0f}s ({_unit_words(now)})")
    if now.health == "unhealthy":
        return Verdict(False, f"became unhealthy after {elapsed:.0f}s" + _last(now))
    healthy = deadline is None or now.health == "healthy"
    if elapsed >= grace and healthy:
        return Verdict(True, "")
    if deadline is not None and elapsed >= max(deadline, grace):
        return Verdict(False, f"was not healthy within {deadline:.0f}s "
                       f"(health: {now.health or 'starting'})" + _last(now))
    return None


def _last(sample: Sample) -> str:
    return f" (last check: {sample.last_check})" if sample.last_check else ""


def _unit_words(sample: Sample) -> str:
    text = f"unit {sample.active_state}/{sample.sub_state}"
    if sample.active_state not in _RUNNING and sample.exit_status:
        text += f", exit status {sample.exit_status}"
    elif sample.active_state in _RUNNING:
        text += ", container restarted"
    return text


def watch(sample: Callable[[], Sample], *, grace: float, deadline: float | None,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Poll SAMPLE (first right after the restart job finished) until verdict() decides."""
    start = clock()
    first = now = sample()
    while True:
        decided = verdict(first, now, clock() - start, grace, deadline)
        if decided is not None:
            return decided
        sleep(POLL)
        now = sample()


# -- the health check's state, from the shared contract files ---------------------------


@dataclass(frozen=True)
class Health:
    """A container's health for this start."""

    status: str  # starting | healthy | unhealthy
    last: str = ""  # the last check's result: "exit N: OUTPUT" (empty before the first)


def read_health(name: str, paths: Paths) -> Health | None:
    """Container NAME's health for this start: None when it has no check, "starting"
    until a first result is written (hostctl.health.state is the one reader)."""
    from hostctl.health import state as health

    if not health.has_check(name, paths):
        return None
    current = health.read(name, paths)
    if current is None:
        return Health("starting")
    if not current.log:
        return Health(current.status)
    last = current.log[-1]
    words = " ".join(last.output.split())[:200]
    return Health(current.status, f"exit {last.exit_code}" + (f": {words}" if words else ""))


def check_timing(name: str, paths: Paths, container: Container) -> Timing:
    """The timing of NAME's effective check (healthcheck.json: seconds, or the image
    config's nanoseconds), each missing value from the declaration."""
    try:
        doc = json.loads((paths.containers / name / "healthcheck.json").read_text())
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return Timing(
        start_period=_seconds(doc, "start_period", "StartPeriod",
                              container.health_start_period),
        interval=_seconds(doc, "interval", "Interval", container.health_interval),
        retries=int(_seconds(doc, "retries", "Retries", container.health_retries, 1)),
        timeout=_seconds(doc, "timeout", "Timeout", container.health_timeout),
        startup=_startup(doc.get("startup")),
    )


def _startup(probe: object) -> float:
    """How long the startup probe PROBE (healthcheck.json's "startup") may run: its
    interval times its retries or successes needed (at least one), plus its timeout."""
    if not isinstance(probe, dict):
        return 0.0
    count = max(int(_seconds(probe, "retries", "", 0)), int(_seconds(probe, "success", "", 0)), 1)
    return _seconds(probe, "interval", "", 0) * count + _seconds(probe, "timeout", "", 0)


def _seconds(doc: Mapping[str, Any], key: str, image_key: str, default: float,
             image_scale: float = 1e-9) -> float:
    value = doc.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    value = doc.get(image_key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) * image_scale
    return float(default)
