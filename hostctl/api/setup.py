"""Hooking hostctl into systemd: the generator links and unit generation."""

from __future__ import annotations

import os
import shutil
import stat
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


def closed_to_others(program: Path) -> tuple[Path, int] | None:
    """The first directory on PROGRAM's path (or PROGRAM itself) that users other than
    its owner cannot pass (search) or run (read, execute), with its mode; None if open.

    Rootless containers need a user's systemd to run the generator and `hostctl launch`
    from the same installation: a virtualenv under /root (mode 0700) fails there with a
    bare "Permission denied".
    """
    for directory in reversed(program.parents[:-1]):
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o001 == 0:
            return directory, mode
    mode = stat.S_IMODE(program.stat().st_mode)
    return None if mode & 0o005 == 0o005 else (program, mode)


def unreachable_hint(program: Path) -> str | None:
    """A warning with its fix when other users cannot run PROGRAM (see closed_to_others)."""
    closed = closed_to_others(program)
    if closed is None:
        return None
    where, mode = closed
    return (f"other users cannot run {program}: {where} is mode {mode:04o}, so rootless"
            " containers (--user) fail with \"Permission denied\" (hint: install hostctl"
            " where every user can read it, e.g. the Debian package or a virtualenv under"
            f" /opt, or `chmod o+x {where}`)")


@dataclass(frozen=True)
class InstallResult:
    links: tuple[Path, ...]
    changed: bool
    warnings: tuple[str, ...] = ()


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
    warning = unreachable_hint(program)
    return InstallResult(tuple(links), changed, (warning,) if warning else ())


def uninstall_generators(root: Path = Path("/")) -> InstallResult:
    removed = []
    for directory in GENERATOR_DIRS.values():
        link = root / directory.relative_to("/") / LINK_NAME
        if link.is_symlink():
            link.unlink()
            removed.append(link)
    return InstallResult(tuple(removed), bool(removed))
