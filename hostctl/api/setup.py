"""Hooking hostctl into systemd: the generator links and unit generation."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hostctl.errors import HostctlError
from hostctl.paths import Scope

GENERATOR_DIRS = {
    Scope.SYSTEM: Path("/etc/systemd/system-generators"),
    Scope.USER: Path("/etc/systemd/user-generators"),
}
LINK_NAME = "hostctl-generator"


def generator_program() -> Path:
    """The installed hostctl-generator script (next to this interpreter, or on PATH)."""
    beside = Path(sys.argv[0]).resolve().parent / "hostctl-generator"
    if beside.exists():
        return beside
    venv = Path(sys.executable).parent / "hostctl-generator"
    if venv.exists():
        return venv
    found = shutil.which("hostctl-generator")
    if found is None:
        raise HostctlError("hostctl-generator not found", hint="reinstall hostctl")
    return Path(found).resolve()


@dataclass(frozen=True)
class InstallResult:
    links: tuple[Path, ...]
    changed: bool


def install_generators(root: Path = Path("/")) -> InstallResult:
    """Link the generator into system-generators/ and user-generators/ (idempotent)."""
    program = generator_program()
    links, changed = [], False
    for directory in GENERATOR_DIRS.values():
        target_dir = root / directory.relative_to("/")
        target_dir.mkdir(parents=True, exist_ok=True)
        link = target_dir / LINK_NAME
        if link.is_symlink() and os.readlink(link) == str(program):
            links.append(link)
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(program)
        links.append(link)
        changed = True
    return InstallResult(tuple(links), changed)


def uninstall_generators(root: Path = Path("/")) -> InstallResult:
    removed = []
    for directory in GENERATOR_DIRS.values():
        link = root / directory.relative_to("/") / LINK_NAME
        if link.is_symlink():
            link.unlink()
            removed.append(link)
    return InstallResult(tuple(removed), bool(removed))
