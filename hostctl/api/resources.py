"""Declaring named networks, named volumes and pods: the YAML files apply() writes.

A network is networks/NAME.yaml, a volume volumes/NAME.yaml and a pod pods/NAME.yaml in
the scope's config directory (/etc/hostctl or ~/.config/hostctl); a network's and a
volume's keys are hostctl.declarations.resource_keys', a pod's
hostctl.declarations.pod_settings'. Writing or deleting one reloads systemd (the
generator makes a user network's holder unit, a volume's NAME-volume.service and a pod's
NAME-pod.service from them); containers on a network, or using a volume, get a changed
one at their next start, a pod's members when its unit restarts. Removing a declaration
stops that unit first (a user network's members stop with its holder, a pod's members
with the pod); a volume's data is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.api.containers import ApplyResult, _diff, _text_of, _write
from hostctl.paths import Scope, for_scope

if TYPE_CHECKING:
    from hostctl.declarations.pod_file import Pod


class Resource(StrEnum):
    NETWORK = "network"
    VOLUME = "volume"
    POD = "pod"


def declaration_path(kind: Resource, name: str, scope: Scope) -> Path:
    """Where apply() keeps the declaration of network or volume NAME."""
    return for_scope(scope).config / f"{kind}s" / f"{name}.yaml"


def validate(kind: Resource, name: str, text: str, path: Path, scope: Scope) -> None:
    """The declaration TEXT checked as if it were PATH (DeclarationError if not valid)."""
    user = scope is Scope.USER
    if kind is Resource.POD:
        _pod(text, path, user)
        return
    if kind is Resource.NETWORK:
        from hostctl.network import defs

        defs.parse(text, path, name, user=user)
        return
    from hostctl.declarations.volume_file import parse_volume

    parse_volume(text, path, user=user)


def _pod(text: str, path: Path, user: bool) -> Pod:
    """Pod declaration TEXT read as PATH (and checked as a user's pod with USER)."""
    from hostctl.declarations.pod_file import check_user_pod, parse_pod_yaml

    pod = parse_pod_yaml(text, path)
    if user:
        check_user_pod(pod)
    return pod


def _shadowed(kind: Resource, name: str, path: Path, scope: Scope) -> str | None:
    """A note when another file declares NAME and wins over PATH."""
    if kind is Resource.POD:
        from hostctl.declarations.dirs import declaration_dirs
        from hostctl.declarations.pod_file import pod_files, pods_dir

        winner = pod_files(declaration_dirs(scope), pods_dir(for_scope(scope).config)).get(name)
    elif kind is Resource.NETWORK:
        from hostctl.network.defs import network_files

        winner = network_files(for_scope(scope)).get(name)
    else:
        from hostctl.declarations.dirs import declaration_dirs
        from hostctl.declarations.volume_file import volume_files, volumes_dir

        winner = volume_files(declaration_dirs(scope), volumes_dir(for_scope(scope).config)
                              ).get(name)
    if winner is not None and winner != path:
        return f"{winner} declares {kind} {name} too, and wins over {path}"
    return None


def apply(kind: Resource, name: str, declaration: Mapping[str, Any] | str, *,
          scope: Scope = Scope.SYSTEM, check: bool = False) -> ApplyResult:
    """Install or update the declaration of network or volume NAME (a mapping of its
    keys, or YAML text); reload systemd when it changed. CHECK changes nothing."""
    path = declaration_path(kind, name, scope)
    after = _text_of(declaration) if declaration else ""
    validate(kind, name, after, path, scope)
    before = path.read_text(encoding="utf-8") if path.exists() else None
    note = _shadowed(kind, name, path, scope)
    notes = (note,) if note else ()
    if before == after:
        return ApplyResult(name, scope, path, False, (), before, after, "", notes=notes)
    actions = (f"write {path}", "daemon-reload")
    diff = _diff(before, after, path)
    if not check:
        _write(path, after)
        _reload(scope)
    return ApplyResult(name, scope, path, True, actions, before, after, diff, notes=notes)


def remove(kind: Resource, name: str, *, scope: Scope = Scope.SYSTEM,
           check: bool = False) -> ApplyResult:
    """Delete the declaration apply() wrote for NAME (not a volume's data); nothing
    happens when there is none."""
    path = declaration_path(kind, name, scope)
    if not path.exists():
        return ApplyResult(name, scope, path, False)
    before = path.read_text(encoding="utf-8")
    unit = _unit(kind, name, scope, before, path)
    actions = (*([f"stop {unit}"] if unit else []), f"delete {path}", "daemon-reload")
    if not check:
        if unit:
            _stop(scope, unit)
        path.unlink()
        _reload(scope)
    return ApplyResult(name, scope, path, True, actions, before, None,
                       _diff(before, None, path))


def unit_of(kind: Resource, name: str, scope: Scope, text: str) -> str | None:
    """The unit the generator makes from declaration TEXT of NAME: a pod's NAME-pod.service
    (or its service_name), a volume's NAME-volume.service, a user network's holder; a
    rootful network has none."""
    return _unit(kind, name, scope, text, declaration_path(kind, name, scope))


def _unit(kind: Resource, name: str, scope: Scope, text: str, path: Path) -> str | None:
    if kind is Resource.POD:
        from hostctl.declarations.pod_file import UNIT_SUFFIX, parse_pod_yaml
        from hostctl.errors import DeclarationError

        try:
            return parse_pod_yaml(text, path).unit_name
        except DeclarationError:
            return f"{name}{UNIT_SUFFIX}"  # a damaged file: the default name
    if kind is Resource.VOLUME:
        from hostctl.declarations.volume_file import UNIT_SUFFIX

        return f"{name}{UNIT_SUFFIX}"
    if scope is Scope.USER:
        from hostctl.network.holder import unit_name

        return unit_name(name)
    return None


def _stop(scope: Scope, unit: str) -> None:
    """Stop UNIT unless it is inactive (or unknown: never generated, or never loaded)."""
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    if systemd.unit(unit).active_state == "inactive":
        return
    systemd.run_job("StopUnit", unit)
    systemd.reset_failed(unit)


def _reload(scope: Scope) -> None:
    from hostctl.systemd.dbus import Systemd

    Systemd(scope).reload()
