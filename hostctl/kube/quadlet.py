"""A quadlet `.kube` file at run time: what its unit's `kube-setup` and `kube-release`
do (hostctl.declarations.kube_file says how the file is read, hostctl.units.build how
its units are generated).

setup translates the YAML again (as the generator did), writes the ConfigMap and Secret
volume files under RUN/kube/NAME/data, each member's declaration into RUN/containers
(the first directory of the search path, so the launcher, health checks and `hostctl
ps` find it) and each pod's into RUN/kube/pods (where the pod unit looks too), and
records what it wrote in RUN/kube/NAME.json. The pods' units are started by the kube
unit's Wants=. release (the unit's ExecStopPost, after every member and pod stopped)
removes the emptyDir volumes, and with KubeDownForce=true the PersistentVolumeClaims' volumes too.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from hostctl.declarations.kube_file import KubeDecl, kube_files, load_kube
from hostctl.errors import DeclarationError
from hostctl.kube.install import Record, atomic_write, declarations, make_host_paths, write_data
from hostctl.kube.plan import Plan
from hostctl.paths import Paths, Scope, for_scope


def find(name: str, scope: Scope) -> KubeDecl:
    """The .kube file NAME of SCOPE, read."""
    from hostctl.declarations.dirs import declaration_dirs

    dirs = declaration_dirs(scope)
    path = kube_files(dirs).get(name)
    if path is None:
        raise DeclarationError(f"no file {name}.kube",
                               hint="looked in " + ", ".join(str(d) for d in dirs))
    return load_kube(path)


def kube_plan(decl: KubeDecl, paths: Paths) -> Plan:
    """DECL's YAML translated, every pod bound to the kube unit."""
    from hostctl.kube.translate import translate_files

    plan = translate_files(decl.name, decl.yaml, paths.run / "kube" / decl.name / "data",
                           configmaps=decl.configmaps, network=decl.network,
                           publish=decl.publish, auto_update=dict(decl.auto_update))
    unit = decl.unit_name
    bound = {"Requires": [unit], "After": [unit], "PartOf": [unit]}
    pods = []
    for pod in plan.pods:
        settings: dict[str, Any] = {**pod.settings, "unit": bound}
        pods.append(pod.replace(settings=settings))
    return dataclasses.replace(plan, pods=tuple(pods))


def kube_declarations(decl: KubeDecl, paths: Paths, plan: Plan) -> dict[Path, str]:
    return declarations(plan, paths, str(decl.source), run=True)


def check_file(path: Path, scope: Scope) -> None:
    """`hostctl validate NAME.kube`: the file, its YAML and every declaration it makes."""
    from hostctl.kube.check import read_declarations

    decl = load_kube(path)
    paths = for_scope(scope)
    read_declarations(kube_declarations(decl, paths, kube_plan(decl, paths)), path,
                      user=scope is Scope.USER)


def setup(name: str, scope: Scope) -> None:
    """Prepare the app of NAME.kube (its unit's ExecStart)."""
    paths = for_scope(scope)
    decl = find(name, scope)
    plan = kube_plan(decl, paths)
    files = kube_declarations(decl, paths, plan)
    write_data(plan, paths.run / "kube" / decl.name / "data")
    make_host_paths(plan)
    for path, text in files.items():
        atomic_write(path, text.encode("utf-8"), 0o600)
    record = Record(decl.name, tuple(str(p) for p in decl.yaml), tuple(str(p) for p in files),
                    tuple(f"{pod.name}-pod.service" for pod in plan.pods), plan.volumes,
                    plan.scratch_volumes)
    atomic_write(paths.run / "kube" / f"{decl.name}.json", record.to_json().encode("utf-8"), 0o600)


def release(name: str, scope: Scope) -> None:
    """Remove the app's emptyDir volumes, and its claims' with KubeDownForce= (the unit's
    ExecStopPost)."""
    from hostctl.kube.install import read_record_at
    from hostctl.volumes import volume_root

    paths = for_scope(scope)
    record = read_record_at(paths.run / "kube" / f"{name}.json")
    if record is None:
        return
    try:
        force = find(name, scope).down_force
    except DeclarationError:
        force = False
    for volume in (*record.scratch_volumes, *(record.volumes if force else ())):
        shutil.rmtree(volume_root(paths) / volume, ignore_errors=True)
