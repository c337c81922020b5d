"""Parsers of the values of ip, ip6, mask, unmask and seccomp_profile (the checks of
the other kinds are in hostctl.declarations.values)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from hostctl.declarations.checks import Invalid, check_abspath
from hostctl.declarations.values import Conflict, parse_group, single_line

UNCONFINED = "unconfined"
UNMASK_ALL = "ALL"


def parse_supplementary_group(text: str) -> str:
    """A group name or gid of `groups` (GroupAdd=), but not podman's keep-groups."""
    if text == "keep-groups":
        raise Invalid("keep-groups is not supported",
                      "podman's keep-groups (crun only, rootless) keeps the user's own "
                      "groups; hostctl's containers get the groups named: list them")
    return parse_group(text)


def parse_ipv4(text: str) -> str:
    """One IPv4 address (a static address on the container's network)."""
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise Invalid(f"{text!r} is not an IPv4 address", "e.g. 10.90.5.20") from None


def parse_ipv6(text: str) -> str:
    """One IPv6 address, normalised."""
    try:
        return str(ipaddress.IPv6Address(text.strip()))
    except ValueError:
        raise Invalid(f"{text!r} is not an IPv6 address", "e.g. fd00:90:5::20") from None


def parse_proc_path(text: str) -> str:
    """An absolute path in the container (/proc/sys/foo) to mask or unmask, or ALL
    (unmask only; checked with the other settings)."""
    text = single_line(text, "path")
    if text.lower() == "all":
        return UNMASK_ALL
    path = check_abspath(text)
    if ".." in path.split("/"):
        raise Invalid(f"{text!r} leaves its directory", "give a path without '..'")
    return path.rstrip("/") or "/"


def parse_proc_paths(text: str) -> tuple[str, ...]:
    """Podman's form: paths separated by ':'."""
    return tuple(parse_proc_path(part) for part in text.split(":") if part)


def parse_seccomp(text: str) -> str:
    """unconfined (no seccomp filter) or the absolute host path of a profile in podman's
    (docker's) JSON format, read when the container starts."""
    text = single_line(text, "profile")
    if text == UNCONFINED:
        return text
    if not text.startswith("/"):
        raise Invalid(f"{text!r} is not a seccomp profile",
                      "unconfined, or the absolute path of a JSON profile")
    return check_abspath(text)


def check_combination(settings: Mapping[str, Any]) -> None:
    """Raise values.Conflict when these settings contradict the others."""
    network = settings.get("network", "bridge")
    for key in ("ip", "ip6"):
        if settings.get(key) and settings.get("pod"):
            raise Conflict(key, f"a member of pod {settings['pod']} has the pod's address",
                           "the pod's network namespace is shared by its members: drop it")
        if settings.get(key) and network in ("host", "none"):
            raise Conflict(key, f"a static address with network: {network}",
                           "put the container on bridge or a declared network, or drop it")
    if settings.get("reload_cmd") is not None and settings.get("reload_signal"):
        raise Conflict("reload_cmd", "a reload command and a reload signal",
                       "keep one: `systemctl reload` runs one ExecReload=")
    if settings.get("reload_cmd") == ():
        raise Conflict("reload_cmd", "an empty reload command", "give the command to run")
    if UNMASK_ALL in settings.get("mask", ()):
        raise Conflict("mask", "ALL can only be unmasked", "name the paths to mask")
