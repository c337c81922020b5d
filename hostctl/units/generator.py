"""hostctl-generator: the systemd generator turning declarations into units.

    hostctl-generator NORMAL_DIR [EARLY_DIR LATE_DIR]

systemd runs it at boot and at every daemon-reload (system-generators/ or
user-generators/, $SYSTEMD_SCOPE telling which). It writes NAME.service into NORMAL_DIR
for each declaration, plus the links [Install] asks for, since generated units cannot be
enabled. A broken declaration still gets a unit, one whose start fails with the error,
and its error is logged; the other declarations are unaffected. It always exits 0 once
it could write, so one bad file never stops systemd from loading the rest.

Start-up matters (it runs on every daemon-reload): only yaml, jinja2 and hostctl's own
declaration and unit modules are imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hostctl.declarations.checks import Invalid, check_directive, check_directive_value
from hostctl.declarations.model import Container
from hostctl.declarations.search import declaration_dirs, load_file, scan_declarations
from hostctl.declarations.settings import INSTALL_DIRECTIVES
from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Scope, default_scope, for_scope
from hostctl.units.render import (
    NETWORK_WAIT_UNIT,
    render_failed_unit,
    render_network_wait,
    render_unit,
)

PROGRAM = "hostctl-generator"
KMSG = Path("/dev/kmsg")
Report = Callable[[str], None]


@dataclass(frozen=True)
class Generated:
    """One unit to write: its file name, text, and the links pointing at it."""

    unit_name: str
    text: str
    links: tuple[str, ...] = ()  # paths relative to the output dir, e.g. x.target.wants/u


def hostctl_program() -> str:
    """Absolute path of the `hostctl` script installed beside this generator."""
    beside = Path(sys.argv[0]).resolve().parent / "hostctl"
    if beside.is_file():
        return str(beside)
    venv = Path(sys.executable).parent / "hostctl"
    if venv.is_file():
        return str(venv)
    import shutil  # only on this fallback path: the generator's imports are kept lean

    found = shutil.which("hostctl")
    return str(Path(found).absolute()) if found else "hostctl"


def install_links(container: Container) -> tuple[str, ...]:
    """The links [Install] asks for, relative to the output directory."""
    links = []
    for directive, values in container.install:
        try:  # again here: a Container built in code has not been through the reader
            check_directive("Install", directive)
            for value in values:
                check_directive_value("Install", directive, value)
        except Invalid as err:
            raise DeclarationError(
                err.message, where=container.where("install"), hint=err.hint
            ) from None
        suffix = INSTALL_DIRECTIVES[directive]
        for word in (word for value in values for word in value.split()):
            links.append(f"{word}.{suffix}/{container.unit_name}" if suffix else word)
    return tuple(dict.fromkeys(links))


def build(scope: Scope, dirs: list[Path] | None, report: Report) -> list[Generated]:
    """Load and render every declaration of SCOPE; problems go to REPORT."""
    hostctl_bin = hostctl_program()
    state_dir = for_scope(scope).state
    searched = dirs if dirs is not None else declaration_dirs(scope)
    scan = scan_declarations(scope, searched)
    for problem in scan.skipped:
        report(f"{problem} (file ignored)")
    units = []
    for name, path in scan.found.items():
        try:
            if name in scan.broken:
                raise scan.broken[name]
            container = load_file(path, name, searched)
            text = render_unit(
                container, hostctl_bin=hostctl_bin, scope=scope, state_dir=state_dir
            )
            links = install_links(container)
            _warn_system_targets(scope, container, links, report)
            units.append(Generated(container.unit_name, text, links))
        except HostctlError as err:
            report(str(err))
            failed = render_failed_unit(
                name, path, str(err), hostctl_bin=hostctl_bin, scope=scope
            )
            units.append(Generated(f"{name}.service", failed))
    if scope is Scope.USER and units:
        units.append(Generated(NETWORK_WAIT_UNIT, render_network_wait(python=sys.executable)))
    return _drop_clashing_aliases(units, report)


def _warn_system_targets(
    scope: Scope, container: Container, links: tuple[str, ...], report: Report
) -> None:
    """A user's systemd has no multi-user.target: such a unit would never start at boot."""
    if scope is Scope.USER and any(link.startswith("multi-user.target.") for link in links):
        report(
            f"{container.where('install')}: multi-user.target does not exist in a user's "
            "systemd (hint: use WantedBy: default.target)"
        )


def _drop_clashing_aliases(units: list[Generated], report: Report) -> list[Generated]:
    """An Alias= naming another generated unit would overwrite that unit's file."""
    names = {unit.unit_name for unit in units}
    result = []
    for unit in units:
        links = []
        for link in unit.links:
            if "/" not in link and link in names:
                report(f"{unit.unit_name}: Alias={link} is ignored: {link} is a unit itself")
            else:
                links.append(link)
        result.append(Generated(unit.unit_name, unit.text, tuple(links)))
    return result


def generate(
    scope: Scope,
    outdir: Path | None,
    dirs: list[Path] | None = None,
    report: Report | None = None,
) -> dict[str, str]:
    """Unit file name -> text for every declaration; also written to OUTDIR, with the
    [Install] links, when it is given (None: a dry run). Problems go to REPORT (stderr)."""
    units = build(scope, dirs, report or _to_stderr)
    if outdir is not None:
        for unit in units:
            write_unit(outdir, unit)
    return {unit.unit_name: unit.text for unit in units}


def write_unit(outdir: Path, unit: Generated) -> None:
    """Write UNIT's file and links into OUTDIR, each replaced atomically."""
    base = os.fspath(outdir)
    _atomic_write(os.path.join(base, unit.unit_name), unit.text)
    for link in unit.links:
        directory, _, _ = link.rpartition("/")
        target = f"../{unit.unit_name}" if directory else unit.unit_name
        if directory:
            os.makedirs(os.path.join(base, directory), exist_ok=True)
        _atomic_symlink(os.path.join(base, link), target)


# Plain os.path strings below: pathlib costs a third of the time with a thousand units.
def _temp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{os.getpid()}.tmp")


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


def _atomic_symlink(path: str, target: str) -> None:
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
        with KMSG.open("w", encoding="utf-8", errors="replace") as kmsg:
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
    outdir = Path(args[0])
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        generate(default_scope(), outdir, report=_report)
    except (HostctlError, OSError) as err:
        _report(f"cannot generate units in {outdir}: {err}")
        return 1
    return 0
