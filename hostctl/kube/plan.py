"""What a Kubernetes app becomes in hostctl: pods, member containers, volumes, files."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Member:
    """One container of a pod: its declaration name (POD-CONTAINER) and its settings
    in hostctl's YAML form (hostctl.declarations.settings keys)."""

    name: str
    settings: Mapping[str, Any]
    init: bool = False  # an init container: a oneshot run to its end before the others


@dataclass(frozen=True)
class PodPlan:
    """One pod (a Kubernetes Pod, or one replica of a Deployment)."""

    name: str
    members: tuple[Member, ...]
    ports: tuple[str, ...] = ()  # [IP:]HOST:CONTAINER/PROTOCOL, published on the pod
    settings: Mapping[str, Any] = field(default_factory=dict)  # the pod's other settings
    replica: int = 0  # a Deployment's replica index (its host ports are shifted by it)

    def replace(self, **changes: Any) -> PodPlan:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataFile:
    """A file a ConfigMap or Secret volume shows, relative to the app's data directory."""

    path: str
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    """Everything one app declares."""

    app: str
    pods: tuple[PodPlan, ...]
    volumes: tuple[str, ...] = ()  # PersistentVolumeClaims: kept by `kube down`
    scratch_volumes: tuple[str, ...] = ()  # emptyDir volumes: removed by `kube down`
    files: tuple[DataFile, ...] = ()
    host_paths: tuple[tuple[str, str], ...] = ()  # hostPath DirectoryOrCreate/FileOrCreate

    @property
    def members(self) -> tuple[Member, ...]:
        return tuple(member for pod in self.pods for member in pod.members)
