"""Container verbs over systemd: apply, rm, start, stop, restart, status, ps, healthcheck,
enable, disable."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, jsonable, say, scope_of
from hostctl.paths import Scope

NameArg = Annotated[str, typer.Argument(help="Container name (the declaration's file stem).")]


def _fail(err: Exception) -> typer.Exit:
    from hostctl.errors import HostctlError

    say(str(err))
    return typer.Exit(err.exit_code if isinstance(err, HostctlError) else 1)


@app.command()
def apply(
    file: Annotated[str, typer.Argument(help="Declaration file, or - for stdin.")],
    name: Annotated[str | None, typer.Option(help="Name (default: the file stem).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Change nothing; show the diff.")] = False,
    user: UserOpt = False,
) -> None:
    """Install or update a declaration; restart its unit only when it changed."""
    from hostctl.api.containers import apply as _apply
    from hostctl.errors import HostctlError

    if file == "-":
        text = sys.stdin.read()
        if name is None:
            raise typer.BadParameter("--name is needed with -")
    else:
        text = Path(file).read_text(encoding="utf-8")
        name = name or Path(file).name.removesuffix(".yaml").removesuffix(".yml")
    try:
        result = _apply(name, text, scope=scope_of(user), check=check)
    except HostctlError as err:
        raise _fail(err) from None
    if result.diff:
        typer.echo(result.diff, nl=False)
    for action in result.actions:
        typer.echo(("would " if check else "") + action)
    typer.echo(f"{name}: {'changed' if result.changed else 'unchanged'}"
               + (f", {result.unit_state}" if result.unit_state else ""))


@app.command("rm")
def rm(name: NameArg, user: UserOpt = False) -> None:
    """Stop a container and delete the declaration `hostctl apply` installed."""
    from hostctl.api.containers import remove
    from hostctl.errors import HostctlError

    try:
        result = remove(name, scope=scope_of(user))
    except HostctlError as err:
        raise _fail(err) from None
    typer.echo(f"{name}: {'removed' if result.changed else 'not installed by hostctl apply'}")


def _control(name: str, method: str, user: bool) -> None:
    from hostctl.api.containers import control
    from hostctl.errors import HostctlError

    try:
        control(name, method, scope_of(user))
    except HostctlError as err:
        raise _fail(err) from None


@app.command()
def start(name: NameArg, user: UserOpt = False) -> None:
    """Start NAME.service and wait; on failure print why and the last journal lines."""
    _control(name, "StartUnit", user)


@app.command()
def stop(name: NameArg, user: UserOpt = False) -> None:
    """Stop NAME.service and wait for it; say so when its PID 1 had to be killed."""
    from hostctl.api.containers import stop_timeout_note
    from hostctl.errors import HostctlError
    from hostctl.systemd.dbus import Systemd

    _control(name, "StopUnit", user)
    try:
        note = stop_timeout_note(Systemd(scope_of(user)).unit(f"{name}.service"))
    except HostctlError as err:
        raise _fail(err) from None
    if note:
        say(note)


@app.command()
def restart(name: NameArg, user: UserOpt = False) -> None:
    """Restart NAME.service (a fresh container from the image) and wait."""
    _control(name, "RestartUnit", user)


@app.command()
def status(name: NameArg, user: UserOpt = False) -> None:
    """Show NAME.service's state and its last journal lines."""
    from hostctl.api.containers import stop_timeout_note
    from hostctl.errors import HostctlError
    from hostctl.systemd.dbus import Systemd, journal_tail

    scope = scope_of(user)
    try:
        state = Systemd(scope).unit(f"{name}.service")
    except HostctlError as err:
        raise _fail(err) from None
    typer.echo(f"{state.name}: {state.active_state} ({state.sub_state}), result "
               f"{state.result}, main pid {state.main_pid}, restarts {state.restarts}")
    health = _health_line(name, scope)
    if health:
        typer.echo(health)
    note = stop_timeout_note(state)
    if note:
        typer.echo(note)
    journal = journal_tail(state.name, scope)
    if journal:
        typer.echo(journal)
    if state.active_state != "active":
        raise typer.Exit(3)


def _health_line(name: str, scope: Scope) -> str | None:
    """`health: STATUS (failing streak N; last check: exit N, OUTPUT)`, None without a
    check."""
    from hostctl.health.state import read
    from hostctl.paths import for_scope

    found = read(name, for_scope(scope))
    if found is None:
        return None
    line = f"health: {found.status} (failing streak {found.failing_streak}"
    if found.log:
        last = found.log[-1]
        output = " ".join(last.output.split())[:100]
        line += f"; last check: exit {last.exit_code}" + (f", {output}" if output else "")
    return line + ")"


def _uptime(since: float | None) -> str:
    if since is None:
        return "-"
    seconds = int(time.time() - since)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@app.command()
def ps(
    fmt: FormatOpt = "table",
    user: UserOpt = False,
    all_: Annotated[bool, typer.Option(
        "-a", "--all", help="Stopped containers too (inactive units).")] = False,
) -> None:
    """List containers (declared ones and those `hostctl run -d` started) that are
    running, starting, stopping or failed; with -a also the stopped ones: unit state,
    health, uptime, restarts, image and its digest."""
    from hostctl.api.containers import list_containers
    from hostctl.errors import HostctlError

    try:
        rows = list_containers(scope_of(user), adhoc=True, stopped=all_)
    except HostctlError as err:
        raise _fail(err) from None
    if fmt == "json":
        typer.echo(json.dumps([jsonable(row) for row in rows], indent=2))
        return
    typer.echo(f"{'NAME':20} {'STATE':18} {'HEALTH':9} {'UPTIME':7} {'RESTARTS':8} "
               f"{'DIGEST':19} {'POD':12} IMAGE")
    for row in rows:
        state = f"{row.active_state}/{row.sub_state}"
        image = row.image or f"(broken: {row.error})"
        digest = row.digest[:19] if row.digest else "-"  # sha256: and 12 hex digits
        typer.echo(f"{row.name:20} {state:18} {row.health or '-':9} "
                   f"{_uptime(row.active_since):7} {row.restarts:<8} {digest:19} "
                   f"{row.pod or '-':12} {image}")


@app.command()
def healthcheck(name: NameArg, user: UserOpt = False) -> None:
    """Run NAME's health check now, recorded like a timer's check. Exit status 0: it
    passed, 1: it failed, 2: it cannot run (not running, no check)."""
    from hostctl.api.containers import healthcheck as _healthcheck
    from hostctl.errors import HostctlError

    try:
        result = _healthcheck(name, scope_of(user))
    except HostctlError as err:
        raise _fail(err) from None
    what = "startup probe" if result.startup else "check"
    verdict = "passed" if result.passed else f"failed (exit status {result.exit_code})"
    typer.echo(f"{name}: {what} {verdict}; {result.status}")
    if result.output:
        typer.echo(result.output)
    raise typer.Exit(0 if result.passed else 1)


def _enable(name: str, enabled: bool, user: bool, linger: bool = False) -> None:
    from hostctl.api.containers import set_enabled
    from hostctl.errors import HostctlError

    try:
        result = set_enabled(name, enabled, scope_of(user), linger=linger)
    except HostctlError as err:
        raise _fail(err) from None
    for action in result.actions[:-1]:  # the last one is always the daemon-reload
        typer.echo(action)
    word = "enabled" if enabled else "disabled"
    typer.echo(f"{name}: {word}" + ("" if result.changed else " already"))
    for note in result.notes:
        say(f"note: {note}")


LingerOpt = Annotated[
    bool,
    typer.Option("--linger", help="With --user: turn lingering on (loginctl enable-linger) "
                 "so the container starts at boot without a login."),
]


@app.command()
def enable(name: NameArg, user: UserOpt = False, linger: LingerOpt = False) -> None:
    """Start NAME at boot (generated units cannot be `systemctl enable`d); a user's
    container needs lingering for that, which --linger turns on."""
    if linger and not user:
        raise typer.BadParameter("--linger is for a user's containers (with --user)")
    _enable(name, True, user, linger)


@app.command()
def disable(name: NameArg, user: UserOpt = False) -> None:
    """Stop starting NAME at boot."""
    _enable(name, False, user)
