"""Image verbs: pull, images, image inspect/rm/prune/verify, rmi, login, logout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, human_size, jsonable, say, scope_of

if TYPE_CHECKING:
    from hostctl.images.manage import Report

image_app = typer.Typer(name="image", help="Manage the local image store.",
                        no_args_is_help=True)
app.add_typer(image_app, name="image")
AuthFileOpt = Annotated[Path | None, typer.Option("--authfile", help="auth.json to write.")]


class _Bars:
    """Per-layer rich progress bars (bytes, speed, ETA) for a terminal."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TimeRemainingColumn(),
                             console=_console())
        self._tasks: dict[str, Any] = {}

    def start(self, digest: str, total: int) -> None:
        self._tasks[digest] = self.bars.add_task(digest[7:19], total=total)

    def advance(self, digest: str, amount: int) -> None:
        self.bars.advance(self._tasks[digest], amount)

    def finish(self, digest: str) -> None:
        task = self._tasks[digest]
        self.bars.update(task, completed=self.bars.tasks[task].total)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def pull(
    reference: str,
    platform: Annotated[str | None, typer.Option(help="os/arch[/variant]")] = None,
    signature_policy: Annotated[Path | None, typer.Option(
        "--signature-policy", help="policy.json to use instead of the default ones.")] = None,
    registries_d: Annotated[Path | None, typer.Option(
        "--registries.d", help="registries.d directory instead of the default ones.")] = None,
    user: UserOpt = False,
) -> None:
    """Pull an image (REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    or dir:DIR) into the local store, checked against policy.json."""
    from hostctl.api.images import pull_image
    from hostctl.cli.ship import trust_config

    trust = trust_config(signature_policy, registries_d)
    if sys.stderr.isatty():
        bars = _Bars()
        with bars.bars:
            image = pull_image(reference, scope=scope_of(user), platform=platform,
                               log=bars.bars.console.print, progress=bars, trust=trust)
    else:
        image = pull_image(reference, scope=scope_of(user), platform=platform, log=say,
                           trust=trust)
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


@image_app.command("inspect")
def inspect(
    name: str,
    raw: Annotated[bool, typer.Option("--raw", help="docker://: the manifest's bytes.")]
    = False,
    config: Annotated[bool, typer.Option("--config", help="docker://: the image config.")]
    = False,
    platform: Annotated[str | None, typer.Option(help="docker://: the platform to describe "
                                                 "(default: this host's)")] = None,
    user: UserOpt = False, fmt: FormatOpt = "table",
) -> None:
    """Show a stored image's manifest, config and layers; with docker://REF, a registry's
    image without pulling it."""
    from hostctl.api.images import inspect_image

    if name.startswith("docker://"):
        _inspect_remote(name, raw, config, platform, fmt)
        return
    if raw or config or platform:
        raise typer.BadParameter("--raw, --config and --platform are for docker://REF",
                                 param_hint="NAME")
    info = inspect_image(name, scope=scope_of(user))
    if fmt == "json":
        typer.echo(json.dumps(info, indent=2))
        return
    settings = info["config"].get("config") or {}
    typer.echo(f"Reference: {info['reference']}\nDigest:    {info['digest']}\n"
               f"Manifest:  {info['manifestDigest']}\nPulled:    {info['pulled']}\n"
               f"Size:      {human_size(info['size'])}\n"
               f"Platform:  {info['config'].get('os')}/{info['config'].get('architecture')}\n"
               f"Entrypoint: {settings.get('Entrypoint')}  Cmd: {settings.get('Cmd')}\n"
               f"User: {settings.get('User') or ''}  "
               f"WorkingDir: {settings.get('WorkingDir') or ''}"
               "\nLayers:")
    for layer in info["layers"]:
        state = "applied" if layer["snapshot"] else "stored"
        typer.echo(f"  {layer['digest']} {human_size(layer['size']):>10} {state}")


def _inspect_remote(name: str, raw: bool, config: bool, platform: str | None,
                    fmt: str) -> None:
    from hostctl.api.images import inspect_remote

    info = inspect_remote(name, platform=platform, raw=raw, config=config)
    if isinstance(info, bytes):
        sys.stdout.buffer.write(info)
        sys.stdout.flush()
        return
    if fmt == "json":
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"Name:      {info['Name']}\nDigest:    {info['Digest']}\n"
               f"MediaType: {info['MediaType']}\n"
               + (f"Platforms: {', '.join(info['Platforms'])}\n" if info["Platforms"] else "")
               + f"Manifest:  {info['ManifestDigest']}\nConfig:    {info['ConfigDigest']}\n"
               f"Created:   {info['Created']}\n"
               f"Platform:  {info['Os']}/{info['Architecture']}\n"
               f"Entrypoint: {info['Entrypoint']}  Cmd: {info['Cmd']}\nLayers:")
    for layer in info["LayersData"]:
        typer.echo(f"  {layer['Digest']} {human_size(layer['Size']):>10}")


def _removed(report: Report) -> None:
    for item in report.removed:
        typer.echo(f"removed {item}")
    typer.echo(f"freed {human_size(report.freed)}")


@image_app.command("rm")
def image_rm(names: list[str], user: UserOpt = False) -> None:
    """Remove images (by reference or digest) and the data nothing else uses; docker://REF
    deletes a tag in a registry (where it allows that), docker://REPO@DIGEST a manifest."""
    from hostctl.api.images import remote_delete, remove_images

    for name in [n for n in names if n.startswith("docker://")]:
        typer.echo(f"deleted {remote_delete(name)} from {name.removeprefix('docker://')}")
    local = [n for n in names if not n.startswith("docker://")]
    if local:
        _removed(remove_images(local, scope=scope_of(user)))


@app.command("rmi")
def rmi(names: list[str], user: UserOpt = False) -> None:
    """Remove images (same as `hostctl image rm`)."""
    image_rm(names, user)


@image_app.command("prune")
def prune(user: UserOpt = False) -> None:
    """Remove blobs and snapshots that no image and no running container uses."""
    from hostctl.api.images import prune_images

    _removed(prune_images(scope=scope_of(user)))


@image_app.command("verify")
def verify(
    repair: Annotated[bool, typer.Option("--repair", help="Remove damage and pull again.")]
    = False,
    user: UserOpt = False,
) -> None:
    """Re-hash every stored blob and check every image is complete."""
    from hostctl.api.images import verify_images

    report = verify_images(scope=scope_of(user), repair=repair, log=say)
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    for reference in report.repaired:
        typer.echo(f"repaired: {reference}")
    unresolved = [p for p in report.problems if "repair failed" in p] if repair \
        else report.problems
    if unresolved:
        raise typer.Exit(1)
    typer.echo("store verified" if not report.problems else "store repaired")


@app.command()
def login(
    registry: str,
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from stdin.")]
    = False,
    authfile: AuthFileOpt = None,
) -> None:
    """Log in to REGISTRY: check the credentials and store them in auth.json (0600)."""
    from hostctl.api.images import login as do_login

    if username is None:
        username = typer.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    if not password:
        raise typer.BadParameter("empty password", param_hint="password")
    path = do_login(registry, username, password, authfile=authfile)
    typer.echo(f"Login succeeded (credentials in {path})")


@app.command()
def logout(registry: str, authfile: AuthFileOpt = None) -> None:
    """Forget the stored credentials for REGISTRY."""
    from hostctl.api.images import logout as do_logout

    if not do_logout(registry, authfile=authfile):
        say(f"not logged in to {registry}")
        raise typer.Exit(1)
    typer.echo(f"Removed login credentials for {registry}")
