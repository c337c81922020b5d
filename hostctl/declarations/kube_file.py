"""Reading podman quadlet `.kube` files: Kubernetes YAML played as a unit.

`NAME.kube` among the container declarations names Kubernetes YAML files (Yaml=,
relative to the .kube file's directory). The generator translates them as `hostctl kube
play` does (hostctl.kube.translate) and writes NAME.service (or ServiceName=), a oneshot
unit that prepares the app (`hostctl kube-setup NAME`: the member and pod declarations
and the ConfigMap/Secret volume files under the run directory) and starts every pod's
unit, each pod its members: all of them units of their own, PartOf= NAME.service, so
stopping it stops them. KEY_TABLE says how each [Kube] key maps (it feeds
docs/declarations.md); other keys are refused with FILE:LINE:KEY and the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hostctl.declarations import checks, values
from hostctl.declarations.checks import Invalid, suggest
from hostctl.declarations.model import Directives
from hostctl.declarations.scan import typed_files
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, unquote
from hostctl.errors import DeclarationError

SUFFIX = ".kube"
KEY_TABLE: dict[str, str] = {
    "Yaml": "a Kubernetes YAML file (absolute, or relative to the .kube file); may repeat",
    "ConfigMap": "a YAML file of ConfigMaps the manifests refer to; may repeat",
    "PublishPort": "[IP:]HOST:CONTAINER[/tcp|udp]: replaces the YAML's hostPort for the "
    "same container port and protocol, or adds one, on each pod exposing it",
    "Network": "the pods' network: host, none, a network name or NAME.network",
    "AutoUpdate": "registry or local for every container, or CONTAINER/registry|local",
    "ServiceName": "the kube unit's name instead of NAME.service",
    "SetWorkingDirectory": "yaml or unit: the kube unit's WorkingDirectory= (unless "
    "[Service] sets it)",
    "KubeDownForce": "true: stopping the unit also removes the PersistentVolumeClaims' "
    "named volumes (emptyDir volumes always are)",
    "ExitCodePropagation": "none only: the unit's result does not follow its containers' "
    "(each is a unit of its own, with its own result)",
}
_REFUSED = {
    "PodmanArgs": "hostctl does not run podman",
    "GlobalArgs": "hostctl does not run podman",
    "ContainersConfModule": "hostctl does not read containers.conf modules",
    "LogDriver": "a container's output is its unit's journal",
    "LogOpt": "a container's output is its unit's journal",
    "UserNS": "hostctl maps a rootless pod's users as its containers'; rootful pods run "
    "without a user namespace",
}
_SECTIONS = {"Unit": "unit", "Service": "service", "Install": "install"}
_RESERVED = ("ExecStart", "ExecStartPre", "ExecStop", "ExecStopPost", "RemainAfterExit",
             "KillMode")


@dataclass(frozen=True)
class KubeDecl:
    """A .kube file: the app NAME and how to play it."""

    name: str
    source: Path
    yaml: tuple[Path, ...]
    configmaps: tuple[Path, ...] = ()
    publish: tuple[str, ...] = ()
    network: str | None = None
    auto_update: tuple[tuple[str, str], ...] = ()  # ("" for all, or a container) -> how
    service_name: str | None = None
    working_directory: str | None = None
    down_force: bool = False
    default_dependencies: bool = True
    unit: Directives = ()
    service: Directives = ()
    install: Directives = ()
    locations: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def unit_name(self) -> str:
        return self.service_name or f"{self.name}.service"

    def where(self, key: str) -> str:
        return dict(self.locations).get(key, str(self.source))


def kube_pods_dir(run: Path) -> Path:
    """Where a .kube file's unit writes its pods' declarations (under the run directory)."""
    return run / "kube" / "pods"


def kube_files(dirs: list[Path]) -> dict[str, Path]:
    """name -> its .kube file, the first of DIRS holding one (a /dev/null link masks)."""
    return typed_files(dirs, SUFFIX)


def load_kube(path: Path) -> KubeDecl:
    """Read and check the .kube file PATH (the YAML files are read when played)."""
    name = path.name.removesuffix(SUFFIX)
    try:
        checks.check_name(name)
        if "@" in name:
            raise Invalid(f"{name!r} is a template", "hostctl has no .kube templates")
        text = path.read_text(encoding="utf-8")
        entries = parse_unit_text(text)
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path)) from None
    except SyntaxProblem as err:
        raise DeclarationError(err.message, where=f"{path}:{err.line}", hint=err.hint) from None
    except Invalid as err:
        raise DeclarationError(err.message, where=str(path), hint=err.hint) from None
    reader = _Reader(path, name)
    for entry in entries:
        where = f"{path}:{entry.line}:{entry.key}"
        try:
            reader.take(entry.section, entry.key, unquote(entry.value), where)
        except Invalid as err:
            raise DeclarationError(err.message, where=where, hint=err.hint) from None
    return reader.result()


class _Reader:
    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self.lists: dict[str, list[str]] = {}
        self.single: dict[str, str] = {}
        self.sections: dict[str, list[tuple[str, tuple[str, ...]]]] = {
            key: [] for key in _SECTIONS.values()}
        self.where: dict[str, str] = {}
        self.default_dependencies = True

    def take(self, section: str, key: str, value: str, where: str) -> None:
        if section in _SECTIONS:
            if section == "Service" and key in _RESERVED:
                raise Invalid(f"[Service] {key}= is hostctl's own in a kube unit",
                              "the unit starts and stops the pods itself")
            if section == "Service" and key == "Type" and value != "oneshot":
                raise Invalid(f"Type={value} is not possible",
                              "a kube unit is a oneshot unit that starts the pods")
            self.sections[_SECTIONS[section]].append((key, (value,)))
            return
        if section == "Quadlet" and key == "DefaultDependencies":
            self.default_dependencies = values.parse_bool(value)
            return
        if section != "Kube":
            raise Invalid(f"section [{section}] is not supported in a .kube file",
                          "sections: [Kube], [Unit], [Service], [Install], [Quadlet]")
        self._kube_key(key, value)
        self.where.setdefault(key, where)

    def _kube_key(self, key: str, value: str) -> None:
        if key in _REFUSED or key.startswith("Remap"):
            raise Invalid(f"unsupported key {key!r}", _REFUSED.get(key, _REFUSED["UserNS"]))
        if key not in KEY_TABLE:
            raise Invalid(f"unsupported key {key!r}", f"{suggest(key, KEY_TABLE)}supported "
                          f"[Kube] keys: {', '.join(KEY_TABLE)}")
        if key == "PublishPort":
            values.parse_port(value)
        elif key == "AutoUpdate":
            how = value.rpartition("/")[2]
            if how not in ("registry", "local"):
                raise Invalid(f"{value!r} is not registry, local or CONTAINER/registry|local",
                              "e.g. AutoUpdate=registry or AutoUpdate=web/local")
        elif key == "SetWorkingDirectory" and value not in ("yaml", "unit"):
            raise Invalid(f"{value!r} is not yaml or unit", "SetWorkingDirectory=yaml")
        elif key == "ExitCodePropagation" and value != "none":
            raise Invalid(f"ExitCodePropagation={value} is not supported",
                          "each container is a unit of its own with its own result")
        elif key == "KubeDownForce":
            values.parse_bool(value)
        elif key == "ServiceName":
            checks.check_name(value.removesuffix(".service"))
        if key in ("Yaml", "ConfigMap", "PublishPort", "Network", "AutoUpdate"):
            self.lists.setdefault(key, []).append(value)
        else:
            self.single[key] = value

    def _path(self, value: str) -> Path:
        return Path(os.path.normpath(self.path.absolute().parent / value))

    def result(self) -> KubeDecl:
        yaml = self.lists.get("Yaml", [])
        if not yaml:
            raise DeclarationError("no Yaml= in [Kube]", where=str(self.path),
                                   hint="add Yaml=FILE.yaml (the Kubernetes YAML to play)")
        networks = self.lists.get("Network", [])
        if len(networks) > 1:
            raise DeclarationError("a second Network=", where=self.where["Network"],
                                   hint="hostctl pods join one network")
        workdir = self.single.get("SetWorkingDirectory")
        if workdir == "yaml" and len(yaml) > 1:
            raise DeclarationError("SetWorkingDirectory=yaml with several Yaml=",
                                   where=self.where["SetWorkingDirectory"],
                                   hint="use SetWorkingDirectory=unit")
        directory = None
        if workdir and not any(k == "WorkingDirectory" for k, _ in self.sections["service"]):
            directory = str(self._path(yaml[0]).parent if workdir == "yaml"
                            else self.path.absolute().parent)
        updates = [(v.rpartition("/")[0], v.rpartition("/")[2])
                   for v in self.lists.get("AutoUpdate", [])]
        service_name = self.single.get("ServiceName")
        return KubeDecl(
            name=self.name, source=self.path,
            yaml=tuple(self._path(v) for v in yaml),
            configmaps=tuple(self._path(v) for v in self.lists.get("ConfigMap", [])),
            publish=tuple(self.lists.get("PublishPort", [])),
            network=networks[0].removesuffix(".network") if networks else None,
            auto_update=tuple(updates),
            service_name=f"{service_name.removesuffix('.service')}.service"
            if service_name else None,
            working_directory=directory,
            down_force=values.parse_bool(self.single.get("KubeDownForce", "false")),
            default_dependencies=self.default_dependencies,
            unit=tuple(self.sections["unit"]), service=tuple(self.sections["service"]),
            install=tuple(self.sections["install"]),
            locations=tuple(self.where.items()),
        )


def input_files(dirs: list[Path]) -> list[str]:
    """The YAML (and ConfigMap) files of DIRS' .kube files: the generator's render cache
    stamps each one itself (a change, a replacement or its removal renders anew), not
    the directory it is in, whose other files may change all the time."""
    found: list[str] = []
    for path in kube_files(dirs).values():
        try:
            decl = load_kube(path)
        except DeclarationError:
            continue  # reported when rendered
        found += [os.fspath(p) for p in (*decl.yaml, *decl.configmaps)]
    return list(dict.fromkeys(found))
