"""A Kubernetes pod spec (a Pod's, or a Deployment's template) as a hostctl pod plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.kube.containers import Mount, PodFields, Sources, container_ports, container_settings
from hostctl.kube.documents import Fields
from hostctl.kube.plan import DataFile, Member, PodPlan

POD_FIELDS = (
    "containers", "initContainers", "volumes", "restartPolicy", "hostNetwork",
    "securityContext", "terminationGracePeriodSeconds", "hostAliases", "dnsConfig",
    "hostname",
)
# Fields that only place or account a pod in a cluster: accepted, nothing to do here.
POD_IGNORED = ("nodeSelector", "affinity", "tolerations", "schedulerName",
               "priorityClassName", "serviceAccountName", "automountServiceAccountToken",
               "enableServiceLinks", "dnsPolicy")
RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
VOLUME_KINDS = ("hostPath", "emptyDir", "configMap", "secret", "persistentVolumeClaim")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")


@dataclass(frozen=True)
class Objects:
    """The app's ConfigMaps and Secrets (name -> key -> text), and where its data files go."""

    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]
    data_dir: Path


@dataclass(frozen=True)
class PodResult:
    pod: PodPlan
    files: tuple[DataFile, ...]
    claims: tuple[str, ...]
    scratch: tuple[str, ...]
    host_paths: tuple[tuple[str, str], ...] = ()  # hostPath *OrCreate: (path, type)


@dataclass(frozen=True)
class PodMeta:
    """The pod's name, labels and annotations, and its replica's hostPort shift."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    shift: int = 0
    network: str | None = None
    namespace: str = "default"


def translate_pod(spec: Fields, meta: PodMeta, objects: Objects) -> PodResult:
    """The pod plan of SPEC."""
    spec.only(POD_FIELDS, POD_IGNORED)
    volumes = _volumes(spec, meta.name, objects)
    security = spec.sub("securityContext")
    security.only(("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups",
                   "sysctls"))
    defaults = {key: security.get(key) for key in ("runAsUser", "runAsGroup",
                                                   "runAsNonRoot", "supplementalGroups")}
    fields = PodFields(meta.name, meta.namespace, meta.labels, meta.annotations)
    sources = Sources(objects.configmaps, objects.secrets, volumes.mounts, defaults, fields)
    shared = _shared(spec, meta)
    pod_settings = _pod_settings(spec, meta)
    if not spec.value.get("containers"):
        raise spec.error("containers", "missing", "a pod runs at least one container")
    inits = [_member(c, sources, meta, shared, True) for c in spec.items("initContainers")]
    members = [_member(c, sources, meta, shared, False) for c in spec.items("containers")]
    if inits:
        after = [f"{m.name}.service" for m in inits]
        members = [Member(m.name, {**m.settings, "unit": {"Requires": after, "After": after}})
                   for m in members]
    names = [m.name for m in (*inits, *members)]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise spec.error("containers", f"two containers named {duplicate!r}")
    ports = [port for c in spec.items("containers") for port in container_ports(c, meta.shift)]
    pod = PodPlan(meta.name, (*inits, *members), tuple(ports), pod_settings, meta.shift)
    return PodResult(pod, tuple(volumes.files), tuple(volumes.claims),
                     tuple(volumes.scratch), tuple(volumes.host_paths))


def _shared(spec: Fields, meta: PodMeta) -> dict[str, Any]:
    """Settings every member of the pod gets."""
    shared: dict[str, Any] = {}
    policy = spec.text("restartPolicy", "Always") or "Always"
    if policy not in RESTART:
        raise spec.error("restartPolicy", f"{policy!r} is not one of " + ", ".join(RESTART))
    shared["restart"] = RESTART[policy]
    grace = spec.integer("terminationGracePeriodSeconds", 1)
    if grace is not None:
        shared["stop_timeout"] = grace
    if meta.labels:
        shared["labels"] = dict(meta.labels)
    if meta.annotations:
        shared["annotations"] = dict(meta.annotations)
    sysctls = {}
    for item in spec.sub("securityContext").items("sysctls"):
        item.only(("name", "value"))
        sysctls[item.required("name")] = item.required("value")
    if sysctls:
        shared["sysctls"] = sysctls
    return shared


def _pod_settings(spec: Fields, meta: PodMeta) -> dict[str, Any]:
    """The pod declaration's settings (its ports are added by the caller)."""
    shared: dict[str, Any] = {}
    network = "host" if spec.boolean("hostNetwork") else meta.network
    if network:
        shared["network"] = network
    if spec.text("hostname"):
        shared["hostname"] = spec.text("hostname")
    if meta.labels:
        shared["labels"] = dict(meta.labels)
    grace = spec.integer("terminationGracePeriodSeconds", 1)
    if grace is not None:
        shared["stop_timeout"] = grace + 5  # the members' own stop comes first
    hosts = {}
    for alias in spec.items("hostAliases"):
        alias.only(("ip", "hostnames"))
        for hostname in alias.strings("hostnames") or []:
            hosts[hostname] = alias.required("ip")
    if hosts:
        shared["add_hosts"] = hosts
    shared.update(_dns(spec.sub("dnsConfig")))
    return shared


def _dns(config: Fields) -> dict[str, Any]:
    config.only(("nameservers", "searches", "options"))
    settings: dict[str, Any] = {}
    if config.strings("nameservers"):
        settings["dns"] = config.strings("nameservers")
    if config.strings("searches"):
        settings["dns_search"] = config.strings("searches")
    options = []
    for option in config.items("options"):
        option.only(("name", "value"))
        value = option.text("value")
        options.append(option.required("name") + (f":{value}" if value else ""))
    if options:
        settings["dns_options"] = options
    return settings


def _member(container: Fields, sources: Sources, meta: PodMeta, shared: Mapping[str, Any],
            init: bool) -> Member:
    name = container.required("name")
    settings = {**container_settings(container, sources), **shared, "pod": meta.name}
    if init:
        if container.value.get("ports"):
            raise container.error("ports", "an init container publishes no ports")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container.value:
                raise container.error(probe, "not allowed on an init container")
        settings["restart"] = "no"
        settings["service"] = {"Type": "oneshot", "RemainAfterExit": "yes"}
    return Member(f"{meta.name}-{name}", settings, init)


@dataclass
class _Volumes:
    """A pod's volumes as they are read: mounts by name, and what they need made."""

    pod: str
    objects: Objects
    memory_users: dict[str, int]
    mounts: dict[str, Mount] = field(default_factory=dict)
    files: list[DataFile] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)
    host_paths: list[tuple[str, str]] = field(default_factory=list)

    def host_path(self, name: str, source: Fields) -> Mount:
        source.only(("path", "type"))
        path = source.required("path")
        if not path.startswith("/"):
            raise source.error("path", "not an absolute path")
        kind = source.text("type", "") or ""
        if kind not in HOST_PATH_TYPES:
            raise source.error("type", f"{kind!r} is not a hostPath type",
                               "one of " + ", ".join(t for t in HOST_PATH_TYPES if t))
        if kind.endswith("OrCreate"):
            self.host_paths.append((path, kind))
        return Mount("bind", path.rstrip("/") or "/")

    def claim(self, name: str, source: Fields) -> Mount:
        source.only(("claimName", "readOnly"))
        claim = source.required("claimName")
        self.claims.append(claim)
        return Mount("volume", claim, source.boolean("readOnly"), subpaths=False)

    def empty_dir(self, name: str, source: Fields) -> Mount:
        source.only(("medium", "sizeLimit"))
        medium = source.text("medium")
        if medium == "Memory":
            if self.memory_users.get(name, 0) > 1:
                raise source.error("medium", "a Memory emptyDir mounted by several "
                                   "containers is not supported",
                                   "hostctl mounts a tmpfs per container")
            return Mount("tmpfs", "")
        if medium:
            raise source.error("medium", f"{medium!r} is not supported", "Memory or none")
        self.scratch.append(f"{self.pod}-{name}")
        return Mount("volume", f"{self.pod}-{name}", subpaths=False)

    def data(self, name: str, source: Fields, kind: str) -> Mount:
        self.files += _data_volume(source, kind, f"{self.pod}/{name}", self.objects)
        return Mount("bind", str(self.objects.data_dir / self.pod / name), read_only=True)


def _volumes(spec: Fields, pod: str, objects: Objects) -> _Volumes:
    read = _Volumes(pod, objects, _memory_users(spec))
    for volume in spec.items("volumes"):
        name = volume.required("name")
        kinds = [k for k in volume.value if k != "name"]
        unsupported = next((k for k in kinds if k not in VOLUME_KINDS), None)
        if unsupported:
            raise volume.error(unsupported, "not supported",
                               "volumes can be " + ", ".join(VOLUME_KINDS))
        if len(kinds) != 1:
            raise volume.error("", "give exactly one volume source")
        kind, source = kinds[0], volume.sub(kinds[0])
        if kind == "hostPath":
            read.mounts[name] = read.host_path(name, source)
        elif kind == "persistentVolumeClaim":
            read.mounts[name] = read.claim(name, source)
        elif kind == "emptyDir":
            read.mounts[name] = read.empty_dir(name, source)
        else:
            read.mounts[name] = read.data(name, source, kind)
    return read


def _memory_users(spec: Fields) -> dict[str, int]:
    users: dict[str, int] = {}
    for key in ("containers", "initContainers"):
        for container in spec.items(key):
            for mount in container.items("volumeMounts"):
                name = str(mount.get("name", ""))
                users[name] = users.get(name, 0) + 1
    return users


def _data_volume(source: Fields, kind: str, where: str, objects: Objects) -> list[DataFile]:
    """The files of a configMap or secret volume (a missing optional one: none)."""
    key_name = "name" if kind == "configMap" else "secretName"
    source.only((key_name, "items", "defaultMode", "optional"))
    name = source.required(key_name)
    found = (objects.configmaps if kind == "configMap" else objects.secrets).get(name)
    if found is None:
        if source.boolean("optional"):
            return []
        what = "ConfigMap" if kind == "configMap" else "Secret"
        raise source.error(key_name, f"{what} {name!r} is not in the files",
                           f"add the {what} to the YAML (or a ConfigMap= file)")
    mode = source.integer("defaultMode")
    mode = 0o644 if mode is None else mode
    chosen = [(key, key, mode) for key in found]
    if "items" in source.value:
        chosen = []
        for item in source.items("items"):
            item.only(("key", "path", "mode"))
            key, path = item.required("key"), item.required("path")
            if key not in found:
                raise item.error("key", f"no key {key!r} in {name!r}")
            if path.startswith("/") or ".." in path.split("/"):
                raise item.error("path", "must be a relative path inside the volume")
            item_mode = item.integer("mode")
            chosen.append((key, path, mode if item_mode is None else item_mode))
    return [DataFile(f"{where}/{path}", found[key].encode("utf-8"), file_mode & 0o777)
            for key, path, file_mode in chosen]

