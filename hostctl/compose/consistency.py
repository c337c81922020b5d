"""Checks across services once the model is complete: names, dependency cycles, and
settings that contradict each other (as docker compose refuses them)."""

from __future__ import annotations

import re

from hostctl.compose import shapes
from hostctl.compose.tree import Map, child

_SERVICE_NAME = re.compile(r"[a-zA-Z0-9._-]+")


def check(services: Map) -> None:
    """Raise a DeclarationError for the first inconsistency in SERVICES."""
    for name, service in services.items():
        path = child("services", name)
        if not _SERVICE_NAME.fullmatch(name):
            raise shapes.fail(
                services,
                name,
                path,
                f"invalid service name {name!r}",
                "letters, digits, `.`, `_` and `-`",
            )
        _replicas(service, path)
    _cycles(services)


def _replicas(service: Map, path: str) -> None:
    deploy = service.get("deploy") or {}
    replicas = deploy.get("replicas")
    scale = service.get("scale")
    if replicas is not None and scale is not None and replicas != scale:
        raise shapes.fail(
            service,
            "scale",
            child(path, "scale"),
            f"scale ({scale}) and deploy.replicas ({replicas}) differ",
            "keep one of them",
        )
    count = replicas if replicas is not None else scale
    if "container_name" in service and count is not None and count > 1:
        raise shapes.fail(
            service,
            "container_name",
            child(path, "container_name"),
            f"container_name with {count} replicas: names must be unique",
            "drop container_name, or run one replica",
        )


def _cycles(services: Map) -> None:
    """A depends_on loop (a service depending on itself included) is an error."""
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            loop = " -> ".join((*trail[trail.index(name) :], name))
            first = services[trail[-1]]["depends_on"]
            where = child(child(child("services", trail[-1]), "depends_on"), name)
            raise shapes.fail(
                first,
                name,
                where,
                f"depends_on loops: {loop}",
                "services cannot wait for each other in a circle",
            )
        if name in done:
            return
        for other in services[name].get("depends_on") or {}:
            if other in services:
                visit(other, (*trail, name))
        done.add(name)

    for name in services:
        visit(name, ())


NAMESPACES = ("network_mode", "ipc", "pid", "uts", "cgroup")


def implicit_dependencies(services: Map) -> None:
    """The dependencies docker compose adds: a `service:NAME` namespace (network_mode,
    ipc, pid, uts, cgroup) and `links` (restart: true), `volumes_from` (restart: false),
    each as service_started and required, unless depends_on already names that service."""
    for service in services.values():
        if not isinstance(service, Map):
            continue
        wanted: list[tuple[str, bool, str]] = []
        for key in NAMESPACES:
            value = service.get(key)
            if isinstance(value, str) and value.startswith("service:"):
                wanted.append((value.removeprefix("service:"), True, key))
        for link in service.get("links") or []:
            wanted.append((link.split(":")[0], True, "links"))
        for source in service.get("volumes_from") or []:
            if not source.startswith("container:"):
                wanted.append((source.split(":")[0], False, "volumes_from"))
        _add_dependencies(service, wanted)


def _add_dependencies(service: Map, wanted: list[tuple[str, bool, str]]) -> None:
    if not wanted:
        return
    dependencies = service.get("depends_on")
    if not isinstance(dependencies, Map):
        dependencies = Map(service.at)
        service.put("depends_on", dependencies, service.loc(wanted[0][2]))
    for name, restart, key in wanted:
        if name not in dependencies:
            loc = service.loc(key)
            dependency = Map(loc)
            for option, value in (
                ("condition", "service_started"),
                ("required", True),
                ("restart", restart),
            ):
                dependency.put(option, value, loc)
            dependencies.put(name, dependency, loc)
