"""Manifests, indexes and image configs: parsing, validation, platform selection.

Everything here is pure: bytes in, frozen dataclasses out, ImageError on anything a
registry or a store should never have handed us.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from hostctl.errors import ImageError
from hostctl.images.reference import validate_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))

CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)

MAX_DOCUMENT = 4 * 1024 * 1024  # manifests and configs


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class Descriptor:
    """A pointer to a blob. Foreign-layer `urls` are deliberately not kept (CVE-2020-15157)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, digest: str, *, where: str, what: str) -> None:
    """ImageError unless DATA hashes to DIGEST (hash of the exact bytes received)."""
    got = sha256_digest(data)
    if got != digest:
        raise ImageError(
            f"{what} {digest}: digest mismatch (content hashes to {got})",
            where=where,
            hint="the registry or a proxy served corrupt data; try again or report it",
        )


def parse_document(data: bytes, content_type: str | None, *, where: str) -> Manifest | Index:
    """Parse a manifest or index; refuse ambiguous or inconsistent documents."""
    if len(data) > MAX_DOCUMENT:
        raise ImageError(f"manifest larger than {MAX_DOCUMENT} bytes", where=where)
    doc = _load_json(data, where=where, what="manifest")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ImageError("manifest mediaType is not a string", where=where)
    served = (content_type or "").split(";")[0].strip().lower() or None
    if declared and served and served in (*MANIFEST_TYPES, *INDEX_TYPES) and declared != served:
        raise ImageError(
            f"manifest says mediaType {declared} but was served as {served}", where=where
        )
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise ImageError(
            "document has both manifests and layers/config; refusing it (CVE-2021-41190)",
            where=where,
        )
    if doc.get("schemaVersion") != 2:
        raise ImageError(
            f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}",
            where=where, hint="only schema 2 (OCI and Docker v2) images are supported",
        )
    kind = declared or served or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if kind in INDEX_TYPES or (kind not in MANIFEST_TYPES and "manifests" in doc):
        return _parse_index(doc, kind, where)
    if kind in MANIFEST_TYPES:
        return _parse_manifest(doc, kind, where)
    raise ImageError(f"unsupported manifest media type {kind}", where=where)


def _parse_index(doc: dict[str, Any], kind: str, where: str) -> Index:
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ImageError("index has no manifests list", where=where)
    return Index(kind, tuple(_descriptor(e, where, "index entry") for e in entries))


def _parse_manifest(doc: dict[str, Any], kind: str, where: str) -> Manifest:
    config = _descriptor(doc.get("config"), where, "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError("manifest has no layers list", where=where)
    parsed = tuple(_descriptor(layer, where, "layer") for layer in layers)
    for layer in parsed:
        if layer.media_type not in LAYER_TYPES:
            raise ImageError(f"layer {layer.digest}: unsupported media type {layer.media_type}",
                             where=where)
    return Manifest(kind, config, parsed)


def _descriptor(value: object, where: str, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a descriptor object", where=where)
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise ImageError(f"{what} lacks mediaType or digest", where=where)
    validate_digest(digest, where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what} {digest}: invalid size {size!r}", where=where)
    return Descriptor(media_type, digest, size, _platform_of(value.get("platform")))


def _platform_of(value: object) -> Platform | None:
    if not isinstance(value, dict):
        return None
    os_, arch, variant = value.get("os"), value.get("architecture"), value.get("variant")
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) and variant else None)


def parse_config(data: bytes, layer_count: int, *, where: str) -> dict[str, Any]:
    """The image config; its rootfs.diff_ids must match the manifest's layers one to one."""
    config = _load_json(data, where=where, what="image config")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ImageError('image config has no rootfs of type "layers"', where=where)
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != layer_count:
        raise ImageError(
            f"image config lists {len(diff_ids) if isinstance(diff_ids, list) else 'no'} "
            f"diff_ids for {layer_count} layers", where=where,
        )
    for diff_id in diff_ids:
        validate_digest(diff_id, where=where)
    return config


def diff_ids(config: dict[str, Any]) -> tuple[str, ...]:
    return tuple(config["rootfs"]["diff_ids"])


def chain_ids(diff_ids: tuple[str, ...]) -> tuple[str, ...]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(sha256_digest(f"{chains[-1]} {diff_id}".encode()) if chains else diff_id)
    return tuple(chains)


def _load_json(data: bytes, *, where: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{what} is not valid JSON: {exc}", where=where) from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what} is not a JSON object", where=where)
    return doc


_MACHINES = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None), "i386": ("386", None),
    "i686": ("386", None), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """linux/ARCH[/VARIANT] of this machine, with OCI names (x86_64 -> amd64 ...)."""
    machine = _machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def _machine() -> str:
    """What platform.machine() returns on Linux, without importing platform (start-up cost)."""
    return os.uname().machine


def parse_platform(text: str) -> Platform:
    """"os/arch[/variant]", e.g. linux/arm64 or linux/arm/v7."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"invalid platform {text!r}", hint="write it as os/arch[/variant], "
                         "e.g. linux/amd64 or linux/arm/v7")
    variant = parts[2] if len(parts) == 3 else None
    if parts[1] == "arm64" and variant is None:
        variant = "v8"
    return Platform(parts[0], parts[1], variant)


def select_platform(index: Index, wanted: Platform, *, where: str) -> Descriptor:
    """The index entry for WANTED: exact variant first, then compatible older variants."""
    best: tuple[int, Descriptor] | None = None
    for entry in index.manifests:
        if entry.media_type not in MANIFEST_TYPES or entry.platform is None:
            continue  # nested indexes, attestations (unknown/unknown) and unknown types
        rank = _variant_rank(entry.platform, wanted)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, entry)
    if best is None:
        offered = sorted({str(e.platform) for e in index.manifests
                          if e.platform and e.platform.os != "unknown"})
        raise ImageError(
            f"no image for platform {wanted}",
            where=where, hint="this image offers " + (", ".join(offered) or "no platforms"),
        )
    return best[1]


def _variant_rank(have: Platform, wanted: Platform) -> int | None:
    """Higher is better; None if HAVE cannot run where WANTED is asked for."""
    if have.os != wanted.os or have.architecture != wanted.architecture:
        return None
    if wanted.architecture == "amd64":
        return 10 if have.variant in (None, "v1") else 1
    if wanted.architecture == "arm64":
        return 10 if have.variant in (None, "v8") else None
    if have.variant == wanted.variant:
        return 100
    if have.variant is None:
        return 1
    if wanted.variant and wanted.architecture == "arm":
        have_v, want_v = _vnum(have.variant), _vnum(wanted.variant)
        if have_v is not None and want_v is not None and have_v <= want_v:
            return have_v  # v8 > v7 > v6 fallback
    return None


def _vnum(variant: str) -> int | None:
    return int(variant[1:]) if variant[:1] == "v" and variant[1:].isdigit() else None
