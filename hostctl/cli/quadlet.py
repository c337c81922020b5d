"""Quadlet verbs, as podman 5.6 has them: quadlet install, list, print, rm."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, scope_of, systemctl

quadlet_app = typer.Typer(name="quadlet", no_args_is_help=True,
                          help="Install, list, print and remove quadlet files.")
app.add_typer(quadlet_app, name="quadlet")
ReloadOpt = Annotated[bool, typer.Option("--reload-systemd/--no-reload-systemd",
                                         help="Run systemctl daemon-reload after.")]


def _reload(scope_user: bool, reload: bool) -> None:
    if reload and Path("/run/systemd/system").is_dir():
        systemctl(scope_of(scope_user), "daemon-reload")


@quadlet_app.command("install")
def quadlet_install(
    paths: Annotated[list[Path], typer.Argument(
        help="A quadlet file (then other files it needs), a directory (one application) "
             "or a .quadlets file.")],
    replace: Annotated[bool, typer.Option("--replace", "-r",
                                          help="Replace files already installed.")] = False,
    reload: ReloadOpt = True,
    user: UserOpt = False,
) -> None:
    """Validate and copy quadlet files into the declaration directory."""
    from hostctl.api.quadlet import install

    for path in install(paths, scope_of(user), replace=replace):
        typer.echo(str(path))
    _reload(user, reload)


@quadlet_app.command("list")
def quadlet_list(user: UserOpt = False, format: FormatOpt = "table") -> None:
    """List the installed quadlet and YAML files, their units' state and application."""
    from hostctl.api.quadlet import listing
    from hostctl.errors import HostctlError

    scope = scope_of(user)

    def state(unit: str) -> str:
        try:
            from hostctl.systemd.dbus import Systemd

            return Systemd(scope).unit(unit).active_state
        except (HostctlError, Exception):  # no systemd bus to ask: the state is unknown
            return "unknown"

    rows = listing(scope, state)
    if format == "json":
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    typer.echo(f"{'NAME':<32} {'UNIT':<32} {'STATE':<10} APP")
    for r in rows:
        typer.echo(f"{r.file:<32} {r.unit or '-':<32} {r.state or '-':<10} {r.app or '-'}")


@quadlet_app.command("print")
def quadlet_print(name: str, user: UserOpt = False) -> None:
    """Print an installed quadlet file."""
    from hostctl.api.quadlet import find

    typer.echo(find(name, scope_of(user)).read_text(encoding="utf-8"), nl=False)


@quadlet_app.command("rm")
def quadlet_rm(
    names: Annotated[list[str], typer.Argument(help="Installed files (NAME.SUFFIX or NAME).")],
    reload: ReloadOpt = True,
    user: UserOpt = False,
) -> None:
    """Stop the units of installed quadlet files and remove the files (a file of an
    application removes the whole application)."""
    from hostctl.api.quadlet import remove

    scope = scope_of(user)

    def stop(unit: str) -> None:
        if Path("/run/systemd/system").is_dir():
            import subprocess

            argv = ["systemctl", *(["--user"] if user else []), "stop", unit]
            subprocess.run(argv, check=False, capture_output=True)

    for path in remove(names, scope, stop=stop):
        typer.echo(f"removed {path}")
    _reload(user, reload)
