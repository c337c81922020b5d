"""Pulling an image into the store and preparing its layer snapshots.

What the launcher calls at every start. The common case, an image already stored and
applied, touches only local files: the HTTP client (urllib3) is imported only when
something must come from a registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    MAX_DOCUMENT,
    Descriptor,
    Index,
    Manifest,
    Platform,
    chain_ids,
    diff_ids,
    host_platform,
    parse_config,
    parse_document,
    parse_platform,
    select_platform,
)
from hostctl.images.reference import Reference, parse_reference
from hostctl.images.store import Store

if TYPE_CHECKING:
    from hostctl.images.registry import RegistryClient

POLICIES = ("missing", "always", "never")
Log = Callable[[str], None]


@dataclass(frozen=True)
class Image:
    """A stored image, ready to be mounted: snapshots are overlay lowerdirs, bottom first.

    manifest_digest is what the reference resolves to (for a multi-platform image, the
    index: `name@manifest_digest` pins the same image on every platform).
    """

    reference: str
    manifest_digest: str
    config_digest: str
    config: dict[str, Any]
    layers: tuple[str, ...]
    snapshots: tuple[Path, ...]


@dataclass(frozen=True)
class ImageSummary:
    reference: str
    manifest_digest: str
    size: int  # config plus compressed layers, as the registry serves them
    created: str | None


@dataclass(frozen=True)
class _Resolved:
    top: str  # digest the reference resolves to
    manifest_digest: str  # the platform's image manifest
    manifest: Manifest


def pull(
    store: Store,
    ref: str | Reference,
    *,
    platform: str | None = None,
    policy: str = "missing",
    rootless: bool = False,
    log: Log | None = None,
) -> Image:
    """Make REF available in STORE and return it, with its layers applied.

    policy "missing": use the stored image without any network access, else pull;
    "always": ask the registry and fetch what changed; "never": only the stored image.
    Blobs already stored are not downloaded again; applied snapshots are reused.
    """
    reference = ref if isinstance(ref, Reference) else parse_reference(ref)
    if policy not in POLICIES:
        raise ImageError(f"unknown pull policy {policy!r}", where=str(reference),
                         hint="use one of " + ", ".join(POLICIES))
    wanted = parse_platform(platform) if platform else host_platform()
    say = log or (lambda _message: None)
    if policy != "always":
        local = _resolve_stored(store, reference, wanted)
        if local is not None and _complete(store, local.manifest):
            return _prepare(store, reference, local, rootless=rootless, log=say)
        if policy == "never":
            raise ImageError("image is not stored and the pull policy is never",
                             where=str(reference), hint=f"run: hostctl pull {reference}")
    from hostctl.images.registry import RegistryClient

    return _pull_remote(store, reference, wanted, RegistryClient(), rootless=rootless, log=say)


def _resolve_stored(store: Store, reference: Reference, wanted: Platform) -> _Resolved | None:
    """The stored manifest for REFERENCE on WANTED, or None if anything is missing."""
    entry = store.lookup(str(reference))
    top = entry.digest if entry else reference.digest
    if top is None or not store.has_blob(top):
        return None
    where = str(reference)
    doc = parse_document(store.read_blob(top, MAX_DOCUMENT), None, where=where)
    if isinstance(doc, Manifest):
        return _Resolved(top, top, doc)
    digest = select_platform(doc, wanted, where=where).digest
    if not store.has_blob(digest):
        return None
    manifest = parse_document(store.read_blob(digest, MAX_DOCUMENT), None, where=where)
    return _Resolved(top, digest, _image_manifest(manifest, where))


def _complete(store: Store, manifest: Manifest) -> bool:
    """True if the config is stored and every layer is either applied or stored."""
    if not store.has_blob(manifest.config.digest):
        return False
    config = parse_config(store.read_blob(manifest.config.digest, MAX_DOCUMENT),
                          len(manifest.layers), where=str(store.root))
    chains = chain_ids(diff_ids(config))
    return all(store.has_snapshot(chain) or store.has_blob(layer.digest)
               for chain, layer in zip(chains, manifest.layers, strict=True))


def _pull_remote(
    store: Store, reference: Reference, wanted: Platform, client: RegistryClient, *,
    rootless: bool, log: Log,
) -> Image:
    where = str(reference)
    log(f"pulling {where}")
    data, content_type, top = client.get_manifest(reference)
    doc = parse_document(data, content_type, where=where)
    store.write_blob(top, data)
    if isinstance(doc, Index):
        digest = select_platform(doc, wanted, where=where).digest
        manifest = _image_manifest(_fetch_manifest(store, reference, client, digest), where)
        resolved = _Resolved(top, digest, manifest)
    else:
        resolved = _Resolved(top, top, doc)
    manifest = resolved.manifest
    if not store.has_blob(manifest.config.digest):
        store.write_blob(manifest.config.digest, client.fetch_bytes(reference, manifest.config))
    config = parse_config(store.read_blob(manifest.config.digest, MAX_DOCUMENT),
                          len(manifest.layers), where=where)
    for chain, layer in zip(chain_ids(diff_ids(config)), manifest.layers, strict=True):
        if not store.has_snapshot(chain):
            _fetch_layer(store, reference, client, layer.digest, layer.size, log)
    image = _prepare(store, reference, resolved, rootless=rootless, log=log)
    store.record(where, resolved.top, resolved.manifest_digest)
    return image


def _fetch_manifest(
    store: Store, reference: Reference, client: RegistryClient, digest: str
) -> Manifest | Index:
    where = str(reference)
    if store.has_blob(digest):
        return parse_document(store.read_blob(digest, MAX_DOCUMENT), None, where=where)
    data, content_type, _ = client.get_manifest(reference, digest)  # verified against digest
    doc = parse_document(data, content_type, where=where)
    store.write_blob(digest, data)
    return doc


def _fetch_layer(
    store: Store, reference: Reference, client: RegistryClient, digest: str, size: int,
    log: Log,
) -> None:
    """Download one layer blob unless stored; the lock makes concurrent pulls fetch it once."""
    if store.has_blob(digest):
        return
    with store.lock("blob-" + digest.removeprefix("sha256:")):
        if store.has_blob(digest):
            return
        log(f"fetching layer {digest} ({_human(size)})")
        with store.ingest(digest) as writer:
            client.fetch_blob(reference, Descriptor("", digest, size), writer)


def _prepare(
    store: Store, reference: Reference, resolved: _Resolved, *, rootless: bool, log: Log
) -> Image:
    """Apply whatever layers are not applied yet (from stored blobs) and describe the image."""
    where = str(reference)
    manifest = resolved.manifest
    config_data = store.read_blob(manifest.config.digest, MAX_DOCUMENT)
    config = parse_config(config_data, len(manifest.layers), where=where)
    snapshots: list[Path] = []
    for chain, diff_id, layer in zip(
        chain_ids(diff_ids(config)), diff_ids(config), manifest.layers, strict=True
    ):
        if not store.has_snapshot(chain):
            _apply(store, chain, diff_id, layer.digest, snapshots, rootless=rootless,
                   where=f"{where}: layer {layer.digest}", log=log)
        snapshots.append(store.snapshot_path(chain))
    return Image(
        reference=where,
        manifest_digest=resolved.top,
        config_digest=manifest.config.digest,
        config=config,
        layers=tuple(layer.digest for layer in manifest.layers),
        snapshots=tuple(snapshots),
    )


def _apply(
    store: Store, chain: str, diff_id: str, digest: str, below: list[Path], *,
    rootless: bool, where: str, log: Log,
) -> None:
    with store.lock("snapshot-" + chain.removeprefix("sha256:")):
        if store.has_snapshot(chain):
            return
        if not store.has_blob(digest):
            raise ImageError(f"layer {digest} is neither applied nor stored", where=where,
                             hint="pull the image again")
        log(f"applying layer {digest}")
        from hostctl.images.layers import apply_layer  # tarfile: only when applying

        with store.new_snapshot(chain) as temp:
            apply_layer(store.blob_path(digest), temp, diff_id=diff_id,
                        lowers=tuple(reversed(below)), rootless=rootless, where=where, log=log)


def _image_manifest(doc: Manifest | Index, where: str) -> Manifest:
    if not isinstance(doc, Manifest):
        raise ImageError("an index entry points at another index; nested indexes are not "
                         "supported", where=where)
    return doc


def list_images(store: Store) -> list[ImageSummary]:
    """Every stored reference with its digest, size and creation time, sorted by name."""
    summaries = []
    for reference, entry in sorted(store.images().items()):
        size, created = 0, None
        if store.has_blob(entry.manifest):
            doc = parse_document(store.read_blob(entry.manifest, MAX_DOCUMENT), None,
                                 where=reference)
            if isinstance(doc, Manifest):
                size = doc.config.size + sum(layer.size for layer in doc.layers)
                if store.has_blob(doc.config.digest):
                    config = parse_config(store.read_blob(doc.config.digest, MAX_DOCUMENT),
                                          len(doc.layers), where=reference)
                    value = config.get("created")
                    created = value if isinstance(value, str) else None
        summaries.append(ImageSummary(reference, entry.digest, size, created))
    return summaries


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
