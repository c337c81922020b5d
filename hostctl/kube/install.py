"""Installing a plan where the generator reads declarations, and removing it again.

`kube play` writes each member's declaration (CONFIG/containers/NAME.yaml), each pod's
(CONFIG/pods/NAME.yaml), the ConfigMap and Secret volume files (CONFIG/kube/APP/data/,
root-only above the mounted directories) and a record of all of it
(CONFIG/kube/APP.json), which `kube down` reads to stop and remove exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hostctl.declarations.kube_file import kube_pods_dir
from hostctl.declarations.pod_file import pods_dir
from hostctl.errors import DeclarationError, HostctlError
from hostctl.kube.plan import Plan, PodPlan
from hostctl.paths import Paths

KUBE_HEADER = "# written by hostctl kube from "  # the first line of every file written
HEADER = KUBE_HEADER + "{source}\n"


@dataclass(frozen=True)
class Record:
    """What `kube play` installed for one app."""

    app: str
    sources: tuple[str, ...]
    files: tuple[str, ...]  # declaration files written
    units: tuple[str, ...]  # units to start, in order (pods, then their members)
    volumes: tuple[str, ...]  # PersistentVolumeClaims: kept unless --volumes
    scratch_volumes: tuple[str, ...]  # emptyDirs: removed by down

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v
                           for k, v in self.__dict__.items()}, indent=2) + "\n"


def kube_dir(paths: Paths) -> Path:
    return paths.config / "kube"


def data_dir(paths: Paths, app: str) -> Path:
    """Where APP's ConfigMap and Secret volume files live."""
    return kube_dir(paths) / app / "data"


def record_path(paths: Paths, app: str) -> Path:
    return kube_dir(paths) / f"{app}.json"


def read_record(paths: Paths, app: str) -> Record | None:
    return read_record_at(record_path(paths, app))


def read_record_at(path: Path) -> Record | None:
    """The record in PATH, None if there is none."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise HostctlError(f"cannot read: {err}", where=str(path)) from None
    return Record(raw["app"], *(tuple(raw[key]) for key in (
        "sources", "files", "units", "volumes", "scratch_volumes")))


def declarations(plan: Plan, paths: Paths, source: str, *, run: bool = False
                 ) -> dict[Path, str]:
    """Every declaration file of PLAN (path -> text): CONFIG/containers/MEMBER.yaml and
    CONFIG/pods/POD.yaml, or with RUN (a .kube file's, written by its unit at each
    start) RUN/containers/MEMBER.yaml and RUN/kube/pods/POD.yaml."""
    containers = (paths.run if run else paths.config) / "containers"
    pods = kube_pods_dir(paths.run) if run else pods_dir(paths.config)
    files: dict[Path, str] = {}
    header = HEADER.format(source=source)
    for pod in plan.pods:
        files[pods / f"{pod.name}.yaml"] = header + _dump(pod_settings(pod))
        for member in pod.members:
            files[containers / f"{member.name}.yaml"] = header + _dump(dict(member.settings))
    return files


def pod_settings(pod: PodPlan) -> dict[str, Any]:
    """The pod declaration of POD."""
    settings: dict[str, Any] = dict(pod.settings)
    if pod.ports:
        settings["ports"] = list(pod.ports)
    return settings


def units(plan: Plan) -> tuple[str, ...]:
    """What starts the app: each pod's unit (its members start with it)."""
    return tuple(f"{pod.name}-pod.service" for pod in plan.pods)


def _dump(settings: dict[str, Any]) -> str:
    return yaml.safe_dump(settings, sort_keys=False, default_flow_style=False, width=1000)


def check_install(plan: Plan, paths: Paths, *, replace: bool) -> Record | None:
    """Refuse to overwrite a file another app (or the user) owns, and this app's own
    files unless REPLACE; the app's record as it is (None: not played)."""
    old = read_record(paths, plan.app)
    if old is not None and not replace:
        raise HostctlError(f"{plan.app} is already played",
                           where=str(record_path(paths, plan.app)),
                           hint="give --replace, or run `hostctl kube down` first")
    owned = set(old.files) if old else set()
    for path in declarations(plan, paths, ""):
        if path.exists() and str(path) not in owned:
            raise DeclarationError(f"{path.name} exists and is not {plan.app}'s",
                                   where=str(path),
                                   hint="rename the pod or container in the YAML, or remove it")
    return old


def install(plan: Plan, paths: Paths, sources: list[Path], *, replace: bool) -> Record:
    """Write PLAN's declarations, data files and record (after check_install), removing
    the files of the app's last play it no longer has."""
    files = declarations(plan, paths, " ".join(str(s) for s in sources))
    old = check_install(plan, paths, replace=replace)
    if old is not None:
        for stale in set(old.files) - {str(p) for p in files}:
            Path(stale).unlink(missing_ok=True)
    write_data(plan, data_dir(paths, plan.app))
    make_host_paths(plan)
    for path, text in files.items():
        atomic_write(path, text.encode("utf-8"), 0o600)
    record = Record(plan.app, tuple(str(s) for s in sources), tuple(str(p) for p in files),
                    units(plan), plan.volumes, plan.scratch_volumes)
    atomic_write(record_path(paths, plan.app), record.to_json().encode("utf-8"), 0o600)
    return record


def write_data(plan: Plan, top: Path) -> None:
    """The volume files, in a fresh directory swapped in for the old one."""
    fresh = top.with_name(f".data.{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True, mode=0o700)
    os.chmod(top.parent, 0o700)
    for item in plan.files:
        path = fresh / item.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(item.content)
        os.chmod(path, item.mode)
    for pod in plan.pods:  # a configMap volume whose ConfigMap is optional and missing
        (fresh / pod.name).mkdir(exist_ok=True, mode=0o755)
    old = top.with_name(f".old.{os.getpid()}")
    if top.exists():
        os.replace(top, old)
    os.replace(fresh, top)
    shutil.rmtree(old, ignore_errors=True)


def make_host_paths(plan: Plan) -> None:
    """hostPath volumes of type DirectoryOrCreate (0755) and FileOrCreate (an empty 0644
    file) that do not exist yet, as the kubelet makes them."""
    for path, kind in plan.host_paths:
        if kind == "DirectoryOrCreate":
            Path(path).mkdir(parents=True, exist_ok=True, mode=0o755)
        elif not os.path.lexists(path):
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temp, path)


def uninstall(record: Record, paths: Paths) -> None:
    """Remove what RECORD lists (the units are stopped by the caller)."""
    for name in record.files:
        Path(name).unlink(missing_ok=True)
    shutil.rmtree(kube_dir(paths) / record.app, ignore_errors=True)
    record_path(paths, record.app).unlink(missing_ok=True)
