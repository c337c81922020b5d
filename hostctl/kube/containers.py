"""One Kubernetes container as the settings of a hostctl declaration."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hostctl.kube.documents import Fields
from hostctl.kube.probes import health_settings
from hostctl.kube.quantities import cpus, memory_bytes

CONTAINER_FIELDS = (
    "name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
    "volumeMounts", "workingDir", "securityContext", "resources", "livenessProbe",
    "readinessProbe", "startupProbe",
)
# Accepted and without effect on one host (what kubectl would also accept there).
CONTAINER_IGNORED = ("terminationMessagePath", "terminationMessagePolicy")
PULL_POLICIES = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}


@dataclass(frozen=True)
class Mount:
    """What a pod volume is in hostctl: a bind (an absolute path), a named volume or a
    tmpfs; read_only when the volume itself is (ConfigMap, Secret)."""

    kind: str  # "bind", "volume" or "tmpfs"
    source: str
    read_only: bool = False
    subpaths: bool = True  # a subPath can be joined to the source


@dataclass(frozen=True)
class PodFields:
    """What a fieldRef can name of the pod: its name, namespace, labels and annotations."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class Sources:
    """What a pod's containers can refer to: the app's ConfigMaps and Secrets (name ->
    key -> value), the pod's volumes, pod-wide defaults and the pod's own fields."""

    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]
    mounts: Mapping[str, Mount]
    defaults: Mapping[str, Any]
    pod: PodFields


def container_settings(spec: Fields, sources: Sources) -> dict[str, Any]:
    """CONTAINER's hostctl settings (its pod, restart and labels are added by the caller)."""
    spec.only(CONTAINER_FIELDS, CONTAINER_IGNORED)
    settings: dict[str, Any] = {"image": spec.required("image")}
    policy = spec.text("imagePullPolicy")
    if policy is not None:
        if policy not in PULL_POLICIES:
            raise spec.error("imagePullPolicy", f"{policy!r} is not one of "
                             + ", ".join(PULL_POLICIES))
        settings["pull"] = PULL_POLICIES[policy]
    command, args = spec.strings("command"), spec.strings("args")
    if command is not None:
        settings["entrypoint"] = command
    if args is not None:
        settings["command"] = args
    if spec.text("workingDir"):
        settings["workdir"] = spec.text("workingDir")
    env = {**_env_from(spec, sources), **_env(spec, sources)}
    if env:
        settings["env"] = env
    ports = {p.text("name") or "": p.integer("containerPort", 1) or 0
             for p in spec.items("ports")}
    settings.update(_security(spec.sub("securityContext"), sources.defaults))
    settings.update(_resources(spec.sub("resources")))
    settings.update(health_settings(spec, {k: v for k, v in ports.items() if k}))
    volumes, tmpfs = _mounts(spec, sources.mounts)
    if volumes:
        settings["volumes"] = volumes
    if tmpfs:
        settings["tmpfs"] = tmpfs
    return settings


def container_ports(spec: Fields, shift: int) -> list[str]:
    """The published ports of CONTAINER (those with a hostPort), hostPort + SHIFT."""
    published = []
    for port in spec.items("ports"):
        port.only(("containerPort", "hostPort", "protocol", "hostIP", "name"))
        inside = port.integer("containerPort", 1)
        if inside is None or inside > 65535:
            raise port.error("containerPort", "missing or not a port number (1-65535)")
        protocol = (port.text("protocol") or "TCP").upper()
        if protocol not in ("TCP", "UDP"):
            raise port.error("protocol", f"{protocol} is not supported",
                             "hostctl publishes TCP and UDP ports")
        outside = port.integer("hostPort", 1)
        if outside is None:
            continue  # not published, as in Kubernetes
        if outside + shift > 65535:
            raise port.error("hostPort", f"replica {shift} would publish port "
                             f"{outside + shift}", "replicas publish hostPort, hostPort+1...")
        address = port.text("hostIP")
        prefix = "" if not address else f"[{address}]:" if ":" in address else f"{address}:"
        published.append(f"{prefix}{outside + shift}:{inside}/{protocol.lower()}")
    return published


def _env(spec: Fields, sources: Sources) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in spec.items("env"):
        item.only(("name", "value", "valueFrom"))
        name = item.required("name")
        if "valueFrom" not in item.value:
            value = item.get("value", "")
            if not isinstance(value, str):
                raise item.error("value", f"{value!r} is not a string",
                                 f'quote it, as Kubernetes requires: value: "{value}"')
            env[name] = value
            continue
        source = item.sub("valueFrom")
        source.only(("configMapKeyRef", "secretKeyRef", "fieldRef"))
        if len(source.value) != 1:
            raise source.error("", "give one of configMapKeyRef, secretKeyRef, fieldRef")
        kind = next(iter(source.value))
        if kind == "fieldRef":
            env[name] = _field_ref(source.sub(kind), sources.pod)
            continue
        found = _key_ref(source.sub(kind), sources.configmaps if kind == "configMapKeyRef"
                         else sources.secrets, kind)
        if found is not None:
            env[name] = found
    return env


_FIELD_REF_REFUSED = {
    "status.podIP": "the pod's address is leased when the pod starts, after its members' "
    "environment is written",
    "status.podIPs": "the pod's address is leased when the pod starts, after its members' "
    "environment is written",
    "status.hostIP": "hostctl does not choose one of the host's addresses",
    "status.hostIPs": "hostctl does not choose one of the host's addresses",
    "metadata.uid": "hostctl pods have no uid",
    "spec.nodeName": "hostctl runs on one host: give the name as a value",
    "spec.serviceAccountName": "hostctl has no service accounts",
}
_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\[(['\"])([^'\"]+)\2\]")


def _field_ref(ref: Fields, pod: PodFields) -> str:
    """The value of a fieldRef: the pod's name, namespace, a label or an annotation
    (a missing one is "", as the kubelet gives)."""
    ref.only(("fieldPath", "apiVersion"))
    path = ref.required("fieldPath")
    if path == "metadata.name":
        return pod.name
    if path == "metadata.namespace":
        return pod.namespace
    subscript = _SUBSCRIPT.fullmatch(path)
    if subscript:
        found = pod.labels if subscript.group(1) == "labels" else pod.annotations
        return found.get(subscript.group(3), "")
    reason = _FIELD_REF_REFUSED.get(path, "not a field hostctl knows")
    raise ref.error("fieldPath", f"{path!r} is not supported: {reason}",
                    "hostctl gives metadata.name, metadata.namespace, "
                    "metadata.labels['KEY'] and metadata.annotations['KEY']")


def _key_ref(ref: Fields, objects: Mapping[str, Mapping[str, str]], kind: str) -> str | None:
    ref.only(("name", "key", "optional"))
    name, key = ref.required("name"), ref.required("key")
    what = "ConfigMap" if kind == "configMapKeyRef" else "Secret"
    if name in objects and key in objects[name]:
        return objects[name][key]
    if ref.boolean("optional"):
        return None
    missing = f"{what} {name!r}" if name not in objects else f"key {key!r} of {what} {name!r}"
    raise ref.error("", f"{missing} is not in the files",
                    f"add the {what} to the YAML (or a ConfigMap= file), or set optional: true")


def _env_from(spec: Fields, sources: Sources) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in spec.items("envFrom"):
        item.only(("configMapRef", "secretRef", "prefix"))
        refs = [k for k in ("configMapRef", "secretRef") if k in item.value]
        if len(refs) != 1:
            raise item.error("", "give one of configMapRef, secretRef")
        ref = item.sub(refs[0])
        ref.only(("name", "optional"))
        name = ref.required("name")
        objects = sources.configmaps if refs[0] == "configMapRef" else sources.secrets
        if name not in objects:
            if ref.boolean("optional"):
                continue
            raise ref.error("name", f"{name!r} is not in the files",
                            "add it to the YAML (or a ConfigMap= file), or set optional: true")
        prefix = item.text("prefix", "") or ""
        env.update({prefix + key: value for key, value in objects[name].items()})
    return env


def _security(context: Fields, defaults: Mapping[str, Any]) -> dict[str, Any]:
    context.only(("runAsUser", "runAsGroup", "readOnlyRootFilesystem", "capabilities",
                  "privileged", "allowPrivilegeEscalation", "runAsNonRoot"))
    settings: dict[str, Any] = {}
    user = context.integer("runAsUser")
    user = defaults.get("runAsUser") if user is None else user
    group = context.integer("runAsGroup")
    group = defaults.get("runAsGroup") if group is None else group
    if (context.boolean("runAsNonRoot") or defaults.get("runAsNonRoot")) and not user:
        raise context.error("runAsNonRoot", "needs a non-zero runAsUser here",
                            "hostctl does not look into the image to check its user; "
                            "give runAsUser")
    if user is not None:
        settings["user"] = f"{user}:{group}" if group is not None else str(user)
    elif group is not None:
        settings["group"] = str(group)
    if defaults.get("supplementalGroups"):
        settings["groups"] = [str(g) for g in defaults["supplementalGroups"]]
    if context.boolean("readOnlyRootFilesystem"):
        settings["read_only"] = True
    if context.boolean("privileged"):
        raise context.error("privileged", "not supported",
                            "hostctl has no privileged mode: add the capabilities and "
                            "devices the container needs")
    if context.get("allowPrivilegeEscalation") is False:
        settings["no_new_privileges"] = True
    caps = context.sub("capabilities")
    caps.only(("add", "drop"))
    for key, setting in (("add", "cap_add"), ("drop", "cap_drop")):
        names = caps.strings(key)
        if names:
            settings[setting] = names
    return settings


def _resources(resources: Fields) -> dict[str, Any]:
    # requests only place a pod on a node: nothing to do on one host.
    resources.only(("limits",), ("requests",))
    limits = resources.sub("limits")
    limits.only(("memory", "cpu"))
    settings: dict[str, Any] = {}
    try:
        if limits.text("memory"):
            settings["memory"] = memory_bytes(str(limits.text("memory")))
    except ValueError:
        raise limits.error("memory", f"{limits.text('memory')!r} is not a quantity",
                           "e.g. 128Mi, 1Gi, 500M") from None
    try:
        if limits.text("cpu"):
            settings["cpus"] = cpus(str(limits.text("cpu")))
    except ValueError:
        raise limits.error("cpu", f"{limits.text('cpu')!r} is not a quantity",
                           "e.g. 500m, 1, 1.5") from None
    return settings


def _mounts(spec: Fields, mounts: Mapping[str, Mount]) -> tuple[list[str], list[str]]:
    volumes: list[str] = []
    tmpfs: list[str] = []
    for item in spec.items("volumeMounts"):
        item.only(("name", "mountPath", "readOnly", "subPath"))
        name, target = item.required("name"), item.required("mountPath")
        if name not in mounts:
            raise item.error("name", f"no volume {name!r} in the pod's volumes",
                             "declare it under spec.volumes")
        mount = mounts[name]
        if not target.startswith("/"):
            raise item.error("mountPath", "not an absolute path")
        if mount.kind == "tmpfs":
            tmpfs.append(target)
            continue
        source = mount.source
        sub = item.text("subPath")
        if sub:
            if not mount.subpaths or sub.startswith("/") or ".." in sub.split("/"):
                raise item.error("subPath", "not supported here" if not mount.subpaths
                                 else "must be a relative path inside the volume",
                                 "subPath works with hostPath, configMap and secret volumes")
            source = f"{source}/{sub}"
        read_only = mount.read_only or item.boolean("readOnly")
        volumes.append(f"{source}:{target}" + (":ro" if read_only else ""))
    return volumes, tmpfs


def decoded(data: Mapping[str, Any], fields: Fields, key: str) -> dict[str, str]:
    """A Secret's base64 `data` (or a ConfigMap's binaryData) as text."""
    result = {}
    for name, value in data.items():
        try:
            result[name] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise fields.error(f"{key}.{name}", "not base64 of UTF-8 text") from None
    return result
