"""The health state of one container start, kept in Paths.containers/NAME/health.json.

    {"status": "starting" | "healthy" | "unhealthy", "failing_streak": int,
     "log": [{"start": epoch, "end": epoch, "exit_code": int, "output": str}, ...],
     "started": epoch, "start_period_over": bool,
     "startup": {"done": bool, "passes": int, "failures": int}}

The first three keys are the contract other code reads (hostctl.health.state.read); the
rest is this module's bookkeeping.

What the check itself reads is health.state beside it: the same state, the effective
check (as in healthcheck.json) and the check's OCI process (the container's own, from
config.json, without args), in marshal form. Every start writes both files fresh; a
check changes them under an exclusive flock on health.lock and replaces each
atomically, so a reader never sees half a state. The check so never parses JSON: the
json package (with re and enum) would cost every check about 5 ms of its ~45.

Rules (podman's): a passing check makes the container healthy, clears the failing streak
and ends the start period; a failing check inside the start period does not count; after
it, `retries` failures in a row make it unhealthy. With a startup probe, the probe runs
instead of the regular check until `success` probes in a row passed (0 counts as 1);
`retries` failed probes (0: no limit) mean the container is restarted.

This module is on every check's path and on the recorded start's: it imports os, fcntl
and marshal only (json only to read health.json for others).
"""

from __future__ import annotations

import fcntl
import marshal
import os

from hostctl.launcher.record import json_string

TYPE_CHECKING = False  # typing itself is not imported on the check path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
LOG_ENTRIES = 5
OUTPUT_LIMIT = 500  # characters of a check's output kept in the log
SPEC_FILE, STATE_FILE, LOCK_FILE = "healthcheck.json", "health.json", "health.lock"
STORE_FILE = "health.state"  # marshal: {"spec": ..., "process": ..., "state": ...}
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


def fresh(now: float) -> dict[str, Any]:
    """A new start's state: starting, nothing logged."""
    return {"status": STARTING, "failing_streak": 0, "log": [], "started": now,
            "start_period_over": False,
            "startup": {"done": False, "passes": 0, "failures": 0}}


def begin(bundle: str, spec_text: str | None, spec: dict[str, Any] | None,
          process: dict[str, Any] | None, now: float) -> None:
    """A start's health files in BUNDLE: healthcheck.json (SPEC_TEXT), the check's store
    (SPEC and the check's PROCESS) and a fresh state; none of them without a check."""
    if spec_text is None or spec is None or process is None:
        for name in (SPEC_FILE, STORE_FILE, STATE_FILE):
            unlink_quietly(os.path.join(bundle, name))
        return
    _replace(os.path.join(bundle, SPEC_FILE), spec_text.encode())
    _store(bundle, {"spec": spec, "process": process, "state": fresh(now)})


def _store(bundle: str, store: dict[str, Any]) -> None:
    _replace(os.path.join(bundle, STORE_FILE), marshal.dumps(store))
    _replace(os.path.join(bundle, STATE_FILE), (to_json(store["state"]) + "\n").encode())


def unlink_quietly(path: str) -> None:
    """Remove PATH if it is there."""
    try:
        os.unlink(path)
    except OSError:
        return


def load_store(bundle: str) -> dict[str, Any] | None:
    """BUNDLE's check store (spec, process, state); None without a check (or once the
    container is gone)."""
    try:
        with open(os.path.join(bundle, STORE_FILE), "rb") as handle:
            store = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(store, dict) or not all(
            isinstance(store.get(key), dict) for key in ("spec", "process", "state")):
        return None
    return store


def load_state(bundle: str) -> dict[str, Any] | None:
    """BUNDLE's health.json, or None (for readers: this parses JSON)."""
    import json

    try:
        with open(os.path.join(bundle, STATE_FILE), encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def load_spec(bundle: str) -> dict[str, Any] | None:
    """BUNDLE's healthcheck.json, or None (for readers: this parses JSON)."""
    import json

    try:
        with open(os.path.join(bundle, SPEC_FILE), encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _replace(path: str, data: bytes) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        unlink_quietly(temp)
        raise


def update(bundle: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
    """Apply CHANGE to BUNDLE's state under its lock and store it; the new state, or None
    when the bundle is gone (the container stopped) or holds no check."""
    try:
        fd = os.open(os.path.join(bundle, LOCK_FILE),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        store = load_store(bundle)
        if store is None:
            return None
        change(store["state"])
        try:
            _store(bundle, store)
        except FileNotFoundError:
            return None  # the bundle was removed meanwhile (a stop)
        state: dict[str, Any] = store["state"]
        return state
    finally:
        os.close(fd)


def to_json(value: object) -> str:
    """VALUE (None, bool, int, finite float, str, list, tuple, dict with str keys) as
    JSON text, without importing json."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json_string(str(k))}: {to_json(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"not JSON: {type(value).__name__}")


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
