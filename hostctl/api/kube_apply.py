"""Kubernetes YAML played idempotently: `kube play` and `kube down` that say what they
change (and, with check=True, only say it). The Ansible kube module calls these.

apply() translates and checks the manifests as `kube play` does, then compares what play
would write (each pod's and member's declaration, the ConfigMap and Secret files, the
record) with what is installed: an app installed as asked is left alone (its pods are
only started when they are not running); otherwise it is replaced as `kube play
--replace` replaces it: its units stopped, the files written, systemd reloaded, the pods
started. remove() is `kube down` for an app that is played, and nothing otherwise.

An app given inline (a definition, not a file on the host) is kept at
CONFIG/kube/APP/APP.yaml, next to its data, and goes with them at down.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hostctl.api.kube import Act, app_name, down_app, install_plan, plan_for, start_units
from hostctl.kube.install import (
    Record,
    atomic_write,
    check_install,
    data_dir,
    declarations,
    kube_dir,
    read_record,
    record_path,
    units,
)
from hostctl.kube.plan import Plan
from hostctl.paths import Paths, Scope, for_scope

RUNNING = ("active", "activating", "reloading")


@dataclass(frozen=True)
class KubeChange:
    """What apply() or remove() did (or, with check=True, would do)."""

    app: str
    changed: bool
    actions: tuple[str, ...]
    before: Mapping[str, str]  # installed file -> its text (data files: a digest line)
    after: Mapping[str, str]  # the same after the operation
    units: tuple[str, ...]  # the app's pod units

    @property
    def diffs(self) -> list[tuple[str, str, str]]:
        """(path, before, after) of each file that differs, in path order."""
        return [(path, self.before.get(path, ""), self.after.get(path, ""))
                for path in sorted({*self.before, *self.after})
                if self.before.get(path) != self.after.get(path)]


def definition_path(app: str, scope: Scope) -> Path:
    """Where apply() keeps an app given inline."""
    return kube_dir(for_scope(scope)) / app / f"{app}.yaml"


def _data_line(content: bytes, mode: int) -> str:
    """A data file as the diff shows it: never its content (a Secret's values)."""
    return f"{len(content)} bytes, mode {mode:04o}, sha256:{hashlib.sha256(content).hexdigest()}\n"


def planned(plan: Plan, paths: Paths, sources: Sequence[Path]) -> dict[str, str]:
    """Every file install() would write for PLAN, with its text."""
    source = " ".join(str(s) for s in sources)
    files = {str(p): text for p, text in declarations(plan, paths, source).items()}
    top = data_dir(paths, plan.app)
    files.update({str(top / item.path): _data_line(item.content, item.mode)
                  for item in plan.files})
    return files


def installed(record: Record | None, paths: Paths, app: str) -> dict[str, str]:
    """Every file RECORD lists and APP's data files, as planned() shows them."""
    if record is None:
        return {}
    files = {name: Path(name).read_text(encoding="utf-8") for name in record.files
             if Path(name).is_file()}
    top = data_dir(paths, app)
    for root, _, names in os.walk(top):
        for name in names:
            path = Path(root) / name
            files[str(path)] = _data_line(path.read_bytes(), path.stat().st_mode & 0o7777)
    return files


def _record_of(plan: Plan, paths: Paths, sources: Sequence[Path]) -> Record:
    files = declarations(plan, paths, "")
    return Record(plan.app, tuple(str(s) for s in sources), tuple(str(p) for p in files),
                  units(plan), plan.volumes, plan.scratch_volumes)


def _file_actions(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return ([f"write {path}" for path in sorted(after) if before.get(path) != after[path]]
            + [f"delete {path}" for path in sorted(set(before) - set(after))])


def apply(files: Sequence[Path], scope: Scope, *, definition: str | None = None,
          configmaps: Sequence[Path] = (), start: bool = True, check: bool = False,
          act: Act | None = None) -> KubeChange:
    """Play FILES unless they are installed as they are; with START, start the pods that
    do not run. DEFINITION: the text of the only file, an inline app's
    (definition_path()), written with the rest. CHECK changes nothing."""
    paths = for_scope(scope)
    texts = {files[0]: definition} if definition is not None else {}
    plan = plan_for(files, scope, configmaps, texts)
    old = check_install(plan, paths, replace=True)
    sources = [f.absolute() for f in files]
    before = installed(old, paths, plan.app)
    after = planned(plan, paths, sources)
    for path, text in texts.items():
        before.update({str(path): path.read_text(encoding="utf-8")} if path.is_file() else {})
        after[str(path)] = text
    replace = before != after or old != _record_of(plan, paths, sources)
    actions = _file_actions(before, after)
    if replace:
        stops = [f"stop {unit}" for unit in (old.units if old else ())]
        actions = [*stops, *actions, "daemon-reload"]
        starts = list(units(plan)) if start else []
    else:
        starts = [u for u in units(plan) if start and _state(u, scope) not in RUNNING]
    actions += [f"start {unit}" for unit in starts]
    if not check:
        if replace:
            for path, text in texts.items():
                atomic_write(path, text.encode("utf-8"), 0o600)
            install_plan(plan, scope, files, old, replace=True, start=start, act=act)
        elif act is not None:
            start_units(starts, act, scope)
    return KubeChange(plan.app, bool(actions), tuple(actions), before, after, units(plan))


def remove(file: Path, scope: Scope, *, volumes: bool = False, check: bool = False,
           act: Act | None = None) -> KubeChange:
    """`kube down` of the app FILE names (its stem), when it is played. VOLUMES: its
    PersistentVolumeClaims' named volumes go too."""
    app = app_name(file)
    paths = for_scope(scope)
    record = read_record(paths, app)
    if record is None:
        return KubeChange(app, False, (), {}, {}, ())
    before = installed(record, paths, app)
    definition = definition_path(app, scope)
    if definition.is_file():
        before[str(definition)] = definition.read_text(encoding="utf-8")
    actions = [*(f"stop {unit}" for unit in record.units),
               *(f"delete {path}" for path in sorted(before)),
               f"delete {record_path(paths, app)}", "daemon-reload"]
    if volumes:
        actions += [f"delete volume {name}" for name in record.volumes]
    if not check:
        down_app(app, scope, volumes=volumes, act=act)
    return KubeChange(app, True, tuple(actions), before, {}, record.units)


def _state(unit: str, scope: Scope) -> str:
    from hostctl.systemd.dbus import active_state

    return active_state(unit, scope)

