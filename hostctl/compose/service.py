"""The keys of a compose service: each key's check and canonical form, in one table.

`SERVICE_KEYS` maps every key the compose spec allows in a service to the function that
checks it and returns its canonical form; `IGNORED_KEYS` are the keys that have no
meaning on one host (they are dropped from the model and reported with their path).
Anything else is an error naming FILE:LINE:KEY with a did-you-mean hint.
"""

from __future__ import annotations

from hostctl.compose import mounts, shapes
from hostctl.compose.checks import (
    Scope,
    any_value,
    choice,
    depends_on,
    deploy,
    env,
    env_file,
    extends,
    extra_hosts,
    healthcheck,
    label_file,
    listed,
    logging,
    networks,
    plain,
    restart,
    tmpfs,
    ulimits,
    volumes,
)
from hostctl.compose.mounts import new
from hostctl.compose.shapes import wrong
from hostctl.compose.tree import Dropped, Map, Override, Reset, child

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

    from hostctl.compose.checks import Check


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
        out.put("context", mounts.absolute(context, scope.base, scope.home), value.loc("context"))
    return out


_TEXT = plain(shapes.text)
_INT = plain(shapes.integer)
_BOOL = plain(shapes.boolean)
_BYTES = plain(shapes.byte_size)
_DURATION = plain(shapes.duration)

SERVICE_KEYS: dict[str, Check] = {
    "annotations": env(False),
    "attach": _BOOL,
    "blkio_config": plain(shapes.mapping),
    "build": _build,
    "cap_add": listed(),
    "cap_drop": listed(),
    "cgroup": choice("host", "private"),
    "cgroup_parent": _TEXT,
    "command": plain(shapes.command),
    "configs": plain(mounts.file_mounts),
    "container_name": _TEXT,
    "cpu_count": _INT,
    "cpu_percent": _INT,
    "cpu_period": _INT,
    "cpu_quota": _INT,
    "cpu_rt_period": _DURATION,
    "cpu_rt_runtime": _DURATION,
    "cpu_shares": _INT,
    "cpus": plain(shapes.number),
    "cpuset": _TEXT,
    "depends_on": depends_on,
    "deploy": deploy,
    "device_cgroup_rules": listed(),
    "devices": plain(mounts.devices),
    "dns": listed(True),
    "dns_opt": listed(),
    "dns_search": listed(True),
    "domainname": _TEXT,
    "entrypoint": plain(shapes.command),
    "env_file": env_file,
    "environment": env(True),
    "expose": plain(mounts.expose),
    "extends": extends,
    "external_links": listed(),
    "extra_hosts": extra_hosts,
    "gpus": any_value,
    "group_add": listed(),
    "healthcheck": healthcheck,
    "hostname": _TEXT,
    "image": _TEXT,
    "init": _BOOL,
    "ipc": _TEXT,
    "label_file": label_file,
    "labels": env(False),
    "links": listed(),
    "logging": logging,
    "mac_address": _TEXT,
    "mem_limit": _BYTES,
    "mem_reservation": _BYTES,
    "mem_swappiness": _INT,
    "memswap_limit": _BYTES,
    "network_mode": _TEXT,
    "networks": networks,
    "oom_kill_disable": _BOOL,
    "oom_score_adj": _INT,
    "pid": _TEXT,
    "pids_limit": _INT,
    "platform": _TEXT,
    "ports": plain(mounts.ports),
    "post_start": any_value,
    "pre_stop": any_value,
    "privileged": _BOOL,
    "profiles": listed(),
    "pull_policy": choice(
        "always", "never", "missing", "build", "if_not_present", "daily", "weekly"
    ),
    "read_only": _BOOL,
    "restart": restart,
    "runtime": _TEXT,
    "scale": _INT,
    "secrets": plain(mounts.file_mounts),
    "security_opt": listed(),
    "shm_size": _BYTES,
    "stdin_open": _BOOL,
    "stop_grace_period": _DURATION,
    "stop_signal": _TEXT,
    "storage_opt": plain(shapes.plain_map),
    "sysctls": env(False),
    "tmpfs": tmpfs,
    "tty": _BOOL,
    "ulimits": ulimits,
    "user": _TEXT,
    "userns_mode": _TEXT,
    "uts": _TEXT,
    "volumes": volumes,
    "volumes_from": listed(),
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
    "args": env(True),
    "ssh": any_value,
    "cache_from": listed(),
    "cache_to": listed(),
    "additional_contexts": env(False),
    "entitlements": listed(),
    "extra_hosts": extra_hosts,
    "isolation": _TEXT,
    "labels": env(False),
    "network": _TEXT,
    "no_cache": _BOOL,
    "platforms": listed(),
    "privileged": _BOOL,
    "pull": _BOOL,
    "secrets": plain(mounts.file_mounts),
    "shm_size": _BYTES,
    "tags": listed(),
    "target": _TEXT,
    "ulimits": ulimits,
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
            out.put(key, Dropped(IGNORED_KEYS[key]), value.loc(key))
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
