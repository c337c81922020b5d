"""Store management: list, inspect, remove, prune and verify (and repair) images.

What is in use is never removed: everything reachable from the image index, the images
rollback records keep (hostctl.images.pins: what an auto-update replaced), plus what
running containers use. A running container is a bundle under Paths.containers
(NAME/config.json): its annotation io.hostctl.image.digest names its image, and its
rootfs is an overlay whose lowerdirs are snapshot directories (read from mountinfo).
Prune and verify hold the store's exclusive lock, so no pull writes meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    MAX_DOCUMENT,
    Index,
    Manifest,
    chain_ids,
    diff_ids,
    parse_config,
    parse_document,
)
from hostctl.images.reference import parse_reference
from hostctl.images.store import IndexEntry, Store, remove_tree

DIGEST_ANNOTATION = "io.hostctl.image.digest"


@dataclass(frozen=True)
class ImageSummary:
    reference: str
    manifest_digest: str
    size: int  # config plus compressed layers, as the registry serves them
    created: str | None


@dataclass
class Report:
    """What prune or verify found and did."""

    problems: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    freed: int = 0


@dataclass
class _Reach:
    blobs: set[str] = field(default_factory=set)  # bare hex
    snapshots: set[str] = field(default_factory=set)  # bare hex of ChainIDs


def _doc(store: Store, digest: str, where: str) -> Manifest | Index | None:
    if not store.has_blob(digest):
        return None
    return parse_document(store.read_blob(digest, MAX_DOCUMENT), None, where=where)


def _config(store: Store, manifest: Manifest, where: str) -> dict[str, Any] | None:
    if not store.has_blob(manifest.config.digest):
        return None
    return parse_config(store.read_blob(manifest.config.digest, MAX_DOCUMENT),
                        len(manifest.layers), where=where)


def _walk(store: Store, top: str, where: str, reach: _Reach) -> None:
    """Mark TOP and everything below it (platform manifests, config, layers, snapshots)."""
    reach.blobs.add(top.removeprefix("sha256:"))
    try:
        doc = _doc(store, top, where)
    except ImageError:
        return  # a damaged document: verify reports it; prune keeps what it can name
    manifests = [doc] if isinstance(doc, Manifest) else []
    if isinstance(doc, Index):
        for entry in doc.manifests:
            reach.blobs.add(entry.digest.removeprefix("sha256:"))
            try:
                sub = _doc(store, entry.digest, where)
            except ImageError:
                continue
            if isinstance(sub, Manifest):
                manifests.append(sub)
    for manifest in manifests:
        reach.blobs.add(manifest.config.digest.removeprefix("sha256:"))
        reach.blobs.update(layer.digest.removeprefix("sha256:") for layer in manifest.layers)
        try:
            config = _config(store, manifest, where)
        except ImageError:
            continue
        if config is not None:
            reach.snapshots.update(c.removeprefix("sha256:")
                                   for c in chain_ids(diff_ids(config)))


def in_use(store: Store, containers: Path | None) -> _Reach:
    """Everything the image index, a rollback record or a running container needs."""
    from hostctl.images.pins import pinned

    reach = _Reach()
    for name, entry in store.images().items():
        _walk(store, entry.digest, name, reach)
    for record, pin in pinned(store):
        _walk(store, pin, record, reach)
    if containers is not None:
        for digest, lowers in running_containers(containers):
            if digest:
                _walk(store, digest, digest, reach)
            reach.snapshots.update(lowers)
    return reach


def running_containers(containers: Path) -> list[tuple[str | None, set[str]]]:
    """(image digest, snapshot names in its overlay) for each bundle under CONTAINERS."""
    mounts = _overlay_lowers()
    found: list[tuple[str | None, set[str]]] = []
    if not containers.is_dir():
        return found
    for bundle in sorted(containers.iterdir()):
        try:
            spec = json.loads((bundle / "config.json").read_text())
        except (OSError, ValueError):
            continue
        digest = (spec.get("annotations") or {}).get(DIGEST_ANNOTATION)
        root = (spec.get("root") or {}).get("path") or "rootfs"
        root_path = os.path.normpath(os.path.join(bundle, root))
        found.append((digest if isinstance(digest, str) else None,
                      mounts.get(root_path, set())))
    return found


def _overlay_lowers() -> dict[str, set[str]]:
    """Mount point -> names of its overlay lowerdirs, from /proc/self/mountinfo."""
    result: dict[str, set[str]] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return result
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields = tail.split()
        if not sep or len(fields) < 3 or fields[0] != "overlay":
            continue
        point = head.split()[4].replace("\\040", " ")
        for option in fields[2].split(","):
            if option.startswith("lowerdir="):
                result[point] = {os.path.basename(p.rstrip("/"))
                                 for p in option[len("lowerdir="):].split(":") if p}
    return result


# -- listing and inspecting --------------------------------------------------------------


def list_images(store: Store) -> list[ImageSummary]:
    """Every stored reference with its digest, size and creation time, sorted by name."""
    summaries = []
    for reference, entry in sorted(store.images().items()):
        size, created = 0, None
        doc = _doc(store, entry.manifest, reference)
        if isinstance(doc, Manifest):
            size = doc.config.size + sum(layer.size for layer in doc.layers)
            config = _config(store, doc, reference)
            value = (config or {}).get("created")
            created = value if isinstance(value, str) else None
        summaries.append(ImageSummary(reference, entry.digest, size, created))
    return summaries


def find(store: Store, name: str) -> list[str]:
    """Stored references NAME means: the reference itself, or a digest (prefix)."""
    images = store.images()
    if name in images:
        return [name]
    bare = name.removeprefix("sha256:")
    if len(bare) >= 4 and all(c in "0123456789abcdef" for c in bare):
        return sorted(r for r, e in images.items()
                      if e.digest[7:].startswith(bare) or e.manifest[7:].startswith(bare))
    try:
        canonical = str(parse_reference(name))
    except ImageError:
        return []
    return [canonical] if canonical in images else []


def _one(store: Store, name: str) -> tuple[str, IndexEntry]:
    found = find(store, name)
    if not found:
        raise ImageError("no such image in the store", where=name,
                         hint="`hostctl images` lists the stored images")
    if len(found) > 1:
        raise ImageError(f"ambiguous: matches {', '.join(found)}", where=name,
                         hint="give the full reference")
    return found[0], store.images()[found[0]]


def inspect(store: Store, name: str) -> dict[str, Any]:
    """Manifest, config and layers (with sizes, DiffIDs and snapshots) of a stored image."""
    reference, entry = _one(store, name)
    manifest = _doc(store, entry.manifest, reference)
    if not isinstance(manifest, Manifest):
        raise ImageError("its manifest is missing from the store", where=reference,
                         hint="run `hostctl image verify --repair`")
    config = _config(store, manifest, reference) or {}
    ids = diff_ids(config) if config else ()
    chains = chain_ids(ids)
    layers = []
    for number, layer in enumerate(manifest.layers):
        chain = chains[number] if chains else None
        layers.append({
            "digest": layer.digest, "mediaType": layer.media_type, "size": layer.size,
            "diffID": ids[number] if ids else None,
            "snapshot": str(store.snapshot_path(chain)) if chain and store.has_snapshot(chain)
            else None,
        })
    return {
        "reference": reference, "digest": entry.digest, "manifestDigest": entry.manifest,
        "pulled": entry.pulled, "mediaType": manifest.media_type,
        "size": manifest.config.size + sum(layer.size for layer in manifest.layers),
        "config": config, "configDigest": manifest.config.digest, "layers": layers,
    }


# -- removing -----------------------------------------------------------------------------


def remove(store: Store, names: list[str], containers: Path | None) -> Report:
    """Untag NAMES and prune what no other image or running container needs."""
    targets = []
    for name in names:
        reference, _ = _one(store, name)
        targets.append(reference)
    report = Report()
    for reference in targets:
        store.forget(reference)
        report.removed.append(reference)
    pruned = prune(store, containers)
    report.freed = pruned.freed
    return report


def prune(store: Store, containers: Path | None) -> Report:
    """Remove blobs and snapshots that no stored image and no running container uses."""
    report = Report()
    if not store.root.is_dir():
        return report
    with store.exclusive():
        store.clean_temporaries()
        keep = in_use(store, containers)
        for parent, kept, kind in ((store.blobs, keep.blobs, "blob"),
                                   (store.snapshots, keep.snapshots, "snapshot")):
            for entry in sorted(parent.iterdir()) if parent.is_dir() else []:
                if entry.name in kept:
                    continue
                report.freed += _size(entry)
                remove_tree(entry)
                report.removed.append(f"{kind} sha256:{entry.name}")
        for record in sorted(store.records.iterdir()) if store.records.is_dir() else []:
            if record.name.removesuffix(".gz") not in keep.snapshots:
                record.unlink()
        _prune_build_cache(store)
    return report


def _prune_build_cache(store: Store) -> None:
    """Drop `hostctl build` cache entries whose layer blob is gone (they could never hit)."""
    directory = store.root / "build-cache"
    for entry in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            layer = json.loads(entry.read_bytes()).get("layer")
            digest = layer.get("digest") if isinstance(layer, dict) else None
            if digest is not None and not store.has_blob(str(digest)):
                entry.unlink()
        except (OSError, ValueError, AttributeError, ImageError):
            entry.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total


# -- verifying ----------------------------------------------------------------------------


def verify(store: Store, *, repair: bool = False,
           pull: Callable[[str], object] | None = None,
           log: Callable[[str], None] | None = None) -> Report:
    """Re-hash every blob, compare every snapshot with the record made when it was applied,
    and check every image is complete. With REPAIR, remove damaged blobs, re-apply damaged
    snapshots from their stored blobs, and pull the images still incomplete again
    (PULL(reference))."""
    report = Report()
    damaged: set[str] = set()
    with store.exclusive():
        store.clean_temporaries()
        for blob in sorted(store.blobs.iterdir()) if store.blobs.is_dir() else []:
            if _hash(blob) != blob.name:
                report.problems.append(f"blob sha256:{blob.name} is corrupt")
                if repair:
                    blob.unlink()
        layers = _applied_layers(store)
        broken = _check_snapshots(store, layers, report)
        for reference, entry in store.images().items():
            problems = _check_image(store, reference, entry)
            report.problems += problems
            if problems:
                damaged.add(reference)
        if repair:
            damaged |= _repair_snapshots(store, broken, layers, report, log)
    if repair and pull is not None:
        for reference in sorted(damaged):
            try:
                pull(reference)
                report.repaired.append(reference)
            except ImageError as exc:
                report.problems.append(f"{reference}: repair failed: {exc.message}")
    return report


@dataclass
class _Applied:
    """What a snapshot is: its layer, and the snapshots it was applied over."""

    chain: str
    layer: str
    diff_id: str
    below: tuple[str, ...]  # ChainIDs, bottom first
    users: set[str] = field(default_factory=set)  # references of the images using it


def _applied_layers(store: Store) -> dict[str, _Applied]:
    """Bare ChainID hex -> what it is, for every layer of every stored image."""
    found: dict[str, _Applied] = {}
    for reference, entry in store.images().items():
        try:
            manifest = _doc(store, entry.manifest, reference)
            config = _config(store, manifest, reference) \
                if isinstance(manifest, Manifest) else None
        except ImageError:
            continue
        if config is None or not isinstance(manifest, Manifest):
            continue
        chains = chain_ids(diff_ids(config))
        for depth, (chain, diff_id, layer) in enumerate(
                zip(chains, diff_ids(config), manifest.layers, strict=True)):
            applied = found.setdefault(chain[7:], _Applied(chain, layer.digest, diff_id,
                                                           tuple(chains[:depth])))
            applied.users.add(reference)
    return found


def _check_snapshots(store: Store, layers: dict[str, _Applied], report: Report) -> set[str]:
    """Bare hex of the snapshots that differ from their records (or have none)."""
    from hostctl.images import snaprecord

    broken = set()
    for snapshot in sorted(store.snapshots.iterdir()) if store.snapshots.is_dir() else []:
        record = store.records / f"{snapshot.name}.gz"
        applied = layers.get(snapshot.name)
        what = f"snapshot sha256:{snapshot.name}" + (f" (layer {applied.layer})"
                                                     if applied else "")
        if not record.is_file():
            report.problems.append(f"{what} has no record of its content (applied by an "
                                   "older hostctl), so it cannot be checked")
            broken.add(snapshot.name)
            continue
        differences = snaprecord.compare(snapshot, record)
        if differences:
            report.problems.append(f"{what} is damaged: " + "; ".join(differences))
            broken.add(snapshot.name)
    return broken


def _repair_snapshots(store: Store, broken: set[str], layers: dict[str, _Applied],
                      report: Report, log: Callable[[str], None] | None) -> set[str]:
    """Re-apply each broken snapshot from its stored blob, bottom first; the references
    that still need a pull (their blob is gone too)."""
    mounted = set().union(*_overlay_lowers().values())
    again: set[str] = set()
    for name in sorted(broken, key=lambda n: len(layers[n].below) if n in layers else 0):
        applied = layers.get(name)
        if name in mounted:
            report.problems.append(f"snapshot sha256:{name}: repair failed: a running "
                                   "container uses it; stop the container and repair again")
            continue
        rootless = _recorded_rootless(store, name)
        _set_aside(store, name)
        if applied is None:
            report.removed.append(f"snapshot sha256:{name}")  # no image uses it
        elif _reapply(store, applied, rootless, log):
            report.repaired.append(f"snapshot sha256:{name}")
        else:
            again |= applied.users
    return again


def _set_aside(store: Store, name: str) -> None:
    """Move a damaged snapshot out of the way (then delete it) and forget its record."""
    import tempfile

    aside = Path(tempfile.mkdtemp(prefix=".tmp-damaged-", dir=store.snapshots))
    os.rename(store.snapshots / name, aside / name)
    remove_tree(aside)
    with contextlib.suppress(FileNotFoundError):
        (store.records / f"{name}.gz").unlink()


def _recorded_rootless(store: Store, name: str) -> bool:
    """Whether snapshot NAME was applied rootless (its record says; else who we are)."""
    from hostctl.images import snaprecord

    try:
        return snaprecord.read_header(store.records / f"{name}.gz").rootless
    except (OSError, EOFError, ImageError):
        return os.geteuid() != 0


def _reapply(store: Store, applied: _Applied, rootless: bool,
             log: Callable[[str], None] | None) -> bool:
    """Apply APPLIED's layer again from its stored blob; False if that cannot be done here."""
    from hostctl.images.pull import apply_snapshot

    below = [store.snapshot_path(chain) for chain in applied.below]
    if not all(path.is_dir() for path in below) or not store.has_blob(applied.layer):
        return False
    try:
        apply_snapshot(store, applied.chain, applied.diff_id, applied.layer, below,
                       rootless=rootless, where=f"layer {applied.layer}",
                       log=log or (lambda _message: None))
    except ImageError:
        return False
    return True


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _check_image(store: Store, reference: str, entry: IndexEntry) -> list[str]:
    problems = []
    for digest in (entry.digest, entry.manifest):
        if not store.has_blob(digest) or _hash(store.blob_path(digest)) != digest[7:]:
            problems.append(f"{reference}: document {digest} missing or corrupt")
    if problems:
        return problems
    manifest = _doc(store, entry.manifest, reference)
    if not isinstance(manifest, Manifest):
        return [f"{reference}: {entry.manifest} is not an image manifest"]
    config_ok = store.has_blob(manifest.config.digest) and _hash(
        store.blob_path(manifest.config.digest)) == manifest.config.digest[7:]
    if not config_ok:
        return [f"{reference}: config {manifest.config.digest} missing or corrupt"]
    config = _config(store, manifest, reference) or {}
    for chain, layer in zip(chain_ids(diff_ids(config)), manifest.layers, strict=True):
        blob_ok = store.has_blob(layer.digest) and _hash(
            store.blob_path(layer.digest)) == layer.digest[7:]
        if not store.has_snapshot(chain) and not blob_ok:
            problems.append(f"{reference}: layer {layer.digest} neither applied nor stored")
    return problems
