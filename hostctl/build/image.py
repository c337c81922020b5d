"""A stage's image as it is being built, and committing it into the store.

StageImage holds the layers (blobs in the store, each also a snapshot), the config
section (Env, Cmd, Healthcheck...), the history and the cache key chain. commit() writes
the config and manifest blobs (OCI or Docker schema 2) and points the tags at them.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.build.parser import BuildError
from hostctl.images.manifest import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    chain_ids,
    host_platform,
    sha256_digest,
)
from hostctl.images.store import Store

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_EQUIVALENT = {
    "application/vnd.oci.image.layer.v1.tar+gzip": DOCKER_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
FORMATS = ("oci", "docker")


@dataclass(frozen=True)
class Layer:
    digest: str
    diff_id: str
    size: int
    media_type: str = OCI_LAYER


class Pending:
    """A layer its step has made but the builder's layer thread is still writing: until
    it is adopted into the store, its snapshot is the step's upper directory UPPER."""

    def __init__(self, upper: Path) -> None:
        self.upper = upper
        self.future: Future[Layer] = Future()  # the layer thread's, set when submitted
        self.snapshot: Path | None = None  # set (under the builder's lock) once adopted
        self.chain: str | None = None

    @property
    def layer(self) -> Layer:
        return self.future.result()

    @property
    def digest(self) -> str:
        return self.layer.digest

    @property
    def diff_id(self) -> str:
        return self.layer.diff_id

    @property
    def size(self) -> int:
        return self.layer.size

    @property
    def media_type(self) -> str:
        return self.layer.media_type


@dataclass
class StageImage:
    """The image a stage has built so far."""

    key: str  # cache key of the state so far
    layers: list[Layer | Pending] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the config section
    history: list[dict[str, Any]] = field(default_factory=list)
    architecture: str = ""
    os: str = ""
    variant: str | None = None
    base_created: str | None = None
    cmd_in_stage: bool = False  # a CMD of this stage (ENTRYPOINT then keeps it)
    author: str | None = None

    def chains(self) -> tuple[str, ...]:
        return chain_ids(tuple(layer.diff_id for layer in self.layers))

    def snapshots(self, store: Store) -> list[Path]:
        """The layer snapshots, bottom first."""
        return [store.snapshot_path(chain) for chain in self.chains()]

    def env(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            key, _, value = str(item).partition("=")
            pairs[key] = value
        return pairs

    def set_env(self, key: str, value: str) -> None:
        env = self.env()
        env.pop(key, None)  # a changed variable moves to the end, as buildah does
        env[key] = value
        self.config["Env"] = [f"{k}={v}" for k, v in env.items()]

    def copy(self) -> StageImage:
        return StageImage(self.key, list(self.layers), json.loads(json.dumps(self.config)),
                          [dict(h) for h in self.history], self.architecture, self.os,
                          self.variant, self.base_created, False, self.author)


def from_scratch() -> StageImage:
    here = host_platform()
    return StageImage("scratch", architecture=here.architecture, os=here.os,
                      variant=here.variant)


def iso_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def config_document(image: StageImage, created: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "created": created,
        "architecture": image.architecture,
        "os": image.os,
    }
    if image.variant:
        doc["variant"] = image.variant
    if image.author:
        doc["author"] = image.author
    doc["config"] = {k: v for k, v in image.config.items() if v not in (None, [], {})}
    doc["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in image.layers]}
    doc["history"] = image.history
    return doc


def _media_type(layer: Layer | Pending, fmt: str) -> str:
    wanted_prefix = "application/vnd.oci." if fmt == "oci" else "application/vnd.docker."
    if layer.media_type.startswith(wanted_prefix):
        return layer.media_type
    other = _EQUIVALENT.get(layer.media_type)
    if other is None:
        raise BuildError(f"base layer {layer.digest} is {layer.media_type}, which has no "
                         f"{fmt} equivalent", hint="build with --format oci")
    return other


@dataclass(frozen=True)
class Committed:
    manifest_digest: str
    config_digest: str
    manifest: bytes


def commit(store: Store, image: StageImage, *, created: str, fmt: str) -> Committed:
    """Write IMAGE's config and manifest into STORE (its layer blobs are there already)."""
    for layer in image.layers:
        if not store.has_blob(layer.digest):
            raise BuildError(f"layer {layer.digest} is not in the store",
                             hint="the base image's blobs were pruned; pull it again")
    config = json.dumps(config_document(image, created), separators=(",", ":"),
                        sort_keys=True).encode()
    config_digest = sha256_digest(config)
    store.write_blob(config_digest, config)
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if fmt == "oci" else DOCKER_MANIFEST,
        "config": {"mediaType": OCI_CONFIG if fmt == "oci" else DOCKER_CONFIG,
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": _media_type(layer, fmt), "digest": layer.digest,
                    "size": layer.size} for layer in image.layers],
    }
    manifest = json.dumps(manifest_doc, separators=(",", ":")).encode()
    manifest_digest = sha256_digest(manifest)
    store.write_blob(manifest_digest, manifest)
    return Committed(manifest_digest, config_digest, manifest)
