"""A seccomp profile file (podman's and docker's JSON format) as OCI linux.seccomp.

The format is OCI's plus what podman resolves before handing it to the runtime: archMap
(the architectures of this machine, with their sub-architectures), and per rule
includes/excludes on capabilities (the container's bounding set) and architectures;
minKernel conditions are met on any kernel hostctl runs on. Comments go.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from typing import Any

from hostctl.errors import RuntimeFailure
from hostctl.runtime.seccomp import ARCHITECTURES

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}
_RULE_KEYS = ("names", "action", "errnoRet", "args")


def load(path: str, capabilities: Iterable[str], where: str,
         machine: str | None = None) -> dict[str, Any]:
    """The OCI seccomp object of the profile at PATH for a container with CAPABILITIES."""
    hint = "give a JSON seccomp profile (podman's or docker's format) or unconfined"
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as err:
        raise RuntimeFailure(f"seccomp profile {path}: {err.strerror}", where=where,
                             hint=hint) from None
    except ValueError as err:
        raise RuntimeFailure(f"seccomp profile {path} is not JSON: {err}", where=where,
                             hint=hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("defaultAction"), str):
        raise RuntimeFailure(f"seccomp profile {path} has no defaultAction", where=where,
                             hint=hint)
    try:
        return convert(data, set(capabilities), machine or platform.machine())
    except (TypeError, KeyError, AttributeError) as err:
        raise RuntimeFailure(f"seccomp profile {path} is malformed ({err})", where=where,
                             hint=hint) from None


def convert(data: Mapping[str, Any], capabilities: set[str], machine: str) -> dict[str, Any]:
    """DATA (a parsed profile) resolved for CAPABILITIES on MACHINE."""
    native = ARCHITECTURES.get(machine, ())
    result: dict[str, Any] = {"defaultAction": data["defaultAction"]}
    for key in ("defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"):
        if key in data:
            result[key] = data[key]
    architectures = list(data.get("architectures") or [])
    for entry in data.get("archMap") or []:
        if entry["architecture"] in native[:1]:
            architectures += [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if architectures:
        result["architectures"] = architectures
    arch = _GOARCH.get(machine, machine)
    rules = []
    for rule in data.get("syscalls") or []:
        if not _applies(rule, capabilities, arch):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if names:
            rules.append({"names": names,
                          **{k: rule[k] for k in _RULE_KEYS[1:] if rule.get(k) is not None}})
    result["syscalls"] = rules
    return result


def _applies(rule: Mapping[str, Any], capabilities: set[str], arch: str) -> bool:
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    if not set(includes.get("caps") or ()) <= capabilities:
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if set(excludes.get("caps") or ()) & capabilities:
        return False
    return arch not in (excludes.get("arches") or ())
