"""Values of a .container file's keys that name or mount other things: Volume= and
Mount= (bind, named, anonymous and tmpfs mounts, NAME.volume references), Network=
NAME.network, Secret= and host paths relative to the file (quadlet's meanings; used by
hostctl.declarations.quadlet_reader)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hostctl.declarations import checks, values
from hostctl.declarations.checks import Invalid
from hostctl.declarations.model import Tmpfs, Volume, VolumeKind
from hostctl.declarations.unitfile import unquote


def volume_ref(value: str, mount: bool) -> tuple[str, str | None]:
    """Volume=NAME.volume:DST[:OPTS] or Mount=...,source=NAME.volume,...: the volume
    NAME (declared by NAME.volume, hostctl.declarations.volume_file) in its place."""
    if mount:
        parts = value.split(",")
        for index, part in enumerate(parts):
            key, equals, source = part.partition("=")
            if equals and key in ("source", "src") and source.endswith(".volume"):
                name = volume_name(source)
                parts[index] = f"{key}={name}"
                return ",".join(parts), name
        return value, None
    source, colon, rest = value.partition(":")
    if colon and source.endswith(".volume"):
        name = volume_name(source)
        return f"{name}:{rest}", name
    return value, None


def volume_name(source: str) -> str:
    name = source.removesuffix(".volume")
    if "@" in name:
        raise Invalid(f"{source!r} is a template volume", "hostctl has no volume templates")
    checks.check_name(name)
    return name


def network_options(value: str) -> tuple[str, tuple[str, ...]]:
    """Network=NAME[:alias=A,alias=B] (podman's form): NAME, and the aliases the
    container has on that network only; the other options are refused."""
    name, colon, options = value.partition(":")
    if not colon:
        return value, ()
    aliases: list[str] = []
    for option in options.split(","):
        key, equals, item = option.partition("=")
        if key != "alias" or not equals:
            raise Invalid(f"network option {option!r} is not supported",
                          "Network=NAME:alias=A,alias=B (IP= and IP6= give the first "
                          "network's addresses)")
        aliases.append(values.parse_hostname(item))
    if name in values.NETWORK_MODES:
        raise Invalid(f"aliases on network {name}",
                      "names are listed on declared networks only")
    return name, tuple(dict.fromkeys(aliases))


def network_ref(value: str) -> str:
    """Network=NAME.network: the network NAME.network declares (hostctl.network.quadlet),
    which hostctl calls NAME."""
    name = value.removesuffix(".network")
    if "@" in name:
        raise Invalid(f"{value!r} is a template network", "hostctl has no network templates")
    values.parse_network(name)
    return name


def host_path(value: str, path: Path) -> str:
    """VALUE with a leading ./ or ../ host path (or a relative EnvironmentFile) resolved
    against PATH's directory, as quadlet does."""
    if value.startswith(("./", "../")):
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), value))
    return value


def secret(value: str) -> Any:
    """Secret=NAME[,type=mount|env][,target=PATH|VARIABLE] (podman's meaning: a type=env
    secret is the variable TARGET, by default NAME)."""
    name, *options = unquote(value).split(",")
    target, kind = None, "mount"
    for option in options:
        key, _, setting = option.partition("=")
        if key == "type":
            kind = checks.check_choice(setting, ["mount", "env"])
            continue
        if key == "target":
            target = setting
            continue
        raise Invalid(
            f"secret option {option!r} is not supported",
            "NAME[,type=mount|env][,target=PATH or VARIABLE]",
        )
    if kind == "env":
        return values.parse_secret(name, None, None, target or name)
    return values.parse_secret(name, None, target)


def mount(value: str, path: Path) -> Volume | Tmpfs:
    """Mount=type=bind|volume|tmpfs,source=...,destination=...[,ro][,...]."""
    fields: dict[str, str] = {}
    flags: list[str] = []
    for part in value.split(","):
        key, equals, item = part.partition("=")
        if key in ("src", "source"):
            key = "source"
        elif key in ("dst", "destination", "target"):
            key = "destination"
        if key in ("ro", "readonly"):
            if not equals or values.parse_bool(item):
                flags.append("ro")
        elif key in ("type", "source", "destination", "tmpfs-size", "tmpfs-mode"):
            fields[key] = item
        elif key == "bind-propagation":
            flags.append(checks.check_choice(item, values.VOLUME_OPTIONS[-8:]))
        else:
            raise Invalid(
                f"mount option {part!r} is not supported",
                "type, source, destination, ro, bind-propagation, tmpfs-size, tmpfs-mode",
            )
    kind = checks.check_choice(fields.get("type", ""), ["bind", "volume", "tmpfs"])
    if "destination" not in fields:
        raise Invalid("the mount has no destination", "add destination=PATH")
    if kind == "tmpfs":
        options = [*flags]
        if "tmpfs-size" in fields:
            options.append(f"size={fields['tmpfs-size']}")
        if "tmpfs-mode" in fields:
            options.append(f"mode={fields['tmpfs-mode']}")
        return values.parse_tmpfs(f"{fields['destination']}:{','.join(options)}")
    source = host_path(fields.get("source", ""), path)
    if kind == "volume" and not source:  # podman: an anonymous volume
        anonymous = values.parse_volume(fields["destination"])
        return Volume(anonymous.source, anonymous.destination, anonymous.kind,
                      read_only="ro" in flags,
                      options=tuple(f for f in flags if f != "ro"))
    volume = values.parse_volume(f"{source}:{fields['destination']}:{','.join(flags)}")
    expected = VolumeKind.BIND if kind == "bind" else VolumeKind.VOLUME
    if volume.kind is not expected:
        raise Invalid(
            f"source {source!r} does not fit type={kind}",
            "bind: an absolute path; volume: a name",
        )
    return volume
