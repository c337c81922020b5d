"""Network verbs: network ls, network inspect."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, scope_of

network_app = typer.Typer(name="network", help="Show the declared networks.",
                          no_args_is_help=True)
app.add_typer(network_app, name="network")


@network_app.command("ls")
def network_ls(user: UserOpt = False, format: FormatOpt = "table") -> None:
    """List the networks (the built-in bridge and /etc/hostctl/networks/*.yaml)."""
    from hostctl.network.status import list_networks
    from hostctl.paths import for_scope

    rows = list_networks(for_scope(scope_of(user)))
    if format == "json":
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    typer.echo(f"{'NAME':<16} {'SUBNET':<18} {'GATEWAY':<15} {'BRIDGE':<15} "
               f"{'INTERNAL':<8} CONTAINERS")
    for r in rows:
        typer.echo(f"{r.name:<16} {r.subnet:<18} {r.gateway:<15} {r.bridge:<15} "
                   f"{'yes' if r.internal else 'no':<8} {len(r.containers)}")


@network_app.command("inspect")
def network_inspect(
    name: str,
    check: Annotated[bool, typer.Option("--check", help="Run CNI CHECK on each attached "
                                                        "container.")] = False,
    user: UserOpt = False,
    format: FormatOpt = "json",
) -> None:
    """Show one network's settings and the containers attached to it, as JSON."""
    from hostctl.network.status import inspect_network
    from hostctl.paths import for_scope

    info = inspect_network(name, for_scope(scope_of(user)), check=check)
    if format != "json":
        typer.echo(f"{info.name}: {info.subnet} via {info.gateway} on {info.bridge}"
                   + (" (internal)" if info.internal else ""))
        for c in info.containers:
            state = "" if c.check is None else f"  CHECK: {c.check}"
            published = f"  ports: {' '.join(c.ports)}" if c.ports else ""
            typer.echo(f"  {c.container}\t{' '.join(c.addresses)}{published}{state}")
        return
    typer.echo(json.dumps(dataclasses.asdict(info), indent=2))
