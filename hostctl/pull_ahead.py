"""What a quadlet image's unit (NAME-image.service) runs: `hostctl image-pull NAME`, the
pull of hostctl.declarations.image_file's NAME.image, tried again Retry= times."""

from __future__ import annotations

import os
import sys
import time

from hostctl.declarations.image_file import ImageDecl, image_files, load_image
from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Scope


def find(name: str, scope: Scope) -> ImageDecl:
    """The image NAME's .image file of SCOPE, read."""
    from hostctl.declarations.dirs import declaration_dirs

    dirs = declaration_dirs(scope)
    path = image_files(dirs).get(name)
    if path is None:
        raise DeclarationError(f"no image file {name}.image",
                               hint="looked in " + ", ".join(str(d) for d in dirs))
    return load_image(path)


def pull(name: str, scope: Scope) -> None:
    """Pull image NAME as its file says (its unit's ExecStart)."""
    from hostctl.api.images import pull_image

    image = find(name, scope)
    if image.auth_file:
        os.environ["REGISTRY_AUTH_FILE"] = image.auth_file
    for attempt in range(image.retry + 1):
        try:
            done = pull_image(image.reference, scope=scope, policy=image.policy,
                              platform=image.platform, log=_say)
        except HostctlError as err:
            if attempt == image.retry:
                raise
            _say(f"pull of {image.reference} failed ({err}); trying again in "
                 f"{image.retry_delay:g}s ({attempt + 1} of {image.retry})")
            time.sleep(image.retry_delay)
            continue
        _say(f"{image.reference}: {done.manifest_digest}")
        return


def _say(message: str) -> None:
    print(f"hostctl: {message}", file=sys.stderr, flush=True)
