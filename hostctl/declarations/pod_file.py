"""Pods: containers sharing network, IPC and UTS namespaces, declared in two forms.

Public names (stable; hostctl.kube builds on them):
- `Pod`: the validated pod, a frozen dataclass whose fields are the keys of
  pod_settings.POD_SETTINGS plus name, source, unit_refs and locations; `Pod.unit_name`
  is its unit, NAME-pod.service unless `service_name` says otherwise.
- `load_pod(path, *, user=False) -> Pod`: read a quadlet `NAME.pod` file or a YAML
  `NAME.yaml`/`NAME.yml` (by the suffix); errors are DeclarationError naming
  FILE:LINE:KEY. `parse_pod_yaml(text, source)` and `parse_pod_quadlet(text, source)`
  read text already in hand.
- `pod_files(dirs, yaml_dir) -> {name: path}`: how the generator finds a scope's pods:
  `NAME.pod` in the container declaration directories DIRS (the first wins; one
  masked by /dev/null hides the others), then `YAML_DIR/NAME.yaml`, where YAML_DIR is
  `pods_dir(paths.config)`: /etc/hostctl/pods, or ~/.config/hostctl/pods for a user.
- A container joins pod NAME with `pod: NAME` (quadlet `Pod=NAME.pod`), a setting of the
  container settings table; `start_with_pod` (StartWithPod=) says whether the pod's unit
  starts it; `pod_where(container)` is the FILE:LINE:KEY of that setting.
- The pod's runtime (namespaces, record, members joining) is hostctl.pod.

The .pod file's [Pod] keys are the `quadlet` column of POD_SETTINGS; [Unit], [Service]
and [Install] pass through like `unit:`, `service:` and `install:`; [Quadlet]
DefaultDependencies= is `default_dependencies`. Other keys are refused naming
FILE:LINE:KEY (pod_settings.REFUSED says why for the ones podman knows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.declarations import checks, values
from hostctl.declarations.checks import Invalid
from hostctl.declarations.kinds import ExitPolicy
from hostctl.declarations.model import Container, Directives, Pairs, Port, Volume
from hostctl.declarations.pod_settings import (
    POD_BY_QUADLET,
    POD_DEFAULTS,
    POD_SETTINGS,
    REFUSED,
)
from hostctl.declarations.scan import typed_files
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, split_words, unquote
from hostctl.errors import DeclarationError, raise_all

SUFFIX = ".pod"
UNIT_SUFFIX = "-pod.service"
_PASS_THROUGH = {"Unit": "unit", "Service": "service", "Install": "install"}
# [Service] directives of the pod's unit that hostctl sets itself.
RESERVED_SERVICE: Mapping[str, str] = {
    name: "hostctl's pod unit sets it (it holds the pod's namespaces)"
    for name in ("Type", "RemainAfterExit", "ExecStart", "ExecStartPre", "ExecStop",
                 "ExecStopPost", "KillMode", "NotifyAccess", "PIDFile")
} | {
    "User": "a pod runs as its scope's owner (root, or the user of a user's pod)",
    "Group": "a pod runs as its scope's owner (root, or the user of a user's pod)",
    "DynamicUser": "a pod runs as its scope's owner (root, or the user of a user's pod)",
    "TimeoutStopSec": "use the `stop_timeout:` setting (StopTimeout=)",
}


@dataclass(frozen=True)
class Pod:
    """One declared pod. Types: pod_name str | None; network str ("host", "none",
    "bridge" or a network name); network_aliases tuple[str, ...]; ip, ip6 str | None;
    ports tuple[Port, ...]; hostname str | None; dns
    tuple[str, ...]; dns_search tuple[str, ...]; dns_options tuple[str, ...]; add_hosts
    Pairs; volumes tuple[Volume, ...] (mounted in every member); shm_size int | None
    (bytes); labels Pairs; exit_policy ExitPolicy; stop_timeout int (s); service_name
    str | None ("X.service"); default_dependencies bool; unit/service/install Directives.
    unit_refs: ("volume" | "network", NAME, FILE:LINE:KEY) for NAME.volume and
    NAME.network the file names."""

    name: str
    source: Path
    pod_name: str | None = POD_DEFAULTS["pod_name"]
    network: str = POD_DEFAULTS["network"]
    network_aliases: tuple[str, ...] = POD_DEFAULTS["network_aliases"]
    ip: str | None = POD_DEFAULTS["ip"]
    ip6: str | None = POD_DEFAULTS["ip6"]
    ports: tuple[Port, ...] = POD_DEFAULTS["ports"]
    hostname: str | None = POD_DEFAULTS["hostname"]
    dns: tuple[str, ...] = POD_DEFAULTS["dns"]
    dns_search: tuple[str, ...] = POD_DEFAULTS["dns_search"]
    dns_options: tuple[str, ...] = POD_DEFAULTS["dns_options"]
    add_hosts: Pairs = POD_DEFAULTS["add_hosts"]
    volumes: tuple[Volume, ...] = POD_DEFAULTS["volumes"]
    shm_size: int | None = POD_DEFAULTS["shm_size"]
    labels: Pairs = POD_DEFAULTS["labels"]
    exit_policy: ExitPolicy = POD_DEFAULTS["exit_policy"]
    stop_timeout: int = POD_DEFAULTS["stop_timeout"]
    service_name: str | None = POD_DEFAULTS["service_name"]
    default_dependencies: bool = POD_DEFAULTS["default_dependencies"]
    unit: Directives = POD_DEFAULTS["unit"]
    service: Directives = POD_DEFAULTS["service"]
    install: Directives = POD_DEFAULTS["install"]
    unit_refs: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)
    locations: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def where(self, key: str) -> str:
        """FILE:LINE:KEY for a setting of this pod (FILE:KEY without a line); KEY is the
        setting's name, found under its quadlet key in a .pod file's locations."""
        lines = dict(self.locations)
        if key not in lines:
            key = next((q for q, s in POD_BY_QUADLET.items() if s.key == key and q in lines),
                       key)
        line = lines.get(key)
        return f"{self.source}:{line}:{key}" if line else f"{self.source}:{key}"

    @property
    def unit_name(self) -> str:
        return self.service_name or f"{self.name}{UNIT_SUFFIX}"

    @property
    def display_name(self) -> str:
        return self.pod_name or self.name

    @property
    def members_hostname(self) -> str:
        return self.hostname or self.display_name


def pod_where(container: Container) -> str:
    """FILE:LINE:KEY of the container's `pod:` (a quadlet file's Pod= line)."""
    return next((where for kind, _, where in container.unit_refs if kind == "pod"),
                container.where("pod"))


def pods_dir(config: Path) -> Path:
    """Where the YAML form lives, under the scope's config directory."""
    return config / "pods"


def pod_files(dirs: list[Path], yaml_dir: Path | None = None) -> dict[str, Path]:
    """name -> its pod file: NAME.pod in the first of DIRS holding one (masked by
    /dev/null: none), else YAML_DIR/NAME.yaml (or .yml)."""
    return typed_files(dirs, SUFFIX, yaml_dir)


def load_pod(path: Path, *, user: bool = False) -> Pod:
    """Read and validate the pod file PATH (NAME.pod, NAME.yaml or NAME.yml)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DeclarationError(f"not UTF-8 text (byte {err.start})", where=str(path)) from None
    except OSError as err:
        raise DeclarationError(f"cannot read: {err.strerror}", where=str(path)) from None
    pod = parse_pod_yaml(text, path) if path.name.endswith((".yaml", ".yml")) \
        else parse_pod_quadlet(text, path)
    if user:
        check_user_pod(pod)
    return pod


def check_user_pod(pod: Pod) -> None:
    """A user's pod has pasta's network (or none, or the host's): no static address and
    no names of a declared network."""
    key = next((k for k in ("ip", "ip6", "network_aliases") if getattr(pod, k)), None)
    if key is not None:
        raise DeclarationError(f"a user's pod cannot have {key}", where=pod.where(key),
                               hint="a user's pod is on pasta's network (a user's pod "
                               "cannot join a declared network): drop it, or make the pod "
                               "rootful")


def _check_name(name: str, source: Path) -> None:
    try:
        checks.check_name(name)
        values.parse_pod(name)
        if "@" in name:
            raise Invalid(f"{name!r} is a template pod", "hostctl has no pod templates")
    except Invalid as err:
        raise DeclarationError(err.message, where=str(source), hint=err.hint) from None


def check_pod(found: Mapping[str, Any]) -> None:
    """Raise values.Conflict when a pod's settings contradict each other."""
    if found.get("network") == "host" and found.get("ports"):
        raise values.Conflict("ports", "ports are published on a pod with network host",
                              "with the host's network the members' ports are the host's; "
                              "drop ports (PublishPort=)")
    network = found.get("network", "bridge")
    for key in ("ip", "ip6", "network_aliases"):
        if found.get(key) and network in ("host", "none"):
            raise values.Conflict(key, f"{key} with network {network}",
                                  "put the pod on bridge or a declared network, or drop it")
    if any(str(volume.kind) == "anonymous" for volume in found.get("volumes", ())):
        # podman's is one volume of the pod's infra container; each member would get its own
        raise values.Conflict("volumes", "a pod cannot have an anonymous volume",
                              "give it a name (NAME:/path): the members then share it")
    values.check_combination({key: found[key] for key in ("ports", "volumes", "service")
                              if key in found})


def parse_pod_yaml(text: str, source: Path) -> Pod:
    """Validate the YAML pod TEXT, which came from SOURCE (used in errors)."""
    from hostctl.declarations.yaml_reader import read_table

    name = source.name.removesuffix(".yaml").removesuffix(".yml")
    _check_name(name, source)
    found, locations = read_table(text, source, POD_SETTINGS, check_pod)
    return Pod(name=name, source=source, locations=locations, **found)


def parse_pod_quadlet(text: str, source: Path) -> Pod:
    """Validate the .pod TEXT, which came from SOURCE (used in errors)."""
    name = source.name.removesuffix(SUFFIX)
    _check_name(name, source)
    try:
        entries = parse_unit_text(text)
    except SyntaxProblem as err:
        raise DeclarationError(err.message, where=f"{source}:{err.line}", hint=err.hint) from None
    reader = _QuadletPod(source)
    for entry in entries:
        where = f"{source}:{entry.line}:{entry.key}"
        try:
            reader.entry(entry.section, entry.key, entry.value, where)
        except Invalid as err:
            reader.problems.append(DeclarationError(err.message, where=where, hint=err.hint))
        reader.locations.setdefault(entry.key, entry.line)
    raise_all(reader.problems)
    found: dict[str, Any] = dict(reader.found)
    for key, directives in reader.sections.items():
        found[key] = tuple(directives)
    try:
        check_pod(found)
    except values.Conflict as err:
        raise DeclarationError(err.message, where=reader.lines.get(err.key, str(source)),
                               hint=err.hint) from None
    return Pod(name=name, source=source, unit_refs=tuple(reader.refs),
               locations=tuple(reader.locations.items()), **found)


class _QuadletPod:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.found: dict[str, Any] = {}
        self.sections: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.refs: list[tuple[str, str, str]] = []
        self.lines: dict[str, str] = {}
        self.locations: dict[str, int] = {}
        self.problems: list[DeclarationError] = []

    def entry(self, section: str, key: str, value: str, where: str) -> None:
        from hostctl.declarations.quadlet_reader import _expand, set_value
        from hostctl.declarations.quadlet_values import network_ref as _network_ref
        from hostctl.declarations.quadlet_values import volume_ref as _volume_ref

        if section in _PASS_THROUGH:
            self._directive(section, key, value, where)
            return
        if section == "Quadlet":
            if key != "DefaultDependencies":
                raise Invalid(f"unsupported [Quadlet] key {key!r}",
                              "supported [Quadlet] keys: DefaultDependencies")
            self.found["default_dependencies"] = values.parse_bool(unquote(value))
            return
        if section != "Pod":
            raise Invalid(f"section [{section}] is not supported in a .pod file",
                          "a .pod file has [Pod], [Unit], [Service], [Install] and [Quadlet]")
        if key in REFUSED:
            raise Invalid(f"unsupported key {key!r}", REFUSED[key])
        setting = POD_BY_QUADLET.get(key)
        if setting is None:
            raise Invalid(f"unsupported key {key!r}",
                          f"{checks.suggest(key, POD_BY_QUADLET)}supported [Pod] keys: "
                          f"{', '.join(sorted(POD_BY_QUADLET))}")
        value = _expand(value)
        if key == "Volume":
            value, volume = _volume_ref(value, False)
            if volume is not None:
                self.refs.append(("volume", volume, where))
        if key == "Network" and unquote(value).endswith(".network"):
            value = _network_ref(unquote(value))
            self.refs.append(("network", value, where))
        if not value:
            self.found.pop(setting.key, None)
            return
        set_value(self.found, setting, value, self.source)
        self.lines[setting.key] = where

    def _directive(self, section: str, key: str, value: str, where: str) -> None:
        from hostctl.declarations.quadlet_reader import _DEPENDENCY_DIRECTIVES, _translate_units

        if section == "Service" and key in RESERVED_SERVICE:
            raise Invalid(f"{key}= is set by hostctl and cannot be changed",
                          RESERVED_SERVICE[key])
        checks.check_directive(section if section != "Service" else "Pod", key)
        if section == "Install":
            value = " ".join(split_words(value))
        elif section == "Unit" and key in _DEPENDENCY_DIRECTIVES:
            value, names = _translate_units(value)
            self.refs += [(kind, name, where) for kind, name in names]
        value = checks.check_directive_value(section if section != "Service" else "Pod",
                                             key, value)
        self.sections.setdefault(_PASS_THROUGH[section], []).append((key, (value,)))
