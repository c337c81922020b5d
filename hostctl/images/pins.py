"""Rollback records: per container, the image an update replaced, kept in the store.

    STORE/pins/NAME.json   {"version": 1, "container": NAME, "reference": REF,
                            "running": IMAGE, "previous": IMAGE | null,
                            "rejected": IMAGE + {"at", "reason"} | null, "at": TIME}
    IMAGE = {"digest": what REF resolved to (index or manifest), "manifest": this
             platform's image manifest}

`previous` is the pin: garbage collection (hostctl.images.manage.in_use) keeps it and
everything below it, so the image a container may return to is never pruned, whatever
the image index says. `rejected` is a release that was rolled back (automatically, or
by `hostctl rollback`): auto-update skips it until the source offers another digest, so
a broken release is neither retried at every run nor left running. Records are replaced
atomically under the store's "pins" lock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from hostctl.errors import ImageError
from hostctl.images.reference import validate_digest
from hostctl.images.store import Store, atomic_write

VERSION = 1


@dataclass(frozen=True)
class ImageId:
    """One image of a reference: the digest it resolved to and this platform's manifest."""

    digest: str
    manifest: str

    def to_json(self) -> dict[str, str]:
        return {"digest": self.digest, "manifest": self.manifest}


@dataclass(frozen=True)
class Rejected:
    """A release rolled back from, and why."""

    image: ImageId
    at: str  # ISO 8601 UTC
    reason: str


@dataclass(frozen=True)
class Pin:
    """Container NAME's rollback record."""

    container: str
    reference: str
    running: ImageId  # what the last update or rollback left it on
    previous: ImageId | None  # what `hostctl rollback` returns to (kept by prune)
    rejected: Rejected | None = None
    at: str = ""

    def rejects(self, manifest: str) -> bool:
        """Whether the platform manifest MANIFEST was rolled back from."""
        return self.rejected is not None and self.rejected.image.manifest == manifest


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pin_path(store: Store, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ImageError(f"invalid container name {name!r} for a rollback record")
    return store.pins / f"{name}.json"


def read(store: Store, name: str) -> Pin | None:
    """Container NAME's record, None when it has none; ImageError when it is damaged."""
    path = pin_path(store, name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return _parse(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError, ImageError) as exc:
        raise ImageError(f"rollback record is damaged: {exc}", where=str(path),
                         hint="remove it (the container loses its rollback image)") from None


def write(store: Store, pin: Pin) -> None:
    """Store PIN (stamped with the time) as its container's record."""
    path = pin_path(store, pin.container)
    doc = _unparse(replace(pin, at=now()))
    with store.lock("pins"):
        store.pins.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, indent=1).encode() + b"\n")


def remove(store: Store, name: str) -> bool:
    """Forget container NAME's record (its previous image may then be pruned)."""
    path = pin_path(store, name)
    if not path.exists():
        return False
    with store.lock("pins"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
    return True


def pinned(store: Store) -> Iterator[tuple[str, str]]:
    """(record file, digest) of every previous image a record keeps. A damaged record
    keeps whatever digests it still names: prune must err on the side of keeping."""
    if not store.pins.is_dir():
        return
    for path in sorted(store.pins.glob("*.json")):
        try:
            doc = json.loads(path.read_bytes())
            previous = doc.get("previous") or {}
            digests = [previous.get("digest"), previous.get("manifest")]
        except (OSError, ValueError, AttributeError):
            continue
        for digest in digests:
            if isinstance(digest, str) and digest.startswith("sha256:"):
                yield str(path), digest


def _image(value: object) -> ImageId | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("an image must be an object")
    return ImageId(validate_digest(value["digest"]), validate_digest(value["manifest"]))


def _parse(doc: dict[str, object]) -> Pin:
    if doc.get("version") != VERSION:
        raise ValueError(f"unknown version {doc.get('version')!r}")
    running = _image(doc["running"])
    if running is None:
        raise ValueError("running is missing")
    rejected = doc.get("rejected")
    gone = None
    if isinstance(rejected, dict):
        image = _image(rejected)
        assert image is not None
        gone = Rejected(image, str(rejected.get("at", "")), str(rejected.get("reason", "")))
    return Pin(str(doc["container"]), str(doc["reference"]), running,
               _image(doc.get("previous")), gone, str(doc.get("at", "")))


def _unparse(pin: Pin) -> dict[str, object]:
    rejected = None if pin.rejected is None else {
        **pin.rejected.image.to_json(), "at": pin.rejected.at, "reason": pin.rejected.reason}
    return {
        "version": VERSION, "container": pin.container, "reference": pin.reference,
        "running": pin.running.to_json(),
        "previous": pin.previous.to_json() if pin.previous else None,
        "rejected": rejected, "at": pin.at,
    }
