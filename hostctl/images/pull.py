"""Pulling an image into the store and preparing its layer snapshots.

What the launcher calls at every start. The common case, an image already stored and
applied, touches only local files: the HTTP client (urllib3) is imported only when
something must come from a registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    MAX_DOCUMENT,
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
from hostctl.images.reference import Reference, is_short_name, parse_reference
from hostctl.images.store import Store

if TYPE_CHECKING:
    from hostctl.images.growing import GrowingBlob
    from hostctl.images.progress import Progress, Source
    from hostctl.images.regconf import RegistriesConf
    from hostctl.images.trust import TrustConfig

POLICIES = ("missing", "always", "never")
LOCAL_PREFIXES = ("oci:", "oci-archive:", "docker-archive:", "dir:")
Log = Callable[[str], None]
Verify = Callable[[bytes, str], None]  # (top document, its digest): raises if refused


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
    progress: Progress | None = None,
    registries: RegistriesConf | None = None,
    trust: TrustConfig | None = None,
) -> Image:
    """Make REF available in STORE and return it, with its layers applied.

    REF is an image reference (a short name is resolved through registries.conf), or
    `oci:DIR[:TAG]` / `oci-archive:FILE[:TAG]` / `docker-archive:FILE[:REF|@N]` /
    `dir:DIR`. policy "missing": use the stored image
    without any network access, else pull; "always": ask the source and fetch what
    changed; "never": only the stored image. Stored blobs and snapshots are reused.
    What is fetched is first checked against policy.json (see trust.py; TRUST names
    other files): a refused image stores nothing.
    """
    if policy not in POLICIES:
        raise ImageError(f"unknown pull policy {policy!r}", where=str(ref),
                         hint="use one of " + ", ".join(POLICIES))
    wanted = parse_platform(platform) if platform else host_platform()
    say = log or (lambda _message: None)
    if isinstance(ref, str) and ref.startswith(LOCAL_PREFIXES):
        return _pull_local(store, ref, wanted, policy, rootless=rootless, log=say,
                           progress=progress, trust=trust)
    if isinstance(ref, Reference):
        candidates = [ref]
    else:
        # A fully qualified name (the common case at every start) needs no registries.conf.
        if registries is None and is_short_name(ref):
            registries = load_registries()
        candidates = registries.resolve_short(ref) if registries else [parse_reference(ref)]
    with store.writing():
        if policy != "always":
            for candidate in candidates:
                local = _resolve_stored(store, str(candidate), candidate.digest, wanted)
                if local is not None and is_complete(store, local.manifest):
                    return _prepare(store, str(candidate), local, rootless=rootless, log=say)
            if policy == "never":
                raise ImageError("image is not stored and the pull policy is never",
                                 where=str(candidates[0]),
                                 hint=f"run: hostctl pull {candidates[0]}")
        return _pull_candidates(store, candidates, wanted, registries, rootless=rootless,
                                log=say, progress=_shown(progress, say), trust=trust)


def pull_source(
    store: Store, name: str, source: Source, *, platform: str | None = None,
    rootless: bool = False, log: Log | None = None, progress: Progress | None = None,
    verify: Verify | None = None,
) -> Image:
    """Store the image SOURCE serves (any transport, see transports.ReaderSource) as
    NAME, fetching what the store lacks and applying its layers."""
    wanted = parse_platform(platform) if platform else host_platform()
    say = log or (lambda _message: None)
    with store.writing():
        return _pull_from(store, name, None, source, wanted, rootless=rootless, log=say,
                          progress=_shown(progress, say), verify=verify)


def _shown(progress: Progress | None, log: Log) -> Progress:
    """The progress display for a transfer (imported only when something is fetched)."""
    from hostctl.images.progress import LineProgress

    return progress or LineProgress(log)


def load_registries() -> RegistriesConf:
    import os

    from hostctl.images.regconf import load

    config = os.environ.get("HOSTCTL_CONFIG_DIR")
    return load(hostctl_config=Path(config) if config else Path("/etc/hostctl"))


def _pull_candidates(
    store: Store, candidates: list[Reference], wanted: Platform,
    registries: RegistriesConf | None, *, rootless: bool, log: Log, progress: Progress,
    trust: TrustConfig | None,
) -> Image:
    """Try each candidate name, and for each its mirrors then its location."""
    from hostctl.images.registry import RegistryClient
    from hostctl.images.trust import check_docker

    if registries is None:
        registries = load_registries()
    client = RegistryClient(insecure=registries.insecure)
    failure: ImageError | None = None
    for candidate in candidates:
        for endpoint in registries.endpoints(candidate):
            def verify(_data: bytes, digest: str, candidate: Reference = candidate,
                       source: Reference = endpoint.reference) -> None:
                check_docker(candidate, source, digest, client, trust)

            try:
                return _pull_from(store, str(candidate), endpoint.reference, client, wanted,
                                  rootless=rootless, log=log, progress=progress, verify=verify)
            except ImageError as exc:
                failure = exc
                if endpoint.mirror:
                    log(f"mirror {endpoint.reference.registry} failed: {exc.message}; "
                        "trying the next location")
    assert failure is not None
    raise failure


def _pull_local(
    store: Store, text: str, wanted: Platform, policy: str, *, rootless: bool, log: Log,
    progress: Progress | None, trust: TrustConfig | None,
) -> Image:
    from hostctl.images.trust import check_path

    source = _local_source(text)
    check_path(text.split(":", 1)[0], str(source.path), trust)
    try:
        with store.writing():
            if policy != "always":
                local = _resolve_stored(store, source.name, None, wanted)
                if local is not None and is_complete(store, local.manifest):
                    return _prepare(store, source.name, local, rootless=rootless, log=log)
            return _pull_from(store, source.name, None, source, wanted, rootless=rootless,
                              log=log, progress=_shown(progress, log))
    finally:
        source.close()


class _LocalSource(Protocol):
    name: str
    path: Path

    def get_manifest(self, ref: Any, target: str | None = None) -> tuple[bytes, str, str]: ...

    def fetch_bytes(self, ref: Any, desc: Any, limit: int = MAX_DOCUMENT) -> bytes: ...

    def fetch_blob(self, ref: Any, desc: Any, sink: Any) -> None: ...

    def close(self) -> None: ...


def _local_source(text: str) -> _LocalSource:
    """oci:/oci-archive: through LayoutSource; docker-archive: and dir: through their
    readers (transports.py), named by the location as given, path made absolute."""
    if text.startswith(("oci:", "oci-archive:")):
        from hostctl.images.layout import LayoutSource

        return LayoutSource(text)
    from hostctl.images.transports import ReaderSource, open_reader, parse_location

    location = parse_location(text)
    return _NamedReaderSource(ReaderSource(open_reader(location)), str(location),
                              location.path or Path(text))


class _NamedReaderSource:
    def __init__(self, inner: Any, name: str, path: Path) -> None:
        self._inner = inner
        self.name = name
        self.path = path

    def get_manifest(self, ref: Any, target: str | None = None) -> tuple[bytes, str, str]:
        result: tuple[bytes, str, str] = self._inner.get_manifest(ref, target)
        return result

    def fetch_bytes(self, ref: Any, desc: Any, limit: int = MAX_DOCUMENT) -> bytes:
        data: bytes = self._inner.fetch_bytes(ref, desc, limit)
        return data

    def fetch_blob(self, ref: Any, desc: Any, sink: Any) -> None:
        self._inner.fetch_blob(ref, desc, sink)

    def close(self) -> None:
        self._inner.reader.close()


def _resolve_stored(store: Store, name: str, pinned: str | None, wanted: Platform
                    ) -> _Resolved | None:
    """The stored manifest for NAME on WANTED, or None if anything is missing."""
    entry = store.lookup(name)
    top = pinned or (entry.digest if entry else None)
    if top is None or not store.has_blob(top):
        return None
    doc = parse_document(store.read_blob(top, MAX_DOCUMENT), None, where=name)
    if isinstance(doc, Manifest):
        return _Resolved(top, top, doc)
    digest = select_platform(doc, wanted, where=name).digest
    if not store.has_blob(digest):
        return None
    manifest = parse_document(store.read_blob(digest, MAX_DOCUMENT), None, where=name)
    return _Resolved(top, digest, _image_manifest(manifest, name))


def is_complete(store: Store, manifest: Manifest) -> bool:
    """True if the config is stored and every layer is either applied or stored."""
    if not store.has_blob(manifest.config.digest):
        return False
    config = parse_config(store.read_blob(manifest.config.digest, MAX_DOCUMENT),
                          len(manifest.layers), where=str(store.root))
    chains = chain_ids(diff_ids(config))
    return all(store.has_snapshot(chain) or store.has_blob(layer.digest)
               for chain, layer in zip(chains, manifest.layers, strict=True))


def _pull_from(
    store: Store, name: str, source_ref: Reference | None, source: Source, wanted: Platform,
    *, rootless: bool, log: Log, progress: Progress, verify: Verify | None = None,
) -> Image:
    """Fetch NAME's manifest, config and missing layers from SOURCE; record NAME."""
    where = name if source_ref is None or str(source_ref) == name else f"{name} ({source_ref})"
    log(f"pulling {where}")
    data, content_type, top = source.get_manifest(source_ref)
    doc = parse_document(data, content_type, where=where)
    if verify is not None:
        verify(data, top)  # before anything is stored
    store.write_blob(top, data)
    if isinstance(doc, Index):
        digest = select_platform(doc, wanted, where=where).digest
        manifest = _image_manifest(_fetch_manifest(store, source_ref, source, digest, where),
                                   where)
        resolved = _Resolved(top, digest, manifest)
    else:
        resolved = _Resolved(top, top, doc)
    manifest = resolved.manifest
    if not store.has_blob(manifest.config.digest):
        with store.lock("blob-" + manifest.config.digest.removeprefix("sha256:")):
            if not store.has_blob(manifest.config.digest):
                store.write_blob(manifest.config.digest,
                                 source.fetch_bytes(source_ref, manifest.config))
    config = parse_config(store.read_blob(manifest.config.digest, MAX_DOCUMENT),
                          len(manifest.layers), where=where)
    wanted_layers = [layer for chain, layer in zip(chain_ids(diff_ids(config)),
                                                   manifest.layers, strict=True)
                     if not store.has_snapshot(chain) and not store.has_blob(layer.digest)]
    from hostctl.images.progress import Downloads

    with Downloads(store, source, source_ref, wanted_layers, progress, where) as downloads:
        image = _prepare(store, name, resolved, rootless=rootless, log=log,
                         streamed=downloads.stream)
    store.record(name, resolved.top, resolved.manifest_digest)
    return image


def _fetch_manifest(
    store: Store, reference: Reference | None, source: Source, digest: str, where: str
) -> Manifest | Index:
    if store.has_blob(digest):
        return parse_document(store.read_blob(digest, MAX_DOCUMENT), None, where=where)
    data, content_type, _ = source.get_manifest(reference, digest)  # verified against digest
    doc = parse_document(data, content_type, where=where)
    store.write_blob(digest, data)
    return doc


def _prepare(
    store: Store, where: str, resolved: _Resolved, *, rootless: bool, log: Log,
    streamed: Callable[[str], GrowingBlob | None] = lambda _digest: None,
) -> Image:
    """Apply whatever layers are not applied yet and describe the image.

    STREAMED(layer digest) is that layer's blob as this pull downloads it, applied as the
    bytes arrive; None for a blob the store holds.
    """
    manifest = resolved.manifest
    config_data = store.read_blob(manifest.config.digest, MAX_DOCUMENT)
    config = parse_config(config_data, len(manifest.layers), where=where)
    snapshots: list[Path] = []
    for chain, diff_id, layer in zip(
        chain_ids(diff_ids(config)), diff_ids(config), manifest.layers, strict=True
    ):
        if not store.has_snapshot(chain):
            apply_snapshot(store, chain, diff_id, layer.digest, snapshots, rootless=rootless,
                           where=f"{where}: layer {layer.digest}", log=log,
                           streamed=streamed(layer.digest))
        snapshots.append(store.snapshot_path(chain))
    return Image(
        reference=where,
        manifest_digest=resolved.top,
        config_digest=manifest.config.digest,
        config=config,
        layers=tuple(layer.digest for layer in manifest.layers),
        snapshots=tuple(snapshots),
    )


def apply_snapshot(
    store: Store, chain: str, diff_id: str, digest: str, below: list[Path], *,
    rootless: bool, where: str, log: Log, streamed: GrowingBlob | None = None,
) -> None:
    """Apply the layer blob DIGEST over the snapshots BELOW (bottom first) into the
    snapshot CHAIN, recording what it holds; nothing if another process made it first.

    The blob is the stored one, or STREAMED as it downloads: its bytes are applied as
    they arrive, and the snapshot is committed only after the download has verified the
    blob's digest and stored it. When the apply fails, the download's own error (a digest
    mismatch, a connection lost) is the one raised, if it has one.
    """
    with store.lock("snapshot-" + chain.removeprefix("sha256:")):
        if store.has_snapshot(chain):
            return
        if streamed is None and not store.has_blob(digest):
            raise ImageError(f"layer {digest} is neither applied nor stored", where=where,
                             hint="pull the image again")
        log(f"applying layer {digest}")
        from hostctl.images import snaprecord
        from hostctl.images.layers import apply_layer  # tarfile: only when applying

        try:
            with store.new_snapshot(chain) as temp:
                blob = store.blob_path(digest) if streamed is None else streamed.reader()
                apply_layer(blob, temp, diff_id=diff_id, lowers=tuple(reversed(below)),
                            rootless=rootless, where=where, log=log)
                snaprecord.write(temp, store.record_path(chain),
                                 snaprecord.Header(digest, diff_id, rootless))
                if streamed is not None:
                    streamed.settle()  # the blob, verified, is committed in the store
        except ImageError:
            if streamed is not None:
                if not store.has_snapshot(chain):  # the record written for it, if any
                    store.record_path(chain).unlink(missing_ok=True)
                streamed.settle()
            raise


def _image_manifest(doc: Manifest | Index, where: str) -> Manifest:
    if not isinstance(doc, Manifest):
        raise ImageError("an index entry points at another index; nested indexes are not "
                         "supported", where=where)
    return doc
