"""FROM IMAGE and COPY --from=IMAGE: the image pulled (or found) in the store, as the
starting point of a stage."""

from __future__ import annotations

from collections.abc import Callable

from hostctl.build.image import Layer, Pending, StageImage
from hostctl.build.parser import Instruction
from hostctl.errors import HostctlError
from hostctl.images.manifest import host_platform
from hostctl.images.store import Store


def pull_base(store: Store, reference: str, instruction: Instruction, *, rootless: bool,
              log: Callable[[str], None]) -> StageImage:
    """REFERENCE from the store, pulled first when missing; its layers applied."""
    from hostctl.images.pull import _resolve_stored, pull

    try:
        image = pull(store, reference, policy="missing", rootless=rootless, log=log)
        resolved = _resolve_stored(store, image.reference, None, host_platform())
    except HostctlError as exc:
        raise instruction.error(f"image {reference}: {exc}",
                                hint=exc.hint or "check the name; `hostctl pull` it "
                                "first to see why") from None
    if resolved is None:
        raise instruction.error(f"image {reference} is not complete in the store")
    config = image.config
    pairs = zip(resolved.manifest.layers, config["rootfs"]["diff_ids"], strict=True)
    layers: list[Layer | Pending] = [Layer(d.digest, diff_id, d.size, d.media_type)
                                     for d, diff_id in pairs]
    return StageImage(
        key="image " + resolved.manifest_digest,
        layers=layers,
        config=dict(config.get("config") or {}),
        history=list(config.get("history") or []),
        architecture=str(config.get("architecture") or host_platform().architecture),
        os=str(config.get("os") or "linux"),
        variant=config.get("variant") if isinstance(config.get("variant"), str) else None,
    )
