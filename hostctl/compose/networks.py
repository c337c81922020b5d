"""Compose projects' networks as hostctl networks (hostctl.network.defs).

Every network a project owns (not `external`) is a bridge network named as the model
names it (PROJECT_default, PROJECT_backend or its `name:`), declared by the project
being installed: no file of its own. A user's project's networks are user networks
(hostctl.network.defs.find_user), each kept up by its unit hostctl-network-NAME.service
(hostctl.network.holder) as a declared user network is. A network without `ipam` gets
the first free /24 of 10.90.0.0/16 from the one its name hashes to, so it never
overlaps the declared networks or an earlier project's (projects in name order). A
network whose own subnet overlaps another is left out, and starting a member says why.
"""

from __future__ import annotations

import ipaddress
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from hostctl.errors import DeclarationError, HostctlError
from hostctl.network.defs import AUTO_SUBNETS, Network, bridge_name
from hostctl.paths import Paths

if TYPE_CHECKING:
    from hostctl.compose.translate import NetworkSpec

Problems = dict[str, DeclarationError]


def project_networks(paths: Paths, taken: dict[str, Network]) -> tuple[dict[str, Network],
                                                                       Problems]:
    """The networks the installed projects of PATHS own, beside TAKEN (the declared
    ones); and the ones left out, with why."""
    from hostctl.compose.installed import project_names, translation

    found: dict[str, Network] = {}
    problems: Problems = {}
    for project in project_names(paths):
        try:
            specs = translation(project, paths.scope).networks
        except HostctlError:
            continue  # its units fail with the error; its networks are not needed
        for spec in specs:
            if spec.external or spec.name in taken or spec.name in found:
                continue
            try:
                found[spec.name] = _network(spec, [*taken.values(), *found.values()])
            except DeclarationError as err:
                problems[spec.name] = err
    return found, problems


def owned_sources(paths: Paths) -> dict[str, Path]:
    """Network name -> the first compose file of the project that owns it, for every
    network the installed projects of PATHS own (a user's: its units' SourcePath=)."""
    from hostctl.compose.installed import project_names, translation

    found: dict[str, Path] = {}
    for project in project_names(paths):
        try:
            done = translation(project, paths.scope)
        except HostctlError:
            continue
        for spec in done.networks:
            if not spec.external:
                found.setdefault(spec.name, done.source)
    return found


def _network(spec: NetworkSpec, others: list[Network]) -> Network:
    from hostctl.declarations.checks import Invalid
    from hostctl.network import quadlet

    try:
        subnet = ipaddress.IPv4Network(spec.subnet) if spec.subnet else _free(spec.name, others)
        gateway = ipaddress.IPv4Address(spec.gateway) if spec.gateway else next(subnet.hosts())
        ip_range = quadlet.ip_range(spec.ip_range, subnet) if spec.ip_range else None
    except (ValueError, Invalid) as err:
        raise DeclarationError(f"network {spec.name}: {err}", where=spec.where,
                               hint="an IPv4 subnet like 10.91.0.0/24") from None
    for other in others:
        if other.subnet.overlaps(subnet):
            raise DeclarationError(
                f"subnet {subnet} of network {spec.name} overlaps {other.subnet} of "
                f"{other.name}", where=spec.where, hint="give the network another subnet")
    bridge = bridge_name(spec.name)
    if any(other.bridge == bridge for other in others):
        raise DeclarationError(f"network {spec.name}'s bridge {bridge} is taken",
                               where=spec.where)
    # no source file of its own: the project's file is in spec.where
    return Network(spec.name, subnet, gateway, bridge, spec.internal, None, None,
                   ip_range=ip_range, mtu=spec.mtu)


def _free(name: str, others: list[Network]) -> ipaddress.IPv4Network:
    start = zlib.crc32(name.encode()) % 256
    for step in range(256):
        candidate = ipaddress.IPv4Network(AUTO_SUBNETS.format((start + step) % 256))
        if not any(other.subnet.overlaps(candidate) for other in others):
            return candidate
    raise DeclarationError(f"no free /24 in 10.90.0.0/16 for network {name}",
                           hint="give the network an ipam subnet")
