"""Top-level networks, volumes, secrets and configs: checked and in canonical form."""

from __future__ import annotations

from collections.abc import Callable

from hostctl.compose import mounts, shapes
from hostctl.compose.checks import Scope
from hostctl.compose.tree import Dropped, Map, Override, Reset, child

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    Check = Callable[[Map, str, str, Scope], Any]


def _p(check: Callable[[Any, str, str], Any]) -> Check:
    return lambda container, key, path, _scope: check(container, key, path)


def _labels(container: Map, key: str, path: str, scope: Scope) -> Map:
    return shapes.key_values(container, key, path, allow_none=False)


def _external(container: Map, key: str, path: str, scope: Scope) -> Any:
    value = container[key]
    if isinstance(value, Map):  # the legacy `external: {name: X}`
        for name in value:
            if name != "name":
                raise shapes.unknown_key(value, name, child(path, name), ("name",))
        return value
    return shapes.boolean(container, key, path)


def _file(container: Map, key: str, path: str, scope: Scope) -> str:
    return mounts.absolute(shapes.text(container, key, path), scope.base, scope.home)


def _ipam(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = shapes.mapping(container, key, path)
    allowed = ("driver", "config", "options")
    for name in value:
        if name not in allowed:
            raise shapes.unknown_key(value, name, child(path, name), allowed)
    pools = value.get("config") or []
    if not isinstance(pools, list):
        raise shapes.wrong(value, "config", child(path, "config"), "a list of pools")
    pool_keys = ("subnet", "ip_range", "gateway", "aux_addresses")
    for index, pool in enumerate(pools):
        here = child(child(path, "config"), index)
        if not isinstance(pool, Map):
            raise shapes.wrong(pools, index, here, "a mapping with subnet, gateway...")
        for name in pool:
            if name not in pool_keys:
                raise shapes.unknown_key(pool, name, child(here, name), pool_keys)
    return value


_COMMON: dict[str, Check] = {
    "name": _p(shapes.text),
    "external": _external,
    "labels": _labels,
}
NETWORK_KEYS: dict[str, Check] = {
    **_COMMON,
    "driver": _p(shapes.text),
    "driver_opts": _p(shapes.plain_map),
    "ipam": _ipam,
    "internal": _p(shapes.boolean),
    "enable_ipv4": _p(shapes.boolean),
    "enable_ipv6": _p(shapes.boolean),
}
VOLUME_KEYS: dict[str, Check] = {
    **_COMMON,
    "driver": _p(shapes.text),
    "driver_opts": _p(shapes.plain_map),
}
CONFIG_KEYS: dict[str, Check] = {
    **_COMMON,
    "file": _file,
    "environment": _p(shapes.text),
    "content": _p(shapes.text),
    "template_driver": _p(shapes.text),
}
SECRET_KEYS: dict[str, Check] = {  # no `content`: a secret's value is not written inline
    **{key: check for key, check in CONFIG_KEYS.items() if key != "content"},
    "driver": _p(shapes.text),
    "driver_opts": _p(shapes.plain_map),
}
IGNORED = {
    ("networks", "attachable"): "lets swarm tasks and standalone containers share an "
    "overlay network; all containers here are on one host",
}
KEYS = {
    "networks": NETWORK_KEYS,
    "volumes": VOLUME_KEYS,
    "secrets": SECRET_KEYS,
    "configs": CONFIG_KEYS,
}


def normalise(section: str, top: Map, scope: Scope) -> Map:
    """The top-level SECTION of TOP checked, each entry a Map (an empty one when null)."""
    value = top[section]
    if value is None:
        return Map(top.loc(section))
    if not isinstance(value, Map):
        raise shapes.wrong(top, section, section, f"a mapping of {section}")
    out = Map(value.at)
    for name in value:
        if name.startswith("x-"):
            continue
        out.put(name, _entry(section, value, name, scope), value.loc(name))
    return out


def _entry(section: str, container: Map, name: str, scope: Scope) -> Any:
    path = child(section, name)
    value = container[name]
    if isinstance(value, Reset | Override):
        return value
    if value is None:
        return Map(container.loc(name))
    if not isinstance(value, Map):
        raise shapes.wrong(container, name, path, "a mapping or nothing")
    allowed = KEYS[section]
    out = Map(value.at)
    for key in value:
        here = child(path, key)
        if key.startswith("x-"):
            continue
        if (section, key) in IGNORED:
            out.put(key, Dropped(IGNORED[(section, key)]), value.loc(key))
            continue
        check = allowed.get(key)
        if check is None:
            raise shapes.unknown_key(value, key, here, allowed)
        out.put(key, check(value, key, here, scope), value.loc(key))
    if section in ("secrets", "configs"):
        kinds = [k for k in ("file", "environment", "content", "external") if k in allowed]
        sources = [key for key in kinds if key in out]
        if len(sources) != 1:
            raise shapes.fail(
                container,
                name,
                path,
                f"a {section[:-1]} needs exactly one of {', '.join(kinds)} "
                f"(got {', '.join(sources) or 'none'})",
                "e.g. `file: ./db_password.txt`",
            )
    return out
