"""Kubernetes manifests -> a hostctl plan (hostctl.kube.plan).

Kinds: Pod and Deployment become pods (a Deployment's replicas are pods NAME-pod-0,
NAME-pod-1...; one replica is NAME-pod, podman's name), ConfigMap and Secret feed env
and volumes, PersistentVolumeClaim becomes a named volume. Replica N publishes each
hostPort as hostPort+N: a host port can be bound once, and consecutive ports let every
replica answer (documented in docs/cli.md). Anything else is refused with its path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hostctl.errors import DeclarationError
from hostctl.kube.containers import decoded
from hostctl.kube.documents import Doc, Fields, load_documents
from hostctl.kube.plan import Member, Plan, PodPlan
from hostctl.kube.pods import Objects, PodMeta, PodResult, translate_pod

KINDS = ("Pod", "Deployment", "ConfigMap", "Secret", "PersistentVolumeClaim")
_METADATA = ("name", "labels", "annotations", "namespace")
_METADATA_IGNORED = ("creationTimestamp", "uid", "resourceVersion", "generation")


def translate_files(app: str, manifests: Sequence[Path], data_dir: Path, *,
                    configmaps: Sequence[Path] = (), network: str | None = None,
                    publish: Sequence[str] = (),
                    auto_update: Mapping[str, str] | None = None) -> Plan:
    """The plan of the manifest files (and extra ConfigMap files) of APP."""
    docs = [doc for path in (*manifests, *configmaps) for doc in load_documents(path)]
    return translate(app, docs, data_dir, network=network, publish=publish,
                     auto_update=auto_update)


def translate(app: str, docs: Iterable[Doc], data_dir: Path, *, network: str | None = None,
              publish: Sequence[str] = (),
              auto_update: Mapping[str, str] | None = None) -> Plan:
    """The plan of DOCS; DATA_DIR is where ConfigMap and Secret volume files will be."""
    docs = list(docs)
    configmaps: dict[str, dict[str, str]] = {}
    secrets: dict[str, dict[str, str]] = {}
    claims: list[str] = []
    for doc in docs:
        _check_kind(doc)
        if doc.kind == "ConfigMap":
            name, data = _configmap(doc)
            configmaps[name] = data
        elif doc.kind == "Secret":
            name, data = _secret(doc)
            secrets[name] = data
        elif doc.kind == "PersistentVolumeClaim":
            claims.append(_claim(doc))
    objects = Objects(configmaps, secrets, data_dir)
    results = [result for doc in docs if doc.kind in ("Pod", "Deployment")
               for result in _workload(doc, objects, network)]
    if not results:
        where = docs[0].source if docs else app
        raise DeclarationError("no Pod or Deployment in the files", where=str(where),
                               hint="kube play runs the Pods and Deployments it is given")
    pods = [_with_publish(r.pod, publish) for r in results]
    pods = [_with_auto_update(p, auto_update or {}) for p in pods]
    _check_unique(pods, docs)
    return Plan(
        app=app,
        pods=tuple(pods),
        volumes=tuple(dict.fromkeys([*claims, *(c for r in results for c in r.claims)])),
        scratch_volumes=tuple(s for r in results for s in r.scratch),
        files=tuple(f for r in results for f in r.files),
        host_paths=tuple(dict.fromkeys(p for r in results for p in r.host_paths)),
    )


def _check_kind(doc: Doc) -> None:
    fields = Fields(doc, "", doc.body)
    if "apiVersion" not in doc.body or "kind" not in doc.body:
        raise doc.error("kind" if "apiVersion" in doc.body else "apiVersion", "missing",
                        "every document needs apiVersion and kind")
    if doc.kind not in KINDS:
        raise doc.error("kind", f"{doc.kind!r} is not supported",
                        "hostctl plays " + ", ".join(KINDS))
    metadata = fields.sub("metadata")
    metadata.only(_METADATA, _METADATA_IGNORED)
    metadata.required("name")
    for key in ("labels", "annotations"):
        value = metadata.get(key, {})
        if not isinstance(value, dict) or any(isinstance(v, (dict, list))
                                               for v in value.values()):
            raise metadata.error(key, "expected a mapping of names to texts")


def _meta(fields: Fields, key: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (fields.sub("metadata").get(key, {}) or {}).items()}


def _configmap(doc: Doc) -> tuple[str, dict[str, str]]:
    fields = Fields(doc, "", doc.body)
    fields.only(("apiVersion", "kind", "metadata", "data", "binaryData", "immutable"))
    data = {str(k): str(v) for k, v in (fields.get("data", {}) or {}).items()}
    data.update(decoded(fields.get("binaryData", {}) or {}, fields, "binaryData"))
    return fields.sub("metadata").required("name"), data


def _secret(doc: Doc) -> tuple[str, dict[str, str]]:
    fields = Fields(doc, "", doc.body)
    fields.only(("apiVersion", "kind", "metadata", "data", "stringData", "type",
                 "immutable"))
    kind = fields.text("type", "Opaque")
    if kind != "Opaque":
        raise fields.error("type", f"{kind!r} is not supported", "hostctl reads Opaque secrets")
    data = decoded(fields.get("data", {}) or {}, fields, "data")
    data.update({str(k): str(v) for k, v in (fields.get("stringData", {}) or {}).items()})
    return fields.sub("metadata").required("name"), data


def _claim(doc: Doc) -> str:
    fields = Fields(doc, "", doc.body)
    fields.only(("apiVersion", "kind", "metadata", "spec"))
    # the claim's size, access modes and class choose storage in a cluster; here it
    # is a named volume, a directory of its own.
    fields.sub("spec").only((), ("accessModes", "resources", "storageClassName",
                                 "volumeMode"))
    return fields.sub("metadata").required("name")


def _workload(doc: Doc, objects: Objects, network: str | None) -> list[PodResult]:
    fields = Fields(doc, "", doc.body)
    fields.only(("apiVersion", "kind", "metadata", "spec"), ("status",))
    name = fields.sub("metadata").required("name")
    labels, annotations = _meta(fields, "labels"), _meta(fields, "annotations")
    namespace = fields.sub("metadata").text("namespace") or "default"
    if doc.kind == "Pod":
        meta = PodMeta(name, labels, annotations, network=network, namespace=namespace)
        return [translate_pod(fields.sub("spec"), meta, objects)]
    spec = fields.sub("spec")
    spec.only(("replicas", "selector", "template"),
              ("strategy", "revisionHistoryLimit", "minReadySeconds",
               "progressDeadlineSeconds"))
    replicas = spec.integer("replicas", 0)
    replicas = 1 if replicas is None else replicas
    template = spec.sub("template")
    template.only(("metadata", "spec"))
    template.sub("metadata").only(("labels", "annotations", "name"))
    labels = {**labels, **_meta(template, "labels")}
    annotations = {**annotations, **_meta(template, "annotations")}
    results = []
    for index in range(replicas):
        pod = f"{name}-pod" if replicas == 1 else f"{name}-pod-{index}"
        meta = PodMeta(pod, labels, annotations, index, network, namespace)
        results.append(translate_pod(template.sub("spec"), meta, objects))
    return results


def _with_publish(pod: PodPlan, publish: Sequence[str]) -> PodPlan:
    """PublishPort= of a .kube file: replaces the YAML's entry for the same container
    port and protocol, or adds one, on every pod (a replica's host port shifted by its
    index, as the YAML's hostPorts are)."""
    if not publish:
        return pod
    from hostctl.declarations.values import parse_port

    ports = list(pod.ports)
    for entry in publish:
        for port in parse_port(entry):
            inside = f"{port.container_port}/{port.protocol}"
            ports = [p for p in ports if _container_side(p) != inside]
            address = port.host_ip or ""
            prefix = f"[{address}]:" if ":" in address else f"{address}:" if address else ""
            ports.append(f"{prefix}{port.host_port + pod.replica}:{inside}")
    return pod.replace(ports=tuple(ports))


def _container_side(entry: str) -> str:
    port, _, protocol = entry.partition("/")
    return f"{port.rsplit(':', 1)[-1]}/{protocol or 'tcp'}"


def _with_auto_update(pod: PodPlan, auto_update: Mapping[str, str]) -> PodPlan:
    """AutoUpdate= of a .kube file: "" (every container) or a container's name -> how."""
    if not auto_update:
        return pod
    members = []
    for member in pod.members:
        short = member.name.removeprefix(f"{pod.name}-")
        how = auto_update.get(short, auto_update.get(""))
        settings: dict[str, Any] = dict(member.settings)
        if how:
            settings["auto_update"] = how
        members.append(Member(member.name, settings, member.init))
    return pod.replace(members=tuple(members))


def _check_unique(pods: list[PodPlan], docs: list[Doc]) -> None:
    """Pod and container names, and published host ports, must not repeat."""
    seen: dict[str, str] = {}
    bound: dict[str, str] = {}
    for pod in pods:
        for name in (pod.name, *(m.name for m in pod.members)):
            if name in seen:
                raise DeclarationError(f"{name!r} is declared twice ({seen[name]} and pod "
                                       f"{pod.name})", where=str(docs[0].source),
                                       hint="rename one of the pods or containers")
            seen[name] = f"pod {pod.name}"
        for port in pod.ports:
            key = _host_side(port)
            if key in bound:
                raise DeclarationError(f"host port {key} is published by pods {bound[key]} "
                                       f"and {pod.name}", where=str(docs[0].source),
                                       hint="a host port can be bound once: change a hostPort")
            bound[key] = pod.name


def _host_side(entry: str) -> str:
    port, _, protocol = entry.partition("/")
    parts = port.rsplit(":", 2)
    return f"{parts[-2] if len(parts) > 1 else parts[-1]}/{protocol or 'tcp'}"
