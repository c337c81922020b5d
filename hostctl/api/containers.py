"""Declared containers as an API: apply, remove, start/stop/restart, status, list,
enable/disable. The CLI and the Ansible modules call these; results are frozen
dataclasses saying what changed, with the declaration's text before and after and a diff
(Ansible's check mode and --diff map onto `check=True` and `ApplyResult.diff`).

apply() writes NAME.yaml into the scope's configuration directory (/etc/hostctl/containers
or ~/.config/hostctl/containers), reloads systemd, and restarts the unit only when the
text changed. Nothing is written or restarted when the declaration does not validate.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError
from hostctl.paths import Scope, for_scope

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.systemd.dbus import UnitState

ENABLE_DROPIN = "50-hostctl-enable"


@dataclass(frozen=True)
class ApplyResult:
    """What apply() or remove() did (or, with check=True, would do)."""

    name: str
    scope: Scope
    path: Path  # the declaration file
    changed: bool
    actions: tuple[str, ...] = ()  # e.g. ("write /etc/...", "daemon-reload", "restart x")
    before: str | None = None  # declaration text before (None: there was none)
    after: str | None = None  # declaration text after (None: removed)
    diff: str = ""
    unit_state: str | None = None  # ActiveState after the operation (None in check mode)
    notes: tuple[str, ...] = ()  # things the user should know (e.g. lingering is off)


@dataclass(frozen=True)
class ContainerStatus:
    """One row of list_containers()."""

    name: str
    unit: str
    source: str
    image: str
    active_state: str
    sub_state: str
    main_pid: int
    restarts: int
    active_since: float | None
    error: str | None = None  # the declaration's error when it does not load
    labels: dict[str, str] = field(default_factory=dict)
    digest: str | None = None  # the running container's image, else the stored image's
    health: str | None = None  # starting | healthy | unhealthy; None: no check or not running
    pod: str | None = None  # the pod the container is a member of


def declaration_path(name: str, scope: Scope) -> Path:
    """Where apply() keeps declaration NAME of SCOPE."""
    return for_scope(scope).config / "containers" / f"{name}.yaml"


def _text_of(declaration: Mapping[str, Any] | str) -> str:
    if isinstance(declaration, str):
        return declaration if declaration.endswith("\n") else declaration + "\n"
    import yaml

    return yaml.safe_dump(dict(declaration), sort_keys=False, default_flow_style=False)


def _diff(before: str | None, after: str | None, path: Path) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile=str(path) if before is not None else "/dev/null",
            tofile=str(path) if after is not None else "/dev/null",
        )
    )


def validate(name: str, text: str, path: Path) -> Container:
    """The declaration TEXT checked as if it were PATH (DeclarationError if not valid)."""
    from hostctl.declarations.yaml_reader import parse_yaml

    return parse_yaml(text, path, name)


def apply(
    name: str,
    declaration: Mapping[str, Any] | str,
    *,
    scope: Scope = Scope.SYSTEM,
    check: bool = False,
    start: bool = True,
    reload: bool = True,
) -> ApplyResult:
    """Install or update declaration NAME (a mapping of settings or YAML text); when the
    text changed, reload systemd and (START) restart the unit. CHECK changes nothing.
    RELOAD=False (several declarations at once, which the caller reloads for once) only
    writes: no reload, no start, and no unit_state in the result."""
    path = declaration_path(name, scope)
    after = _text_of(declaration)
    validate(name, after, path)
    before = path.read_text(encoding="utf-8") if path.exists() else None
    diff = _diff(before, after, path)
    if before == after:
        state = None if check else _state(scope, name)
        return ApplyResult(name, scope, path, False, (), before, after, "", state)
    actions = [f"write {path}", "daemon-reload"]
    if start:
        actions.append(f"{'restart' if before is not None else 'start'} {name}.service")
    if check:
        return ApplyResult(name, scope, path, True, tuple(actions), before, after, diff)
    _write(path, after)
    state = _reload_and_start(scope, name, start) if reload else None
    return ApplyResult(name, scope, path, True, tuple(actions), before, after, diff, state)


def remove(name: str, *, scope: Scope = Scope.SYSTEM, check: bool = False) -> ApplyResult:
    """Stop container NAME and delete the declaration apply() wrote (and its enable
    drop-in, rollback record and start records); nothing happens when there is none."""
    path = declaration_path(name, scope)
    if not path.exists():
        return ApplyResult(name, scope, path, False)
    before = path.read_text(encoding="utf-8")
    actions = (f"stop {name}.service", f"delete {path}", "daemon-reload")
    diff = _diff(before, None, path)
    if check:
        return ApplyResult(name, scope, path, True, actions, before, None, diff)
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    systemd.run_job("StopUnit", f"{name}.service")
    systemd.reset_failed(f"{name}.service")  # a container killed at stop leaves "failed"
    path.unlink()
    dropins = path.parent / f"{name}.yaml.d"
    for dropin in dropins.glob(f"{ENABLE_DROPIN}.yaml"):
        dropin.unlink()
    with contextlib.suppress(OSError):  # only when apply()/enable left nothing else there
        dropins.rmdir()
    _forget_rollback(name, scope)
    from hostctl.launcher import record as records

    records.drop(name, scope is Scope.USER)  # the kept copy would outlive it on disk
    systemd.reload()
    return ApplyResult(name, scope, path, True, actions, before, None, diff, "inactive")


def _forget_rollback(name: str, scope: Scope) -> None:
    """Drop NAME's rollback record (hostctl.images.pins), so prune may free the image its
    last auto-update replaced."""
    from hostctl.images import pins
    from hostctl.images.store import Store

    with contextlib.suppress(HostctlError, OSError):  # a damaged one stays for the user
        pins.remove(Store(for_scope(scope).store), name)


def _write(path: Path, text: str) -> None:
    """Replace declaration PATH with TEXT: fsynced and renamed, so a power cut leaves the
    old declaration or the new one, never a truncated file."""
    from hostctl.images.store import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))


def _reload_and_start(scope: Scope, name: str, start: bool) -> str:
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    systemd.reload()
    if start:
        control(name, "RestartUnit", scope, systemd)
    return systemd.unit(f"{name}.service").active_state


def _state(scope: Scope, name: str) -> str | None:
    from hostctl.systemd.dbus import active_state

    return active_state(f"{name}.service", scope)


def control(name: str, method: str, scope: Scope, systemd: Any = None) -> str:
    """Run StartUnit/StopUnit/RestartUnit on NAME.service and wait; on a failed job raise
    SystemdFailure with the unit's result and its last journal lines."""
    return control_unit(f"{name}.service", method, scope, systemd)


def control_unit(unit: str, method: str, scope: Scope, systemd: Any = None) -> str:
    """control() for any UNIT (a pod's, a kube app's)."""
    from hostctl.systemd.dbus import Systemd

    systemd = systemd or Systemd(scope)
    result: str = systemd.run_job(method, unit)
    if result == "done":
        return result
    raise job_failure(systemd, unit, result, scope)


def job_failure(systemd: Any, unit: str, result: str | None, scope: Scope) -> HostctlError:
    """The SystemdFailure for UNIT's job that ended RESULT: the unit's state and result
    and its last journal lines."""
    from hostctl.systemd.dbus import SystemdFailure, journal_tail

    state = systemd.unit(unit)
    journal = journal_tail(unit, scope)
    return SystemdFailure(
        f"{unit}: job {result}; unit {state.active_state} ({state.result})"
        + (f"\n{journal}" if journal else ""),
        hint=f"journalctl {'--user-unit' if scope is Scope.USER else '-u'} {unit}",
    )


def stop_timeout_note(state: UnitState) -> str | None:
    """Why UNIT ended `failed` with result `timeout` after a stop, and what to do; None
    otherwise. A container's init that ignores SIGTERM (busybox httpd, sleep, most shells:
    as PID 1 a signal without a handler is dropped) is killed with SIGKILL once
    TimeoutStopSec (stop_timeout) has passed, on every stop."""
    if state.result != "timeout" or state.exit_status != signal.SIGKILL:
        return None
    return (f"{state.name}: the container's PID 1 did not exit on its stop signal and was"
            " killed when stop_timeout ran out, so the unit ends failed (result timeout)"
            " after every stop (hint: set `init: true` in the declaration, so an init that"
            " forwards SIGTERM runs as PID 1, or `stop_signal:` a signal the program"
            " handles; then `systemctl reset-failed " + state.name + "`)")


def list_containers(scope: Scope, *, adhoc: bool = False,
                    stopped: bool = True) -> list[ContainerStatus]:
    """Every declared container of SCOPE with its unit's state (a template's instances
    that systemd knows and no file of their own declares among them); with ADHOC also
    those `hostctl run` started; without STOPPED only the ones whose unit is not inactive
    (running, starting, stopping or failed: what `hostctl ps` shows without --all)."""
    from hostctl.declarations.checks import template_parts
    from hostctl.declarations.search import declaration_dirs, scan_declarations
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    dirs = declaration_dirs(scope)
    declared = scan_declarations(scope, dirs).found
    found: list[tuple[str, Path, list[Path]]] = []
    for name, path in declared.items():
        prefix, instance, templated = template_parts(name)
        if not (templated and not instance):
            found.append((name, path, dirs))
            continue
        # A template: the instances systemd knows that no file of their own declares.
        instances = [unit.removesuffix(".service") for unit in
                     systemd.units_matching(f"{prefix}@*.service")]
        found += [(unit, path, dirs) for unit in instances
                  if unit not in declared and not unit.endswith("@")]
    if adhoc:
        runs = [for_scope(scope).adhoc]
        found += [(name, path, runs) for name, path in scan_declarations(scope, runs).found.items()
                  if all(name != known for known, _, _ in found)]
    rows = []
    for name, path, searched in sorted(found):
        state = systemd.unit(f"{name}.service")
        if stopped or state.active_state != "inactive":
            rows.append(_status_row(name, path, searched, state, scope))
    known = {row.name for row in rows}
    rows += [row for row in _compose_rows(scope, systemd)
             if row.name not in known and (stopped or row.active_state != "inactive")]
    return rows


def _compose_rows(scope: Scope, systemd: Any) -> list[ContainerStatus]:
    """The containers of the installed compose projects (a broken project: none)."""
    from hostctl.compose import installed

    rows = []
    for project in installed.project_names(for_scope(scope)):
        try:
            found = installed.translation(project, scope)
        except HostctlError:
            continue  # its failing unit says why
        for unit in found.containers:
            container, state = unit.container, systemd.unit(unit.unit)
            running = state.active_state in ("active", "reloading", "deactivating")
            rows.append(ContainerStatus(
                container.name, state.name, str(container.source), container.image,
                state.active_state, state.sub_state, state.main_pid, state.restarts,
                state.active_since, None, dict(container.labels),
                image_digest(container.name, container.image, scope, running),
                _health_status(container.name, scope) if running else None))
    return rows


def _status_row(name: str, path: Path, dirs: list[Path], state: UnitState,
                scope: Scope) -> ContainerStatus:
    from hostctl.declarations.checks import TEMPLATE_INSTANCE
    from hostctl.declarations.search import load_file

    image, error, labels, pod = "", None, {}, None
    try:
        container = load_file(path, name, dirs)
        image, labels, pod = container.image, dict(container.labels), container.pod
    except HostctlError as err:
        error = str(err).replace(TEMPLATE_INSTANCE, "%i")
    running = state.active_state in ("active", "reloading", "deactivating")
    return ContainerStatus(
        name, state.name, str(path), image, state.active_state, state.sub_state,
        state.main_pid, state.restarts, state.active_since, error, labels,
        image_digest(name, image, scope, running),
        _health_status(name, scope) if running else None, pod,
    )


def _health_status(name: str, scope: Scope) -> str | None:
    from hostctl.health.state import read

    health = read(name, for_scope(scope))
    return health.status if health is not None else None


@dataclass(frozen=True)
class CheckResult:
    """What healthcheck() did: the check's (or startup probe's) result and the status."""

    name: str
    passed: bool
    exit_code: int
    output: str
    status: str  # starting | healthy | unhealthy, after this check
    startup: bool  # it was a startup probe


def healthcheck(name: str, scope: Scope) -> CheckResult:
    """Run container NAME's health check now and record it like a timer's check (the
    status changes and health_on_failure acts as then); CannotCheck (exit code 2) when
    it is not running or has no check."""
    from hostctl.health.check import check_now

    done = check_now(name, scope is Scope.USER)
    return CheckResult(name, done.passed, int(done.entry["exit_code"]),
                       str(done.entry["output"]), done.after, done.probe is not None)


DIGEST_ANNOTATION = "io.hostctl.image.digest"


def image_digest(name: str, image: str, scope: Scope, running: bool) -> str | None:
    """The digest of container NAME's image: what its running bundle was made from (the
    annotation in Paths.containers/NAME/config.json), else what IMAGE resolves to in the
    store, else None (never pulled)."""
    import json

    paths = for_scope(scope)
    if running:
        try:
            spec = json.loads((paths.containers / name / "config.json").read_text())
            digest = (spec.get("annotations") or {}).get(DIGEST_ANNOTATION)
            if isinstance(digest, str):
                return digest
        except (OSError, ValueError, AttributeError):
            pass
    return _stored_digest(image, paths.store)


def _stored_digest(image: str, store_root: Path) -> str | None:
    from hostctl.images.reference import parse_reference
    from hostctl.images.store import Store

    if not image:
        return None
    names = [image]
    with contextlib.suppress(HostctlError):  # an invalid name is looked up as written
        names.append(str(parse_reference(image)))
    try:
        stored = Store(store_root).images()
    except HostctlError:
        return None  # a corrupt index: `hostctl image verify` reports it, ps still lists
    for candidate in names:
        if candidate in stored:
            return stored[candidate].manifest
    return None


def enable_dropin(name: str, scope: Scope) -> Path:
    """The drop-in set_enabled() writes to enable NAME of SCOPE: next to its declaration,
    NAME.yaml.d/50-hostctl-enable.yaml (NAME.container.d/...conf for a .container file).
    Where NAME is not declared yet, the one for NAME.yaml, which apply() writes."""
    from hostctl.declarations.search import declaration_dirs, scan_declarations

    path = scan_declarations(scope, declaration_dirs(scope)).found.get(name)
    return _dropin_for(name, scope, path is not None and path.name.endswith(".container"))


def _dropin_for(name: str, scope: Scope, quadlet: bool) -> Path:
    kind = "container" if quadlet else "yaml"
    return (for_scope(scope).config / "containers" / f"{name}.{kind}.d"
            / f"{ENABLE_DROPIN}.{'conf' if quadlet else 'yaml'}")


def set_enabled(name: str, enabled: bool, scope: Scope, *, linger: bool = False,
                check: bool = False, reload: bool = True) -> ApplyResult:
    """Start NAME at boot (WantedBy= multi-user.target, or default.target for a user) by
    a drop-in next to its declaration, or remove that drop-in; then daemon-reload, which
    is skipped when the drop-in was already so. For a user, LINGER turns lingering on
    (else a note says how, when it is off). CHECK changes nothing and says what would.
    RELOAD=False leaves the daemon-reload (still listed in the actions) to the caller."""
    from hostctl.declarations.search import declaration_dirs, scan_declarations

    dirs = declaration_dirs(scope)
    path = scan_declarations(scope, dirs).found.get(name)
    if path is None:
        raise HostctlError(f"no declaration named {name!r}", hint="hostctl ps lists them")
    target = "default.target" if scope is Scope.USER else "multi-user.target"
    quadlet = path.name.endswith(".container")
    dropin = _dropin_for(name, scope, quadlet)
    text = f"[Install]\nWantedBy={target}\n" if quadlet else f"install: {{WantedBy: {target}}}\n"
    before = dropin.read_text(encoding="utf-8") if dropin.exists() else None
    after = text if enabled else None
    if not enabled and _declared_install(path, name, dirs, dropin):
        raise HostctlError(
            f"{name} is still enabled by its declaration",
            where=str(path), hint="remove its install: setting ([Install] section)",
        )
    changed = before != after
    actions = [f"{'write' if enabled else 'delete'} {dropin}"] if changed else []
    diff = _diff(before, after, dropin)
    if check:
        actions += ["daemon-reload"] if changed else []
        return ApplyResult(name, scope, dropin, changed, tuple(actions), before, after, diff)
    if changed and enabled:
        _write(dropin, text)
    elif changed:
        dropin.unlink()
    notes: list[str] = []
    if scope is Scope.USER and enabled:
        notes += _linger(linger, actions)
    if actions:  # the drop-in changed, or lingering went on (the manager starts now)
        actions.append("daemon-reload")
        notes += _reload(scope) if reload else []
    return ApplyResult(name, scope, dropin, changed, tuple(actions), before, after, diff,
                       notes=tuple(notes))


def _declared_install(path: Path, name: str, dirs: list[Path], ours: Path) -> bool:
    """Whether NAME's declaration, with its drop-ins other than OURS (the enable
    drop-in), has an install: setting ([Install] section)."""
    from hostctl.declarations.quadlet_reader import load_quadlet
    from hostctl.declarations.search import dropins_for
    from hostctl.declarations.yaml_reader import load_yaml

    others = [d for d in dropins_for(path, name, dirs) if d != ours]
    load = load_quadlet if path.name.endswith(".container") else load_yaml
    return bool(load(path, name, others).install)


def _linger(turn_on: bool, actions: list[str]) -> list[str]:
    from hostctl.systemd.linger import enable_linger, is_lingering, linger_hint, user_name

    if turn_on:
        if enable_linger():
            actions.insert(0, f"loginctl enable-linger {user_name()}")
        return []
    return [] if is_lingering() else [linger_hint()]


def reload_units(scope: Scope) -> list[str]:
    """One daemon-reload for declarations written with reload=False (see _reload)."""
    return _reload(scope)


def _reload(scope: Scope) -> list[str]:
    """daemon-reload; a user's manager that is not running needs none (its generator
    runs when it starts), which is only worth a note."""
    from hostctl.systemd.dbus import Systemd

    try:
        systemd = Systemd(scope)
    except HostctlError as err:
        if scope is Scope.USER:
            return [f"daemon-reload skipped ({err.message}); the unit is generated when "
                    "your systemd manager starts"]
        raise
    systemd.reload()
    return []
