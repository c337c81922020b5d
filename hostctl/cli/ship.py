"""Shipping verbs: push, image copy, image tags (remote inspect and rm are in images.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, say, scope_of
from hostctl.cli.images import image_app

if TYPE_CHECKING:
    from hostctl.images.copy import CopyOptions, CopyResult
    from hostctl.images.trust import TrustConfig

AllOpt = Annotated[bool, typer.Option("--all", help="Copy every platform of an index.")]
PlatformOpt = Annotated[str | None, typer.Option(help="os/arch[/variant] to copy "
                                                 "(default: this host's).")]
CompressOpt = Annotated[str | None, typer.Option(
    "--compress", help="Recompress layers: gzip or zstd (changes their digests).")]
SignOpt = Annotated[Path | None, typer.Option(
    "--sign-by-sigstore-key", help="Sign with this private key (cosign's key file or a "
    "PEM key); writes cosign's signature format.")]
FormatSigOpt = Annotated[str, typer.Option(
    "--sign-format", help="sig: cosign's sha256-HEX.sig image (what podman reads); bundle: "
    "cosign v3's Sigstore bundle as an OCI 1.1 referrer.")]
PassOpt = Annotated[Path | None, typer.Option(
    "--sign-passphrase-file", help="File holding the signing key's passphrase.")]
PolicyOpt = Annotated[Path | None, typer.Option(
    "--signature-policy", help="policy.json to use instead of the default ones.")]
RegistriesDOpt = Annotated[Path | None, typer.Option(
    "--registries.d", help="registries.d directory to use instead of the default ones.")]


def trust_config(policy: Path | None, registries_d: Path | None) -> TrustConfig | None:
    from hostctl.images.trust import TrustConfig

    if policy is None and registries_d is None:
        return None
    return TrustConfig(policy=(policy,) if policy else None,
                       registries_d=(registries_d,) if registries_d else None)


def _options(all_platforms: bool, platform: str | None, compress: str | None,
             sign: Path | None, passphrase: Path | None,
             registries_d: Path | None = None, sign_format: str = "sig") -> CopyOptions:
    from hostctl.images.copy import CopyOptions

    secret = passphrase.read_bytes().rstrip(b"\r\n") if passphrase else None
    return CopyOptions(all_platforms=all_platforms, platform=platform, compress=compress,
                       sign_key=sign, sign_passphrase=secret, sign_format=sign_format,
                       registries_d=(registries_d,) if registries_d else None)


def _run(action: Any, fmt: str) -> None:
    """Run ACTION(log, progress): bars on a terminal, one line per layer otherwise."""
    if sys.stderr.isatty() and fmt != "json":
        from hostctl.cli.images import _Bars

        bars = _Bars()
        with bars.bars:
            result = action(bars.bars.console.print, bars)
    else:
        result = action(say, None)
    _report(result, fmt)


def _report(result: CopyResult, fmt: str) -> None:
    if fmt == "json":
        import dataclasses

        typer.echo(json.dumps(dataclasses.asdict(result), indent=2))
        return
    typer.echo(result.digest)


@app.command()
def push(
    reference: str,
    destination: Annotated[str | None, typer.Argument(
        help="Where to (default docker://REFERENCE); a bare reference is a registry.")] = None,
    all_platforms: AllOpt = False, platform: PlatformOpt = None, compress: CompressOpt = None,
    sign_by_sigstore_key: SignOpt = None, sign_passphrase_file: PassOpt = None,
    sign_format: FormatSigOpt = "sig",
    registries_d: RegistriesDOpt = None, user: UserOpt = False, fmt: FormatOpt = "table",
) -> None:
    """Push a stored image to a registry (or any location image copy takes)."""
    from hostctl.api.images import push_image

    options = _options(all_platforms, platform, compress, sign_by_sigstore_key,
                       sign_passphrase_file, registries_d, sign_format)
    _run(lambda log, progress: push_image(reference, destination, scope=scope_of(user),
                                          options=options, log=log, progress=progress), fmt)


@image_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="docker://REF, oci:DIR[:TAG], "
                                          "oci-archive:FILE[:TAG], docker-archive:FILE[:REF], "
                                          "dir:DIR, store:REF or a stored REF")],
    destination: Annotated[str, typer.Argument(help="the same kinds of location")],
    all_platforms: AllOpt = False, platform: PlatformOpt = None, compress: CompressOpt = None,
    sign_by_sigstore_key: SignOpt = None, sign_passphrase_file: PassOpt = None,
    sign_format: FormatSigOpt = "sig",
    signature_policy: PolicyOpt = None, registries_d: RegistriesDOpt = None,
    user: UserOpt = False, fmt: FormatOpt = "table",
) -> None:
    """Copy an image between registries, layouts, archives and the store, digests kept."""
    from hostctl.api.images import copy_image

    options = _options(all_platforms, platform, compress, sign_by_sigstore_key,
                       sign_passphrase_file, registries_d, sign_format)
    trust = trust_config(signature_policy, registries_d)
    _run(lambda log, progress: copy_image(source, destination, scope=scope_of(user),
                                          options=options, log=log, progress=progress,
                                          trust=trust), fmt)


@image_app.command("tags")
def tags(repository: str, fmt: FormatOpt = "table") -> None:
    """List the tags of a registry repository (docker://REPO or REPO)."""
    from hostctl.api.images import remote_tags

    found = remote_tags(repository)
    if fmt == "json":
        typer.echo(json.dumps({"Repository": repository.removeprefix("docker://"),
                               "Tags": found}, indent=2))
        return
    for tag in found:
        typer.echo(tag)


@image_app.command("sync")
def sync(
    file: Annotated[Path, typer.Argument(help="YAML list of images (skopeo sync's format, "
                                         "plus images-by-semver and rename)")],
    destination: Annotated[str, typer.Argument(help="docker://HOST[/NAMESPACE], dir:DIR "
                                               "or oci:DIR")],
    all_platforms: AllOpt = False, platform: PlatformOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be copied.")]
    = False,
    signature_policy: PolicyOpt = None, registries_d: RegistriesDOpt = None,
    user: UserOpt = False, fmt: FormatOpt = "table",
) -> None:
    """Mirror images (tags by list, regex or semver range) to a registry or directory,
    copying only what changed."""
    import dataclasses

    from hostctl.api.images import sync_images

    options = _options(all_platforms, platform, None, None, None, registries_d)
    result = sync_images(file, destination, scope=scope_of(user), options=options,
                         dry_run=dry_run, log=say,
                         trust=trust_config(signature_policy, registries_d))
    if fmt == "json":
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2))
        return
    typer.echo(f"copied {len(result.copied)}, unchanged {len(result.unchanged)}")
