"""`hostctl quadlet install|list|print|rm`: podman 5.6's verbs over hostctl's declaration
directory (the scope's config directory's `containers/`).

install takes a quadlet file (with extra files beside it), a directory (all its files:
one application named after the directory) or a `.quadlets` file (sections separated by
`---` lines, each naming its file with a `# FileName=NAME.SUFFIX` comment: one
application named after the file). Every declaration among them is validated first and
nothing is written when one is invalid or would replace a file (without REPLACE).
Applications are recorded in `containers/.quadlet-apps/APP` (the file names, one a
line); removing any file of an application removes all of it. Local paths only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hostctl.errors import HostctlError
from hostctl.paths import Scope, for_scope

KINDS = (".container", ".pod", ".network", ".volume", ".image", ".build", ".kube", ".yaml",
         ".yml")
REFUSED = (".artifact",)
APPS = ".quadlet-apps"


@dataclass(frozen=True)
class Installed:
    """One declaration file of the directory: its name, unit, application."""

    file: str
    path: str
    unit: str
    app: str | None
    state: str = ""


def target_dir(scope: Scope) -> Path:
    """Where install writes: /etc/hostctl/containers, or ~/.config/hostctl/containers."""
    return for_scope(scope).config / "containers"


def _unit_of(file: str) -> str:
    stem, _, suffix = file.rpartition(".")
    return {"volume": f"{stem}-volume.service", "image": f"{stem}-image.service",
            "pod": f"{stem}-pod.service",
            "network": "", "build": ""}.get(suffix, f"{stem}.service")


def _validate(path: Path, name: str) -> None:
    """PATH (to be installed as NAME) read as its kind reads it."""
    from hostctl.declarations.checks import TEMPLATE_INSTANCE, template_parts
    from hostctl.declarations.search import load_file

    suffix = "." + name.rpartition(".")[2]
    if name.endswith(REFUSED):
        raise HostctlError(f"quadlet {suffix} files are not supported by hostctl",
                           where=str(path), hint="leave it out of the installation")
    if suffix == ".network":
        from hostctl.network.defs import parse_quadlet

        parse_quadlet(path.read_text(encoding="utf-8"), path, name.removesuffix(suffix))
    elif suffix == ".volume":
        from hostctl.declarations.volume_file import load_volume

        load_volume(path)
    elif suffix == ".pod":
        from hostctl.declarations.pod_file import parse_pod_quadlet

        parse_pod_quadlet(path.read_text(encoding="utf-8"), path.parent / name)
    elif suffix == ".image":
        from hostctl.declarations.image_file import load_image

        load_image(path)
    elif suffix == ".kube":
        from hostctl.declarations.kube_file import load_kube

        load_kube(path)
    elif suffix == ".build":
        from hostctl.declarations.build_file import load_build

        load_build(path)
    elif suffix in KINDS:
        stem = name.removesuffix(suffix)
        prefix, instance, templated = template_parts(stem)
        if templated and not instance:
            stem = f"{prefix}@{TEMPLATE_INSTANCE}"
        load_file(path, stem, [path.parent])


def _sections(path: Path) -> list[tuple[str, str]]:
    """(file name, text) of each section of a .quadlets file."""
    text = path.read_text(encoding="utf-8")
    found = []
    for number, chunk in enumerate(_split(text), 1):
        names = [line.split("=", 1)[1].strip() for line in chunk.splitlines()
                 if line.replace(" ", "").startswith("#FileName=")]
        if len(names) != 1 or not names[0] or "/" in names[0]:
            raise HostctlError(f"section {number} has no `# FileName=NAME.SUFFIX` line",
                               where=str(path),
                               hint="start each section with # FileName=web.container")
        found.append((names[0], chunk.strip("\n") + "\n"))
    return found


def _split(text: str) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == "---":
            chunks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    chunks.append("\n".join(current))
    return [chunk for chunk in chunks if chunk.strip()]


def install(paths: list[Path], scope: Scope, *, replace: bool = False) -> list[Path]:
    """Install PATHS (see the module's docstring) into SCOPE's directory; the files
    written."""
    import shutil
    import tempfile

    if not paths:
        raise HostctlError("nothing to install", hint="give a quadlet file or directory")
    first = paths[0]
    if not first.exists():
        raise HostctlError("no such file or directory", where=str(first))
    app: str | None
    with tempfile.TemporaryDirectory() as staging_name:
        staging = Path(staging_name)
        files: list[tuple[str, Path]] = []  # (name in the target, staged file)
        if first.is_dir():
            app = first.name
            entries = sorted(p for p in first.iterdir() if p.is_file())
            sources = [*entries, *paths[1:]]
        elif first.name.endswith(".quadlets"):
            app = first.name.removesuffix(".quadlets")
            for name, text in _sections(first):
                (staging / name).write_text(text)
            sources = [staging / name for name, _ in _sections(first)] + paths[1:]
        else:
            app = first.name if len(paths) > 1 else None
            sources = list(paths)
        for source in sources:
            if not source.is_file():
                raise HostctlError("not a file", where=str(source))
            staged = staging / source.name
            if source != staged:
                shutil.copyfile(source, staged)
            files.append((source.name, staged))
        declarations = [(n, p) for n, p in files if n.endswith(KINDS + REFUSED)]
        if not declarations:
            raise HostctlError("no quadlet file to install", where=str(first),
                               hint=f"quadlet files end in {', '.join(KINDS)}")
        for name, staged in declarations:
            try:
                _validate(staged, name)
            except HostctlError as err:
                where = str(err.where or "").replace(str(staging), str(first.parent
                                                     if not first.is_dir() else first))
                raise HostctlError(err.message, where=where or name, hint=err.hint) from None
        target = target_dir(scope)
        clash = [name for name, _ in files if (target / name).exists()]
        if clash and not replace:
            raise HostctlError(f"{', '.join(clash)} already installed", where=str(target),
                               hint="give --replace to replace them")
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, staged in files:
            temp = target / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(staged, temp)
            os.replace(temp, target / name)
            written.append(target / name)
        if app is not None:
            apps = target / APPS
            apps.mkdir(exist_ok=True)
            (apps / app).write_text("".join(f"{name}\n" for name, _ in files))
    return written


def _apps(scope: Scope) -> dict[str, list[str]]:
    folder = target_dir(scope) / APPS
    try:
        return {p.name: p.read_text().split() for p in sorted(folder.iterdir()) if p.is_file()}
    except FileNotFoundError:
        return {}


def listing(scope: Scope, state: Callable[[str], str] | None = None) -> list[Installed]:
    """Every quadlet and YAML declaration file in SCOPE's directory, with its unit's
    state (STATE(unit), when given) and application."""
    owner = {name: app for app, names in _apps(scope).items() for name in names}
    rows = []
    target = target_dir(scope)
    for path in sorted(target.iterdir()) if target.is_dir() else []:
        if path.name.startswith(".") or not path.name.endswith(KINDS + REFUSED):
            continue
        unit = _unit_of(path.name)
        shown = state(unit) if state is not None and unit and "@." not in path.name else ""
        rows.append(Installed(path.name, str(path), unit, owner.get(path.name), shown))
    return rows


def find(name: str, scope: Scope) -> Path:
    """The installed file NAME (NAME.SUFFIX, or a stem naming one file)."""
    target = target_dir(scope)
    if "/" in name or name.startswith("."):
        raise HostctlError(f"{name!r} is not a file name", hint="see hostctl quadlet list")
    if (target / name).is_file():
        return target / name
    matches = [target / f"{name}{suffix}" for suffix in KINDS
               if (target / f"{name}{suffix}").is_file()]
    if len(matches) != 1:
        raise HostctlError(f"no installed quadlet {name!r}" if not matches
                           else f"{name!r} names several files",
                           where=str(target), hint="see hostctl quadlet list")
    return matches[0]


def remove(names: list[str], scope: Scope, *, stop: Callable[[str], None] | None = None
           ) -> list[Path]:
    """Remove the installed files NAMES (and the rest of their applications); STOP(unit)
    stops each unit first. The files removed."""
    target = target_dir(scope)
    apps = _apps(scope)
    doomed: dict[str, str | None] = {}
    for name in names:
        path = find(name, scope)
        app = next((a for a, files in apps.items() if path.name in files), None)
        for file in apps[app] if app else [path.name]:
            doomed[file] = app
    for file in doomed:
        unit = _unit_of(file)
        if stop is not None and unit and "@." not in file:
            stop(unit)
    removed = []
    for file in doomed:
        path = target / file
        if path.exists():
            path.unlink()
            removed.append(path)
    for app in {a for a in doomed.values() if a}:
        (target / APPS / app).unlink(missing_ok=True)
    return removed
