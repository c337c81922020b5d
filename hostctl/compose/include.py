"""`include`: other compose projects whose resources join this one.

Each entry (a path, or {path, project_directory, env_file}) is loaded as a project of
its own: its relative paths resolve against its project directory (default: the
directory of its first file), and it is interpolated with the process environment over
its env files (default: the `.env` of its project directory). Its services, networks,
volumes, secrets and configs are then added to the including file; a name defined on
both sides is an error, as in docker compose. Includes nest; a loop is an error.
"""

from __future__ import annotations

from pathlib import Path

from hostctl.compose import mounts, shapes
from hostctl.compose.interpolate import chained, read_env_file
from hostctl.compose.merge import merge
from hostctl.compose.tree import Map, Seq, child

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hostctl.compose.files import Files

SECTIONS = ("services", "networks", "volumes", "secrets", "configs")
KEYS = ("path", "project_directory", "env_file")


def include(top: Map, base: Path, files: Files, make: Callable[..., Files]) -> None:
    """Load the `include` entries of TOP (a file whose paths resolve against BASE) and
    add their resources to it. MAKE builds the reader of an included project."""
    entries = top.pop("include")
    if entries is None:
        return
    if not isinstance(entries, Seq):
        raise shapes.fail(
            top,
            "include",
            "include",
            "expected a list of files to include",
            "e.g. `include: [../shared/compose.yaml]`",
        )
    for index in range(len(entries)):
        model = _load(entries, index, base, files, make)
        _add(top, model, entries, index)


def _load(entries: Seq, index: int, base: Path, files: Files, make: Callable[..., Files]) -> Map:
    here = child("include", index)
    entry = entries[index]
    if not isinstance(entry, Map):
        entry = Map(entries.loc(index))
        entry.put("path", entries[index], entries.loc(index))
    for key in entry:
        if key not in KEYS:
            raise shapes.unknown_key(entry, key, child(here, key), KEYS)
    if "path" not in entry:
        raise shapes.fail(
            entries, index, here, "an include needs a path", "e.g. `path: ../shared/compose.yaml`"
        )
    paths = [
        Path(mounts.absolute(p, base, files.process.get("HOME")))
        for p in shapes.string_list(entry, "path", child(here, "path"), single=True)
    ]
    if not paths:
        raise shapes.fail(
            entries, index, here, "an include needs a path", "e.g. `path: ../shared/compose.yaml`"
        )
    for path in paths:
        if path in files.chain:
            raise shapes.fail(
                entries,
                index,
                here,
                f"include loops back to {path}",
                "a file cannot include itself through others",
            )
        if not path.is_file():
            raise shapes.fail(
                entries,
                index,
                here,
                f"included file {path} not found",
                "paths are relative to the including project's directory",
            )
    directory = (
        Path(
            mounts.absolute(
                shapes.text(entry, "project_directory", child(here, "project_directory")),
                base,
                files.process.get("HOME"),
            )
        )
        if "project_directory" in entry
        else paths[0].parent
    )
    env_files = (
        [
            Path(mounts.absolute(p, base, files.process.get("HOME")))
            for p in shapes.string_list(entry, "env_file", child(here, "env_file"), single=True)
        ]
        if "env_file" in entry
        else [p for p in [directory / ".env"] if p.is_file()]
    )
    environment = _environment(env_files, files.process)
    reader = make(chained(files.process, environment), files.process, (*files.chain, *paths))
    model: Map | None = None
    for path in paths:
        loaded = reader.load(path, directory)
        model = loaded if model is None else merge(model, loaded)
    files.markers = files.markers or reader.markers  # its `!reset`s are stripped with ours
    assert model is not None
    return model


def _environment(env_files: list[Path], process: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for file in env_files:
        out.update(read_env_file(file, chained(process, out)))
    return out


def _add(top: Map, model: Map, entries: Seq, index: int) -> None:
    for section in SECTIONS:
        imported = model.get(section)
        if not isinstance(imported, Map) or not imported:
            continue
        own = top.get(section)
        if not isinstance(own, Map):
            own = Map(top.at)
            top.put(section, own, entries.loc(index))
        for name, value in imported.items():
            if name in own:
                raise shapes.fail(
                    own,
                    name,
                    child(section, name),
                    f"{section[:-1]} {name!r} is also defined by the included "
                    f"file at include[{index}]",
                    "rename one of them, or extend the included one",
                )
            own.put(name, value, imported.loc(name))
