"""One compose file read, checked and normalised, with its services' `extends` resolved.

Relative paths resolve against the file's base directory: the project directory for the
files given with -f (override files included, as the spec says), the file's own
directory for a file named by `extends: {file: ...}` or `include`.
"""

from __future__ import annotations

from pathlib import Path

from hostctl.compose import resources, shapes
from hostctl.compose.checks import Scope
from hostctl.compose.include import include
from hostctl.compose.interpolate import Lookup, substitute
from hostctl.compose.merge import merge, strip
from hostctl.compose.service import normalise_service
from hostctl.compose.tree import Dropped, Map, Override, Reset, child, read_file

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

TOP_KEYS = ("name", "services", "networks", "volumes", "secrets", "configs", "include")
IGNORED_TOP = {"version": "obsolete: the compose spec reads every file the same way"}


class Files:
    """Reads compose files once each (extends may name the same file many times)."""

    def __init__(
        self, lookup: Lookup, process: Mapping[str, str], chain: tuple[Path, ...] = ()
    ) -> None:
        self.lookup = lookup
        self.process = process  # the process environment, for included projects
        self.chain = chain  # the files including this project (include loops)
        self._cache: dict[tuple[Path, Path], Map] = {}
        self.markers = False  # some file holds `!reset`/`!override`: strip after merging

    def interpolate(self, text: str) -> str:
        return substitute(text, self.lookup)

    def load(self, path: Path, base: Path) -> Map:
        """PATH's top level, normalised, extends resolved (a cached result is reused)."""
        key = (path, base)
        if key not in self._cache:
            read, markers = read_file(path, self.interpolate)
            self.markers = self.markers or markers
            top = normalise_top(read, Scope(base, self.process.get("HOME")))
            self._cache[key] = top
            if "include" in top:
                include(top, base, self, Files)
            services = top.get("services")
            if isinstance(services, Map):
                for name in list(services):
                    self.extended(services, name, path, ())
        return self._cache[key]

    def extended(
        self, services: Map, name: str, path: Path, chain: tuple[tuple[Path, str], ...]
    ) -> Map:
        """The service NAME with its `extends` chain merged in (and the result stored)."""
        service = services[name]
        reference = service.get("extends") if isinstance(service, Map) else None
        if not isinstance(reference, Map):
            return service  # type: ignore[no-any-return]
        here = child(child("services", name), "extends")
        link = (path, name)
        if link in chain:
            cycle = " -> ".join(f"{p.name}:{s}" for p, s in (*chain, link))
            raise shapes.fail(
                service,
                "extends",
                here,
                f"extends loops: {cycle}",
                "a service cannot extend itself through others",
            )
        other_path = Path(reference["file"]) if "file" in reference else path
        if "file" in reference:
            if not other_path.is_file():
                raise shapes.fail(
                    service,
                    "extends",
                    here,
                    f"extended file {other_path} not found",
                    "a relative `file:` is relative to the extending file's project directory",
                )
            other = self.load(other_path, other_path.parent).get("services")
        else:
            other = services
        wanted = reference["service"]
        if not isinstance(other, Map) or wanted not in other:
            where = f" in {other_path}" if "file" in reference else ""
            raise shapes.fail(
                service,
                "extends",
                here,
                f"cannot extend {wanted!r}: no such service{where}",
                "name a service defined in that file",
            )
        base = self.extended(other, wanted, other_path, (*chain, link))
        own = service.copy_shallow()
        del own["extends"]
        parent = (strip(base) if self.markers else base).copy_shallow()
        parent.pop("extends", None)
        merged: Map = merge(parent, own, ("services", name))
        services.put(name, merged, services.loc(name))
        return merged


def normalise_top(top: Map, scope: Scope) -> Map:
    """The top level of one file: keys checked, sections and services normalised."""
    out = Map(top.at)
    for key in top:
        if key.startswith("x-"):
            continue
        if key in IGNORED_TOP:
            out.put(key, Dropped(IGNORED_TOP[key]), top.loc(key))
            continue
        if key not in TOP_KEYS:
            raise shapes.unknown_key(top, key, key, TOP_KEYS)
        out.put(key, _section(top, key, scope), top.loc(key))
    return out


def _section(top: Map, key: str, scope: Scope) -> Any:
    if key == "name":
        return shapes.text(top, key, key)
    if key == "include":
        return top[key]
    if key != "services":
        return resources.normalise(key, top, scope)
    services = top[key]
    if services is None:
        return Map(top.loc(key))
    if not isinstance(services, Map):
        raise shapes.wrong(top, key, key, "a mapping of services")
    out = Map(services.at)
    for name in services:
        if name.startswith("x-"):
            continue
        value = services[name]
        if isinstance(value, Reset):  # an override file removing a service
            out.put(name, value, services.loc(name))
        elif isinstance(value, Override):
            holder = Map(services.at)
            holder.put(name, value.value, services.loc(name))
            out.put(name, Override(normalise_service(holder, name, scope)), services.loc(name))
        else:
            out.put(name, normalise_service(services, name, scope), services.loc(name))
    return out
