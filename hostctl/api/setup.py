"""Hooking hostctl into systemd: the generator programs and unit generation.

`hostctl install` writes hostctl-generator into /etc/systemd/system-generators/ and
user-generators/: the compiled generator (hostctl/units/genfast.c, built when a C
compiler is there) that serves the render cache's hits and otherwise execs the Python
generator script in /usr/local/lib/hostctl/; without a compiler, that script itself (it
starts hostctl.units.generator without the site module: hostctl.units.genentry), for this
interpreter and this hostctl. An older installation's symlink to the `hostctl-generator`
console script is replaced.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from hostctl.paths import Scope
from hostctl.units.generator import LAUNCHER_DIR

GENERATOR_DIRS = {
    Scope.SYSTEM: Path("/etc/systemd/system-generators"),
    Scope.USER: Path("/etc/systemd/user-generators"),
}
LINK_NAME = "hostctl-generator"
LIB_DIR = Path(LAUNCHER_DIR)  # the Python script, the compiled builds and launcher
SCRIPT_NAME = "hostctl-generator.py"


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
    compiled: bool = False  # the generator is genfast.c's build, not the Python script


def _is_current(path: Path, data: bytes) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    return stat.S_IMODE(path.stat().st_mode) == 0o755 and path.read_bytes() == data


def _write_program(path: Path, data: bytes) -> None:
    """PATH replaced atomically by the executable DATA."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        temp.chmod(0o755)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def _place(path: Path, data: bytes) -> bool:
    """PATH holding DATA (mode 0755); whether it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if _is_current(path, data):
        return False
    _write_program(path, data)
    return True


def install_generators(root: Path = Path("/")) -> InstallResult:
    """Write the generator into system-generators/ and user-generators/: the compiled one
    when it can be built, else the Python script (idempotent: unchanged files are left)."""
    from hostctl.units.gencompile import build
    from hostctl.units.genentry import package_parent, script

    lib = root / LIB_DIR.relative_to("/")
    changed = _place(lib / SCRIPT_NAME, script().encode())
    binary, problem = build(os.path.realpath(lib / SCRIPT_NAME), lib)
    program = binary.read_bytes() if binary else script().encode()
    programs = []
    for directory in GENERATOR_DIRS.values():
        programs.append(root / directory.relative_to("/") / LINK_NAME)
        changed = _place(programs[-1], program) or changed
    # what the script runs: this interpreter, and hostctl where it is imported from
    hints = (unreachable_hint(Path(sys.executable)), unreachable_hint(Path(package_parent())))
    launcher_changed, launcher_problem = install_launcher(root)
    warnings = tuple(dict.fromkeys(hint for hint in (*hints, problem, launcher_problem)
                                   if hint))
    return InstallResult(tuple(programs), changed or launcher_changed, warnings,
                         binary is not None)


def install_launcher(root: Path = Path("/")) -> tuple[bool, str | None]:
    """The compiled launcher (hostctl/launcher/launchfast.c) for this interpreter and
    entry script, where the generator looks for it (generator.compiled_launcher); without
    a compiler, none (units run the Python launcher). Whether anything changed, and why
    there is none."""
    from hostctl.units import generator
    from hostctl.units.gencompile import build_launcher

    lib = root / LIB_DIR.relative_to("/")
    entry = generator.entry_script()
    program = root / generator.compiled_launcher(sys.executable, entry).lstrip("/")
    binary, problem = build_launcher(sys.executable, entry, lib)
    changed = False
    if binary is not None:
        changed = _place(program, binary.read_bytes())
    elif program.is_file():
        program.unlink()  # units go back to the Python launcher
        changed = True
    return changed, problem


def uninstall_generators(root: Path = Path("/")) -> InstallResult:
    removed = []
    for directory in GENERATOR_DIRS.values():
        program = root / directory.relative_to("/") / LINK_NAME
        if program.is_symlink() or program.is_file():
            program.unlink()
            removed.append(program)
    lib = root / LIB_DIR.relative_to("/")
    for made in (lib / SCRIPT_NAME, *lib.glob("hostctl-generator-*"),
                 *lib.glob("hostctl-launch*")):
        if made.is_file():
            made.unlink()
    return InstallResult(tuple(removed), bool(removed))
