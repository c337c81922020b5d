"""The typer application: parses arguments and calls hostctl.api; nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hostctl.errors import HostctlError
from hostctl.paths import Scope, default_scope

app = typer.Typer(
    name="hostctl",
    help="Containers declared in files, run as plain systemd services with runc.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

UserOpt = Annotated[bool, typer.Option("--user", help="Act on the calling user's containers.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Output format: table or json.")]
_state = {"debug": False}


def _scope(user: bool) -> Scope:
    return Scope.USER if user else default_scope()


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and commands.")] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


@app.command()
def launch(name: str, user: UserOpt = False) -> None:
    """Start container NAME for its systemd unit (what the unit's ExecStart runs)."""
    from hostctl.launcher.launch import launch as _launch

    _launch(name, _scope(user))


@app.command()
def cleanup(name: str, user: UserOpt = False) -> None:
    """Remove container NAME's runtime state, mount and writable layer (ExecStopPost)."""
    from hostctl.launcher.launch import cleanup as _cleanup

    _cleanup(name, _scope(user))


@app.command()
def generate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the units only.")] = False,
    user: UserOpt = False,
) -> None:
    """Turn the declarations into units: print them, or reload systemd so it regenerates."""
    from hostctl.units.generator import generate as _generate

    scope = _scope(user)
    units = _generate(scope, None)
    if dry_run:
        for unit_name, text in sorted(units.items()):
            typer.echo(f"# {unit_name}\n{text}")
        return
    _systemctl(scope, "daemon-reload")
    for unit_name in sorted(units):
        typer.echo(unit_name)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Declaration files.")]) -> None:
    """Check declaration files; print each error with file:line:key."""
    from hostctl.declarations.yaml_reader import load_yaml

    failed = 0
    for path in files:
        try:
            load_yaml(path)
        except HostctlError as err:
            failed += 1
            typer.echo(str(err), err=True)
        else:
            typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(2)


@app.command()
def install(
    reload: Annotated[bool, typer.Option(help="Run systemctl daemon-reload after.")] = True,
) -> None:
    """Link hostctl-generator into systemd's system- and user-generators directories."""
    from hostctl.api.setup import install_generators

    result = install_generators()
    for link in result.links:
        typer.echo(f"{link} -> {link.readlink()}")
    if reload and Path("/run/systemd/system").is_dir():
        _systemctl(Scope.SYSTEM, "daemon-reload")


@app.command()
def uninstall() -> None:
    """Remove the generator links (declarations and images stay)."""
    from hostctl.api.setup import uninstall_generators

    for link in uninstall_generators().links:
        typer.echo(f"removed {link}")


@app.command()
def pull(
    reference: str,
    platform: Annotated[str | None, typer.Option(help="os/arch[/variant]")] = None,
    user: UserOpt = False,
) -> None:
    """Pull an image from its registry into the local store."""
    from hostctl.api.images import pull_image

    image = pull_image(reference, scope=_scope(user), platform=platform, log=_say)
    typer.echo(image.manifest_digest)


@app.command()
def images(user: UserOpt = False, fmt: FormatOpt = "table") -> None:
    """List the images in the local store."""
    from hostctl.api.images import list_images

    rows = list_images(scope=_scope(user))
    if fmt == "json":
        typer.echo(json.dumps([_jsonable(r) for r in rows], indent=2))
        return
    typer.echo(f"{'REFERENCE':<50} {'DIGEST':<20} {'SIZE':>10}")
    for row in rows:
        typer.echo(f"{row.reference:<50} {row.manifest_digest[7:19]:<20} {_size(row.size):>10}")


@app.command()
def version() -> None:
    """Print hostctl's version."""
    from hostctl import __version__

    typer.echo(__version__)


def _jsonable(row: Any) -> dict[str, Any]:
    import dataclasses

    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(row).items()}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return str(n)


def _systemctl(scope: Scope, *args: str) -> None:
    argv = [shutil.which("systemctl") or "systemctl"]
    if scope is Scope.USER:
        argv.append("--user")
    subprocess.run([*argv, *args], check=True)


def run_app() -> None:
    """Run the application, turning HostctlError into one line and its exit code."""
    try:
        app()  # standalone: typer itself reports usage errors and exits
    except HostctlError as err:
        if _state["debug"]:
            raise
        print(f"hostctl: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except subprocess.CalledProcessError as err:
        print(f"hostctl: {' '.join(map(str, err.cmd))} failed (exit {err.returncode})",
              file=sys.stderr)
        sys.exit(1)
