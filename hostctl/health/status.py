"""The health state of one container start, kept in Paths.containers/NAME/health.json.

    {"status": "starting" | "healthy" | "unhealthy", "failing_streak": int,
     "log": [{"start": epoch, "end": epoch, "exit_code": int, "output": str}, ...],
     "started": epoch, "start_period_over": bool,
     "startup": {"done": bool, "passes": int, "failures": int}}

The first three keys are the contract other code reads (hostctl.health.state.read); the
rest is this module's bookkeeping. Every start writes a fresh state (starting); a check
changes it under an exclusive flock on health.lock beside it, and replaces the file
atomically, so a reader never sees half a state.

Rules (podman's): a passing check makes the container healthy, clears the failing streak
and ends the start period; a failing check inside the start period does not count; after
it, `retries` failures in a row make it unhealthy. With a startup probe, the probe runs
instead of the regular check until `success` probes in a row passed (0 counts as 1);
`retries` failed probes (0: no limit) mean the container is restarted.

This module is on every check's path: it imports os and fcntl (json when it reads or
writes a state: the recorded start writes a fresh one without it).
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False  # typing itself is not imported on the check path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
LOG_ENTRIES = 5
OUTPUT_LIMIT = 500  # characters of a check's output kept in the log
SPEC_FILE, STATE_FILE, LOCK_FILE = "healthcheck.json", "health.json", "health.lock"
# What a startup probe's outcome asks for.
PROBE_AGAIN, PROBE_DONE, PROBE_RESTART = "again", "done", "restart"


def run_dir(user: bool) -> str:
    """hostctl.paths.for_scope(...).run without importing it (a unit test holds them
    equal): $HOSTCTL_RUN_DIR, else /run/hostctl or $XDG_RUNTIME_DIR/hostctl."""
    told = os.environ.get("HOSTCTL_RUN_DIR")
    if told:
        return told
    if not user:
        return "/run/hostctl"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime, "hostctl")


def bundle_dir(name: str, user: bool) -> str:
    """Paths.containers / NAME."""
    return os.path.join(run_dir(user), "containers", name)


def fresh_text(now: float) -> str:
    """A new start's state as JSON text (written without the json module: the recorded
    start does not import it)."""
    return ('{"status": "starting", "failing_streak": 0, "log": [], '
            f'"started": {now!r}, "start_period_over": false, '
            '"startup": {"done": false, "passes": 0, "failures": 0}}\n')


def write_fresh(bundle: str, now: float) -> None:
    """Reset BUNDLE's state to a fresh start's (starting, empty log)."""
    _replace(os.path.join(bundle, STATE_FILE), fresh_text(now))


def write_spec(bundle: str, text: str | None) -> None:
    """healthcheck.json in BUNDLE (TEXT: its content), or no such file (None)."""
    path = os.path.join(bundle, SPEC_FILE)
    if text is None:
        unlink_quietly(path)
        return
    _replace(path, text)


def unlink_quietly(path: str) -> None:
    """Remove PATH if it is there."""
    try:
        os.unlink(path)
    except OSError:
        return


def load_spec(bundle: str) -> dict[str, Any] | None:
    """BUNDLE's healthcheck.json, or None when the container has no check (or is gone)."""
    return _load(os.path.join(bundle, SPEC_FILE))


def load_state(bundle: str) -> dict[str, Any] | None:
    """BUNDLE's health.json, or None."""
    return _load(os.path.join(bundle, STATE_FILE))


def _load(path: str) -> dict[str, Any] | None:
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _replace(path: str, text: str) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        unlink_quietly(temp)
        raise


def update(bundle: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
    """Apply CHANGE to BUNDLE's state under its lock and store it; the new state, or None
    when the bundle is gone (the container stopped) or holds no state."""
    import json

    try:
        fd = os.open(os.path.join(bundle, LOCK_FILE),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = load_state(bundle)
        if state is None:
            return None
        change(state)
        try:
            _replace(os.path.join(bundle, STATE_FILE), json.dumps(state) + "\n")
        except FileNotFoundError:
            return None  # the bundle was removed meanwhile (a stop)
        return state
    finally:
        os.close(fd)


def result(start: float, end: float, exit_code: int, output: str) -> dict[str, Any]:
    """One log entry; OUTPUT trimmed to OUTPUT_LIMIT characters (its end kept)."""
    text = output.strip()
    if len(text) > OUTPUT_LIMIT:
        text = "..." + text[-(OUTPUT_LIMIT - 3):]
    return {"start": start, "end": end, "exit_code": exit_code, "output": text}


def _log(state: dict[str, Any], entry: dict[str, Any]) -> None:
    log = [e for e in state.get("log") or () if isinstance(e, dict)]
    log.append(entry)
    state["log"] = log[-LOG_ENTRIES:]


def record_check(state: dict[str, Any], spec: dict[str, Any], entry: dict[str, Any]) -> None:
    """Change STATE by the regular check ENTRY under SPEC (see the module's rules)."""
    _log(state, entry)
    if entry["exit_code"] == 0:
        state["status"] = HEALTHY
        state["failing_streak"] = 0
        state["start_period_over"] = True
        return
    in_start_period = (not state.get("start_period_over")
                       and entry["start"] - float(state.get("started") or 0)
                       < float(spec.get("start_period") or 0))
    if in_start_period:
        return
    state["start_period_over"] = True
    state["failing_streak"] = int(state.get("failing_streak") or 0) + 1
    if state["failing_streak"] >= max(1, int(spec.get("retries") or 1)):
        state["status"] = UNHEALTHY


def in_startup(state: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether the next check is a startup probe."""
    return bool(spec.get("startup")) and not (state.get("startup") or {}).get("done")


def record_probe(state: dict[str, Any], spec: dict[str, Any], entry: dict[str, Any]) -> str:
    """Change STATE by startup probe ENTRY; PROBE_AGAIN, PROBE_DONE or PROBE_RESTART."""
    _log(state, entry)
    startup = spec["startup"]
    phase = dict(state.get("startup") or {})
    if entry["exit_code"] == 0:
        phase["passes"] = int(phase.get("passes") or 0) + 1
        done = phase["passes"] >= max(1, int(startup.get("success") or 0))
        phase["done"] = done
        state["startup"] = phase
        return PROBE_DONE if done else PROBE_AGAIN
    phase["passes"] = 0
    phase["failures"] = int(phase.get("failures") or 0) + 1
    state["startup"] = phase
    limit = int(startup.get("retries") or 0)
    return PROBE_RESTART if limit and phase["failures"] >= limit else PROBE_AGAIN
