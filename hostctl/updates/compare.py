"""What auto-update compares: platform manifest digests, like with like.

A running container's bundle names the digest its reference resolved to when it started
(config.json's io.hostctl.image.digest: for a multi-platform image, the index's). An
index changes whenever any platform's image does (or an attestation is added), so
comparing index digests would restart containers whose own image did not change.
Both sides are therefore taken down to this platform's image manifest: the running one
through the stored index, the registry's through the one index (or manifest) it serves
for the tag, without a second request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hostctl.errors import ImageError
from hostctl.images.manifest import MAX_DOCUMENT, Index, Platform, parse_document, select_platform
from hostctl.images.pins import ImageId, Pin
from hostctl.images.store import Store


class Updated(StrEnum):
    """The UPDATED column (podman's words)."""

    TRUE = "true"
    FALSE = "false"
    PENDING = "pending"
    FAILED = "failed"
    ROLLED_BACK = "rolled back"


def image_id(data: bytes, content_type: str | None, top: str, wanted: Platform,
             where: str) -> ImageId:
    """TOP (the digest of DATA, a manifest or an index) with this platform's manifest."""
    document = parse_document(data, content_type, where=where)
    if isinstance(document, Index):
        return ImageId(top, select_platform(document, wanted, where=where).digest)
    return ImageId(top, top)


def stored_image_id(store: Store, top: str, wanted: Platform, where: str) -> ImageId:
    """TOP as stored (a running container's image): with its platform manifest; a top
    document no longer stored is taken as its own manifest (compared by that digest)."""
    if not store.has_blob(top):
        return ImageId(top, top)
    try:
        return image_id(store.read_blob(top, MAX_DOCUMENT), None, top, wanted, where)
    except ImageError:
        return ImageId(top, top)


@dataclass(frozen=True)
class Decision:
    """Whether to update, and why not."""

    update: bool
    reason: str = ""


def decide(running: ImageId, candidate: ImageId, pin: Pin | None, reference: str) -> Decision:
    """Update when CANDIDATE is another image for this platform than RUNNING, unless the
    record PIN says that image was rolled back from (until another one is offered)."""
    if candidate.manifest == running.manifest:
        return Decision(False)
    if pin is not None and pin.reference == reference and pin.rejects(candidate.manifest):
        rejected = pin.rejected
        assert rejected is not None
        return Decision(False, f"{candidate.manifest} was rolled back at {rejected.at} "
                        f"({rejected.reason}); waiting for another image")
    return Decision(True)
