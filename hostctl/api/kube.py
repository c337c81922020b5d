"""`hostctl kube play|down`: Kubernetes YAML installed as hostctl declarations.

play translates the files (hostctl.kube.translate), checks every declaration it would
write with the readers the generator uses, writes them (hostctl.kube.install), reloads
systemd and starts each pod's unit (which starts its members). down stops those units,
removes what the record lists, reloads, and removes the emptyDir volumes (and the
PersistentVolumeClaims' named volumes with `volumes=True`, podman's `kube down --force`).
Nothing is written when any check fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hostctl.errors import HostctlError
from hostctl.kube.install import (
    Record,
    check_install,
    data_dir,
    declarations,
    install,
    read_record,
    record_path,
    uninstall,
)
from hostctl.kube.plan import Plan
from hostctl.paths import Scope, for_scope

Act = Callable[[str, str], str]  # (method, unit) -> the job's result


def app_name(path: Path) -> str:
    """The app a manifest file plays as: its file stem."""
    return path.name.rsplit(".", 1)[0] if "." in path.name else path.name


def plan_for(files: Sequence[Path], scope: Scope, configmaps: Sequence[Path] = (),
             texts: Mapping[Path, str] | None = None) -> Plan:
    """FILES translated and every resulting declaration checked. TEXTS: the content of
    files not written yet (an inline definition), instead of reading them."""
    from hostctl.kube.check import read_declarations
    from hostctl.kube.documents import load_documents, parse_documents
    from hostctl.kube.translate import translate

    if not files:
        raise HostctlError("no file given", hint="hostctl kube play FILE.yaml")
    app = app_name(files[0])
    paths = for_scope(scope)
    given = texts or {}
    docs = [doc for path in (*files, *configmaps) for doc in (
        parse_documents(given[path], path) if path in given else load_documents(path))]
    plan = translate(app, docs, data_dir(paths, app))
    read_declarations(declarations(plan, paths, str(files[0])), files[0],
                      user=scope is Scope.USER)
    return plan


def play(files: Sequence[Path], scope: Scope, *, replace: bool = False, start: bool = True,
         configmaps: Sequence[Path] = (), act: Act | None = None) -> Record:
    """Install FILES' declarations; with START, reload systemd and start the pods."""
    plan = plan_for(files, scope, configmaps)
    old = check_install(plan, for_scope(scope), replace=replace)  # before anything stops
    return install_plan(plan, scope, files, old, replace=replace, start=start, act=act)


def install_plan(plan: Plan, scope: Scope, files: Sequence[Path], old: Record | None, *,
                 replace: bool, start: bool, act: Act | None) -> Record:
    """Install PLAN (checked, of FILES; OLD: the app's record as check_install() found
    it), stopping what OLD runs first; with START, reload systemd and start the pods."""
    paths = for_scope(scope)
    if old is not None and replace:
        _stop(old, act)
        _forget(old, act)
    record = install(plan, paths, [f.absolute() for f in files], replace=replace)
    if act is not None:
        act("reload", "")
        if start:
            start_units(record.units, act, scope)
    return record


def start_units(unit_names: Sequence[str], act: Act, scope: Scope) -> None:
    """Start each unit, in order; one that does not start fails with its journal's hint."""
    journal = "journalctl --user-unit" if scope is Scope.USER else "journalctl -u"
    for unit in unit_names:
        result = act("StartUnit", unit)
        if result != "done":
            raise HostctlError(f"{unit} did not start ({result})", hint=f"{journal} {unit}")


def down(file: Path, scope: Scope, *, volumes: bool = False, act: Act | None = None
         ) -> Record:
    """Stop and remove what `kube play FILE` installed."""
    return down_app(app_name(file), scope, volumes=volumes, act=act, where=str(file))


def down_app(app: str, scope: Scope, *, volumes: bool = False, act: Act | None = None,
             where: str | None = None) -> Record:
    """down() of the app named APP (WHERE: the file it was named by, for errors)."""
    paths = for_scope(scope)
    record = read_record(paths, app)
    if record is None:
        raise HostctlError(f"{app} is not played", where=where or str(record_path(paths, app)),
                           hint="hostctl kube play installs it")
    _stop(record, act)
    uninstall(record, paths)
    if act is not None:
        act("reload", "")
    _forget(record, act)
    from hostctl.volumes import volume_root

    for name in (*record.scratch_volumes, *(record.volumes if volumes else ())):
        shutil.rmtree(volume_root(paths) / name, ignore_errors=True)
    return record


def _units(record: Record) -> list[str]:
    """Every unit of RECORD's app, in stopping order: pods, members, health checks."""
    from hostctl.units.render import HEALTH_SUFFIX

    members = [Path(f).name.rsplit(".", 1)[0] for f in record.files
               if Path(f).parent.name == "containers"]
    return [*record.units, *(f"{m}.service" for m in members),
            *(f"{m}{HEALTH_SUFFIX}.{kind}" for m in members for kind in ("timer", "service"))]


def _stop(record: Record, act: Act | None) -> None:
    if act is None:
        return
    for unit in _units(record):
        act("StopUnit", unit)


def _forget(record: Record, act: Act | None) -> None:
    """Reset the failed state of the app's units (a check cut short by the stop, a member
    killed after its grace period), so none stays listed once its file is gone."""
    if act is None:
        return
    for unit in _units(record):
        act("reset", unit)


def systemd_act(scope: Scope) -> Act:
    """Jobs through SCOPE's systemd manager."""
    from hostctl.systemd.dbus import Systemd

    manager = Systemd(scope)

    def act(method: str, unit: str) -> str:
        if method == "reload":
            manager.reload()
            return "done"
        if method == "reset":
            manager.reset_failed(unit)
            return "done"
        try:
            return manager.run_job(method, unit)
        except HostctlError:
            if method == "StopUnit":
                return "done"  # not loaded: nothing to stop
            raise
    return act
