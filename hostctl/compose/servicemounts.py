"""A compose service's ports, volumes, tmpfs mounts and devices as container settings
(handlers of hostctl.compose.servicekeys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hostctl.compose.servicekeys import ServiceReader, strings_of, text_of
from hostctl.declarations import values
from hostctl.declarations.checks import check_abspath, check_choice
from hostctl.declarations.model import Tmpfs, Volume, VolumeKind


def ports(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, list):
        raise reader.error("expected a list", "ports")
    ports = []
    for index, port in enumerate(value):
        if not isinstance(port, Mapping):
            port = {"target": port}
        published = text_of(port.get("published") or "")
        if not published:
            raise reader.error(
                f"port {port.get('target')} has no published host port", "ports", index,
                hint="hostctl publishes fixed host ports: write HOST:CONTAINER")
        address = text_of(port.get("host_ip") or "")
        address = f"[{address}]" if ":" in address else address
        target = text_of(port.get("target"))
        if "-" in published and "-" not in target:
            raise reader.error(f"host port range {published} for one container port",
                               "ports", index, hint="publish one host port")
        text = f"{address}:{published}:{target}" if address else f"{published}:{target}"
        protocol = text_of(port.get("protocol") or "tcp")
        ports += reader.parsed(values.parse_port, f"{text}/{protocol}", "ports", index)
    reader.set("ports", tuple(ports), "ports")


def volumes(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, list):
        raise reader.error("expected a list", "volumes")
    mounts: list[Volume] = []
    tmpfs: list[Tmpfs] = list(reader.settings.get("tmpfs", ()))
    for index, mount in enumerate(value):
        if not isinstance(mount, Mapping):
            raise reader.error("expected the long syntax (the loader gives it)",
                               "volumes", index)
        kind = mount.get("type")
        if kind == "tmpfs":
            tmpfs.append(_tmpfs_mount(reader, mount, index))
        elif kind in ("bind", "volume"):
            mounts.append(_mount(reader, mount, index))
        else:
            raise reader.error(f"volume type {kind!r} is not supported by hostctl",
                               "volumes", index, "type", hint="bind, volume or tmpfs")
    reader.set("volumes", tuple(mounts), "volumes")
    if tmpfs:
        reader.set("tmpfs", tuple(tmpfs), "volumes")


def _mount(reader: ServiceReader, mount: Mapping[str, Any], index: int) -> Volume:
    target = reader.parsed(check_abspath, mount.get("target"), "volumes", index)
    options: list[str] = []
    for key in mount:
        if key not in ("type", "source", "target", "read_only", "bind", "volume",
                       "consistency"):
            raise reader.error(f"volume key {key!r} is not supported by hostctl",
                               "volumes", index, key)
    bind = mount.get("bind") or {}
    if bind.get("propagation"):
        options.append(reader.parsed(lambda t: check_choice(t, values.VOLUME_OPTIONS),
                                     bind["propagation"], "volumes", index, "bind"))
    if bind.get("selinux"):
        options.append(text_of(bind["selinux"]))
    if (mount.get("volume") or {}).get("nocopy"):
        options.append("nocopy")
    if (mount.get("volume") or {}).get("subpath"):
        raise reader.error("volume subpath is not supported by hostctl",
                           "volumes", index, "volume", "subpath")
    if mount["type"] == "bind":
        source = reader.parsed(check_abspath, mount.get("source"), "volumes", index)
        kind = VolumeKind.BIND
    else:
        source = volume_name(reader, mount.get("source"), target)
        kind = VolumeKind.VOLUME
    return Volume(source, target, kind, bool(mount.get("read_only")), tuple(options))


def volume_name(reader: ServiceReader, source: object, target: str) -> str:
    """The hostctl volume a compose volume SOURCE names: the top-level volume's name; an
    anonymous volume (no source) is a named one of its own, kept per service and path."""
    if not source:
        import hashlib

        digest = hashlib.sha256(target.encode()).hexdigest()[:12]
        return f"{reader.project.name}_{reader.name}_{digest}"
    declared = (reader.project.model.get("volumes") or {}).get(source)
    if declared is None:
        raise reader.error(f"volume {source!r} is not declared in the top-level volumes",
                           "volumes", hint=f"add volumes: {{{source}: {{}}}}")
    return text_of((declared or {}).get("name") or f"{reader.project.name}_{source}")


def _tmpfs_mount(reader: ServiceReader, mount: Mapping[str, Any], index: int) -> Tmpfs:
    options = []
    spec = mount.get("tmpfs") or {}
    if spec.get("size"):
        options.append(f"size={text_of(spec['size'])}")
    if spec.get("mode"):
        mode = spec["mode"]
        options.append(f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}")
    if mount.get("read_only"):
        options.append("ro")
    text = ":".join([text_of(mount.get("target")), ",".join(options)]) if options else \
        text_of(mount.get("target"))
    return reader.parsed(values.parse_tmpfs, text, "volumes", index)  # type: ignore[no-any-return]


def tmpfs(reader: ServiceReader, value: object) -> None:
    found = list(reader.settings.get("tmpfs", ()))
    found += [reader.parsed(values.parse_tmpfs, text, "tmpfs")
              for text in strings_of(reader, value, "tmpfs")]
    reader.set("tmpfs", tuple(found), "tmpfs")



def devices(reader: ServiceReader, value: object) -> None:
    found = []
    for index, device in enumerate(value if isinstance(value, list) else [value]):
        if isinstance(device, Mapping):
            parts = [text_of(device.get("source")), text_of(device.get("target")
                                                        or device.get("source"))]
            if device.get("permissions"):
                parts.append(text_of(device["permissions"]))
            device = ":".join(parts)
        found.append(reader.parsed(values.parse_device, device, "devices", index))
    reader.set("devices", tuple(found), "devices")
