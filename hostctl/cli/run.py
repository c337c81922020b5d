"""Ad-hoc verbs: run, exec, logs, inspect, kill.

`hostctl run` writes a declaration for the ad-hoc container into the runtime directory
and starts it as a transient systemd unit (systemd-run) whose ExecStart is the same
launcher the generated units use: an ad-hoc container is supervised exactly like a
declared one. In the foreground, systemd-run passes the terminal's stdio to the unit
and waits for it; with -d it returns once the container runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hostctl.cli.common import UserOpt, app, scope_of
from hostctl.errors import HostctlError, ToolMissing
from hostctl.paths import Paths, Scope, for_scope
from hostctl.runtime.runc import runtime_id


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found", hint="hostctl needs systemd")
    return found


def _hostctl() -> str:
    here = Path(sys.argv[0])
    found = here if here.is_absolute() else shutil.which(str(here))
    return str(Path(found).resolve() if found else Path(sys.executable).parent / "hostctl")


def _unit_argv(scope: Scope) -> list[str]:
    return ["--user"] if scope is Scope.USER else []


def adhoc_declaration(image: str, command: list[str], env: list[str], volumes: list[str],
                      stop_timeout: int, networks: list[str] | None = None,
                      ports: list[str] | None = None) -> dict[str, Any]:
    """The declaration `hostctl run` writes (JSON is YAML); the first of NETWORKS is its
    `network`, the others (podman's repeated --network) its `networks`."""
    body: dict[str, Any] = {"image": image, "stop_timeout": stop_timeout}
    if networks:
        body["network"] = networks[0]
    if networks and networks[1:]:
        body["networks"] = networks[1:]
    if ports:
        body["ports"] = ports
    if command:
        body["command"] = command
    if env:
        pairs = {}
        for item in env:
            key, sep, value = item.partition("=")
            if not sep:
                value = os.environ.get(key, "")
            pairs[key] = value
        body["env"] = pairs
    if volumes:
        body["volumes"] = volumes
    return body


def _write_declaration(paths: Paths, name: str, body: dict[str, Any]) -> Path:
    from hostctl.declarations.search import load_declaration

    directory = paths.adhoc
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    path = directory / f"{name}.yaml"
    if unit_properties(name, paths.scope).get("LoadState") not in (None, "", "not-found"):
        raise HostctlError(f"a unit named {name}.service exists already",
                           hint=f"pick another --name, or stop and reset it: systemctl "
                           f"stop {name}; systemctl reset-failed {name}")
    path.write_text(json.dumps(body, indent=2) + "\n")
    try:
        load_declaration(name, paths.scope, [directory])
    except HostctlError:
        path.unlink()
        raise
    return path


def _network_unit(network: str | None, paths: Paths) -> tuple[str, ...]:
    """The unit of the user network NETWORK names, when there is one: the generator makes
    one for each network declared in ~/.config/hostctl/networks and each one a user's
    compose project owns (a file added since the last daemon-reload has none yet, and
    the launcher says the network is not running)."""
    from hostctl.network.defs import user_file, user_project_network
    from hostctl.network.holder import unit_name

    if paths.scope is not Scope.USER or not network:
        return ()
    try:
        declared = user_file(network, paths) or user_project_network(network, paths)
    except HostctlError:
        declared = None  # a project's network left out: the launcher says why
    if declared is None:
        return ()
    unit = unit_name(network)
    if unit_properties(unit.removesuffix(".service"), paths.scope).get("LoadState") != "loaded":
        return ()
    return (unit,)


def systemd_run_argv(name: str, declaration: Path, scope: Scope, *, detach: bool,
                     remove: bool, stop_timeout: int, hostctl: str,
                     requires: tuple[str, ...] = ()) -> list[str]:
    """systemd-run's arguments for the transient unit NAME.service, which needs the
    units REQUIRES (a user network's unit) started first."""
    scope_arg = _unit_argv(scope)
    props = [
        "Type=notify", "NotifyAccess=all", "Delegate=yes", "KillMode=mixed",
        f"TimeoutStopSec={stop_timeout}", f"SyslogIdentifier={name}",
        f"Environment=HOSTCTL_DECLARATION_PATH={declaration.parent}",
        f"ExecStopPost={hostctl} cleanup {' '.join(scope_arg)} {name}".replace("  ", " "),
    ]
    props += [f"{key}={unit}" for unit in requires for key in ("Requires", "After")]
    if remove:
        props.append(f"ExecStopPost=/bin/rm -f {declaration}")
    argv = [_tool("systemd-run"), *scope_arg, f"--unit={name}", "--quiet",
            f"--description=hostctl ad-hoc container {name}"]
    argv += [f"--property={p}" for p in props]
    if remove:
        argv.append("--collect")
    if not detach:
        argv += ["--wait", "--pipe"]
    return [*argv, hostctl, "launch", *scope_arg, name]


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    image: str,
    command: Annotated[list[str] | None, typer.Argument(help="Command and arguments.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Container (unit) name.")] = None,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="K=V (repeat).")] = None,
    volume: Annotated[list[str] | None,
                      typer.Option("-v", "--volume", help="SRC:DST[:ro] (repeat).")] = None,
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Run in the background.")]
    = False,
    rm: Annotated[bool, typer.Option("--rm", help="Forget the container when it exits.")]
    = False,
    stop_timeout: Annotated[int, typer.Option("--stop-timeout", help="Seconds to SIGKILL.")]
    = 10,
    network: Annotated[list[str] | None, typer.Option(
        "--network", help="host, none, bridge or a network's name (default bridge); "
        "repeat to join more networks (rootful).")] = None,
    publish: Annotated[list[str] | None, typer.Option(
        "-p", "--publish", help="[IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] (repeat).")] = None,
    user: UserOpt = False,
) -> None:
    """Run IMAGE as a transient systemd unit (foreground, or -d in the background)."""
    scope = scope_of(user)
    paths = for_scope(scope)
    name = name or f"hostctl-run-{secrets.token_hex(4)}"
    body = adhoc_declaration(image, command or [], env or [], volume or [], stop_timeout,
                             network, publish)
    declaration = _write_declaration(paths, name, body)
    argv = systemd_run_argv(name, declaration, scope, detach=detach, remove=rm,
                            stop_timeout=stop_timeout, hostctl=_hostctl(),
                            requires=_network_unit(network[0] if network else None, paths))
    done = subprocess.run(argv, check=False)
    if done.returncode != 0 and detach and rm:
        declaration.unlink(missing_ok=True)
    if detach and done.returncode == 0:
        typer.echo(name)
    raise typer.Exit(done.returncode)


@app.command(name="exec", context_settings={"allow_interspersed_args": False})
def exec_(
    name: str,
    command: Annotated[list[str], typer.Argument(help="Command and arguments.")],
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="K=V (repeat).")] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir")] = None,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a terminal.")] = False,
    user: UserOpt = False,
) -> None:
    """Run COMMAND inside the running container NAME; exits with its status."""
    from hostctl.launcher.state import ContainerState

    state = ContainerState(name, for_scope(scope_of(user)))
    if not (state.paths.runc_root / runtime_id(name)).exists():
        raise HostctlError(f"container {name} is not running",
                           hint=f"start it first: systemctl start {name}")
    try:
        init_pid: int | None = int((state.bundle / "pid").read_text().strip())
    except (OSError, ValueError):
        init_pid = None
    status = state.runtime().exec(name, command, env=env or [], cwd=workdir, tty=tty,
                                  init_pid=init_pid)
    raise typer.Exit(status)


@app.command()
def logs(
    name: str,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing.")] = False,
    lines: Annotated[int | None, typer.Option("-n", "--lines")] = None,
    user: UserOpt = False,
) -> None:
    """Print container NAME's output (from the journal of its unit)."""
    unit = "--user-unit" if scope_of(user) is Scope.USER else "--unit"
    argv = [_tool("journalctl"), "--no-pager", "-o", "cat", unit, f"{name}.service"]
    if follow:
        argv.append("--follow")
    if lines is not None:
        argv += ["--lines", str(lines)]
    raise typer.Exit(subprocess.run(argv, check=False).returncode)


def unit_properties(name: str, scope: Scope) -> dict[str, str]:
    keys = ("LoadState", "ActiveState", "SubState", "Result", "MainPID", "ExecMainStatus",
            "ControlGroup", "NRestarts", "ActiveEnterTimestamp")
    argv = [_tool("systemctl"), *_unit_argv(scope), "show", f"--property={','.join(keys)}",
            f"{name}.service"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return dict(line.partition("=")[::2] for line in done.stdout.splitlines() if "=" in line)


@app.command()
def inspect(name: str, user: UserOpt = False) -> None:
    """Print container NAME's unit state, runtime state, health and OCI config as JSON."""
    from hostctl.launcher.state import ContainerState

    scope = scope_of(user)
    state = ContainerState(name, for_scope(scope))
    config = None
    if (state.bundle / "config.json").is_file():
        config = json.loads((state.bundle / "config.json").read_text())
    present = (state.paths.runc_root / runtime_id(name)).exists()
    runtime = state.runtime().state(name) if present else None
    unit = unit_properties(name, scope)
    if config is None and runtime is None and unit.get("LoadState") in (None, "not-found"):
        raise HostctlError(f"no container named {name}")
    typer.echo(json.dumps({"name": name, "unit": unit, "runtime": runtime,
                           "health": _health(name, state.paths), "config": config}, indent=2))


def _health(name: str, paths: Paths) -> dict[str, Any] | None:
    """The health state and the check it follows (None: no check or not running)."""
    import dataclasses

    from hostctl.health import state, status

    found = state.read(name, paths)
    if found is None:
        return None
    return {**dataclasses.asdict(found),
            "check": status.load_spec(str(paths.containers / name))}


@app.command()
def kill(
    name: str,
    signal: Annotated[str, typer.Option("-s", "--signal", help="Signal name or number.")]
    = "SIGKILL",
    user: UserOpt = False,
) -> None:
    """Send SIGNAL (default SIGKILL) to container NAME's init, through its unit."""
    scope = scope_of(user)
    argv = [_tool("systemctl"), *_unit_argv(scope), "kill", "--kill-whom=main",
            f"--signal={signal}", f"{name}.service"]
    raise typer.Exit(subprocess.run(argv, check=False).returncode)
