"""The `hostctl` entry point.

`launch` and `cleanup` are what every unit runs at each start and stop: they are
dispatched here without importing typer (35 ms) so a start stays lean. Every other verb
goes through the typer application in hostctl.cli.app.
"""

from __future__ import annotations

import sys

from hostctl.errors import HostctlError

UNIT_VERBS = ("launch", "cleanup")


def _unit_verb(argv: list[str]) -> int:
    from hostctl.paths import Scope, default_scope

    verb, rest = argv[0], argv[1:]
    scope = default_scope()
    if "--user" in rest:
        scope = Scope.USER
        rest = [a for a in rest if a != "--user"]
    debug = "--debug" in rest
    rest = [a for a in rest if a != "--debug"]
    if len(rest) != 1 or rest[0].startswith("-"):
        print(f"usage: hostctl {verb} [--user] NAME", file=sys.stderr)
        return 2
    try:
        if verb == "launch":
            from hostctl.launcher.launch import launch

            return launch(rest[0], scope)
        else:
            from hostctl.launcher.launch import cleanup

            cleanup(rest[0], scope)
    except HostctlError as err:
        if debug:
            raise
        print(f"hostctl {verb} {rest[0]}: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in UNIT_VERBS:
        sys.exit(_unit_verb(argv))
    from hostctl.cli.app import run_app

    run_app()
