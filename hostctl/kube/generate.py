"""The generator's part for quadlet `.kube` files: each file's kube unit, and its
members and pods as declarations the generator renders like any other.

A member's declaration is read from the translation (with the .kube file as its
source); `kube-setup` writes the same text into the run directory for the launcher
(hostctl.kube.quadlet), where the generator then finds it too: that copy is skipped.
A member or pod name that another declaration already has makes the app fail (its kube
unit fails with the reason; its members get no units).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hostctl.declarations.kube_file import KubeDecl, kube_files, load_kube
from hostctl.declarations.model import Container
from hostctl.declarations.pod_file import Pod
from hostctl.declarations.search import SUFFIXES
from hostctl.errors import DeclarationError, HostctlError
from hostctl.kube.check import read_declarations
from hostctl.kube.quadlet import kube_declarations, kube_plan
from hostctl.paths import Paths, Scope

Report = Callable[[str], None]


@dataclass
class KubeApps:
    """What the scope's .kube files declare."""

    kube_units: list[tuple[KubeDecl, tuple[str, ...]]] = field(default_factory=list)
    failed: list[tuple[str, Path, HostctlError]] = field(default_factory=list)
    containers: dict[str, Container] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    own_files: set[Path] = field(default_factory=set)  # kube-setup's copies in RUN


def kube_apps(dirs: list[Path], paths: Paths, found: Mapping[str, Path],
              pods_found: Mapping[str, Pod], report: Report) -> KubeApps:
    """Every .kube file of DIRS, translated; FOUND and PODS_FOUND are the other
    declarations (name -> file, name -> pod)."""
    apps = KubeApps()
    for name, path in kube_files(dirs).items():
        try:
            decl = load_kube(path)
            plan = kube_plan(decl, paths)
            files = kube_declarations(decl, paths, plan)
            for file in files:
                if file.parent.name == "pods":
                    other = pods_found[file.stem].source if file.stem in pods_found else None
                else:
                    other = _declared(file.stem, dirs, paths, found)
                if (other is not None and other != file) or (
                        file.stem in apps.containers or file.stem in apps.pods):
                    raise DeclarationError(
                        f"{file.stem} is declared by {other or 'another .kube file'} too",
                        where=str(path), hint="rename the pod or container in the YAML")
            containers, pods = read_declarations(files, path, user=paths.scope is Scope.USER)
        except HostctlError as err:
            report(str(err))
            apps.failed.append((name, path, err))
            continue
        apps.containers.update(containers)
        apps.pods.update(pods)
        apps.own_files.update(files)
        apps.kube_units.append((decl, tuple(p.unit_name for p in pods.values())))
    return apps


def _declared(name: str, dirs: list[Path], paths: Paths, found: Mapping[str, Path]
              ) -> Path | None:
    """The declaration of container NAME other than kube-setup's copy in RUN/containers
    (which shadows the others: a clash there would go unnoticed)."""
    copy = paths.run / "containers"
    if found.get(name) is not None and found[name].parent != copy:
        return found[name]
    for directory in dirs:
        if directory == copy:
            continue
        for suffix in SUFFIXES:
            if (directory / f"{name}{suffix}").exists():
                return directory / f"{name}{suffix}"
    return None
