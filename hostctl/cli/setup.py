"""Verbs that hook hostctl into systemd and what the units run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hostctl.cli.common import UserOpt, app, scope_of, systemctl
from hostctl.errors import HostctlError
from hostctl.paths import Scope


@app.command()
def launch(name: str, user: UserOpt = False) -> None:
    """Start container NAME for its systemd unit (what the unit's ExecStart runs)."""
    from hostctl.launcher.launch import launch as _launch

    status = _launch(name, scope_of(user))
    if status:
        raise typer.Exit(status)


@app.command()
def cleanup(name: str, user: UserOpt = False) -> None:
    """Remove container NAME's runtime state, mount and writable layer (ExecStopPost)."""
    from hostctl.launcher.launch import cleanup as _cleanup

    _cleanup(name, scope_of(user))


@app.command()
def generate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the units only.")] = False,
    user: UserOpt = False,
) -> None:
    """Turn the declarations into units: print them, or reload systemd so it regenerates."""
    from hostctl.units.generator import generate as _generate
    from hostctl.units.generator import timer_units

    scope = scope_of(user)
    units = _generate(scope, None)
    units.update((name, text) for name, text, _ in timer_units(scope.value, bool(units)))
    if dry_run:
        for unit_name, text in sorted(units.items()):
            typer.echo(f"# {unit_name}\n{text}")
        return
    systemctl(scope, "daemon-reload")
    for unit_name in sorted(units):
        typer.echo(unit_name)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Declaration files.")]) -> None:
    """Check declaration files (YAML, quadlet .container, .pod, .network, .volume, .image,
    .build and .kube (with its Kubernetes YAML), with their drop-ins; YAML in a pods/,
    networks/ or volumes/ directory as a pod, network or volume); print each error with
    file:line:key."""
    from hostctl.declarations.checks import TEMPLATE_INSTANCE, short_image_warning, template_parts
    from hostctl.declarations.search import (
        SUFFIXES,
        UNSUPPORTED,
        load_file,
        unsupported_type,
    )

    failed = 0
    for path in files:
        name = path.name
        for suffix in SUFFIXES:
            name = name.removesuffix(suffix)
        try:
            if path.name.endswith(".image"):
                from hostctl.declarations.image_file import load_image

                load_image(path)
                typer.echo(f"{path}: ok")
                continue
            if path.name.endswith(".build"):
                from hostctl.declarations.build_file import load_build

                load_build(path)
                typer.echo(f"{path}: ok")
                continue
            yaml_in = path.parent.name if path.name.endswith((".yaml", ".yml")) else ""
            if path.name.endswith(".pod") or yaml_in == "pods":
                from hostctl.declarations.pod_file import load_pod

                load_pod(path)
                typer.echo(f"{path}: ok")
                continue
            if path.name.endswith(".volume") or yaml_in == "volumes":
                from hostctl.declarations.volume_file import load_volume

                load_volume(path)
                typer.echo(f"{path}: ok")
                continue
            if path.name.endswith(".network") or yaml_in == "networks":
                from hostctl.network.defs import load as load_network

                load_network(path)
                typer.echo(f"{path}: ok")
                continue
            if path.name.endswith(".kube"):
                from hostctl.kube.quadlet import check_file

                check_file(path, scope_of(False))
                typer.echo(f"{path}: ok")
                continue
            if path.name.endswith(UNSUPPORTED):
                raise unsupported_type(path)
            if not path.name.endswith(SUFFIXES):
                raise HostctlError(
                    "not a declaration file", where=str(path),
                    hint="declarations are NAME.yaml, NAME.yml, NAME.container, NAME.pod, "
                    "NAME.network, NAME.volume, NAME.image, NAME.build or NAME.kube")
            prefix, instance, templated = template_parts(name)
            if templated and not instance:  # a template: checked as one of its instances
                name = f"{prefix}@{TEMPLATE_INSTANCE}"
            container = load_file(path, name)
        except HostctlError as err:
            failed += 1
            typer.echo(str(err).replace(TEMPLATE_INSTANCE, "%i"), err=True)
        else:
            warning = short_image_warning(container.image, container.where("image"))
            if warning:
                typer.echo(warning, err=True)
            typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(2)


@app.command()
def install(
    reload: Annotated[bool, typer.Option(help="Run systemctl daemon-reload after.")] = True,
) -> None:
    """Write hostctl-generator into systemd's system- and user-generators directories."""
    import sys

    from hostctl.api.setup import install_generators
    from hostctl.units.genentry import package_parent

    result = install_generators()
    kind = "compiled, else " if result.compiled else ""
    for program in result.links:
        typer.echo(f"{program}: {kind}{sys.executable} -sSE, hostctl from {package_parent()}"
                   f"{'' if result.changed else ' (unchanged)'}")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if reload and Path("/run/systemd/system").is_dir():
        systemctl(Scope.SYSTEM, "daemon-reload")


@app.command()
def uninstall() -> None:
    """Remove the generator programs (declarations and images stay)."""
    from hostctl.api.setup import uninstall_generators

    for link in uninstall_generators().links:
        typer.echo(f"removed {link}")


@app.command()
def version() -> None:
    """Print hostctl's version."""
    from hostctl import __version__

    typer.echo(__version__)


