"""Restarting a container's unit for an update or a rollback, and its dependents.

restart_and_judge() runs RestartUnit over D-Bus and applies hostctl.updates.judge to
what follows. Units that require, are bound to or are part of the container
(RequiredBy, BoundBy, ConsistsOf) are stopped when its restart fails, and a later restart
only try-restarts them: active_dependents() notes them before, start_again() brings back
the ones no longer active afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError
from hostctl.updates.judge import Sample, Verdict, check_timing, read_health, watch

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.paths import Paths
    from hostctl.systemd.dbus import Systemd

RUNNING = ("active", "reloading")


def restart_and_judge(systemd: Systemd, paths: Paths, container: Container,
                      grace: float) -> Verdict:
    """RestartUnit CONTAINER's unit, then judge it (grace period, health)."""
    unit = container.unit_name
    try:
        result = systemd.run_job("RestartUnit", unit)
    except HostctlError as err:
        return Verdict(False, " ".join(str(err).split()))
    deadline = None
    if read_health(container.name, paths) is not None:
        deadline = check_timing(container.name, paths, container).deadline

    def sample() -> Sample:
        state = systemd.unit(unit)
        health = read_health(container.name, paths)
        return Sample(state.active_state, state.sub_state, state.main_pid, state.restarts,
                      state.exit_status, health.status if health else None,
                      health.last if health else "")

    try:
        if result != "done":
            state = systemd.unit(unit)
            return Verdict(False, f"did not start: job {result}, unit "
                           f"{state.active_state} ({state.result})")
        return watch(sample, grace=grace, deadline=deadline)
    except Exception as err:  # GLib.Error: the manager did not answer a property read
        return Verdict(False, f"cannot follow {unit}: {err}")


def active_dependents(systemd: Systemd, unit: str) -> list[str]:
    """Units that require, are bound to or are part of UNIT and are active now."""
    proxy = _proxy(systemd, unit)
    names = [*proxy.RequiredBy, *proxy.BoundBy, *proxy.ConsistsOf]
    return [name for name in dict.fromkeys(names)
            if _proxy(systemd, name).ActiveState in RUNNING]


def start_again(systemd: Systemd, units: list[str]) -> tuple[list[str], list[str]]:
    """Start each of UNITS that is no longer active: (started, failed to start)."""
    started: list[str] = []
    failed: list[str] = []
    for unit in units:
        if _proxy(systemd, unit).ActiveState in RUNNING:
            continue
        try:
            result = systemd.run_job("StartUnit", unit)
        except HostctlError:
            result = "failed"
        (started if result == "done" else failed).append(unit)
    return started, failed


def _proxy(systemd: Systemd, unit: str) -> Any:
    """UNIT's D-Bus object (any unit type, unlike Systemd.unit(), which reads a service's)."""
    return systemd.bus.get(".systemd1", systemd.manager.LoadUnit(unit))
