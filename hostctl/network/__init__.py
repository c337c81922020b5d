"""Container networking: what the launcher asks of it at each start and stop.

The launcher calls, in order: plan() before writing config.json, attach() after
`runc create` and before `runc start` (the container's init exists, paused, so its
network namespace can be wired), and detach() at stop and before every start (stale
state after a crash). All three must be idempotent where they clean up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.paths import Paths


@dataclass(frozen=True)
class NetworkPlan:
    """What the OCI config needs from the network setup."""

    # None: share the host's network namespace; "new": runc makes a fresh one;
    # otherwise the path of an existing namespace to join.
    namespace: str | None
    hosts: tuple[tuple[str, str], ...]  # (address, names) lines for /etc/hosts
    resolv_conf: str  # the container's whole /etc/resolv.conf


def _host_resolv_conf() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


def plan(container: Container, paths: Paths) -> NetworkPlan:
    """The container shares the host's network (the only mode until networks exist)."""
    return NetworkPlan(namespace=None, hosts=(), resolv_conf=_host_resolv_conf())


def attach(container: Container, pid: int, paths: Paths) -> None:
    """Wire the network namespace of the created (not yet started) container PID."""


def detach(name: str, paths: Paths) -> None:
    """Release what attach() set up for NAME; safe when nothing was set up."""
