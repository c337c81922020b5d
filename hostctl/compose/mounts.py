"""Ports, volumes, devices, secrets and configs of a service: short syntax to long."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hostctl.compose import shapes
from hostctl.compose.shapes import fail, wrong
from hostctl.compose.tree import Loc, Map, Seq, child

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

_PORT = re.compile(
    r"(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:]*(?=:\d)):)??"
    r"(?:(?P<published>\d*(?:-\d+)?):)?(?P<target>\d+(?:-\d+)?)(?:/(?P<protocol>\w+))?"
)
_PORT_KEYS = ("name", "target", "published", "host_ip", "protocol", "app_protocol", "mode")
_VOLUME_KEYS = (
    "type",
    "source",
    "target",
    "read_only",
    "consistency",
    "bind",
    "volume",
    "tmpfs",
    "image",
)
_VOLUME_TYPES = ("bind", "volume", "tmpfs", "npipe", "cluster", "image")
_SUB_KEYS = {
    "bind": {"propagation", "create_host_path", "selinux", "recursive"},
    "volume": {"nocopy", "subpath", "labels"},
    "tmpfs": {"size", "mode"},
    "image": {"subpath"},
}
_MOUNT_KEYS = ("source", "target", "uid", "gid", "mode")


def new(loc: Loc, **items: Any) -> Map:
    out = Map(loc)
    for key, value in items.items():
        out.put(key, value, loc)
    return out


def ports(container: Map, key: str, path: str) -> Seq:
    """`ports`: each item as {mode, target, published, protocol, host_ip?}; ranges expand."""
    value = container[key]
    if not isinstance(value, Seq):
        raise wrong(container, key, path, "a list of ports")
    out = Seq(value.at)
    for index, item in enumerate(value):
        here = child(path, index)
        if isinstance(item, Map):
            out.add(_long_port(value, index, here), value.loc(index))
            continue
        spec = shapes.text(value, index, here)
        for port in _short_ports(value, index, here, spec):
            out.add(port, value.loc(index))
    return out


def _short_ports(container: Seq, index: int, path: str, spec: str) -> list[Map]:
    match = _PORT.fullmatch(spec.strip())
    if match is None:
        raise fail(
            container,
            index,
            path,
            f"{spec!r} is not a port",
            "write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. 8080:80",
        )
    targets = _range(match.group("target"))
    published = match.group("published") or ""
    hosts = _range(published) if published else []
    if hosts and len(hosts) != len(targets) and len(targets) != 1:
        raise fail(
            container,
            index,
            path,
            f"{spec!r}: port ranges differ in length",
            "give ranges of equal length, e.g. 8000-8001:80-81",
        )
    loc = container.loc(index)
    protocol = match.group("protocol") or "tcp"
    out = []
    for position, target in enumerate(targets):
        if not hosts:
            public = ""
        elif len(targets) == 1:
            public = published
        else:
            public = str(hosts[position])
        port = new(loc, mode="ingress")
        if match.group("ip"):
            port.put("host_ip", match.group("ip").strip("[]"), loc)
        port.put("target", target, loc)
        if public:
            port.put("published", public, loc)
        port.put("protocol", protocol, loc)
        out.append(port)
    return out


def _range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _long_port(container: Seq, index: int, path: str) -> Map:
    item: Map = container[index]
    for key in item:
        if key not in _PORT_KEYS:
            raise shapes.unknown_key(item, key, child(path, key), _PORT_KEYS)
    if "target" not in item:
        raise fail(container, index, path, "a port needs a target", "e.g. `target: 80`")
    out = new(
        item.at,
        mode=shapes.choice(item, "mode", child(path, "mode"), ("ingress", "host"))
        if "mode" in item
        else "ingress",
    )
    if "host_ip" in item:
        out.put(
            "host_ip", shapes.text(item, "host_ip", child(path, "host_ip")), item.loc("host_ip")
        )
    out.put("target", shapes.integer(item, "target", child(path, "target")), item.loc("target"))
    if item.get("published") not in (None, ""):
        out.put(
            "published",
            shapes.text(item, "published", child(path, "published")),
            item.loc("published"),
        )
    out.put(
        "protocol",
        shapes.text(item, "protocol", child(path, "protocol")) if "protocol" in item else "tcp",
        item.loc("protocol"),
    )
    for key in ("name", "app_protocol"):
        if key in item:
            out.put(key, shapes.text(item, key, child(path, key)), item.loc(key))
    return out


def expose(container: Map, key: str, path: str) -> Seq:
    value = container[key]
    if not isinstance(value, Seq):
        raise wrong(container, key, path, "a list of ports")
    out = Seq(value.at)
    for index in range(len(value)):
        out.add(shapes.text(value, index, child(path, index)), value.loc(index))
    return out


def is_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source in (".", "..")


def absolute(source: str, base: Path, home: str | None = None) -> str:
    """SOURCE resolved like compose does: `~` to HOME (the project environment's, else
    the user's), then relative to BASE."""
    if home and (source == "~" or source.startswith("~/")):
        expanded = home + source[1:]
    else:
        expanded = os.path.expanduser(source)
    return os.path.normpath(os.path.join(base, expanded))


def volumes(container: Map, key: str, path: str, base: Path, home: str | None = None) -> Seq:
    """`volumes`: each item as {type, source?, target, read_only?, bind?, volume?, tmpfs?}."""
    value = container[key]
    if not isinstance(value, Seq):
        raise wrong(container, key, path, "a list of volumes")
    out = Seq(value.at)
    for index, item in enumerate(value):
        here = child(path, index)
        if isinstance(item, Map):
            mount = _long_volume(value, index, here, base, home)
        else:
            mount = _short_volume(value, index, here, base, home)
        out.add(mount, value.loc(index))
    return out


def _short_volume(container: Seq, index: int, path: str, base: Path, home: str | None) -> Map:
    spec = shapes.text(container, index, path)
    loc = container.loc(index)
    parts = spec.split(":")
    if len(parts) == 1:
        return new(loc, type="volume", target=spec)
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise fail(
            container,
            index,
            path,
            f"{spec!r} is not a volume",
            "write SOURCE:TARGET[:MODE] or just TARGET, e.g. ./data:/data:ro",
        )
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    bind = is_path(source)
    mount = new(
        loc,
        type="bind" if bind else "volume",
        source=absolute(source, base, home) if bind else source,
        target=target,
    )
    for option in options:
        if option not in (
            "ro",
            "rw",
            "z",
            "Z",
            "nocopy",
            "cached",
            "delegated",
            "consistent",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "private",
            "rprivate",
        ):
            raise fail(
                container,
                index,
                path,
                f"unknown volume option {option!r}",
                "options: ro, rw, z, Z, nocopy, and propagation modes",
            )
    if "ro" in options:
        mount.put("read_only", True, loc)
    if bind:
        sub = new(loc, create_host_path=True)
        for option in options:
            if option in ("z", "Z"):
                sub.put("selinux", option, loc)
            elif option.endswith(("shared", "slave", "private")):
                sub.put("propagation", option, loc)
        mount.put("bind", sub, loc)
    elif "nocopy" in options:
        mount.put("volume", new(loc, nocopy=True), loc)
    return mount


def _long_volume(container: Seq, index: int, path: str, base: Path, home: str | None) -> Map:
    item: Map = container[index]
    for key in item:
        if key not in _VOLUME_KEYS:
            raise shapes.unknown_key(item, key, child(path, key), _VOLUME_KEYS)
    if "type" not in item:
        raise fail(container, index, path, "a volume needs a type", "type: bind, volume or tmpfs")
    kind = shapes.choice(item, "type", child(path, "type"), _VOLUME_TYPES)
    if "target" not in item:
        raise fail(container, index, path, "a volume needs a target", "e.g. `target: /data`")
    out = new(item.at, type=kind)
    out.locs["type"] = item.loc("type")
    if item.get("source") not in (None, ""):
        source = shapes.text(item, "source", child(path, "source"))
        out.put(
            "source", absolute(source, base, home) if kind == "bind" else source, item.loc("source")
        )
    elif kind == "bind":
        raise fail(container, index, path, "a bind mount needs a source", "e.g. `source: ./data`")
    out.put("target", shapes.text(item, "target", child(path, "target")), item.loc("target"))
    if "read_only" in item:
        out.put(
            "read_only",
            shapes.boolean(item, "read_only", child(path, "read_only")),
            item.loc("read_only"),
        )
    if "consistency" in item:
        out.put(
            "consistency",
            shapes.text(item, "consistency", child(path, "consistency")),
            item.loc("consistency"),
        )
    for key, allowed in _SUB_KEYS.items():
        if key in item:
            out.put(key, _volume_options(item, key, child(path, key), allowed), item.loc(key))
    return out


def _volume_options(container: Map, key: str, path: str, allowed: set[str]) -> Map:
    value = shapes.mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        here = child(path, name)
        if name not in allowed:
            raise shapes.unknown_key(value, name, here, allowed)
        if name in ("create_host_path", "nocopy", "recursive") and name != "recursive":
            converted: Any = shapes.boolean(value, name, here)
        elif name == "size":
            converted = shapes.byte_size(value, name, here)
        elif name == "mode":
            converted = shapes.integer(value, name, here)
        elif name == "labels":
            converted = shapes.key_values(value, name, here, allow_none=False)
        else:
            converted = shapes.text(value, name, here)
        out.put(name, converted, value.loc(name))
    return out


def devices(container: Map, key: str, path: str) -> Seq:
    """`devices`: each as {source, target, permissions} (`HOST[:CONTAINER[:PERMS]]`)."""
    value = container[key]
    if not isinstance(value, Seq):
        raise wrong(container, key, path, "a list of devices")
    out = Seq(value.at)
    for index, item in enumerate(value):
        here = child(path, index)
        loc = value.loc(index)
        if isinstance(item, Map):
            for name in item:
                if name not in ("source", "target", "permissions"):
                    raise shapes.unknown_key(
                        item, name, child(here, name), ("source", "target", "permissions")
                    )
            parts = [
                shapes.text(item, n, child(here, n))
                for n in ("source", "target", "permissions")
                if n in item
            ]
        else:
            parts = shapes.text(value, index, here).split(":")
        if not parts or not parts[0] or len(parts) > 3:
            raise fail(
                value,
                index,
                here,
                f"{item!r} is not a device",
                "write HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], e.g. /dev/fuse",
            )
        source = parts[0]
        target = parts[1] if len(parts) > 1 else source
        permissions = parts[2] if len(parts) > 2 else "rwm"
        out.add(new(loc, source=source, target=target, permissions=permissions), loc)
    return out


def file_mounts(container: Map, key: str, path: str) -> Seq:
    """`secrets`/`configs` of a service: each as {source, target, uid?, gid?, mode?}; the
    target defaults to /run/secrets/SOURCE for secrets and /SOURCE for configs."""
    value = container[key]
    if not isinstance(value, Seq):
        raise wrong(container, key, path, f"a list of {key}")
    out = Seq(value.at)
    for index, item in enumerate(value):
        here = child(path, index)
        loc = value.loc(index)
        if not isinstance(item, Map):
            item = new(loc, source=shapes.text(value, index, here))
        for name in item:
            if name not in _MOUNT_KEYS:
                raise shapes.unknown_key(item, name, child(here, name), _MOUNT_KEYS)
        if "source" not in item:
            raise fail(value, index, here, f"a {key[:-1]} needs a source", "e.g. `source: db_pw`")
        source = shapes.text(item, "source", child(here, "source"))
        mount = new(loc, source=source)
        mount.locs["source"] = item.loc("source")
        target = shapes.text(item, "target", child(here, "target")) if "target" in item else ""
        if not target:
            target = f"/run/secrets/{source}" if key == "secrets" else f"/{source}"
        elif key == "secrets" and not target.startswith("/"):
            target = f"/run/secrets/{target}"
        mount.put("target", target, item.loc("target"))
        for name in ("uid", "gid"):
            if name in item:
                mount.put(name, shapes.text(item, name, child(here, name)), item.loc(name))
        if "mode" in item:
            mount.put("mode", _mode(item, child(here, "mode")), item.loc("mode"))
        out.add(mount, loc)
    return out


def _mode(item: Map, path: str) -> int:
    value = item["mode"]
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
        return int(value, 8)
    return shapes.integer(item, "mode", path)
