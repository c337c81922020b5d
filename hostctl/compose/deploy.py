"""`deploy` of a service: what means something on one host is kept in canonical form
(replicas, resources, restart_policy), swarm-only settings are reported as ignored."""

from __future__ import annotations

from collections.abc import Callable

from hostctl.compose import shapes
from hostctl.compose.tree import Dropped, Map, child

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

IGNORED_DEPLOY = {
    "placement": "placement picks among swarm nodes; there is one host",
    "update_config": "rolling updates across swarm nodes; units restart in place",
    "rollback_config": "rolling updates across swarm nodes; units restart in place",
    "endpoint_mode": "swarm's service load balancer; services are reached by name",
    "labels": "labels of a swarm service object; container labels are `labels`",
}
RESOURCE_KEYS = ("cpus", "memory", "pids", "devices", "generic_resources")
RESTART_KEYS = ("condition", "delay", "max_attempts", "window")


def deploy(container: Map, key: str, path: str) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name.startswith("x-"):
            continue
        if name in IGNORED_DEPLOY:
            out.put(name, Dropped(IGNORED_DEPLOY[name]), value.loc(name))
            continue
        if name == "mode":
            mode = shapes.choice(
                value, name, here, ("replicated", "global", "replicated-job", "global-job")
            )
            if mode.startswith("global"):
                reason = "global runs one task per swarm node: one host, one task"
                out.put(name, Dropped(reason), value.loc(name))
                continue
            out.put(name, mode, value.loc(name))
        elif name == "replicas":
            out.put(name, shapes.integer(value, name, here), value.loc(name))
        elif name == "resources":
            out.put(name, _resources(value, name, here), value.loc(name))
        elif name == "restart_policy":
            out.put(name, _restart_policy(value, name, here), value.loc(name))
        else:
            raise shapes.unknown_key(
                value,
                name,
                here,
                (*IGNORED_DEPLOY, "mode", "replicas", "resources", "restart_policy"),
            )
    return out


def _resources(container: Map, key: str, path: str) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name not in ("limits", "reservations"):
            raise shapes.unknown_key(value, name, here, ("limits", "reservations"))
        out.put(name, _amounts(value, name, here), value.loc(name))
    return out


def _amounts(container: Map, key: str, path: str) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    checks: dict[str, Callable[[Any, str, str], Any]] = {
        "cpus": lambda c, k, p: shapes.number_text(shapes.number(c, k, p)),
        "memory": shapes.byte_size,
        "pids": shapes.integer,
        "devices": lambda c, k, p: c[k],
        "generic_resources": lambda c, k, p: c[k],
    }
    for name in value:
        here = child(path, name)
        check = checks.get(name)
        if check is None:
            raise shapes.unknown_key(value, name, here, RESOURCE_KEYS)
        out.put(name, check(value, name, here), value.loc(name))
    return out


def _restart_policy(container: Map, key: str, path: str) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name == "condition":
            converted: Any = shapes.choice(value, name, here, ("none", "on-failure", "any"))
        elif name in ("delay", "window"):
            converted = shapes.duration(value, name, here)
        elif name == "max_attempts":
            converted = shapes.integer(value, name, here)
        else:
            raise shapes.unknown_key(value, name, here, RESTART_KEYS)
        out.put(name, converted, value.loc(name))
    return out
