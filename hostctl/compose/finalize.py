"""The merged model completed as docker compose completes it: profiles applied, env files
read into `environment`, defaults filled (default network, build context, resource
names prefixed with the project), and cross references checked (depends_on, networks,
named volumes, secrets, configs)."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import Path

from hostctl.compose import consistency, reads, shapes
from hostctl.compose.interpolate import Lookup, read_env_file
from hostctl.compose.tree import Dropped, Loc, Map, Seq, child
from hostctl.errors import DeclarationError

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

SECTIONS = ("networks", "volumes", "secrets", "configs")


def active(service: Map, profiles: Sequence[str]) -> bool:
    """A service without profiles is always on; one with profiles needs one of them."""
    own = service.get("profiles") or []
    return not own or "*" in profiles or any(profile in profiles for profile in own)


def apply_profiles(top: Map, profiles: Sequence[str]) -> None:
    services: Map = top.get("services") or Map(top.at)
    defined = set(services)
    enabled = {name for name, service in services.items() if active(service, profiles)}
    for name in sorted(enabled):
        dependencies = services[name].get("depends_on")
        if not isinstance(dependencies, Map):
            continue
        for other in list(dependencies):
            here = child(child(child("services", name), "depends_on"), other)
            if other in enabled:
                continue
            if not dependencies[other]["required"]:
                del dependencies[other]
                continue
            known = other in defined
            raise shapes.fail(
                dependencies,
                other,
                here,
                f"service {name!r} depends on {other!r}, which is "
                + ("not enabled by the active profiles" if known else "not defined"),
                "enable its profile (COMPOSE_PROFILES or --profile)"
                if known
                else "define that service or remove the dependency",
            )
    for name in defined - enabled:
        del services[name]


def complete(top: Map, project: str, directory: Path, lookup: Lookup) -> None:
    """Fill defaults and check references in the merged, profile-filtered TOP in place."""
    services: Map = top.get("services") or Map(top.at)
    for section in SECTIONS:
        if not isinstance(top.get(section), Map):
            top.put(section, Map(top.at), top.at)
    for name, service in services.items():
        path = child("services", name)
        _environment(service, path, lookup)
        _labels_from_files(service, path, lookup)
        _build_and_image(services, name, path, directory)
        _network_refs(top, service, path, services.loc(name))
        _volume_refs(top, service, path)
        _file_refs(top, service, path)
    consistency.check(services)
    for section in SECTIONS:
        for name, entry in top[section].items():
            _name(section, name, entry, project)
    for section in SECTIONS:
        if not top[section]:
            del top[section]


def _environment(service: Map, path: str, lookup: Lookup) -> None:
    """`env_file` read in order, then `environment` over it; `KEY` without a value takes
    the project environment's value (and stays null when there is none)."""
    merged = Map(service.at)
    for entry in service.get("env_file") or []:
        file = Path(entry["path"])
        reads.note(file)  # an optional file that is missing: its creation counts too
        if not file.exists():
            if entry["required"]:
                raise DeclarationError(
                    f"env file {file} not found",
                    where=_at(service, "env_file", path),
                    hint="create it, or mark it `required: false`",
                )
            continue
        lines: dict[str, int] = {}
        raw = entry.get("format") == "raw"
        for key, value in read_env_file(file, lookup, lines, raw=raw).items():
            merged.put(key, value, (str(file), lines[key]))
    own = service.get("environment") or Map(service.at)
    for key, value in own.items():
        merged.put(key, lookup(key) if value is None else value, own.loc(key))
    if merged or "environment" in service:
        service.put("environment", merged, service.loc("environment"))
    service.pop("env_file", None)


def _labels_from_files(service: Map, path: str, lookup: Lookup) -> None:
    files = service.pop("label_file", None)
    if not files:
        return
    labels = Map(service.at)
    for name in files:
        labels.update(read_env_file(Path(name), lambda _key: None))
    labels.update(service.get("labels") or {})
    service.put("labels", labels, service.loc("labels"))


def _build_and_image(services: Map, name: str, path: str, directory: Path) -> None:
    service: Map = services[name]
    build = service.get("build")
    if isinstance(build, Map):
        if "context" not in build:
            build.put("context", str(directory), build.at)
        if "dockerfile" not in build and "dockerfile_inline" not in build:
            build.put("dockerfile", "Dockerfile", build.at)
    elif "image" not in service:
        raise shapes.fail(
            services,
            name,
            path,
            f"service {name!r} has neither image nor build",
            "add `image: NAME:TAG`",
        )


def _network_refs(top: Map, service: Map, path: str, loc: Loc) -> None:
    if "network_mode" in service:
        if "networks" in service:
            raise shapes.fail(
                service,
                "network_mode",
                child(path, "network_mode"),
                "network_mode and networks cannot both be set",
                "keep one of them",
            )
        return
    networks = service.get("networks")
    if not networks:
        networks = Map(loc)
        networks.put("default", None, loc)
        service.put("networks", networks, loc)
    for network in networks:
        if network == "default" and "default" not in top["networks"]:
            top["networks"].put("default", Map(top.at), top.at)
        if network not in top["networks"]:
            raise shapes.fail(
                networks,
                network,
                child(child(path, "networks"), network),
                f"network {network!r} is not defined",
                "declare it under the top-level `networks:`",
            )


def _volume_refs(top: Map, service: Map, path: str) -> None:
    for index, mount in enumerate(service.get("volumes") or []):
        mount["target"] = posixpath.normpath(mount["target"])  # as compose cleans it
        source = mount.get("source") if mount["type"] == "volume" else None
        if source and source not in top["volumes"]:
            raise shapes.fail(
                service["volumes"],
                index,
                child(child(path, "volumes"), index),
                f"named volume {mount['source']!r} is not defined",
                "declare it under the top-level `volumes:`, or use a path "
                "starting with ./ or / for a bind mount",
            )


def _file_refs(top: Map, service: Map, path: str) -> None:
    for section in ("secrets", "configs"):
        mounts = service.get(section)
        for index, mount in enumerate(mounts or []):
            if mount["source"] not in top[section]:
                raise shapes.fail(
                    mounts,
                    index,
                    child(child(path, section), index),
                    f"{section[:-1]} {mount['source']!r} is not defined",
                    f"declare it under the top-level `{section}:`",
                )


def _name(section: str, name: str, entry: Map, project: str) -> None:
    external = entry.get("external")
    if isinstance(external, Map):  # legacy external: {name: X}
        entry.put("name", external.get("name", name), entry.loc("external"))
        entry.put("external", True, entry.loc("external"))
        return
    if "name" in entry:
        return
    if external:
        entry.put("name", name, entry.at)
    elif (
        section in ("networks", "volumes")
        or "file" in entry
        or "environment" in entry
        or ("content" in entry)
    ):
        entry.put("name", f"{project}_{name}", entry.at)


def _at(service: Map, key: str, path: str) -> str:
    from hostctl.compose.tree import at

    return at(service.loc(key), child(path, key))


def drop_ignored(top: Map) -> tuple[list[tuple[str, str]], dict[tuple[str | int, ...], Loc]]:
    """Remove the Dropped keys from where they can be (the top level, services and their
    deploy, top-level entries): their (key path, reason) and their locations."""
    places: list[tuple[tuple[str, ...], Map]] = [((), top)]
    for section in ("services", *SECTIONS):
        for name, entry in (top.get(section) or {}).items():
            places.append(((section, name), entry))
            deploy = entry.get("deploy") if section == "services" else None
            if isinstance(deploy, Map):
                places.append(((section, name, "deploy"), deploy))
    ignored: list[tuple[str, str]] = []
    locs: dict[tuple[str | int, ...], Loc] = {}
    for path, container in places:
        for key in [k for k, v in container.items() if isinstance(v, Dropped)]:
            ignored.append((".".join((*path, key)), container[key].reason))
            locs[(*path, key)] = container.loc(key)
            del container[key]
    return ignored, locs


def find(tree: Map, path: tuple[str | int, ...]) -> Loc | None:
    """The location of PATH in TREE, or of its nearest parent that has one."""
    best: Loc | None = None
    node: Any = tree
    for part in path:
        found = isinstance(node, Map) and isinstance(part, str) and part in node
        found = found or (isinstance(node, Seq) and isinstance(part, int) and 0 <= part < len(node))
        if not found:
            break
        loc, node = node.loc(part), node[part]
        if loc[1]:
            best = loc
    return best


def to_plain(value: Any) -> Any:
    """VALUE as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value
