"""The keys of a compose service: each key's check and canonical form, in one table.

`SERVICE_KEYS` maps every key the compose spec allows in a service to the function that
checks it and returns its canonical form; `IGNORED_KEYS` are the keys that have no
meaning on one host (they are dropped from the model and reported with their path).
Anything else is an error naming FILE:LINE:KEY with a did-you-mean hint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.compose import mounts, shapes
from hostctl.compose.mounts import new
from hostctl.compose.shapes import fail, wrong
from hostctl.compose.tree import Map, Override, Reset, Seq, child


@dataclass
class Scope:
    """What normalising one file needs: the directory its relative paths resolve against,
    and where keys with no meaning on one host are reported."""

    base: Path
    ignored: list[tuple[str, str]] = field(default_factory=list)


Check = Callable[[Map, str, str, Scope], Any]


def _plain(check: Callable[[Any, str, str], Any]) -> Check:
    return lambda container, key, path, _scope: check(container, key, path)


def _listed(single: bool = False) -> Check:
    return lambda container, key, path, _scope: _seq(container, key, path, single)


def _seq(container: Map, key: str, path: str, single: bool) -> Seq:
    value = container[key]
    items = shapes.string_list(container, key, path, single)
    out = Seq(value.at if isinstance(value, Seq) else container.loc(key))
    for index, item in enumerate(items):
        out.add(item, value.loc(index) if isinstance(value, Seq) else container.loc(key))
    return out


def _env(allow_none: bool) -> Check:
    return lambda container, key, path, _scope: shapes.key_values(
        container, key, path, allow_none=allow_none
    )


def _choice(*allowed: str) -> Check:
    return lambda container, key, path, _scope: shapes.choice(container, key, path, allowed)


def _any(container: Map, key: str, path: str, scope: Scope) -> Any:
    return container[key]


def _restart(container: Map, key: str, path: str, scope: Scope) -> str:
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


def _build(container: Map, key: str, path: str, scope: Scope) -> Map:
    value = container[key]
    if isinstance(value, str):
        value = new(container.loc(key), context=value)
    if not isinstance(value, Map):
        raise wrong(container, key, path, "a context path or a mapping")
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name.startswith("x-"):
            continue
        check = BUILD_KEYS.get(name)
        if check is None:
            raise shapes.unknown_key(value, name, here, BUILD_KEYS)
        out.put(name, check(value, name, here, scope), value.loc(name))
    context = out.get("context")
    if context is not None and "://" not in context and not context.startswith("git@"):
        out.put("context", mounts.absolute(context, scope.base), value.loc("context"))
    return out


def _depends_on(container: Map, key: str, path: str, scope: Scope) -> Map:
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


def _healthcheck(container: Map, key: str, path: str, scope: Scope) -> Map:
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
                converted = _seq(value, name, here, False)
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


def _networks(container: Map, key: str, path: str, scope: Scope) -> Map:
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
    "aliases": _listed(),
    "ipv4_address": _plain(shapes.text),
    "ipv6_address": _plain(shapes.text),
    "link_local_ips": _listed(),
    "mac_address": _plain(shapes.text),
    "priority": _plain(shapes.integer),
    "gw_priority": _plain(shapes.integer),
    "driver_opts": _plain(shapes.plain_map),
    "interface_name": _plain(shapes.text),
}


def _ulimits(container: Map, key: str, path: str, scope: Scope) -> Map:
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


def _extra_hosts(container: Map, key: str, path: str, scope: Scope) -> Seq:
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


def _logging(container: Map, key: str, path: str, scope: Scope) -> Map:
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


def _env_file(container: Map, key: str, path: str, scope: Scope) -> Seq:
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
                path=mounts.absolute(shapes.text(item, "path", child(here, "path")), scope.base),
            )
            entry.put(
                "required",
                shapes.boolean(item, "required", child(here, "required"))
                if "required" in item
                else True,
                item.loc("required"),
            )
            if "format" in item:
                entry.put("format", shapes.text(item, "format", child(here, "format")), loc)
        else:
            text = shapes.text(holder, slot, here)
            entry = new(loc, path=mounts.absolute(text, scope.base), required=True)
        out.add(entry, loc)
    return out


def _label_file(container: Map, key: str, path: str, scope: Scope) -> Seq:
    files = _seq(container, key, path, single=True)
    for index, name in enumerate(files):
        files[index] = mounts.absolute(name, scope.base)
    return files


def _extends(container: Map, key: str, path: str, scope: Scope) -> Map:
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
        out.put("file", mounts.absolute(out["file"], scope.base), value.loc("file"))
    return out


def _volumes(container: Map, key: str, path: str, scope: Scope) -> Seq:
    return mounts.volumes(container, key, path, scope.base)


def _tmpfs(container: Map, key: str, path: str, scope: Scope) -> Seq:
    return _seq(container, key, path, single=True)


# The keys under deploy are in deploy.py; imported late to keep the table in one place.
def _deploy(container: Map, key: str, path: str, scope: Scope) -> Map:
    from hostctl.compose.deploy import deploy

    return deploy(container, key, path, scope.ignored)


_TEXT = _plain(shapes.text)
_INT = _plain(shapes.integer)
_BOOL = _plain(shapes.boolean)
_BYTES = _plain(shapes.byte_size)
_DURATION = _plain(shapes.duration)

SERVICE_KEYS: dict[str, Check] = {
    "annotations": _env(False),
    "attach": _BOOL,
    "blkio_config": _plain(shapes.mapping),
    "build": _build,
    "cap_add": _listed(),
    "cap_drop": _listed(),
    "cgroup": _choice("host", "private"),
    "cgroup_parent": _TEXT,
    "command": _plain(shapes.command),
    "configs": _plain(mounts.file_mounts),
    "container_name": _TEXT,
    "cpu_count": _INT,
    "cpu_percent": _INT,
    "cpu_period": _INT,
    "cpu_quota": _INT,
    "cpu_rt_period": _DURATION,
    "cpu_rt_runtime": _DURATION,
    "cpu_shares": _INT,
    "cpus": _plain(shapes.number),
    "cpuset": _TEXT,
    "depends_on": _depends_on,
    "deploy": _deploy,
    "device_cgroup_rules": _listed(),
    "devices": _plain(mounts.devices),
    "dns": _listed(True),
    "dns_opt": _listed(),
    "dns_search": _listed(True),
    "domainname": _TEXT,
    "entrypoint": _plain(shapes.command),
    "env_file": _env_file,
    "environment": _env(True),
    "expose": _plain(mounts.expose),
    "extends": _extends,
    "external_links": _listed(),
    "extra_hosts": _extra_hosts,
    "gpus": _any,
    "group_add": _listed(),
    "healthcheck": _healthcheck,
    "hostname": _TEXT,
    "image": _TEXT,
    "init": _BOOL,
    "ipc": _TEXT,
    "label_file": _label_file,
    "labels": _env(False),
    "links": _listed(),
    "logging": _logging,
    "mac_address": _TEXT,
    "mem_limit": _BYTES,
    "mem_reservation": _BYTES,
    "mem_swappiness": _INT,
    "memswap_limit": _BYTES,
    "network_mode": _TEXT,
    "networks": _networks,
    "oom_kill_disable": _BOOL,
    "oom_score_adj": _INT,
    "pid": _TEXT,
    "pids_limit": _INT,
    "platform": _TEXT,
    "ports": _plain(mounts.ports),
    "post_start": _any,
    "pre_stop": _any,
    "privileged": _BOOL,
    "profiles": _listed(),
    "pull_policy": _choice(
        "always", "never", "missing", "build", "if_not_present", "daily", "weekly"
    ),
    "read_only": _BOOL,
    "restart": _restart,
    "runtime": _TEXT,
    "scale": _INT,
    "secrets": _plain(mounts.file_mounts),
    "security_opt": _listed(),
    "shm_size": _BYTES,
    "stdin_open": _BOOL,
    "stop_grace_period": _DURATION,
    "stop_signal": _TEXT,
    "storage_opt": _plain(shapes.plain_map),
    "sysctls": _env(False),
    "tmpfs": _tmpfs,
    "tty": _BOOL,
    "ulimits": _ulimits,
    "user": _TEXT,
    "userns_mode": _TEXT,
    "uts": _TEXT,
    "volumes": _volumes,
    "volumes_from": _listed(),
    "working_dir": _TEXT,
}

IGNORED_KEYS = {
    "credential_spec": "Windows containers only",
    "isolation": "Windows containers only",
    "develop": "`compose watch` is a development-time tool",
}

BUILD_KEYS: dict[str, Check] = {
    "context": _TEXT,
    "dockerfile": _TEXT,
    "dockerfile_inline": _TEXT,
    "args": _env(True),
    "ssh": _any,
    "cache_from": _listed(),
    "cache_to": _listed(),
    "additional_contexts": _env(False),
    "entitlements": _listed(),
    "extra_hosts": _extra_hosts,
    "isolation": _TEXT,
    "labels": _env(False),
    "network": _TEXT,
    "no_cache": _BOOL,
    "platforms": _listed(),
    "privileged": _BOOL,
    "pull": _BOOL,
    "secrets": _plain(mounts.file_mounts),
    "shm_size": _BYTES,
    "tags": _listed(),
    "target": _TEXT,
    "ulimits": _ulimits,
}


def normalise_service(services: Map, name: str, scope: Scope) -> Map:
    """The service NAME of SERVICES with every key checked and in canonical form; `x-`
    keys dropped, ignored keys reported. `!reset`/`!override` markers are kept for the
    merge (their values normalised)."""
    path = child("services", name)
    value = services[name]
    if value is None:
        value = Map(services.loc(name))
    if not isinstance(value, Map):
        raise wrong(services, name, path, "a mapping of service settings")
    out = Map(value.at)
    for key in value:
        here = child(path, key)
        if key.startswith("x-"):
            continue
        if key in IGNORED_KEYS:
            scope.ignored.append((here, IGNORED_KEYS[key]))
            continue
        check = SERVICE_KEYS.get(key)
        if check is None:
            raise shapes.unknown_key(value, key, here, SERVICE_KEYS)
        out.put(key, marked(value, key, here, scope, check), value.loc(key))
    return out


def marked(container: Map, key: str, path: str, scope: Scope, check: Check) -> Any:
    """CHECK applied to the value at KEY, through a `!reset` or `!override` marker."""
    value = container[key]
    if isinstance(value, Reset):
        return value
    if isinstance(value, Override):
        holder = Map(container.at)
        holder.put(key, value.value, container.loc(key))
        return Override(check(holder, key, path, scope))
    return check(container, key, path, scope)
