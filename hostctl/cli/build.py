"""`hostctl build`: a Containerfile into an image in the store (hostctl.api.build)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hostctl.cli.common import UserOpt, app, scope_of


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    from hostctl.build.parser import BuildError

    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not key:
            raise BuildError(f"{what} {item!r} is not KEY=VALUE")
        if not sep:
            import os

            if key not in os.environ:
                continue  # as docker: --build-arg NAME takes NAME from the environment
            value = os.environ[key]
        pairs[key] = value
    return pairs


def _secrets(items: list[str] | None) -> dict[str, Path]:
    from hostctl.build.parser import BuildError

    found = {}
    for item in items or []:
        fields = dict(f.partition("=")[::2] for f in item.split(","))
        ident, src = fields.get("id"), fields.get("src") or fields.get("source")
        if not ident or not src:
            raise BuildError(f"--secret {item!r}: expected id=ID,src=PATH")
        found[ident] = Path(src)
    return found


@app.command()
def build(
    context: Annotated[Path, typer.Argument(help="The build context directory.")],
    tag: Annotated[list[str] | None, typer.Option("-t", "--tag",
                                                  help="Name the image (repeat).")] = None,
    file: Annotated[Path | None, typer.Option(
        "-f", "--file", help="The Containerfile (default: CONTEXT/Containerfile, "
        "then CONTEXT/Dockerfile).")] = None,
    build_arg: Annotated[list[str] | None, typer.Option(
        "--build-arg", help="K=V for an ARG (repeat).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Build this stage.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    explain_cache: Annotated[bool, typer.Option(
        "--explain-cache", help="Say why each step hit or missed the cache.")] = False,
    timestamp: Annotated[int | None, typer.Option(
        "--timestamp", help="Seconds since the epoch for created times and file mtimes "
        "(default: $SOURCE_DATE_EPOCH).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="oci or docker.")] = "oci",
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="id=ID,src=PATH for RUN --mount=type=secret (repeat).")] = None,
    user: UserOpt = False,
) -> None:
    """Build an image from a Containerfile into the store."""
    from hostctl.api.build import build_image

    build_image(context, scope=scope_of(user), file=file, tags=tag or [],
                build_args=_pairs(build_arg, "--build-arg"), target=target,
                no_cache=no_cache, timestamp=timestamp, fmt=fmt, secrets=_secrets(secret),
                explain_cache=explain_cache,
                log=lambda line: typer.echo(line))
