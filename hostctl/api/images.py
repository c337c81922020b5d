"""Images: pull and list, for the CLI and the Ansible modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hostctl.paths import Scope, for_scope

if TYPE_CHECKING:
    from hostctl.images.pull import Image, ImageSummary


def pull_image(
    reference: str,
    *,
    scope: Scope,
    policy: str = "always",
    platform: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Image:
    """Pull REFERENCE into the scope's store (policy: always | missing | never)."""
    from hostctl.images.pull import pull
    from hostctl.images.store import Store

    store = Store(for_scope(scope).store)
    return pull(store, reference, platform=platform, policy=policy,
                rootless=scope is Scope.USER, log=log)


def list_images(*, scope: Scope) -> list[ImageSummary]:
    from hostctl.images.pull import list_images as _list
    from hostctl.images.store import Store

    return _list(Store(for_scope(scope).store))
