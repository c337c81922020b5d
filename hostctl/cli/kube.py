"""`hostctl kube play|down`: Kubernetes YAML as hostctl pods and containers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hostctl.cli.common import UserOpt, app, scope_of

kube_app = typer.Typer(name="kube", no_args_is_help=True,
                       help="Play Kubernetes YAML (Pod, Deployment, ConfigMap, Secret, "
                       "PersistentVolumeClaim) as pods and containers.")
app.add_typer(kube_app, name="kube")


def _act(user: bool, systemd: bool):  # type: ignore[no-untyped-def]
    if not systemd or not Path("/run/systemd/system").is_dir():
        return None
    from hostctl.api.kube import systemd_act

    return systemd_act(scope_of(user))


@kube_app.command("play")
def kube_play(
    files: Annotated[list[Path], typer.Argument(help="Kubernetes YAML files (one app, named "
                                                "after the first).")],
    replace: Annotated[bool, typer.Option("--replace", help="Stop and replace the app if it "
                                          "is already played.")] = False,
    start: Annotated[bool, typer.Option("--start/--no-start", help="Start the pods after "
                                        "installing them.")] = True,
    configmap: Annotated[list[Path] | None, typer.Option(
        "--configmap", help="A YAML file of ConfigMaps the manifests refer to.")] = None,
    user: UserOpt = False,
) -> None:
    """Install the YAML's pods and containers as declarations, reload systemd and start
    the pods."""
    from hostctl.api.kube import play

    record = play(files, scope_of(user), replace=replace, start=start,
                  configmaps=configmap or [], act=_act(user, True))
    for unit in record.units:
        typer.echo(unit)


@kube_app.command("down")
def kube_down(
    file: Annotated[Path, typer.Argument(help="The YAML file given to `kube play`.")],
    volumes: Annotated[bool, typer.Option("--volumes", "--force", help="Also remove the "
                                          "PersistentVolumeClaims' named volumes.")] = False,
    user: UserOpt = False,
) -> None:
    """Stop and remove the pods and containers `kube play FILE` installed (named volumes
    are kept unless --volumes)."""
    from hostctl.api.kube import down

    record = down(file, scope_of(user), volumes=volumes, act=_act(user, True))
    for unit in record.units:
        typer.echo(f"removed {unit}")
