"""Copying an image between locations: `hostctl push` and `hostctl image copy`.

The source's manifests are copied as the exact bytes they are, so every digest is kept;
only `--compress gzip|zstd` rewrites layers (and then the manifests naming them). By
default one platform (the host's, or --platform) of a multi-platform image is copied;
--all copies the index and every image it names. Blobs go up to writer.parallel at a
time; the manifests go last, the top one after the ones it names, and the destination
shows the result only when everything is there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    DOCKER_MANIFEST,
    Descriptor,
    Index,
    host_platform,
    parse_document,
    parse_platform,
    select_platform,
    sha256_digest,
)
from hostctl.images.reference import validate_digest
from hostctl.images.transports import Location, Reader, open_reader, parse_location

if TYPE_CHECKING:
    from hostctl.images.progress import Progress
    from hostctl.images.registry import RegistryClient
    from hostctl.images.store import Store
    from hostctl.images.writers import Writer

Log = Callable[[str], None]
COMPRESSIONS = ("gzip", "zstd")


@dataclass
class CopyResult:
    source: str
    destination: str
    digest: str = ""  # what the destination now names (an index with --all)
    media_type: str = ""
    size: int = 0
    manifests: list[str] = field(default_factory=list)
    blobs: list[dict[str, Any]] = field(default_factory=list)
    signature: str | None = None


@dataclass(frozen=True)
class CopyOptions:
    all_platforms: bool = False
    platform: str | None = None
    compress: str | None = None
    sign_key: Path | None = None
    sign_passphrase: bytes | None = None
    registries_d: tuple[Path, ...] | None = None  # where use-sigstore-attachments is read
    sign_format: str = "sig"  # "sig": cosign's sha256-HEX.sig; "bundle": cosign v3's
    chunk: int | None = None


def copy_image(src_text: str, dst_text: str, *, store: Store, client: RegistryClient,
               options: CopyOptions = CopyOptions(), rootless: bool = False,
               log: Log = lambda _m: None, progress: Progress | None = None,
               trust: Callable[[Location, Reader, bytes, str], None] | None = None
               ) -> CopyResult:
    """Copy SRC to DST (texts in transport syntax; a bare reference is the store)."""
    src, dst = parse_location(src_text), parse_location(dst_text)
    if options.compress is not None and options.compress not in COMPRESSIONS:
        raise ImageError(f"unknown compression {options.compress!r}",
                         hint="use gzip or zstd")
    if options.sign_format not in ("sig", "bundle"):
        raise ImageError(f"unknown signature format {options.sign_format!r}",
                         hint="sig (cosign's sha256-HEX.sig) or bundle (cosign v3's referrers)")
    if options.sign_key is not None and dst.kind != "docker":
        raise ImageError("signatures are written to registries only", where=dst_text,
                         hint="sign when pushing to a docker:// destination")
    reader = open_reader(src, store=store, client=client,
                         all_platforms=options.all_platforms)
    try:
        top_data, top_type, top_digest = reader.top()
        if trust is not None:
            trust(src, reader, top_data, top_digest)
        if dst.kind == "store":
            return _into_store(reader, src, dst, store, options, rootless, log, progress)
        writer = _open_writer(dst, client, reader, options, progress)
        result = CopyResult(reader.name, writer.name)
        try:
            _copy(reader, writer, (top_data, top_type, top_digest), options, result, log)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    finally:
        reader.close()
    if options.sign_key is not None:
        from hostctl.images.signing import push_signature

        assert dst.reference is not None
        bundle = (result.media_type, result.size) if options.sign_format == "bundle" else None
        result.signature = push_signature(client, dst.reference, result.digest,
                                          options.sign_key, options.sign_passphrase,
                                          registries_d=options.registries_d, bundle=bundle)
        log(f"signed {result.digest} ({result.signature})")
    return result


def _copy(reader: Reader, writer: Writer, top: tuple[bytes, str, str], options: CopyOptions,
          result: CopyResult, log: Log) -> None:
    data, media_type, digest = top
    doc = parse_document(data, media_type, where=reader.name)
    media_type = doc.media_type
    children: list[tuple[bytes, str, str]] = []
    if isinstance(doc, Index):
        if options.all_platforms:
            children = [(reader.document(e.digest), e.media_type, e.digest)
                        for e in doc.manifests]
        else:
            wanted = parse_platform(options.platform) if options.platform else host_platform()
            entry = select_platform(doc, wanted, where=reader.name)
            data, digest = reader.document(entry.digest), entry.digest
            media_type = parse_document(data, entry.media_type, where=reader.name).media_type
    manifests = children or [(data, media_type, digest)]
    blobs = _unique(d for m in manifests for d in _blobs_of(m[0], reader.name))
    replaced = _copy_blobs(reader, writer, blobs, options, result, log)
    renamed: dict[str, tuple[bytes, str]] = {}
    for child_data, child_type, child_digest in manifests:
        new = _rewrite(child_data, replaced) if replaced else child_data
        renamed[child_digest] = (new, sha256_digest(new))
        if children:
            writer.put_manifest(new, child_type, sha256_digest(new), top=False)
            result.manifests.append(sha256_digest(new))
    if not children:
        data = renamed[digest][0]
    elif replaced:
        data = _rewrite_index(data, renamed)
    digest = sha256_digest(data)
    writer.put_manifest(data, media_type, digest, top=True)
    result.digest, result.media_type, result.size = digest, media_type, len(data)
    result.manifests.append(digest)
    log(f"wrote manifest {digest}")


def _copy_blobs(reader: Reader, writer: Writer, blobs: list[Descriptor], options: CopyOptions,
                result: CopyResult, log: Log) -> dict[str, Descriptor]:
    """Every blob to WRITER, in parallel; the layers --compress replaced, by old digest."""
    replaced: dict[str, Descriptor] = {}

    def one(desc: Descriptor) -> None:
        opener: Callable[[], IO[bytes]] = lambda: reader.open_blob(desc)  # noqa: E731
        target = desc
        done: Callable[[], None] = lambda: None  # noqa: E731
        if options.compress and _is_layer(desc) and _compression(desc) != options.compress:
            from hostctl.images.recompress import recompress

            target, opener, done = recompress(reader, desc, options.compress)
            replaced[desc.digest] = target
        try:
            action = writer.put_blob(target, opener)
        finally:
            done()
        result.blobs.append({"digest": target.digest, "size": target.size,
                             "mediaType": target.media_type, "action": action,
                             **({"from": desc.digest} if target is not desc else {})})
        log(f"blob {target.digest} ({target.size} bytes): {action}")

    workers = max(1, min(writer.parallel, getattr(reader, "parallel", 1)))
    if workers == 1:
        for desc in blobs:
            one(desc)
        return replaced
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hostctl-copy")
    try:
        for future in [pool.submit(one, desc) for desc in blobs]:
            future.result()
    finally:  # after a failure, blobs not started yet are not sent any more
        pool.shutdown(wait=True, cancel_futures=True)
    return replaced


def _blobs_of(data: bytes, where: str) -> list[Descriptor]:
    """Config and layers of a manifest, read leniently (attestations and signatures carry
    layer types an image manifest may not), every digest validated."""
    doc = json.loads(data)
    found = []
    for item in [doc.get("config"), *(doc.get("layers") or [])]:
        if not isinstance(item, dict):
            raise ImageError("manifest has a malformed descriptor", where=where)
        size = item.get("size")
        if not isinstance(size, int) or size < 0:
            raise ImageError(f"descriptor with invalid size {size!r}", where=where)
        found.append(Descriptor(str(item.get("mediaType", "")),
                                validate_digest(str(item.get("digest")), where=where), size))
    return found


def _unique(descs: Any) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for desc in descs:
        seen.setdefault(desc.digest, desc)
    return list(seen.values())


def _is_layer(desc: Descriptor) -> bool:
    return ".layer." in desc.media_type or ".rootfs." in desc.media_type


def _compression(desc: Descriptor) -> str | None:
    if desc.media_type.endswith(("gzip", "+gzip")):
        return "gzip"
    return "zstd" if desc.media_type.endswith("+zstd") else None


def _rewrite(data: bytes, replaced: dict[str, Descriptor]) -> bytes:
    doc = json.loads(data)
    if doc.get("mediaType") == DOCKER_MANIFEST and any(
            r.media_type.endswith("zstd") for r in replaced.values()):
        raise ImageError("zstd layers need an OCI manifest; this is a Docker v2 manifest",
                         hint="use --compress gzip")
    for layer in doc.get("layers") or []:
        new = replaced.get(layer.get("digest"))
        if new is not None:
            layer.update({"digest": new.digest, "size": new.size, "mediaType": new.media_type})
    return json.dumps(doc, separators=(",", ":")).encode()


def _rewrite_index(data: bytes, renamed: dict[str, tuple[bytes, str]]) -> bytes:
    doc = json.loads(data)
    for entry in doc.get("manifests") or []:
        new = renamed.get(entry.get("digest"))
        if new is not None:
            entry.update({"digest": new[1], "size": len(new[0])})
    return json.dumps(doc, separators=(",", ":")).encode()


def _open_writer(dst: Location, client: RegistryClient, reader: Reader, options: CopyOptions,
                 progress: Progress | None) -> Writer:
    from hostctl.images import writers

    if dst.kind == "docker":
        from hostctl.images.upload import CHUNK, Pusher

        assert dst.reference is not None
        pusher = Pusher(client, dst.reference, chunk=options.chunk or CHUNK, progress=progress,
                        mount_from=reader.mount_sources(dst.reference.registry))
        return writers.RegistryWriter(pusher)
    assert dst.path is not None
    if dst.kind == "oci":
        return writers.OciWriter(dst.path, dst.tag)
    if dst.kind == "oci-archive":
        return writers.OciArchiveWriter(dst.path, dst.tag)
    if dst.kind == "dir":
        return writers.DirWriter(dst.path)
    from hostctl.images.dockerarchive import ArchiveWriter

    if dst.tag and dst.tag.startswith("@"):
        raise ImageError("a docker-archive destination takes a reference, not @N",
                         where=str(dst))
    return ArchiveWriter(dst.path, dst.tag)


def _into_store(reader: Reader, src: Location, dst: Location, store: Store,
                options: CopyOptions, rootless: bool, log: Log,
                progress: Progress | None) -> CopyResult:
    """Copy into the store: a pull from READER (its checks, snapshots applied)."""
    from hostctl.images.pull import pull_source
    from hostctl.images.transports import ReaderSource

    if options.all_platforms or options.compress:
        raise ImageError("the store keeps one platform, as pulled", where=str(dst),
                         hint="drop --all / --compress when copying into the store")
    if dst.reference is None:
        raise ImageError("copying into the store needs a reference to store it under",
                         where=str(dst), hint="e.g. store:registry.example.com/team/app:1")
    image = pull_source(store, str(dst.reference), ReaderSource(reader),
                        platform=options.platform, rootless=rootless, log=log,
                        progress=progress)
    result = CopyResult(reader.name, str(dst), image.manifest_digest)
    result.manifests = [image.manifest_digest]
    return result
