"""Merging a compose file (or an `extends` child) over another, by the spec's rules.

Mappings merge key by key (environment, labels, sysctls, depends_on, networks, build,
deploy... are mappings once normalised, so they merge per name). `command`,
`entrypoint` and `healthcheck.test` are replaced. Other sequences are appended, and
those with an identity are de-duplicated by it, the later definition winning: ports by
(host_ip, published, target, protocol), volumes and devices by target, secrets and
configs by target, env_file by path, dns/expose/cap_add/... by value. `!reset` removes
the key, `!override` replaces the value instead of merging it. Every key keeps the
location of the file it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from hostctl.compose.tree import Map, Override, Reset, Seq

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    Identity = Callable[[Any], Hashable]


def _value(item: Any) -> Hashable:
    return repr(item)


def _port(item: Any) -> Hashable:
    return (item.get("host_ip"), item.get("published"), item["target"], item.get("protocol"))


def _target(item: Any) -> Hashable:
    return item["target"] if isinstance(item, dict) else repr(item)


def _path(item: Any) -> Hashable:
    return item["path"] if isinstance(item, dict) else repr(item)


REPLACED = {
    ("services", "*", "command"),
    ("services", "*", "entrypoint"),
    ("services", "*", "healthcheck", "test"),
}
UNIQUE: dict[tuple[str, ...], Identity] = {
    ("services", "*", "ports"): _port,
    ("services", "*", "volumes"): _target,
    ("services", "*", "devices"): _target,
    ("services", "*", "secrets"): _target,
    ("services", "*", "configs"): _target,
    ("services", "*", "env_file"): _path,
    **{
        ("services", "*", key): _value
        for key in (
            "expose",
            "dns",
            "dns_opt",
            "dns_search",
            "cap_add",
            "cap_drop",
            "tmpfs",
            "links",
            "profiles",
            "extra_hosts",
            "label_file",
            "group_add",
            "device_cgroup_rules",
        )
    },
    ("services", "*", "networks", "*", "aliases"): _value,
    ("services", "*", "networks", "*", "link_local_ips"): _value,
    ("services", "*", "build", "tags"): _value,
    ("services", "*", "build", "extra_hosts"): _value,
}


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(
        want in ("*", got) for got, want in zip(path, pattern, strict=True)
    )


def _rule(path: tuple[str, ...], table: Any) -> Any:
    for pattern in table:
        if _matches(path, pattern):
            return table[pattern] if isinstance(table, dict) else pattern
    return None


def merge(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """OVER merged over BASE (neither is changed); PATH is the key path being merged."""
    if isinstance(over, Override):
        return over.value
    if isinstance(base, Map) and isinstance(over, Map):
        if path and path[-1] == "logging" and _other_driver(base, over):
            return over
        return merge_maps(base, over, path)
    if isinstance(base, Seq) and isinstance(over, Seq) and _rule(path, REPLACED) is None:
        return _merge_seqs(base, over, _rule(path, UNIQUE))
    return over


def _other_driver(base: Map, over: Map) -> bool:
    return "driver" in base and "driver" in over and base["driver"] != over["driver"]


def merge_maps(base: Map, over: Map, path: tuple[str, ...]) -> Map:
    out = base.copy_shallow()
    for key, value in over.items():
        if isinstance(value, Reset):
            out.pop(key, None)
            out.locs.pop(key, None)
            continue
        if key in out:
            out.put(key, merge(out[key], value, (*path, key)), over.loc(key))
        else:
            out.put(key, strip(value), over.loc(key))
    return out


def _merge_seqs(base: Seq, over: Seq, identity: Identity | None) -> Seq:
    out = Seq(over.at)
    if identity is None:
        for source in (base, over):
            for index, item in enumerate(source):
                out.add(item, source.loc(index))
        return out
    slots: dict[Hashable, int] = {}
    for source in (base, over):
        for index, item in enumerate(source):
            key = identity(item)
            if key in slots:
                out[slots[key]] = item
                out.locs[slots[key]] = source.loc(index)
            else:
                slots[key] = len(out)
                out.add(item, source.loc(index))
    return out


def strip(value: Any) -> Any:
    """VALUE without `!reset`/`!override` markers (a reset key over nothing is absent)."""
    if isinstance(value, Override):
        return strip(value.value)
    if isinstance(value, Map):
        out = Map(value.at)
        for key, item in value.items():
            if not isinstance(item, Reset):
                out.put(key, strip(item), value.loc(key))
        return out
    return value
