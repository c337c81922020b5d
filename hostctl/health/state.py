"""Reading a container's health state (the reader other code calls).

The file and its rules are described in hostctl.health.status, which the check itself
uses (it stays free of dataclasses and pathlib, which cost every check about 15 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostctl.health import status

if TYPE_CHECKING:
    from hostctl.paths import Paths

STARTING, HEALTHY, UNHEALTHY = status.STARTING, status.HEALTHY, status.UNHEALTHY


@dataclass(frozen=True)
class HealthResult:
    """One check's result, as kept in the state's log."""

    start: float  # epoch seconds
    end: float
    exit_code: int  # -1: timed out or could not run
    output: str  # stdout and stderr, trimmed to about 500 characters


@dataclass(frozen=True)
class HealthState:
    """The health of container NAME's current start."""

    status: str  # starting | healthy | unhealthy
    failing_streak: int
    log: tuple[HealthResult, ...]  # the last 5 results, oldest first


def _result(entry: Any) -> HealthResult | None:
    if not isinstance(entry, dict):
        return None
    try:
        return HealthResult(float(entry["start"]), float(entry["end"]),
                            int(entry["exit_code"]), str(entry["output"]))
    except (KeyError, TypeError, ValueError):
        return None


def from_dict(data: dict[str, Any]) -> HealthState | None:
    """HealthState from health.json's content; None when it is not one."""
    state = data.get("status")
    if state not in (STARTING, HEALTHY, UNHEALTHY):
        return None
    try:
        streak = int(data.get("failing_streak") or 0)
    except (TypeError, ValueError):
        return None
    results = (_result(entry) for entry in data.get("log") or ())
    return HealthState(str(state), streak, tuple(r for r in results if r is not None))


def read(name: str, paths: Paths) -> HealthState | None:
    """Container NAME's health state, None when it has no check or is not running."""
    data = status.load_state(str(paths.containers / name))
    return from_dict(data) if data is not None else None


def has_check(name: str, paths: Paths) -> bool:
    """Whether the current start of NAME has a health check (healthcheck.json)."""
    return (paths.containers / name / status.SPEC_FILE).is_file()
