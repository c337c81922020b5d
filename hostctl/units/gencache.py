"""The generator's render cache: the units of the last run, reused while no input changed.

Parsing a thousand YAML files and rendering a thousand units takes seconds in Python;
statting them takes milliseconds. So the generator keeps what it wrote last time together
with a stamp of everything the output depends on, and when the stamp is the same it
writes the stored units without importing yaml or jinja2 at all.

The stamp (fingerprint) covers, so that any change produces a fresh render:
- every entry of every declaration directory, and of its sub-directories (drop-in dirs
  NAME.yaml.d/, NAME.container.d/, users/UID/): name, file type, inode, device, size,
  mtime and ctime (ctime cannot be set back by `touch`), the link target of symlinks and
  what they point at;
- hostctl itself: its version and the same stat fields of every file of the hostctl
  package and of the unit templates, and the top-level files of yaml and jinja2;
- the context: scope, uid, the interpreter, the hostctl program the units run, the
  search path, and the environment variables that change paths (HOME, XDG_*, HOSTCTL_*).

Where it lives: /var/cache/hostctl/generator (system) or $XDG_CACHE_HOME/hostctl/generator
(user), or $HOSTCTL_GENERATOR_CACHE ("off" disables it). Generators run early, maybe with
/ or /var read-only or not mounted yet: every failure to read or write the cache is
silent and only means a full render. A cache file is trusted only when it belongs to the
generator's own user and is writable by nobody else.

This module imports nothing beyond the standard library's cheapest modules: it is on the
generator's fast path.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostctl.units.render import Program

import hostctl

ENV_CACHE = "HOSTCTL_GENERATOR_CACHE"
FORMAT = 1  # bump when the stored layout changes
SYSTEM_DIR = "/var/cache/hostctl/generator"
_ENV_PREFIXES = ("HOSTCTL_", "XDG_")
_ENV_NAMES = ("HOME", "USER", "LOGNAME", "SYSTEMD_SCOPE")
_SKIP_DIRS = ("__pycache__",)

Unit = tuple[str, str, tuple[str, ...]]  # file name, text, [Install] links
Stored = tuple[list[Unit], list[str]]  # units, messages reported while rendering


def cache_file(scope: str) -> str | None:
    """The cache file for SCOPE ("system" or "user"), or None when caching is off."""
    told = os.environ.get(ENV_CACHE)
    if told is not None:
        return None if told in ("", "off") else os.path.join(told, f"{scope}.cache")
    if scope == "system":
        return os.path.join(SYSTEM_DIR, "system.cache")
    home = os.environ.get("HOME") or os.path.expanduser("~")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "hostctl", "generator", "user.cache")


def _stat_fields(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _symlink_stamp(path: str, st: os.stat_result) -> tuple[object, ...]:
    """A symlink's own fields, its target, and what it points at."""
    try:
        target: tuple[object, ...] = _stat_fields(os.stat(path))
    except OSError as err:
        target = ("dangling", err.errno)
    return (_stat_fields(st), os.readlink(path), target)


def tree_stamp(directory: str, depth: int) -> tuple[object, ...]:
    """Every entry of DIRECTORY (and of sub-directories, DEPTH levels down), stamped:
    one stat per entry (scandir's file type saves the rest)."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as err:
        return ("unlisted", err.errno)
    stamps: list[object] = []
    for entry in entries:
        if entry.name in _SKIP_DIRS:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            symlink = entry.is_symlink()
            stamp = _symlink_stamp(entry.path, st) if symlink else _stat_fields(st)
        except OSError as err:
            stamps.append((entry.name, "vanished", err.errno))
            continue
        stamps.append((entry.name, stamp))
        if depth > 0 and entry.is_dir():
            stamps.append(tree_stamp(entry.path, depth - 1))
    return tuple(stamps)


def _package_dir(name: str) -> str | None:
    """Where top-level package NAME is on sys.path, without importing it."""
    for base in sys.path:
        candidate = os.path.join(base or ".", name)
        if os.path.isfile(os.path.join(candidate, "__init__.py")):
            return candidate
    return None


def _templates_dir() -> str | None:
    from importlib.util import find_spec

    spec = find_spec("hostctl.unit_templates")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return locations[0] if locations else None


def code_stamp() -> tuple[object, ...]:
    """hostctl's version, its files and templates, and the libraries rendering uses."""
    package = os.path.dirname(os.path.abspath(hostctl.__file__))
    libraries = [_package_dir(name) for name in ("yaml", "jinja2")]
    return (
        hostctl.__version__,
        sys.version,
        sys.executable,
        tree_stamp(package, 3),
        tree_stamp(_templates_dir() or "", 0),
        tuple(tree_stamp(lib, 0) if lib else None for lib in libraries),
    )


def context_stamp(scope: str, hostctl_bin: Program) -> tuple[object, ...]:
    """Everything besides the declaration files that the output depends on. The search
    path itself is a function of this (scope, environment, uid, hostctl's code), which
    is what lets a cache hit skip computing it."""
    import pwd

    env = tuple(
        sorted(
            (key, value)
            for key, value in os.environ.items()
            if key.startswith(_ENV_PREFIXES) or key in _ENV_NAMES
        )
    )
    try:
        entry = pwd.getpwuid(os.getuid())
        account: tuple[str, ...] = (entry.pw_name, entry.pw_dir)  # quadlet's %u and %h
    except KeyError:
        account = ()
    ids = (os.getuid(), os.geteuid(), os.getgid())
    return (scope, ids, account, env, hostctl_bin, code_stamp())


def inputs_stamp(dirs: Sequence[str]) -> tuple[object, ...]:
    """Every entry of the declaration directories DIRS and of their drop-in dirs."""
    return tuple((directory, tree_stamp(directory, 2)) for directory in dirs)


def _trusted(fd: int) -> bool:
    st = os.fstat(fd)
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read(path: str) -> object:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not _trusted(fd):
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            return marshal.loads(file.read())
    finally:
        os.close(fd)


def lookup(path: str | None, context: object) -> Stored | None:
    """The stored units when PATH holds a render made under the same CONTEXT from
    declaration directories that are entry for entry unchanged, else None."""
    if path is None:
        return None
    try:
        data = _read(path)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not (isinstance(data, tuple) and len(data) == 6 and data[0] == FORMAT):
        return None
    _, stored_context, dirs, inputs, units, messages = data
    if stored_context != context or not isinstance(dirs, list):
        return None
    if not all(isinstance(d, str) for d in dirs) or inputs_stamp(dirs) != inputs:
        return None
    if not (isinstance(units, list) and isinstance(messages, list)):
        return None
    return units, messages


def save(
    path: str | None,
    context: object,
    dirs: list[str],
    inputs: object,
    rendered: Stored,
) -> None:
    """Store RENDERED (units, messages) at PATH under CONTEXT and the INPUTS stamp of DIRS
    (taken before rendering); silently nothing when it cannot."""
    if path is None:
        return
    directory = os.path.dirname(path)
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        payload: Any = (FORMAT, context, dirs, inputs, rendered[0], rendered[1])
        data = marshal.dumps(payload)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temp)
