"""Pod verbs: pod ls, pod inspect."""

from __future__ import annotations

import dataclasses
import json

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, scope_of

pod_app = typer.Typer(name="pod", help="Show the declared pods.", no_args_is_help=True)
app.add_typer(pod_app, name="pod")


@pod_app.command("ls")
def pod_ls(user: UserOpt = False, format: FormatOpt = "table") -> None:
    """List the pods (NAME.pod files and /etc/hostctl/pods/*.yaml) with their unit's
    state and how many members run."""
    from hostctl.pod.status import list_pods

    rows = list_pods(scope_of(user))
    if format == "json":
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    typer.echo(f"{'NAME':16} {'STATE':10} {'MEMBERS':8} {'NETWORK':12} PORTS")
    for r in rows:
        if r.error:
            typer.echo(f"{r.name:16} {'broken':10} {'-':8} {'-':12} {r.error}")
            continue
        members = f"{r.running}/{len(r.members)}"
        typer.echo(f"{r.pod_name:16} {r.state:10} {members:8} {r.network:12} "
                   f"{' '.join(r.ports) or '-'}")


@pod_app.command("inspect")
def pod_inspect(name: str, user: UserOpt = False, format: FormatOpt = "json") -> None:
    """Show one pod's settings, unit, namespaces and members, as JSON."""
    from hostctl.pod.status import inspect_pod

    info = inspect_pod(name, scope_of(user))
    if format != "json":
        typer.echo(f"{info.pod_name}: {info.unit} {info.state}, network {info.network}"
                   + (f", address {' '.join(info.addresses)}" if info.addresses else "")
                   + (f", aliases {' '.join(info.network_aliases)}"
                      if info.network_aliases else "")
                   + (f", ports {' '.join(info.ports)}" if info.ports else ""))
        for m in info.members:
            typer.echo(f"  {m.name}\t{m.state}" + ("" if m.start_with_pod else
                                                    "\t(not started with the pod)"))
        return
    typer.echo(json.dumps(dataclasses.asdict(info), indent=2))
