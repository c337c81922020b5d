"""`hostctl push` and `hostctl image copy` without typer (typer and what it pulls in
cost more than a push whose blobs are all there): the common forms (the positional
arguments, --all, --platform, --compress, --format, --user) are parsed here as the typer
commands in hostctl.cli.ship parse them, and their output is the same (the digest, or
the JSON result). Anything else goes to typer, which parses and reports it as always:
--help, the signing and policy options, an unknown option, a value typer would refuse,
and a transfer on a terminal (typer's path draws the progress bars)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from hostctl.errors import HostctlError

FLAGS = {"--user": "user", "--all": "all_platforms"}
VALUED = {"--format": "fmt", "--platform": "platform", "--compress": "compress"}


def parse(argv: Sequence[str], positional: tuple[int, int]) -> dict[str, object] | None:
    """ARGV (after the verb) as options and `args`, or None: typer's to parse.
    POSITIONAL is the (least, most) number of positional arguments."""
    options: dict[str, object] = {"user": False, "all_platforms": False, "platform": None,
                                  "compress": None, "fmt": "table"}
    args: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        key, eq, value = arg.partition("=")
        if arg in FLAGS:
            options[FLAGS[arg]] = True
        elif key in VALUED:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            options[VALUED[key]] = value
        elif arg.startswith("-"):
            return None
        else:
            args.append(arg)
    if not positional[0] <= len(args) <= positional[1]:
        return None
    if options["fmt"] not in ("table", "json"):
        return None
    if options["fmt"] != "json" and sys.stderr.isatty():
        return None  # progress bars: typer's path
    options["args"] = args
    return options


def main(argv: Sequence[str]) -> int | None:
    """Run `hostctl push ...` or `hostctl image copy ...` (ARGV from the verb on); None
    when typer must parse ARGV."""
    if argv[:1] == ["push"]:
        options = parse(argv[1:], (1, 2))
    elif argv[:2] == ["image", "copy"]:
        options = parse(argv[2:], (2, 2))
    else:
        return None
    if options is None:
        return None
    from hostctl.api import images
    from hostctl.images.copy import CopyOptions
    from hostctl.paths import Scope, default_scope

    args = options["args"]
    assert isinstance(args, list)
    copy = CopyOptions(all_platforms=bool(options["all_platforms"]),
                       platform=_text(options["platform"]), compress=_text(options["compress"]))
    scope = Scope.USER if options["user"] else default_scope()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if argv[0] == "push":
            result = images.push_image(args[0], args[1] if len(args) > 1 else None,
                                       scope=scope, options=copy, log=say)
        else:
            result = images.copy_image(args[0], args[1], scope=scope, options=copy, log=say)
    except HostctlError as err:
        print(f"hostctl: {err}", file=sys.stderr)
        return err.exit_code
    if options["fmt"] == "json":
        import dataclasses

        print(json.dumps(dataclasses.asdict(result), indent=2), flush=True)
    else:
        print(result.digest, flush=True)
    return 0


def _text(value: object) -> str | None:
    return None if value is None else str(value)
