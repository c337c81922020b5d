"""`hostctl compose`: docker compose's verbs over compose projects run as units
(hostctl.api.compose)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, jsonable, say, scope_of

if TYPE_CHECKING:
    from hostctl.api.compose import Source

compose_app = typer.Typer(
    name="compose", no_args_is_help=True,
    help="Run a compose project as systemd units: up, down, ps, logs, config, start, "
    "stop, restart.")
app.add_typer(compose_app, name="compose")

ProjectOpt = Annotated[str | None, typer.Option(
    "--project-name", "-p", help="The project's name (default: the files' `name:`, "
    "else the directory's name).")]
FileOpt = Annotated[list[Path] | None, typer.Option(
    "--file", "-f", help="A compose file (repeatable; default: compose.yaml or "
    "docker-compose.yml and its override in the current directory).")]
EnvFileOpt = Annotated[list[Path] | None, typer.Option(
    "--env-file", help="Variables for interpolation (repeatable; default: .env).")]
ProfileOpt = Annotated[list[str] | None, typer.Option(
    "--profile", help="Enable a profile (repeatable; default: COMPOSE_PROFILES).")]
ServicesArg = Annotated[list[str] | None, typer.Argument(
    help="Services (default: the whole project).")]


def _source(project: str | None, files: list[Path] | None, env_files: list[Path] | None,
            profiles: list[str] | None) -> Source:
    from hostctl.api.compose import source_of

    return source_of(project, files or (), env_files or (), profiles)


def _name(project: str | None, files: list[Path] | None, env_files: list[Path] | None
          ) -> str:
    from hostctl.api.compose import project_name

    return project_name(_source(project, files, env_files, None))


@compose_app.command("up")
def compose_up(
    detach: Annotated[bool, typer.Option("--detach", "-d",
                                         help="Return once started (else follow the logs).")
                      ] = False,
    project: ProjectOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
    profile: ProfileOpt = None, user: UserOpt = False,
) -> None:
    """Install the project where the generator reads it, reload systemd and start it."""
    import time

    from hostctl.api.compose import up
    from hostctl.cli.quick_compose import report_up

    scope = scope_of(user)
    began = time.time()
    result = up(_source(project, file, env_file, profile), scope)
    if report_up(result, scope, detach, began, say):
        raise typer.Exit(1)


@compose_app.command("down")
def compose_down(
    volumes: Annotated[bool, typer.Option("--volumes", "-v",
                                          help="Remove the named volumes too.")] = False,
    project: ProjectOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
    user: UserOpt = False,
) -> None:
    """Stop the project and remove its units, containers and networks (and, with -v,
    its named volumes)."""
    from hostctl.api.compose import down

    result = down(_name(project, file, env_file), scope_of(user), volumes=volumes)
    for action in result.actions:
        say(action)


@compose_app.command("ps")
def compose_ps(project: ProjectOpt = None, file: FileOpt = None,
               env_file: EnvFileOpt = None, user: UserOpt = False,
               format: FormatOpt = "table") -> None:
    """The project's containers: service, name, state, ports, health."""
    from hostctl.api.compose import ps

    rows = ps(_name(project, file, env_file), scope_of(user))
    if format == "json":
        typer.echo(json.dumps([jsonable(row) for row in rows], indent=2))
        return
    typer.echo(f"{'NAME':<28} {'SERVICE':<16} {'STATE':<22} {'HEALTH':<10} PORTS")
    for row in rows:
        state = f"{row.state} ({row.sub_state})"
        typer.echo(f"{row.name:<28} {row.service:<16} {state:<22} {row.health or '-':<10} "
                   + ", ".join(row.ports))


@compose_app.command("logs")
def compose_logs(
    services: ServicesArg = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow the output.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", help="Lines per service.")] = None,
    project: ProjectOpt = None, file: FileOpt = None, env_file: EnvFileOpt = None,
    user: UserOpt = False,
) -> None:
    """The services' output from the journal."""
    from hostctl.api.compose import log_command

    argv = log_command(_name(project, file, env_file), scope_of(user), services or (),
                       follow=follow, lines=tail)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


@compose_app.command("config")
def compose_config(project: ProjectOpt = None, file: FileOpt = None,
                   env_file: EnvFileOpt = None, profile: ProfileOpt = None) -> None:
    """Print the resolved project, as `docker compose config` does."""
    from hostctl.api.compose import config

    typer.echo(config(_source(project, file, env_file, profile)), nl=False)


def _control(method: str, services: list[str] | None, project: str | None,
             file: list[Path] | None, env_file: list[Path] | None, user: bool) -> None:
    from hostctl.api.compose import control

    control(_name(project, file, env_file), scope_of(user), method, services or ())


@compose_app.command("start")
def compose_start(services: ServicesArg = None, project: ProjectOpt = None,
                  file: FileOpt = None, env_file: EnvFileOpt = None,
                  user: UserOpt = False) -> None:
    """Start the installed project (or services)."""
    _control("StartUnit", services, project, file, env_file, user)


@compose_app.command("stop")
def compose_stop(services: ServicesArg = None, project: ProjectOpt = None,
                 file: FileOpt = None, env_file: EnvFileOpt = None,
                 user: UserOpt = False) -> None:
    """Stop the project (or services); nothing is removed."""
    _control("StopUnit", services, project, file, env_file, user)


@compose_app.command("restart")
def compose_restart(services: ServicesArg = None, project: ProjectOpt = None,
                    file: FileOpt = None, env_file: EnvFileOpt = None,
                    user: UserOpt = False) -> None:
    """Restart the project (or services)."""
    _control("RestartUnit", services, project, file, env_file, user)
