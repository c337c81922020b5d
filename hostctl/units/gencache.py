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

A stamp is a list of text lines (tree_stamp), the very lines the compiled generator
(genfast.c) produces and compares with those of its fast cache (hostctl.units.fastcache),
so both check the same inputs the same way.

What is an input is the slow path's to say: save() stores the list of (path, depth)
trees it stamped, and lookup() stamps the same trees again, so a kind of declaration
with a directory of its own (pods, .kube files, compose projects) is covered by adding
its directory to that list (hostctl.units.generator.input_trees). A hit reads the cache
file and stat data, nothing else: no declaration, no /etc/passwd (its stat is an input).

Where it lives: /var/cache/hostctl/generator (system) or $XDG_CACHE_HOME/hostctl/generator
(user), or $HOSTCTL_GENERATOR_CACHE ("off" disables it). Generators run early, maybe with
/ or /var read-only or not mounted yet: every failure to read or write the cache is
silent and only means a full render. A cache file is trusted only when it belongs to the
generator's own user and is writable by nobody else.

This module imports nothing beyond builtin modules (not even typing or collections): it
is on the generator's fast path, which runs under `python -sSE` (hostctl.units.genentry).
"""

from __future__ import annotations

import marshal
import os
import sys

import hostctl

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from collections.abc import Sequence

    from hostctl.units.render import Program

ENV_CACHE = "HOSTCTL_GENERATOR_CACHE"
FORMAT = 3  # bump when the stored layout changes
SYSTEM_DIR = "/var/cache/hostctl/generator"
_ENV_PREFIXES = ("HOSTCTL_", "XDG_")
_ENV_NAMES = ("HOME", "USER", "LOGNAME", "SYSTEMD_SCOPE")
_SKIP_DIRS = (b"__pycache__",)

Unit = tuple[str, str, tuple[str, ...]]  # file name, text, [Install] links
Stored = tuple[list[Unit], list[str]]  # units, messages reported while rendering
Tree = tuple[str, int]  # a path stamped with its entries DEPTH levels down (-1: itself)
Hit = tuple[list[Unit], list[str], list[Tree], list[str]]  # Stored, trees, their stamp


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


# A stamp is a list of text lines, the same lines the fast cache stores for the compiled
# generator (genfast.c) to compare with its own: names and link targets in hex, entries
# sorted by their bytes, so that C and Python see one order.
def _fields(st: os.stat_result) -> str:
    return (f"{st.st_mode} {st.st_ino} {st.st_dev} {st.st_size} "
            f"{st.st_mtime_ns} {st.st_ctime_ns}")


def path_stamp(path: str | bytes) -> str:
    """PATH's own stat fields (a file that is an input, such as /etc/passwd)."""
    try:
        return f"S {_fields(os.stat(path))}"
    except OSError as err:
        return f"M {err.errno or 0}"


def _entry_name(entry: os.DirEntry[bytes]) -> bytes:
    return entry.name


def _entry_lines(lines: list[str], entry: os.DirEntry[bytes]) -> None:
    """ENTRY's own lines: its fields, and for a symlink its target and what it points at."""
    name = entry.name.hex()
    try:
        st = entry.stat(follow_symlinks=False)
        if not entry.is_symlink():
            lines.append(f"F {name} {_fields(st)}")
            return
        target = os.readlink(entry.path).hex()
    except OSError as err:
        lines.append(f"V {name} {err.errno or 0}")
        return
    lines.append(f"Y {name} {_fields(st)} {target}")
    try:
        lines.append(f"T {_fields(os.stat(entry.path))}")
    except OSError as err:
        lines.append(f"D {err.errno or 0}")


def _tree_lines(lines: list[str], directory: bytes, depth: int) -> None:
    if depth < 0:
        lines.append(path_stamp(directory))
        return
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=_entry_name)
    except OSError as err:
        lines.append(f"L {err.errno or 0}")
        return
    for entry in entries:
        if entry.name in _SKIP_DIRS:
            continue
        _entry_lines(lines, entry)
        if depth > 0 and lines[-1][0] != "V" and entry.is_dir():
            _tree_lines(lines, entry.path, depth - 1)
    lines.append("E")


def tree_stamp(directory: str, depth: int) -> list[str]:
    """Every entry of DIRECTORY (and of sub-directories, DEPTH levels down), stamped:
    one stat per entry (scandir's file type saves the rest), a sub-directory's lines
    after its own and each listing closed by "E". DEPTH -1: the path itself."""
    lines = [f"P {os.fsencode(directory).hex()} {depth}"]
    _tree_lines(lines, os.fsencode(directory), depth)
    return lines


def package_dir(name: str) -> str | None:
    """Where top-level package NAME is on sys.path, without importing it (the render's
    libraries, yaml and jinja2, are inputs: found once the site module has run)."""
    for base in sys.path:
        candidate = os.path.join(base or ".", name)
        if os.path.isfile(os.path.join(candidate, "__init__.py")):
            return candidate
    return None


def _templates_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(hostctl.__file__)), "unit_templates")


def code_trees() -> list[Tree]:
    """hostctl's files and templates: inputs of every run (see context_stamp)."""
    package = os.path.dirname(os.path.abspath(hostctl.__file__))
    return [(package, 3), (_templates_dir(), 0)]


def code_stamp() -> tuple[object, ...]:
    """hostctl's version, its files and templates (the libraries rendering uses are
    inputs of the render: see library_trees)."""
    return (hostctl.__version__, sys.version, sys.executable, inputs_stamp(code_trees()))


def library_trees() -> list[Tree]:
    """The top-level files of the libraries a render imports (after site has run)."""
    return [(lib, 0) for lib in map(package_dir, ("yaml", "jinja2")) if lib]


def context_stamp(scope: str, hostctl_bin: Program) -> tuple[object, ...]:
    """Everything besides the declaration files that the output depends on. The search
    path itself is a function of this (scope, environment, uid, hostctl's code), which
    is what lets a cache hit skip computing it. The account's name and home (quadlet's
    %u and %h) come from the environment and /etc/passwd, whose stat is an input."""
    env = tuple(
        sorted(
            (key, value)
            for key, value in os.environ.items()
            if key.startswith(_ENV_PREFIXES) or key in _ENV_NAMES
        )
    )
    ids = (os.getuid(), os.geteuid(), os.getgid())
    return (scope, ids, env, hostctl_bin, code_stamp())


def inputs_stamp(trees: Sequence[Tree]) -> list[str]:
    """Every entry of the input TREES (declaration directories with their drop-in dirs,
    files that are inputs at depth -1), stamped."""
    return [line for path, depth in trees for line in tree_stamp(path, depth)]


def _valid_trees(trees: object) -> bool:
    return isinstance(trees, list) and all(
        isinstance(tree, tuple) and len(tree) == 2 and isinstance(tree[0], str)
        and isinstance(tree[1], int) for tree in trees)


def _trusted(fd: int) -> bool:
    st = os.fstat(fd)
    regular = st.st_mode & 0o170000 == 0o100000  # stat.S_ISREG without importing stat
    return regular and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read(path: str) -> object:
    # O_NONBLOCK: a FIFO in its place must not hang a boot (_trusted refuses it)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not _trusted(fd):
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            return marshal.loads(file.read())
    finally:
        os.close(fd)


def lookup(path: str | None, context: object) -> Hit | None:
    """The stored units and messages, with the input trees and their (unchanged) stamp,
    when PATH holds a render made under the same CONTEXT from input trees that are entry
    for entry unchanged, else None."""
    if path is None:
        return None
    try:
        data = _read(path)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not (isinstance(data, tuple) and len(data) == 6 and data[0] == FORMAT):
        return None
    _, stored_context, trees, inputs, units, messages = data
    if stored_context != context or not _valid_trees(trees) or inputs_stamp(trees) != inputs:
        return None
    if not (isinstance(units, list) and isinstance(messages, list)):
        return None
    return units, messages, trees, inputs


def save(
    path: str | None,
    context: object,
    trees: list[Tree],
    inputs: object,
    rendered: Stored,
) -> None:
    """Store RENDERED (units, messages) at PATH under CONTEXT and the INPUTS stamp of
    TREES (taken before rendering); silently nothing when it cannot."""
    if path is None:
        return
    import contextlib  # a render's path: contextlib is not worth its import on a hit

    directory = os.path.dirname(path)
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        payload: tuple[object, ...] = (FORMAT, context, trees, inputs, *rendered)
        data = marshal.dumps(payload)  # type: ignore[arg-type]  # builtins only, by design
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temp)
