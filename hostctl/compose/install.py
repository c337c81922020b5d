"""Installing a compose project where the generator reads it (hostctl.compose.installed).

The compose files the loader read and the env files are copied under their own names
(a second file of the same name gets an N- prefix), with the record saying their
order, the profiles and the directory they came from. The copy is staged in a hidden
sibling directory, loaded and translated there before anything is replaced, then
swapped in with renames: a project that does not load is never installed, and a failed
install leaves the previous one.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hostctl.compose.installed import RECORD, Installed, projects_dir
from hostctl.paths import Paths

Contents = dict[str, bytes]  # file name under the project directory -> content


@dataclass(frozen=True)
class Plan:
    """What installing a project writes, and how it differs from what is there."""

    name: str
    path: Path
    contents: Contents
    before: Contents
    installed: Installed

    @property
    def changed(self) -> bool:
        return self.contents != self.before

    def diff(self) -> str:
        lines: list[str] = []
        for file in sorted({*self.contents, *self.before}):
            old = self.before.get(file, b"").decode("utf-8", "replace").splitlines(True)
            new = self.contents.get(file, b"").decode("utf-8", "replace").splitlines(True)
            lines += difflib.unified_diff(old, new, f"{self.path / file} (installed)",
                                          f"{self.path / file}")
        return "".join(lines)


def _unique(names: list[str], path: Path) -> str:
    name = path.name
    number = 1
    while name in names or name == RECORD:
        number += 1
        name = f"{number}-{path.name}"
    names.append(name)
    return name


def plan(name: str, paths: Paths, source: Path, files: Sequence[Path],
         env_files: Sequence[Path], profiles: Sequence[str] | None,
         enabled: bool = True) -> Plan:
    """The contents project NAME's directory gets for FILES and ENV_FILES read from
    SOURCE (nothing is written)."""
    names: list[str] = []
    contents: Contents = {}
    file_names = []
    for path in files:
        file_names.append(_unique(names, path))
        contents[file_names[-1]] = path.read_bytes()
    env_names = []
    for path in env_files:
        env_names.append(_unique(names, path))
        contents[env_names[-1]] = path.read_bytes()
    target = projects_dir(paths) / name
    installed = Installed(name, target, source.absolute(), tuple(file_names),
                          tuple(env_names), None if profiles is None else tuple(profiles),
                          enabled)
    contents[RECORD] = installed.to_json().encode()
    return Plan(name, target, contents, read_contents(target), installed)


def read_contents(path: Path) -> Contents:
    """The files of an installed project's directory (empty when there is none)."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except FileNotFoundError:
        return {}
    return {entry.name: Path(entry.path).read_bytes() for entry in entries if entry.is_file()}


def write(plan: Plan, check: Callable[[Installed], None] | None = None) -> None:
    """Write PLAN's directory: staged, CHECK(staged Installed) run on it (raising keeps
    the old one), then swapped in."""
    parent = plan.path.parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = parent / f".{plan.name}.new"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(mode=0o755)
    try:
        for file, data in plan.contents.items():
            (staged / file).write_bytes(data)
            # env files often hold passwords: readable by root (the owner) alone
            os.chmod(staged / file, 0o600 if file in plan.installed.env_files else 0o644)
        if check is not None:
            from dataclasses import replace

            check(replace(plan.installed, path=staged))
        _swap(staged, plan.path)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _swap(staged: Path, path: Path) -> None:
    old = path.parent / f".{path.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    staged.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Remove an installed project's directory."""
    shutil.rmtree(path, ignore_errors=True)
