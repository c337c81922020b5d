"""Write hostctl's man pages from the code: hostctl(1) from the CLI's commands, their
help and options, and hostctl-declarations(5) from the settings table.

    python scripts/manpages.py OUTDIR     # writes OUTDIR/hostctl.1, hostctl-declarations.5
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from hostctl import __version__
from hostctl.cli.app import app
from hostctl.declarations.settings import SETTINGS

DATE = "2026"


def roff(text: str) -> str:
    """TEXT safe in a roff line: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


# typer's click objects (its own copy of click in newer typers) are used by their duck
# type: a group has list_commands, a parameter says whether it is an option.
def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    context = group.make_context("hostctl", [], resilient_parsing=True)
    for name in sorted(group.list_commands(context)):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        if hasattr(command, "list_commands"):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def _options(command: Any) -> list[str]:
    lines = []
    for param in command.params:
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        lines += [".TP", f"\\fB{roff(', '.join(param.opts))}\\fR", roff(param.help or "")]
    return lines


def hostctl_1() -> str:
    group = typer.main.get_command(app)
    lines = [
        f'.TH HOSTCTL 1 "{DATE}" "hostctl {__version__}" "User Commands"',
        ".SH NAME", "hostctl \\- containers declared in files, run as systemd services with runc",
        ".SH SYNOPSIS", "\\fBhostctl\\fR [\\fB\\-\\-debug\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        roff("Declarations in /etc/hostctl/containers (or ~/.config/hostctl/containers for"
             " a user) become NAME.service units through hostctl-generator; each unit runs"
             " `hostctl launch NAME`, which pulls the image, sets up an overlay root"
             " filesystem and hands the container to runc, with systemd supervising the"
             " container's init. See hostctl-declarations(5) for the declaration keys."),
        ".SH COMMANDS",
    ]
    for name, command in _commands(group, ""):
        arguments = " ".join(p.name.upper() for p in command.params
                             if p.param_type_name == "argument")
        lines += [".SS", f"\\fBhostctl {roff(name)}\\fR {roff(arguments)}".rstrip(),
                  roff((command.help or "").strip()), *_options(command)]
    lines += [
        ".SH FILES",
        ".TP", "\\fI/etc/hostctl/containers/NAME.yaml\\fR, \\fINAME.container\\fR",
        "System declarations.",
        ".TP", "\\fI~/.config/hostctl/containers/\\fR", "A user's declarations.",
        ".TP", "\\fI/var/lib/hostctl\\fR, \\fI~/.local/share/hostctl\\fR",
        "The image store (kept when the package is purged).",
        ".SH SEE ALSO", "hostctl-declarations(5), systemd.service(5), runc(8)",
    ]
    return "\n".join(lines) + "\n"


def declarations_5() -> str:
    lines = [
        f'.TH HOSTCTL-DECLARATIONS 5 "{DATE}" "hostctl {__version__}" "File Formats"',
        ".SH NAME", "hostctl-declarations \\- the keys of a hostctl container declaration",
        ".SH DESCRIPTION",
        roff("A declaration is a YAML file (NAME.yaml) or a quadlet file (NAME.container)"
             " in /etc/hostctl/containers or ~/.config/hostctl/containers; NAME.service"
             " runs it. `hostctl validate FILE` reports every mistake with FILE:LINE:KEY."),
        ".SH KEYS",
    ]
    for setting in SETTINGS:
        shown = (str(setting.default) if isinstance(setting.default, StrEnum)
                 else repr(setting.default))
        default = "required" if setting.required else f"default: {shown}"
        quadlet = f"; quadlet: {setting.quadlet}=" if setting.quadlet else ""
        lines += [".TP", f"\\fB{roff(setting.key)}\\fR ({roff(setting.doc_type)};"
                  f" {roff(default)}{roff(quadlet)})",
                  roff(f"{setting.help} Becomes: {setting.maps_to}.")]
    lines += [".SH SEE ALSO", "hostctl(1), systemd.unit(5)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: manpages.py OUTDIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostctl.1").write_text(hostctl_1())
    (out / "hostctl-declarations.5").write_text(declarations_5())


if __name__ == "__main__":
    main()
