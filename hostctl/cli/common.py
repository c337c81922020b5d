"""The typer application object and what every command module shares."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from hostctl.paths import Scope, default_scope

app = typer.Typer(
    name="hostctl",
    help="Containers declared in files, run as plain systemd services with runc.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts like os/arch[/variant] are literal, not markup
)

UserOpt = Annotated[bool, typer.Option("--user", help="Act on the calling user's containers.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Output format: table or json.")]
_state = {"debug": False}


def scope_of(user: bool) -> Scope:
    return Scope.USER if user else default_scope()


def say(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and commands.")] = False,
) -> None:
    _state["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


def jsonable(row: Any) -> dict[str, Any]:
    import dataclasses

    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(row).items()}


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return str(n)


def systemctl(scope: Scope, *args: str) -> None:
    argv = [shutil.which("systemctl") or "systemctl"]
    if scope is Scope.USER:
        argv.append("--user")
    subprocess.run([*argv, *args], check=True)


