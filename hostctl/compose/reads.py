"""The files a compose project's load reads or looks for, noted while it loads.

A start record (hostctl.launcher.record) is only good while everything its container's
declaration came from is unchanged: for a compose project's container, its project's
files, and the files of every other project whose networks share the subnet pool
(hostctl.compose.networks). The loader reads files outside the project's installed
directory too (`extends: {file: ...}`, `include`, `env_file`, `label_file`), so it
notes each path here (before reading it: a missing optional file counts too), and
hostctl.compose.installed keeps what each project's load noted.
"""

from __future__ import annotations

import os

_open: list[list[str]] = []  # one list per load being noted (loads nest through include)


class Noting:
    """`with Noting() as found:` collects into FOUND each path noted inside the block."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def __enter__(self) -> list[str]:
        _open.append(self.found)
        return self.found

    def __exit__(self, *_exc: object) -> None:
        _open.remove(self.found)


def note(path: str | os.PathLike[str]) -> None:
    """PATH is read (or looked for) by the load under way."""
    if _open:
        text = os.path.abspath(os.fspath(path))
        for found in _open:
            found.append(text)
