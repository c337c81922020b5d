"""The checks of a service's keys that take more than a type: each takes the container,
the key, the dotted path and the Scope, and returns the canonical form (service.py
puts them in the table)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hostctl.compose import mounts, shapes
from hostctl.compose.mounts import new
from hostctl.compose.shapes import fail, wrong
from hostctl.compose.tree import Map, Seq, child

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any


class Scope:
    """What normalising one file needs: the directory its relative paths resolve against,
    and the home directory `~` stands for."""

    __slots__ = ("base", "home")

    def __init__(self, base: Path, home: str | None = None) -> None:
        self.base = base
        self.home = home


if TYPE_CHECKING:
    Check = Callable[[Map, str, str, Scope], Any]


def plain(check: Callable[[Any, str, str], Any]) -> Check:
    return lambda container, key, path, _scope: check(container, key, path)


def listed(single: bool = False) -> Check:
    return lambda container, key, path, _scope: seq(container, key, path, single)


def seq(container: Map, key: str, path: str, single: bool) -> Seq:
    value = container[key]
    items = shapes.string_list(container, key, path, single)
    out = Seq(value.at if isinstance(value, Seq) else container.loc(key))
    for index, item in enumerate(items):
        out.add(item, value.loc(index) if isinstance(value, Seq) else container.loc(key))
    return out


def env(allow_none: bool) -> Check:
    return lambda container, key, path, _scope: shapes.key_values(
        container, key, path, allow_none=allow_none
    )


def choice(*allowed: str) -> Check:
    return lambda container, key, path, _scope: shapes.choice(container, key, path, allowed)


def any_value(container: Map, key: str, path: str, scope: Scope) -> Any:
    return container[key]


def restart(container: Map, key: str, path: str, scope: Scope) -> str:
    value = shapes.text(container, key, path)
    policy, _, count = value.partition(":")
    if policy not in ("no", "always", "on-failure", "unless-stopped") or (
        count and (policy != "on-failure" or not count.isdigit())
    ):
        raise fail(
            container,
            key,
            path,
            f"{value!r} is not a restart policy",
            "allowed: no, always, on-failure[:MAX], unless-stopped",
        )
    return value


def depends_on(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = container[key]
    out = Map(value.at if isinstance(value, Map | Seq) else container.loc(key))
    if isinstance(value, Seq):
        for index in range(len(value)):
            name = shapes.text(value, index, child(path, index))
            loc = value.loc(index)
            out.put(name, new(loc, condition="service_started", required=True, restart=False), loc)
        return out
    if not isinstance(value, Map):
        raise wrong(container, key, path, "a list of services or a mapping")
    for name in value:
        here = child(path, name)
        item = value[name] if value[name] is not None else Map(value.loc(name))
        if not isinstance(item, Map):
            raise wrong(value, name, here, "a mapping with condition, required, restart")
        for option in item:
            if option not in ("condition", "required", "restart"):
                raise shapes.unknown_key(
                    item, option, child(here, option), ("condition", "required", "restart")
                )
        dependency = new(
            item.at,
            condition=shapes.choice(item, "condition", child(here, "condition"), CONDITIONS)
            if "condition" in item
            else "service_started",
        )
        for option, default in (("required", True), ("restart", False)):
            flag = shapes.boolean(item, option, child(here, option)) if option in item else default
            dependency.put(option, flag, item.loc(option))
        out.put(name, dependency, value.loc(name))
    return out


CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def healthcheck(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name.startswith("x-"):
            continue
        if name == "test":
            test = value[name]
            if isinstance(test, str):
                converted: Any = Seq(value.loc(name))
                converted.add("CMD-SHELL", value.loc(name))
                converted.add(test, value.loc(name))
            else:
                converted = seq(value, name, here, False)
                if converted and converted[0] not in ("NONE", "CMD", "CMD-SHELL"):
                    raise fail(
                        value,
                        name,
                        here,
                        f"a test list starts with CMD, CMD-SHELL or NONE, not {converted[0]!r}",
                        'e.g. ["CMD", "curl", "-f", "http://localhost"]',
                    )
        elif name in ("interval", "timeout", "start_period", "start_interval"):
            converted = shapes.duration(value, name, here)
        elif name == "retries":
            converted = shapes.integer(value, name, here)
        elif name == "disable":
            converted = shapes.boolean(value, name, here)
        else:
            raise shapes.unknown_key(value, name, here, HEALTH_KEYS)
        out.put(name, converted, value.loc(name))
    return out


HEALTH_KEYS = (
    "test",
    "interval",
    "timeout",
    "start_period",
    "start_interval",
    "retries",
    "disable",
)


def networks(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = container[key]
    if isinstance(value, Seq):
        out = Map(value.at)
        for index in range(len(value)):
            out.put(shapes.text(value, index, child(path, index)), None, value.loc(index))
        return out
    if not isinstance(value, Map):
        raise wrong(container, key, path, "a list of networks or a mapping")
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        item = value[name]
        if item is None:
            out.put(name, None, value.loc(name))
            continue
        if not isinstance(item, Map):
            raise wrong(value, name, here, "a mapping (aliases, ipv4_address...) or nothing")
        attachment = Map(item.at)
        for option in item:
            check = NETWORK_ATTACH_KEYS.get(option)
            if check is None:
                raise shapes.unknown_key(item, option, child(here, option), NETWORK_ATTACH_KEYS)
            attachment.put(
                option, check(item, option, child(here, option), scope), item.loc(option)
            )
        out.put(name, attachment, value.loc(name))
    return out


NETWORK_ATTACH_KEYS: dict[str, Check] = {
    "aliases": listed(),
    "ipv4_address": plain(shapes.text),
    "ipv6_address": plain(shapes.text),
    "link_local_ips": listed(),
    "mac_address": plain(shapes.text),
    "priority": plain(shapes.integer),
    "gw_priority": plain(shapes.integer),
    "driver_opts": plain(shapes.plain_map),
    "interface_name": plain(shapes.text),
}


def ulimits(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        item = value[name]
        if isinstance(item, Map):
            limits = Map(item.at)
            for bound in item:
                if bound not in ("soft", "hard"):
                    raise shapes.unknown_key(item, bound, child(here, bound), ("soft", "hard"))
                limits.put(bound, shapes.integer(item, bound, child(here, bound)), item.loc(bound))
            if set(limits) != {"soft", "hard"}:
                raise fail(
                    value,
                    name,
                    here,
                    "a ulimit mapping needs soft and hard",
                    "e.g. `nofile: {soft: 1024, hard: 4096}`",
                )
            out.put(name, limits, value.loc(name))
        else:
            out.put(name, shapes.integer(value, name, here), value.loc(name))
    return out


def extra_hosts(container: Map, key: str, path: str, scope: Scope) -> Seq:
    """`extra_hosts` as a list of `HOST:IP` (mapping values may be one IP or a list)."""
    value = container[key]
    out = Seq(value.at if isinstance(value, Map | Seq) else container.loc(key))
    if isinstance(value, Map):
        for host in value:
            addresses = value[host] if isinstance(value[host], Seq) else [value[host]]
            for address in addresses:
                out.add(f"{host}:{address}", value.loc(host))
        return out
    if not isinstance(value, Seq):
        raise wrong(container, key, path, "a list of HOST:IP or a mapping")
    for index in range(len(value)):
        entry = shapes.text(value, index, child(path, index))
        host, equals, address = entry.partition("=")
        if not equals:
            host, colon, address = entry.partition(":")
            if not colon:
                raise fail(
                    value,
                    index,
                    child(path, index),
                    f"{entry!r} is not HOST:IP",
                    "e.g. somehost:162.242.195.82",
                )
        out.add(f"{host}:{address}", value.loc(index))
    return out


def logging(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name == "driver":
            out.put(name, shapes.text(value, name, here), value.loc(name))
        elif name == "options":
            out.put(
                name,
                shapes.plain_map(value, name, here)
                if value[name] is not None
                else Map(value.loc(name)),
                value.loc(name),
            )
        else:
            raise shapes.unknown_key(value, name, here, ("driver", "options"))
    return out


def env_file(container: Map, key: str, path: str, scope: Scope) -> Seq:
    """`env_file`: each as {path (absolute), required, format?}."""
    value = container[key]
    items = value if isinstance(value, Seq) else [value]
    out = Seq(value.at if isinstance(value, Seq) else container.loc(key))
    for index, item in enumerate(items):
        here = child(path, index) if isinstance(value, Seq) else path
        holder, slot = (value, index) if isinstance(value, Seq) else (container, key)
        loc = value.loc(index) if isinstance(value, Seq) else container.loc(key)
        if isinstance(item, Map):
            for name in item:
                if name not in ("path", "required", "format"):
                    raise shapes.unknown_key(
                        item, name, child(here, name), ("path", "required", "format")
                    )
            if "path" not in item:
                raise fail(
                    holder, slot, here, "an env_file entry needs a path", "e.g. `path: ./web.env`"
                )
            entry = new(
                loc,
                path=mounts.absolute(
                    shapes.text(item, "path", child(here, "path")), scope.base, scope.home
                ),
            )
            entry.put(
                "required",
                shapes.boolean(item, "required", child(here, "required"))
                if "required" in item
                else True,
                item.loc("required"),
            )
            if "format" in item:
                fmt = shapes.choice(item, "format", child(here, "format"), ("raw",))
                entry.put("format", fmt, item.loc("format"))
        else:
            text = shapes.text(holder, slot, here)
            entry = new(loc, path=mounts.absolute(text, scope.base, scope.home), required=True)
        out.add(entry, loc)
    return out


def label_file(container: Map, key: str, path: str, scope: Scope) -> Seq:
    files = seq(container, key, path, single=True)
    for index, name in enumerate(files):
        files[index] = mounts.absolute(name, scope.base, scope.home)
    return files


def extends(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = container[key]
    if isinstance(value, str):
        return new(container.loc(key), service=value)
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        if name not in ("service", "file"):
            raise shapes.unknown_key(value, name, child(path, name), ("service", "file"))
        out.put(name, shapes.text(value, name, child(path, name)), value.loc(name))
    if "service" not in out:
        raise fail(container, key, path, "extends needs a service", "e.g. `service: base`")
    if "file" in out:
        out.put("file", mounts.absolute(out["file"], scope.base, scope.home), value.loc("file"))
    return out


def volumes(container: Map, key: str, path: str, scope: Scope) -> Seq:
    return mounts.volumes(container, key, path, scope.base, scope.home)


def tmpfs(container: Map, key: str, path: str, scope: Scope) -> Seq:
    return seq(container, key, path, single=True)


# The keys under deploy are in deploy.py; imported late to keep the table in one place.
def deploy(container: Map, key: str, path: str, scope: Scope) -> Map:
    from hostctl.compose.deploy import deploy

    return deploy(container, key, path)
