"""Where compose projects live, and reading one back as its translation.

    /etc/hostctl/compose/PROJECT/          (a user's: ~/.config/hostctl/compose/PROJECT/)
        compose.yaml, compose.override.yaml, .env ...   the files, as copied by `up`
        .hostctl-project.json                           what `up` recorded (optional)

The record says which files to read in which order, the env files, the profiles, the
directory the project came from (relative bind mounts and build contexts resolve
against it, as they did where the user wrote them) and whether the project starts at
boot. A directory put there by hand, without a record, is read like `docker compose`
reads a directory: its default files, its .env, started at boot.

The generator (hostctl.compose.units), the launcher (through
hostctl.declarations.search.load_declaration) and the CLI all read a project here, with
an empty environment: what a project means does not depend on who reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Paths, Scope, for_scope

if TYPE_CHECKING:
    from hostctl.compose.project import ComposeProject
    from hostctl.compose.translate import Translation
    from hostctl.declarations.model import Container

RECORD = ".hostctl-project.json"
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class Installed:
    """One installed project, as its record (or the defaults) says."""

    name: str
    path: Path  # the project's directory under compose/
    source: Path  # where relative paths resolve: the directory `up` was run on
    files: tuple[str, ...] = ()  # file names under PATH, in merge order; () the defaults
    env_files: tuple[str, ...] = ()  # file names under PATH; () PATH/.env if any
    profiles: tuple[str, ...] | None = None  # None: COMPOSE_PROFILES/.env decide
    enabled: bool = True  # started at boot

    def to_json(self) -> str:
        return json.dumps({
            "source": str(self.source), "files": list(self.files),
            "env_files": list(self.env_files),
            "profiles": None if self.profiles is None else list(self.profiles),
            "enabled": self.enabled,
        }, indent=2) + "\n"


def projects_dir(paths: Paths) -> Path:
    return paths.config / "compose"


def project_names(paths: Paths) -> list[str]:
    """The installed projects' names, sorted (directories with a project's name)."""
    try:
        entries = sorted(os.scandir(projects_dir(paths)), key=lambda e: e.name)
    except OSError:
        return []
    return [entry.name for entry in entries
            if entry.is_dir() and PROJECT_NAME.fullmatch(entry.name)]


def read(name: str, paths: Paths) -> Installed:
    """Project NAME's record, or the defaults when it has none."""
    path = projects_dir(paths) / name
    if not path.is_dir():
        raise DeclarationError(f"no compose project {name!r}", where=str(path),
                               hint="`hostctl compose up` installs one")
    try:
        data = json.loads((path / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Installed(name, path, path)
    except (OSError, ValueError) as err:
        raise DeclarationError(f"unreadable record: {err}", where=str(path / RECORD),
                               hint="remove it, or install the project again") from None
    profiles = data.get("profiles")
    return Installed(name, path, Path(data.get("source") or path),
                     tuple(data.get("files") or ()), tuple(data.get("env_files") or ()),
                     None if profiles is None else tuple(profiles),
                     bool(data.get("enabled", True)))


def load(installed: Installed) -> ComposeProject:
    """The installed project loaded (hostctl.compose.project)."""
    from hostctl.compose.project import load_project

    env_files = [installed.path / f for f in installed.env_files]
    if not env_files and (installed.path / ".env").is_file():
        env_files = [installed.path / ".env"]
    return load_project(
        installed.source, files=[installed.path / f for f in installed.files],
        name=installed.name, env_files=env_files, profiles=installed.profiles, environ={},
    ) if installed.files else load_project(
        installed.path, name=installed.name, env_files=env_files,
        profiles=installed.profiles, environ={})


# (scope, name) -> (stamp of the project's directory, its translation): a launcher reads
# its project twice (its declaration, then the networks), the CLI's `up` three times.
_translated: dict[tuple[Scope, str], tuple[object, Translation]] = {}
# (scope, name) -> (that stamp, the paths its last load read or looked for: hostctl.compose.reads)
_read: dict[tuple[Scope, str], tuple[object, tuple[str, ...]]] = {}


def _stamp(path: Path) -> object:
    """What a project's translation depends on in its directory: each file's identity."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        stats = [(e.name, e.stat()) for e in entries]
    except OSError as err:
        return ("unlisted", err.errno)
    return (os.stat(path).st_ino, tuple(
        (name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for name, st in stats))


def translation(name: str, scope: Scope) -> Translation:
    """Installed project NAME of SCOPE, loaded and translated (again only when a file of
    its directory changed since this process last did)."""
    from hostctl.compose.translate import translate

    paths = for_scope(scope)
    stamp = _stamp(projects_dir(paths) / name)
    known = _translated.get((scope, name))
    if known is not None and known[0] == stamp:
        return known[1]
    from hostctl.compose.reads import Noting

    with Noting() as noted:
        try:
            found = translate(load(read(name, paths)))
        finally:
            _read[(scope, name)] = (stamp, tuple(noted))
    if scope is Scope.USER:
        check_rootless(found)
    _translated[(scope, name)] = (stamp, found)
    return found


def record_inputs(scope: Scope) -> list[str]:
    """The paths whose content decides what any compose container of SCOPE is and which
    networks the projects own (hostctl.launcher.record): the projects' directory, each
    project's directory and the files in it, and each file its load read or looked for
    (and that file's directory: a default or optional file appearing there counts).
    Every project, not only the container's: the projects' networks share one pool of
    subnets, handed out in project order (hostctl.compose.networks)."""
    folder = projects_dir(for_scope(scope))
    inputs = [str(folder)]
    for name in project_names(for_scope(scope)):
        directory = folder / name
        inputs.append(str(directory))
        with contextlib.suppress(OSError):
            inputs += [str(directory / entry) for entry in sorted(os.listdir(directory))]
        known = _read.get((scope, name))
        if known is None or known[0] != _stamp(directory):
            with contextlib.suppress(HostctlError):  # a broken one's files count all the same
                translation(name, scope)
        for path in _read.get((scope, name), (None, ()))[1]:
            inputs += [path, os.path.dirname(path)]
    return list(dict.fromkeys(inputs))


def check_rootless(found: Translation) -> None:
    """A user's project: a service joins one network (a user's container has one
    interface: pasta's, or its user network's holder's). The project's own networks are
    user networks, each kept by its unit (hostctl.network.holder)."""
    for unit in found.containers:
        if unit.container.networks:
            raise DeclarationError(
                f"service {unit.service} is on {len(unit.container.networks) + 1} "
                "networks, and a user's container joins one",
                where=unit.container.where("networks"),
                hint="put the service on one network, or run the project as root")


def find_container(name: str, scope: Scope) -> Container | None:
    """The declaration of compose container NAME (PROJECT-SERVICE-N, or a container_name)
    of an installed project; None when no project has it. NAME being a project's own
    name (its failing unit, when the project cannot be read) raises the project's error."""
    paths = for_scope(scope)
    names = project_names(paths)
    if name in names:
        translation(name, scope)  # raises what is wrong with it
        raise DeclarationError(f"{name!r} is a compose project, not a container",
                               hint=f"hostctl compose ps -p {name}")
    candidates = [p for p in names if name.startswith(f"{p}-")]
    candidates += [p for p in names if p not in candidates]  # container_name: any project
    for project in candidates:
        try:
            found = translation(project, scope)
        except DeclarationError:
            if project in candidates[:1] and name.startswith(f"{project}-"):
                raise
            continue
        for unit in found.containers:
            if unit.container.name == name:
                return unit.container
    return None
