"""systemd's manager over D-Bus (pydbus): start, stop and restart units waiting for the
job's result, unit properties, and the unit's last journal lines on failure.

The system manager is reached on the system bus; a user's manager on that user's bus
($DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus). Only the CLI and the API import
this module: the launcher and the generator never need D-Bus.

active_state() is the cheap question asked on every no-op Ansible task: one property
read through libsystemd's sd-bus (ctypes), without pydbus' import and the introspection
of every object it builds a proxy for (about 40 ms against 2 ms).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hostctl.errors import HostctlError
from hostctl.paths import Scope

JOB_TIMEOUT = 600  # seconds; a start may pull an image first


@dataclass(frozen=True)
class UnitState:
    """What systemd says about a unit."""

    name: str
    load_state: str  # loaded, not-found, ...
    active_state: str  # active, inactive, failed, activating, ...
    sub_state: str
    result: str
    main_pid: int
    restarts: int
    active_since: float | None  # seconds since the epoch, None when not active
    exit_status: int


class SystemdFailure(HostctlError):
    """A job did not finish with "done"; the message carries the journal's last lines."""


class Systemd:
    """One systemd manager (system or a user's)."""

    def __init__(self, scope: Scope) -> None:
        import pydbus

        self.scope = scope
        try:
            if scope is Scope.USER:
                _session_bus_address()
                self.bus = pydbus.SessionBus()
            else:
                self.bus = pydbus.SystemBus()
            self.manager: Any = self.bus.get(".systemd1")
        except Exception as err:  # GLib.Error: no bus, no manager
            raise _unreachable(scope, err) from None

    def reload(self) -> None:
        """daemon-reload: re-run the generators and reload every unit file."""
        self.manager.Reload()

    def reset_failed(self, unit: str) -> None:
        """Forget UNIT's failed state (a no-op for a unit that did not fail)."""
        import contextlib

        with contextlib.suppress(Exception):  # GLib.Error: not loaded, nothing to reset
            self.manager.ResetFailedUnit(unit)

    def run_job(self, method: str, unit: str, timeout: float = JOB_TIMEOUT) -> str:
        """Call StartUnit/StopUnit/RestartUnit/TryRestartUnit for UNIT and wait for the job;
        the job's result ("done", "failed", "timeout", ...)."""
        return self.run_jobs([(method, unit)], timeout)[unit]

    def run_jobs(self, jobs: Sequence[tuple[str, str]], timeout: float = JOB_TIMEOUT
                 ) -> dict[str, str]:
        """Queue every (METHOD, UNIT) of JOBS at once (systemd runs them in parallel, as
        `systemctl start --no-block a b c` would) and wait for all of them: each unit's
        job result ("done", "failed", "timeout", ...). A unit systemd refuses a job for
        (not found, ...) fails the call before any wait, naming it."""
        from gi.repository import GLib  # type: ignore[import-untyped]

        loop = GLib.MainLoop()
        results: dict[str, str] = {}
        queued: dict[str, str] = {}  # job path -> unit

        def removed(_id: int, path: str, _unit: str, result: str) -> None:
            results[path] = result
            if queued and all(job in results for job in queued):
                loop.quit()

        subscription = self.manager.JobRemoved.connect(removed)
        asked = "Subscribe"
        try:
            try:
                _subscribe(self.manager)
                for method, unit in jobs:
                    asked = f"{method} {unit}"
                    queued[getattr(self.manager, method)(unit, "replace")] = unit
            except Exception as err:  # GLib.Error from systemd: unit not found, ...
                raise HostctlError(f"{asked}: {_dbus_message(err)}") from None
            if not all(job in results for job in queued):
                GLib.timeout_add_seconds(int(timeout), loop.quit)
                loop.run()
        finally:
            subscription.disconnect()
        return {unit: results.get(job, "timeout") for job, unit in queued.items()}

    def states(self, units: Sequence[str]) -> dict[str, tuple[str, str]]:
        """UNITS' (ActiveState, SubState), loaded on demand like unit(), in one
        ListUnitsByNames call (no proxy, hence no introspection, per unit)."""
        if not units:
            return {}
        rows = self.manager.ListUnitsByNames(list(dict.fromkeys(units)))
        return {str(row[0]): (str(row[3]), str(row[4])) for row in rows}

    def units_matching(self, pattern: str) -> list[str]:
        """The names of the units systemd has loaded that match the glob PATTERN."""
        try:
            listed = self.manager.ListUnitsByPatterns([], [pattern])
        except Exception:  # GLib.Error: a systemd without ListUnitsByPatterns
            return []
        return sorted(str(row[0]) for row in listed)

    def unit(self, unit: str) -> UnitState:
        """The current state of UNIT (loaded on demand, as systemctl show does)."""
        path = self.manager.LoadUnit(unit)
        proxy: Any = self.bus.get(".systemd1", path)
        since = int(proxy.ActiveEnterTimestamp)
        service = proxy["org.freedesktop.systemd1.Service"]
        active = proxy.ActiveState
        return UnitState(
            name=unit,
            load_state=proxy.LoadState,
            active_state=active,
            sub_state=proxy.SubState,
            result=str(service.Result),
            main_pid=int(service.MainPID),
            restarts=int(service.NRestarts),
            active_since=since / 1e6 if since and active == "active" else None,
            exit_status=int(service.ExecMainStatus),
        )


def _subscribe(manager: Any) -> None:
    """Ask for job signals. pydbus shares one connection per bus in a process, so a second
    run_job() (several containers in one Ansible task) finds it subscribed already."""
    try:
        manager.Subscribe()
    except Exception as err:  # GLib.Error
        if "AlreadySubscribed" not in str(err):
            raise


def _session_bus_address() -> None:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", f"unix:path={runtime}/bus")


def _unreachable(scope: Scope, err: object) -> HostctlError:
    return HostctlError(
        f"cannot reach the {scope.value} systemd manager: {err}",
        hint="with --user, log in as the user or enable lingering "
        "(loginctl enable-linger USER)" if scope is Scope.USER else None,
    )


def active_state(unit: str, scope: Scope) -> str:
    """UNIT's ActiveState ("inactive" for a unit systemd does not know), as
    Systemd(scope).unit(unit).active_state says it, with a single sd-bus property read
    (systemd loads the unit on demand, as LoadUnit does). Where libsystemd cannot be
    loaded, through pydbus."""
    try:
        sd = _libsystemd()
    except OSError:
        return Systemd(scope).unit(unit).active_state
    import ctypes

    bus = _open_bus(sd, scope)
    try:
        path = _sd_string(sd, sd.sd_bus_path_encode, b"/org/freedesktop/systemd1/unit",
                          unit.encode())
        error = sd.BusError()
        out = ctypes.c_void_p()
        got = sd.sd_bus_get_property_string(
            bus, b"org.freedesktop.systemd1", path, b"org.freedesktop.systemd1.Unit",
            b"ActiveState", ctypes.byref(error), ctypes.byref(out))
        if got < 0:
            message = (error.message or error.name or os.strerror(-got).encode()).decode()
            sd.sd_bus_error_free(ctypes.byref(error))
            raise HostctlError(f"cannot read the state of {unit}: {message}")
        return _taken(sd, out).decode()
    finally:
        sd.sd_bus_flush_close_unref(bus)


def _open_bus(sd: Any, scope: Scope) -> Any:
    """An sd-bus connection to SCOPE's bus (the caller closes it)."""
    import ctypes

    bus = ctypes.c_void_p()
    if scope is Scope.USER:
        _session_bus_address()
        opened = sd.sd_bus_open_user(ctypes.byref(bus))
    else:
        opened = sd.sd_bus_open_system(ctypes.byref(bus))
    if opened < 0:
        raise _unreachable(scope, os.strerror(-opened))
    return bus


def unit_states(units: Sequence[str], scope: Scope) -> dict[str, tuple[str, str]]:
    """UNITS' (ActiveState, SubState), as Systemd(scope).states(units) says them, with one
    ListUnitsByNames call through sd-bus: no pydbus, GLib or introspection (auto-update's
    read-only part). Where libsystemd cannot be loaded, through pydbus."""
    if not units:
        return {}
    try:
        sd = _libsystemd()
    except OSError:
        return Systemd(scope).states(units)
    import ctypes

    names = list(dict.fromkeys(units))
    bus = _open_bus(sd, scope)
    call, reply = ctypes.c_void_p(), ctypes.c_void_p()
    error = sd.BusError()
    try:
        _sd_check(sd.sd_bus_message_new_method_call(
            bus, ctypes.byref(call), b"org.freedesktop.systemd1", b"/org/freedesktop/systemd1",
            b"org.freedesktop.systemd1.Manager", b"ListUnitsByNames"))
        strv = (ctypes.c_char_p * (len(names) + 1))(*[n.encode() for n in names], None)
        _sd_check(sd.sd_bus_message_append_strv(call, strv))
        if sd.sd_bus_call(bus, call, ctypes.c_uint64(0), ctypes.byref(error),
                          ctypes.byref(reply)) < 0:
            message = (error.message or error.name or b"failed").decode()
            raise HostctlError(f"cannot read the state of {', '.join(names)}: {message}")
        return _read_unit_rows(sd, reply)
    except OSError as err:
        raise HostctlError(f"cannot read the state of {', '.join(names)}: {err}") from None
    finally:
        sd.sd_bus_error_free(ctypes.byref(error))
        sd.sd_bus_message_unref(call)
        sd.sd_bus_message_unref(reply)
        sd.sd_bus_flush_close_unref(bus)


def _read_unit_rows(sd: Any, reply: Any) -> dict[str, tuple[str, str]]:
    """ListUnitsByNames' a(ssssssouso): name -> (active state, sub state)."""
    import ctypes

    rows: dict[str, tuple[str, str]] = {}
    _sd_check(sd.sd_bus_message_enter_container(reply, ctypes.c_char(b"a"), b"(ssssssouso)"))
    while _sd_check(sd.sd_bus_message_enter_container(reply, ctypes.c_char(b"r"),
                                                       b"ssssssouso")) > 0:
        text = [ctypes.c_char_p() for _ in range(9)]
        job = ctypes.c_uint32()
        _sd_check(sd.sd_bus_message_read(
            reply, b"ssssssouso", *map(ctypes.byref, text[:7]), ctypes.byref(job),
            *map(ctypes.byref, text[7:])))
        _sd_check(sd.sd_bus_message_exit_container(reply))
        name, active, sub = (text[i].value or b"" for i in (0, 3, 4))
        rows[name.decode()] = (active.decode(), sub.decode())
    _sd_check(sd.sd_bus_message_exit_container(reply))
    return rows


def _sd_check(code: int) -> int:
    if code < 0:
        raise OSError(-code, os.strerror(-code))
    return code


_loaded: list[Any] = []


def _libsystemd() -> Any:
    """libsystemd with the sd-bus functions active_state() calls (OSError: not there)."""
    if _loaded:
        return _loaded[0]
    import ctypes

    sd: Any = ctypes.CDLL("libsystemd.so.0")
    libc = ctypes.CDLL(None)
    for name in ("sd_bus_open_user", "sd_bus_open_system", "sd_bus_path_encode",
                 "sd_bus_get_property_string", "sd_bus_message_new_method_call",
                 "sd_bus_message_append_strv", "sd_bus_call", "sd_bus_message_enter_container",
                 "sd_bus_message_exit_container", "sd_bus_message_read"):
        getattr(sd, name).restype = ctypes.c_int
    for name in ("sd_bus_flush_close_unref", "sd_bus_message_unref"):
        getattr(sd, name).restype = ctypes.c_void_p
        getattr(sd, name).argtypes = [ctypes.c_void_p]
    sd.sd_bus_error_free.argtypes = [ctypes.c_void_p]
    sd.free = libc.free
    sd.free.argtypes = [ctypes.c_void_p]

    class BusError(ctypes.Structure):
        """sd_bus_error: name, message, _need_free."""

        _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p),
                    ("need_free", ctypes.c_int)]

    sd.BusError = BusError
    _loaded.append(sd)
    return sd


def _sd_string(sd: Any, function: Any, *args: bytes) -> bytes:
    """FUNCTION(*ARGS, char **ret)'s string (freed here); OSError on a failure."""
    import ctypes

    out = ctypes.c_void_p()
    code = function(*args, ctypes.byref(out))
    if code < 0:
        raise OSError(-code, os.strerror(-code))
    return _taken(sd, out)


def _taken(sd: Any, pointer: Any) -> bytes:
    import ctypes

    try:
        return ctypes.string_at(pointer.value) if pointer.value else b""
    finally:
        sd.free(pointer)


def _dbus_message(err: Exception) -> str:
    text = str(err)
    return text.rpartition(": ")[2] if ": " in text else text


def journal_tail(unit: str, scope: Scope, lines: int = 15) -> str:
    """The last LINES journal lines of UNIT (empty when the journal cannot be read)."""
    from hostctl.proc import run

    flag = "--user-unit" if scope is Scope.USER else "--unit"
    done = run(
        ["journalctl", flag, unit, "-n", str(lines), "--no-pager", "-o", "short-iso"],
        check=False,
    )
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else ""
