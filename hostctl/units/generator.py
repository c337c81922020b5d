"""hostctl-generator: the systemd generator turning declarations into units.

    hostctl-generator NORMAL_DIR [EARLY_DIR LATE_DIR]

systemd runs it at boot and at every daemon-reload (system-generators/ or
user-generators/, $SYSTEMD_SCOPE telling which). It writes NAME.service into NORMAL_DIR
for each declaration, plus the links [Install] asks for, since generated units cannot be
enabled. A broken declaration still gets a unit, one whose start fails with the error,
and its error is logged; the other declarations are unaffected. It always exits 0 once
it could write, so one bad file never stops systemd from loading the rest.

Start-up matters (it runs on every daemon-reload). systemd runs the script `hostctl
install` writes (hostctl.units.genentry: `python -sSE`, no site module). When nothing
changed since the last run, the units come from the render cache (hostctl.units.gencache):
only stat data and the cache file are read, and nothing is imported beyond builtin
modules (not typing, not collections). Otherwise the site module runs and
hostctl.units.build loads and renders the declarations. Nothing of the CLI (typer, rich,
pydbus) is ever imported here.
"""

from __future__ import annotations

import os
import sys

from hostctl.errors import HostctlError
from hostctl.units import fastcache, gencache

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from hostctl.paths import Scope
    from hostctl.units.render import Program

    Report = Callable[[str], None]

PROGRAM = "hostctl-generator"
KMSG: str | os.PathLike[str] = "/dev/kmsg"
PASSWD = "/etc/passwd"  # the account's name and home (%u, %h): its stat is an input
Unit = gencache.Unit  # (file name, text, links relative to the output dir)


def program_candidates() -> list[str]:
    """Where hostctl_program looks before the search path, in order."""
    beside = os.path.join(os.path.dirname(os.path.realpath(sys.argv[0])), "hostctl")
    return [beside, os.path.join(os.path.dirname(sys.executable), "hostctl")]


def hostctl_program() -> str:
    """Absolute path of the `hostctl` script installed beside this generator."""
    for candidate in program_candidates():
        if os.path.isfile(candidate):
            return candidate
    import shutil  # only on this fallback path: the generator's imports are kept lean

    found = shutil.which("hostctl")
    return os.path.abspath(found) if found else "hostctl"


# Where `hostctl install` puts the compiled launcher (hostctl/launcher/launchfast.c).
LAUNCHER_DIR = "/usr/local/lib/hostctl"


def compiled_launcher(python: str, entry: str) -> str:
    """The compiled launcher's path for PYTHON running ENTRY: named by a hash of both
    (FNV-1a, 64 bits), so that finding it takes one stat and no read."""
    key = 0xCBF29CE484222325
    for byte in os.fsencode(python) + b"\0" + os.fsencode(entry):
        key = ((key ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(LAUNCHER_DIR, f"hostctl-launch.{key:016x}")


def entry_script() -> str:
    """The launcher's entry script (hostctl/launcher/entry.py) beside this package."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "launcher", "entry.py")


def launcher_command() -> tuple[str, ...]:
    """The command line units run for `hostctl launch|cleanup` and the other unit verbs
    (hostctl.launcher.entry): this interpreter, without site, on the entry script beside
    this package; or the compiled launcher built for exactly that, which makes the
    recorded start of a system or user container itself (hostctl.launcher.fastrecord says
    which) and execs that command for anything
    else."""
    if not sys.executable:
        return (hostctl_program(),)
    entry = entry_script()
    compiled = compiled_launcher(sys.executable, entry)
    if os.access(compiled, os.X_OK):
        return (compiled,)
    return (sys.executable, "-sSE", entry)


def render(
    scope: Scope, dirs: list[Path], hostctl_bin: Program, report: Report
) -> list[Unit]:
    """Every unit of SCOPE's declarations in DIRS, freshly rendered (the slow path)."""
    from hostctl.units.build import build

    return [unit.as_tuple() for unit in build(scope, dirs, hostctl_bin, report)]


def generate(
    scope: Scope,
    outdir: Path | None,
    dirs: list[Path] | None = None,
    report: Report | None = None,
) -> dict[str, str]:
    """Unit file name -> text for every declaration, freshly rendered (no cache); also
    written to OUTDIR, with the [Install] links, when it is given (None: a dry run).
    Problems go to REPORT (stderr)."""
    from hostctl.declarations.dirs import declaration_dirs

    searched = dirs if dirs is not None else declaration_dirs(scope)
    units = render(scope, searched, hostctl_program(), report or _to_stderr)
    if outdir is not None:
        write_units(outdir, units)
    return {name: text for name, text, _ in units}


def scope_name() -> str:
    """hostctl.paths.default_scope() without importing it (the fast path stays lean):
    $SYSTEMD_SCOPE, which systemd sets for generators, else by effective uid."""
    told = os.environ.get("SYSTEMD_SCOPE")
    if told in ("system", "user"):
        return told
    return "system" if os.geteuid() == 0 else "user"


def input_trees(scope: Scope, dirs: list[Path]) -> list[gencache.Tree]:
    """Everything a render of SCOPE reads, as (path, depth) trees whose stat data the
    cache check compares (gencache.tree_stamp): the declaration directories DIRS with
    their drop-in and users/UID dirs, and every other directory or file a kind of
    declaration is read from. A new kind with a directory of its own adds it here, deep
    enough to reach each file it reads (a compose project's dir, its compose file), or a
    file read outside them as itself (a .kube file's YAML)."""
    from hostctl.declarations.kube_file import input_files
    from hostctl.paths import Scope, for_scope

    config = for_scope(scope).config
    names = [os.fspath(d) for d in dirs]
    # volume declarations (YAML form) decide volume units and containers' Requires=
    names.append(os.fspath(config / "volumes"))
    names.append(os.fspath(config / "pods"))  # pods' YAML form
    names.append(os.fspath(config / "compose"))  # projects: compose/PROJECT/ and its files
    trees = [(name, 2) for name in names]
    trees += [(path, -1) for path in input_files(dirs)]  # .kube files' YAML, ConfigMaps
    if scope is Scope.USER:  # which networks exist decides the network units
        from hostctl.network.defs import networks_dir

        trees.append((os.fspath(networks_dir(for_scope(Scope.USER))), 2))
    return [*trees, (PASSWD, -1), *gencache.library_trees()]


def cached_units(scope: str, report: Report) -> gencache.Hit:
    """SCOPE's units from the render cache when no input changed, else rendered and stored,
    with the messages of the render (reported again on every run), the input trees and
    their stamp (taken before the render)."""
    hostctl_bin = launcher_command()
    cache = gencache.cache_file(scope)
    context = gencache.context_stamp(scope, hostctl_bin)
    stored = gencache.lookup(cache, context)
    if stored is not None:
        units, messages, trees, inputs = stored
    else:
        from hostctl.launcher import enable_site

        enable_site()  # started without site (genentry): the render needs site-packages
        from hostctl.declarations.dirs import declaration_dirs
        from hostctl.paths import Scope

        dirs = declaration_dirs(Scope(scope))
        trees = input_trees(Scope(scope), dirs)
        inputs = gencache.inputs_stamp(trees)  # before reading: a change meanwhile misses
        messages = []
        units = render(Scope(scope), dirs, hostctl_bin, messages.append)
        gencache.save(cache, context, trees, inputs, (units, messages))
    for message in messages:
        report(message)
    return units, messages, trees, inputs


def timer_units(scope: str, containers: bool) -> list[Unit]:
    """hostctl-auto-update.timer and .service (hostctl.units.autoupdate) where SCOPE has
    CONTAINERS or the timer is enabled (a user without containers gets no hostctl units).
    Outside the render cache: whether the timer is enabled is a marker file."""
    from hostctl.units import autoupdate

    if not containers and not autoupdate.timer_enabled(scope):
        return []
    return autoupdate.units(scope, hostctl_program())


def write_units(outdir: str | os.PathLike[str], units: Iterable[Unit]) -> None:
    """Write each unit's file and links into OUTDIR, replacing what is there atomically."""
    base = os.fspath(outdir)
    made: set[str] = set()
    for name, text, links in units:
        _write(f"{base}/{name}", text)
        for link in links:
            directory, _, _ = link.rpartition("/")
            target = f"../{name}" if directory else name
            if directory and directory not in made:
                os.makedirs(f"{base}/{directory}", exist_ok=True)
                made.add(directory)
            _symlink(f"{base}/{link}", target)


# Plain os.path strings below: pathlib costs a third of the time with a thousand units.
# systemd hands generators empty directories, so the first attempt is a plain create;
# only an existing file (a second run into the same directory) takes the atomic way.
def _temp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{os.getpid()}.tmp")


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        _atomic_write(path, text)
        return
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _atomic_write(path: str, text: str) -> None:
    temp = _temp_name(path)
    try:
        with open(temp, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def _symlink(path: str, target: str) -> None:
    try:
        os.symlink(target, path)
        return
    except FileExistsError:
        pass
    temp = _temp_name(path)
    if os.path.lexists(temp):
        os.unlink(temp)
    os.symlink(target, temp)
    os.replace(temp, path)


def _to_stderr(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def _to_kmsg(message: str) -> None:
    """Also into the kernel log, where systemd's own generators report (priority err)."""
    try:
        with open(KMSG, "w", encoding="utf-8", errors="replace") as kmsg:
            for line in message.splitlines():
                kmsg.write(f"<3>{PROGRAM}: {line}\n")
    except OSError:
        pass  # a user's generator, or a container without /dev/kmsg


def _report(message: str) -> None:
    _to_stderr(message)
    if os.access(KMSG, os.W_OK):
        _to_kmsg(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the hostctl-generator console script."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 3):
        _to_stderr("usage: hostctl-generator NORMAL_DIR [EARLY_DIR LATE_DIR]")
        return 2
    outdir = args[0]
    fast = os.environ.pop(fastcache.ENV_MISS, None) is not None  # the compiled one missed
    try:
        os.makedirs(outdir, exist_ok=True)
        scope = scope_name()
        before = fast_checks(scope) if fast else None  # before reading anything
        units, messages, _trees, inputs = cached_units(scope, _report)
        written = [*units, *timer_units(scope, bool(units))]
        write_units(outdir, written)
    except (HostctlError, OSError) as err:
        _report(f"cannot generate units in {outdir}: {err}")
        return 1
    if before is not None:
        checks = [*before, *inputs]
        records = [fastcache.message_record(message, PROGRAM) for message in messages]
        fastcache.save(fastcache.fast_file(scope), fastcache.content(checks, records, written))
    return 0


def fast_checks(scope: str) -> list[str] | None:
    """The fast cache's context and stamp lines besides the render's inputs, or None when
    the compiled generator cannot check all a run depends on (hostctl found on $PATH)."""
    programs = program_candidates()
    if not sys.executable or not any(map(os.path.isfile, programs)):
        return None
    launcher = compiled_launcher(sys.executable, entry_script())  # launcher_command's
    trees = [*gencache.code_trees(), *fastcache.run_trees(scope, [*programs, launcher])]
    return [*fastcache.context_lines(scope, sys.argv[0]), *gencache.inputs_stamp(trees)]
