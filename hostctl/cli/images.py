"""Image verbs: pull, images."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, human_size, jsonable, say, scope_of


@app.command()
def pull(
    reference: str,
    platform: Annotated[str | None, typer.Option(help="os/arch[/variant]")] = None,
    user: UserOpt = False,
) -> None:
    """Pull an image from its registry into the local store."""
    from hostctl.api.images import pull_image

    image = pull_image(reference, scope=scope_of(user), platform=platform, log=say)
    typer.echo(image.manifest_digest)


@app.command()
def images(user: UserOpt = False, fmt: FormatOpt = "table") -> None:
    """List the images in the local store."""
    from hostctl.api.images import list_images

    rows = list_images(scope=scope_of(user))
    if fmt == "json":
        typer.echo(json.dumps([jsonable(r) for r in rows], indent=2))
        return
    typer.echo(f"{'REFERENCE':<50} {'DIGEST':<20} {'SIZE':>10}")
    for row in rows:
        size = human_size(row.size)
        typer.echo(f"{row.reference:<50} {row.manifest_digest[7:19]:<20} {size:>10}")


