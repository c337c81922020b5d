"""Update verbs: auto-update (and its timer), rollback. `hostctl auto-update` in its
common forms does not come here (hostctl.cli.main: hostctl.cli.quick_update)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, say, scope_of
from hostctl.cli.quick_update import reasons as reasons
from hostctl.cli.quick_update import show
from hostctl.cli.quick_update import table as table
from hostctl.updates.judge import GRACE

if TYPE_CHECKING:
    from hostctl.api.update import UpdateResult

GraceOpt = Annotated[
    float,
    typer.Option("--grace", min=0.0, help="Seconds a restarted container must keep running "
                 "to count as updated (a health check must also pass).")]


def _show(results: Sequence[UpdateResult], fmt: str) -> None:
    status = show(results, fmt)
    if status:
        raise typer.Exit(status)


@app.command("auto-update")
def auto_update(
    names: Annotated[list[str] | None, typer.Argument(
        help="Only these containers (default: every running one with auto_update).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only report what would be updated (pending).")] = False,
    rollback: Annotated[bool, typer.Option(
        "--rollback/--no-rollback", help="Put the previous image back when the updated "
        "container fails to start, exits within the grace period or is not healthy.")] = True,
    grace: GraceOpt = GRACE,
    fmt: FormatOpt = "table",
    enable_timer: Annotated[bool, typer.Option(
        "--enable-timer", help="Run auto-update daily (hostctl-auto-update.timer).")] = False,
    disable_timer: Annotated[bool, typer.Option(
        "--disable-timer", help="Stop running auto-update daily.")] = False,
    user: UserOpt = False,
) -> None:
    """Update running containers whose declaration has auto_update (registry: the
    registry's image for their tag; local: the store's) and restart them; roll back
    the ones that do not come up."""
    from hostctl.api import update

    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    if enable_timer or disable_timer:
        if enable_timer and disable_timer:
            raise typer.BadParameter("--enable-timer or --disable-timer, not both")
        if names or dry_run:
            raise typer.BadParameter("--enable-timer and --disable-timer take no names "
                                     "and no --dry-run")
        actions = update.set_timer(enable_timer, scope=scope_of(user))
        for action in actions:
            typer.echo(action)
        word = "enabled" if enable_timer else "disabled"
        typer.echo(f"hostctl-auto-update.timer: {word}" + ("" if actions else " already"))
        return
    results = update.auto_update(names or (), scope=scope_of(user), dry_run=dry_run,
                                 rollback=rollback, grace=grace, log=say)
    _show(results, fmt)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Container name.")],
    grace: GraceOpt = GRACE,
    fmt: FormatOpt = "table",
    user: UserOpt = False,
) -> None:
    """Put NAME back on the image its last auto-update replaced, and restart it."""
    from hostctl.api.update import rollback as _rollback

    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    _show([_rollback(name, scope=scope_of(user), grace=grace, log=say)], fmt)
