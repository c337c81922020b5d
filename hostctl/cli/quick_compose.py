"""`hostctl compose up` without typer (typer and the CLI's modules cost about 0.1 s of
an `up`, more on a loaded host): its options (-d/--detach, -p/--project-name, -f/--file,
--env-file, --profile, --user; `--opt=value` too) are parsed here as the typer command
in hostctl.cli.compose parses them, and what it prints is the same (report_up, which
that command calls too). Anything else goes to typer, which parses and reports it as
always: --help, an unknown option, an option without its value, a service argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.api.compose import ComposeResult
    from hostctl.paths import Scope

FLAGS = {"-d": "detach", "--detach": "detach", "--user": "user"}
VALUED = {"-p": "project", "--project-name": "project"}
REPEATED = {"-f": "file", "--file": "file", "--env-file": "env_file", "--profile": "profile"}


def parse(argv: Sequence[str]) -> dict[str, object] | None:
    """`compose up`'s options in ARGV (after `up`), or None: typer's to parse."""
    options: dict[str, object] = {"detach": False, "user": False, "project": None,
                                  "file": [], "env_file": [], "profile": []}
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        key, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg in FLAGS:
            options[FLAGS[arg]] = True
            continue
        if key not in VALUED and key not in REPEATED:
            return None  # --help, a service, an option typer knows or refuses
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        if key in VALUED:
            options[VALUED[key]] = value
        else:
            found = options[REPEATED[key]]
            assert isinstance(found, list)
            found.append(value)
    return options


def report_up(result: ComposeResult, scope: Scope, detach: bool, began: float,
              say: Callable[[str], None]) -> int:
    """Print what `up` did; without DETACH become `journalctl --follow` on the project
    (from BEGAN on). The exit status."""
    for line in result.ignored:
        say(f"ignored: {line}")
    for action in result.actions:
        say(action)
    for failure in result.failed:
        say(f"failed: {failure}")
    if not detach:
        from hostctl.api.compose import log_command

        argv = log_command(result.project, scope, follow=True, since=began - 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvp(argv[0], argv)
    return 1 if result.failed else 0


def _paths(values: object) -> list[Path]:
    assert isinstance(values, list)
    return [Path(value) for value in values]


def main(argv: Sequence[str]) -> int | None:
    """Run `hostctl compose up ...` (ARGV from `compose` on); None when typer must."""
    if list(argv[:2]) != ["compose", "up"]:
        return None
    options = parse(argv[2:])
    if options is None:
        return None
    import time

    from hostctl.api.compose import source_of, up
    from hostctl.paths import Scope, default_scope

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    scope = Scope.USER if options["user"] else default_scope()
    profiles = options["profile"]
    assert isinstance(profiles, list)
    project = options["project"]
    began = time.time()
    try:
        result = up(source_of(project if isinstance(project, str) else None,
                              _paths(options["file"]), _paths(options["env_file"]),
                              profiles or None), scope)
        return report_up(result, scope, bool(options["detach"]), began, say)
    except (HostctlError, subprocess.CalledProcessError) as err:
        from hostctl.cli.main import report_error

        return report_error(err)
