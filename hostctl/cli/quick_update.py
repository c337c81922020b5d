"""`hostctl auto-update` without typer (about 100 ms of imports): the common forms
(NAMES, --dry-run, --rollback/--no-rollback, --grace, --format, --user) are parsed here,
as the typer command in hostctl.cli.update parses them; anything else (--help, the
timer options, an unknown option, a value typer would refuse) goes to typer, which
parses and reports it as always. The output is the typer command's (show())."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.api.update import UpdateResult

COLUMNS = ("UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED")
FLAGS = {"--dry-run": ("dry_run", True), "--rollback": ("rollback", True),
         "--no-rollback": ("rollback", False), "--user": ("user", True)}
VALUED = {"--grace": "grace", "--format": "fmt"}


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


def show(results: Sequence[UpdateResult], fmt: str) -> int:
    """Print RESULTS (FMT: table, reasons on stderr; or json); the exit status."""
    if fmt == "json":
        print(json.dumps([r.as_json() for r in results], indent=2), flush=True)
    else:
        print(table(results), flush=True)
        for line in reasons(results):
            print(line, file=sys.stderr, flush=True)
    return 1 if any(r.failed for r in results) else 0


def parse(argv: Sequence[str]) -> dict[str, object] | None:
    """ARGV (after `auto-update`) as auto_update()'s options, or None: typer's to parse."""
    from hostctl.updates.judge import GRACE

    options: dict[str, object] = {"names": [], "dry_run": False, "rollback": True,
                                  "grace": GRACE, "fmt": "table", "user": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        key, eq, value = arg.partition("=")
        if arg in FLAGS:
            options[FLAGS[arg][0]] = FLAGS[arg][1]
        elif key in VALUED:
            if not eq:
                if not args:
                    return None
                value = args.pop(0)
            options[VALUED[key]] = value
        elif arg.startswith("-"):
            return None  # --help, --enable-timer, --, an unknown option: typer's
        else:
            names = options["names"]
            assert isinstance(names, list)
            names.append(arg)
    try:
        grace = float(str(options["grace"]))
    except ValueError:
        return None
    if not grace >= 0 or options["fmt"] not in ("table", "json"):
        return None
    options["grace"] = grace
    return options


def main(argv: Sequence[str]) -> int | None:
    """Run `hostctl auto-update ARGV`; None when typer must parse ARGV."""
    options = parse(argv)
    if options is None:
        return None
    from hostctl.api import update
    from hostctl.paths import Scope, default_scope

    names = options["names"]
    grace = options["grace"]
    assert isinstance(names, list) and isinstance(grace, float)
    try:
        results = update.auto_update(
            names, scope=Scope.USER if options["user"] else default_scope(),
            dry_run=bool(options["dry_run"]), rollback=bool(options["rollback"]),
            grace=grace, log=lambda message: print(message, file=sys.stderr, flush=True))
    except HostctlError as err:
        print(f"hostctl: {err}", file=sys.stderr)
        return err.exit_code
    except subprocess.CalledProcessError as err:
        print(f"hostctl: {' '.join(map(str, err.cmd))} failed (exit {err.returncode})",
              file=sys.stderr)
        return 1
    return show(results, str(options["fmt"]))
