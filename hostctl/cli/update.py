"""Update verbs: auto-update (and its timer), rollback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, say, scope_of
from hostctl.updates.judge import GRACE

if TYPE_CHECKING:
    from hostctl.api.update import UpdateResult

GraceOpt = Annotated[
    float,
    typer.Option("--grace", min=0.0, help="Seconds a restarted container must keep running "
                 "to count as updated (a health check must also pass).")]
COLUMNS = ("UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED")


def table(results: Sequence[UpdateResult]) -> str:
    """The results as podman prints them: UNIT CONTAINER IMAGE POLICY UPDATED."""
    rows = [COLUMNS, *((r.unit, r.container, r.image, r.policy or "-", str(r.updated))
                       for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  " + row[-1] for row in rows)


def reasons(results: Sequence[UpdateResult]) -> list[str]:
    """One line per result that has something to say (why it failed, was rolled back
    or skipped)."""
    return [f"{r.container}: {r.updated}: {r.reason}" for r in results if r.reason]


def _show(results: Sequence[UpdateResult], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps([r.as_json() for r in results], indent=2))
    else:
        typer.echo(table(results))
        for line in reasons(results):
            say(line)
    if any(r.failed for r in results):
        raise typer.Exit(1)


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
