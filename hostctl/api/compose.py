"""Compose projects as an API: up, down, ps, start/stop/restart, logs, config.

The CLI (`hostctl compose`) and the Ansible module (compose_project) call these. A
project is installed where the generator reads it (hostctl.compose.install), systemd
reloads, and PROJECT.target is started: the units do the rest. `up` on an installed
project restarts only the services whose declaration changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError
from hostctl.paths import Scope, for_scope

if TYPE_CHECKING:
    from hostctl.compose.install import Plan
    from hostctl.compose.installed import Installed
    from hostctl.compose.project import ComposeProject
    from hostctl.compose.translate import Translation
    from hostctl.systemd.dbus import Systemd


@dataclass(frozen=True)
class Source:
    """Where a project comes from, as the CLI's options say (docker compose's defaults:
    the current directory's compose file, its directory's name)."""

    directory: Path | None = None
    files: tuple[Path, ...] = ()
    name: str | None = None
    env_files: tuple[Path, ...] = ()
    profiles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ComposeResult:
    """What up() or down() did (or, with check=True, would do)."""

    project: str
    changed: bool
    actions: tuple[str, ...] = ()
    diff: str = ""
    failed: tuple[str, ...] = ()  # units that did not start, with why
    ignored: tuple[str, ...] = ()  # compose keys with no meaning here


@dataclass(frozen=True)
class ServiceRow:
    """One container of a project, as `hostctl compose ps` shows it."""

    service: str
    name: str
    unit: str
    state: str
    sub_state: str
    ports: tuple[str, ...] = field(default=())
    health: str | None = None
    image: str = ""


def source_of(project: str | None, files: Sequence[Path], env_files: Sequence[Path],
              profiles: Sequence[str] | None) -> Source:
    """The Source the CLI's options name: -p, -f files, --env-file files, --profile names
    (None or empty: COMPOSE_PROFILES)."""
    return Source(None, tuple(p.absolute() for p in files), project,
                  tuple(p.absolute() for p in env_files), tuple(profiles) if profiles else None)


def load_source(source: Source) -> ComposeProject:
    """The project SOURCE names, loaded from where the user keeps it."""
    import os

    from hostctl.compose.project import load_project

    directory = source.directory
    if directory is None and source.files:
        directory = source.files[0].absolute().parent
    return load_project(
        directory or Path.cwd(), files=list(source.files), name=source.name,
        env_files=list(source.env_files), profiles=source.profiles,
        environ=dict(os.environ))


def config(source: Source) -> str:
    """The resolved model, as `docker compose config` prints it."""
    from hostctl.compose.project import render_config

    text: str = render_config(load_source(source))
    return text


def plan_install(source: Source, scope: Scope, enabled: bool = True) -> Plan:
    """What installing SOURCE's project writes (the project is loaded and translated
    from where the user keeps it first: errors name the user's own files)."""
    from hostctl.compose import install
    from hostctl.compose.translate import translate

    project = load_source(source)
    found = translate(project)
    if scope is Scope.USER:
        from hostctl.compose.installed import check_rootless

        check_rootless(found)
    env_files = list(source.env_files)
    if not env_files and (project.directory / ".env").is_file():
        env_files = [project.directory / ".env"]
    return install.plan(project.name, for_scope(scope), project.directory,
                        project.files, env_files, source.profiles, enabled)


def up(source: Source, scope: Scope, *, check: bool = False, start: bool = True,
       enabled: bool = True) -> ComposeResult:
    """Install SOURCE's project and start it (START false: installed, not started)."""
    from hostctl.compose import install, installed

    plan = plan_install(source, scope, enabled)
    before = _translation_or_none(plan.name, scope)
    actions = [f"write {plan.path}"] if plan.changed else []
    if check:
        return ComposeResult(plan.name, plan.changed, tuple(actions), plan.diff())

    def verify(staged: Installed) -> None:
        from hostctl.compose.translate import translate

        translate(installed.load(staged))

    if plan.changed:
        install.write(plan, verify)
    after = installed.translation(plan.name, scope)
    return _apply(after, before, scope, start, tuple(actions), plan.diff(), plan.changed)


def _apply(after: Translation, before: Translation | None, scope: Scope, start: bool,
           actions: tuple[str, ...], diff: str, changed: bool) -> ComposeResult:
    from hostctl.systemd.systemctl import Systemctl

    systemd = Systemctl(scope)  # no pydbus: a reload and a start are one systemctl each
    gone = _gone_units(before, after)
    if gone:
        systemd.run_jobs([("StopUnit", unit) for unit in gone])
    if changed:
        systemd.reload()
        actions += ("daemon-reload",)
    ignored = tuple(f"{path}: {why}" for path, why in after.ignored)
    if not start:
        return ComposeResult(after.project, changed or bool(gone), actions, diff,
                             ignored=ignored)
    restart = _changed_units(before, after)
    if scope is Scope.USER:  # the network units first: their restart restarts members
        restart = [*changed_forwards(before, after), *restart]
    if restart:
        systemd.run_jobs([("TryRestartUnit", unit) for unit in restart])
    states = systemd.states([unit.unit for unit in after.containers])
    inactive = [u for u in after.containers if states.get(u.unit, ("",))[0] != "active"]
    systemd.run_job("StartUnit", after.target)
    now = systemd.states([unit.unit for unit in after.containers])  # one call, no proxies
    failed = tuple(_why(scope, unit.unit) for unit in after.containers
                   if now.get(unit.unit, ("",))[0] != "active")
    started = tuple(f"start {u.unit}" for u in inactive)
    restarted = tuple(f"restart {unit}" for unit in restart)
    return ComposeResult(after.project, changed or bool(inactive or restart or gone),
                         actions + restarted + started, diff, failed, ignored)


def _why(scope: Scope, unit: str) -> str:
    from hostctl.systemd.dbus import Systemd

    state = Systemd(scope).unit(unit)
    return f"{unit}: {state.active_state} ({state.result})"


def _translation_or_none(name: str, scope: Scope) -> Translation | None:
    from hostctl.compose import installed

    try:
        return installed.translation(name, scope)
    except HostctlError:
        return None


def _gone_units(before: Translation | None, after: Translation) -> list[str]:
    if before is None:
        return []
    kept = {unit.unit for unit in after.containers}
    return [unit.unit for unit in before.containers if unit.unit not in kept]


def _changed_units(before: Translation | None, after: Translation) -> list[str]:
    if before is None:
        return []
    old = {unit.unit: unit.container for unit in before.containers}
    return [unit.unit for unit in after.containers
            if unit.unit in old and old[unit.unit] != unit.container]


def changed_forwards(before: Translation | None, after: Translation) -> list[str]:
    """A user's project: the units of its own networks whose forwarded ports (the union
    of their services' published ports, fixed when pasta starts) are no longer those the
    project's files give; restarting one restarts its members too (Requires=)."""
    from hostctl.declarations.model import Port
    from hostctl.network.holder import Forward, forwards_of, unit_name

    def forwards(found: Translation) -> dict[str, tuple[Forward, ...]]:
        owned = {network.name for network in found.networks if not network.external}
        ports: dict[str, list[Port]] = {name: [] for name in owned}
        for unit in found.containers:
            if unit.container.network in owned:
                ports[unit.container.network] += unit.container.ports
        return {name: forwards_of(published) for name, published in ports.items()}

    if before is None:
        return []
    old, new = forwards(before), forwards(after)
    return [unit_name(name) for name in sorted(new) if name in old and old[name] != new[name]]


def project_name(source: Source) -> str:
    """-p, else the name the project's files give (loading them)."""
    return source.name or load_source(source).name


def down(name: str, scope: Scope, *, volumes: bool = False, check: bool = False
         ) -> ComposeResult:
    """Stop project NAME, remove its units (by removing the installed project), its
    containers and networks; named volumes only with VOLUMES."""
    from hostctl.compose import install, installed

    paths = for_scope(scope)
    path = installed.projects_dir(paths) / name
    if not path.exists():
        return ComposeResult(name, False)
    found = _translation_or_none(name, scope)
    actions = [f"stop {name}.target", f"remove {path}", "daemon-reload"]
    if check:
        return ComposeResult(name, True, tuple(actions))
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    systemd.run_job("StopUnit", f"{name}.target")
    for unit in found.containers if found else ():
        systemd.run_job("StopUnit", unit.unit)
        systemd.reset_failed(unit.unit)
    if found is None:  # a broken project: its failing unit
        systemd.reset_failed(f"{name}.service")
    if found is not None and scope is Scope.USER:
        actions += _stop_user_networks(found, systemd)
    install.remove(path)
    systemd.reload()
    if found is not None:
        actions += _remove_networks(found, scope)
        if volumes:
            actions += _remove_volumes(found, scope)
    return ComposeResult(name, True, tuple(actions))


def _stop_user_networks(found: Translation, systemd: Systemd) -> list[str]:
    """A user's project: stop the units keeping its own networks (their ExecStopPost
    removes what the network left under the run directory)."""
    from hostctl.network.holder import unit_name

    owned = [unit_name(network.name) for network in found.networks if not network.external]
    if owned:
        systemd.run_jobs([("StopUnit", unit) for unit in owned])
        for unit in owned:
            systemd.reset_failed(unit)
    return [f"stop {unit}" for unit in owned]


def _remove_networks(found: Translation, scope: Scope) -> list[str]:
    """The bridges and address leases of the networks the project owned (a user's: gone
    with their units, stopped before)."""
    from hostctl.network import state_dir
    from hostctl.network.defs import bridge_name
    from hostctl.proc import run

    paths = for_scope(scope)
    actions = []
    for network in found.networks:
        if network.external or scope is Scope.USER:
            continue
        bridge = bridge_name(network.name)
        if Path(f"/sys/class/net/{bridge}").exists():
            run(["ip", "link", "delete", bridge], check=False)
        for part in ("ipam", "members"):
            shutil.rmtree(state_dir(paths) / part / network.name, ignore_errors=True)
        actions.append(f"remove network {network.name}")
    return actions


def _remove_volumes(found: Translation, scope: Scope) -> list[str]:
    from hostctl.volumes import volume_root

    root = volume_root(for_scope(scope))
    names = {*found.volumes, *(v.source for u in found.containers
                                for v in u.container.volumes
                                if v.kind == "volume" and v.source.startswith(
                                    f"{found.project}_{u.service}_"))}
    actions = []
    for name in sorted(names):
        if (root / name).exists():
            shutil.rmtree(root / name)
            actions.append(f"remove volume {name}")
    return actions


def control(name: str, scope: Scope, method: str, services: Sequence[str] = ()) -> None:
    """StartUnit/StopUnit/RestartUnit on the project's target (no SERVICES) or on the
    named services' units; a failed job raises with the unit's journal."""
    from hostctl.api.containers import control as unit_control
    from hostctl.compose import installed
    from hostctl.systemd.dbus import Systemd

    found = installed.translation(name, scope)
    systemd = Systemd(scope)
    if not services:
        if method == "RestartUnit":  # the services are PartOf= it: they restart too
            systemd.run_job("StopUnit", found.target)
            method = "StartUnit"
        systemd.run_job(method, found.target)
        return
    for service in services:
        units = found.units_of(service)
        if not units:
            raise HostctlError(f"no service {service!r} in project {name}",
                               hint="services: " + ", ".join(found.services()))
        for unit in units:
            unit_control(unit.removesuffix(".service"), method, scope, systemd)


def ps(name: str, scope: Scope) -> list[ServiceRow]:
    """Every container of project NAME with its unit's state, ports and health."""
    from hostctl.compose import installed
    from hostctl.health.state import read
    from hostctl.systemd.dbus import Systemd

    found = installed.translation(name, scope)
    states = Systemd(scope).states([unit.unit for unit in found.containers])
    rows = []
    for unit in found.containers:
        active, sub = states.get(unit.unit, ("inactive", "dead"))
        health = read(unit.container.name, for_scope(scope)) if active == "active" else None
        rows.append(ServiceRow(
            unit.service, unit.container.name, unit.unit, active, sub,
            tuple(_port(p) for p in unit.container.ports),
            health.status if health is not None else None, unit.container.image))
    return rows


def _port(port: Any) -> str:
    address = f"{port.host_ip}:" if port.host_ip else "0.0.0.0:"
    return f"{address}{port.host_port}->{port.container_port}/{port.protocol}"


def log_command(name: str, scope: Scope, services: Sequence[str] = (), *,
                follow: bool = False, lines: int | None = None,
                since: float | None = None) -> list[str]:
    """The journalctl command showing the project's (or SERVICES') output, each line
    named by its container (PROJECT-SERVICE-N)."""
    from hostctl.compose import installed

    found = installed.translation(name, scope)
    wanted = services or found.services()
    flag = "--user-unit" if scope is Scope.USER else "--unit"
    argv = ["journalctl", "--no-pager", "-o", "short-iso"]
    for service in wanted:
        units = found.units_of(service)
        if not units:
            raise HostctlError(f"no service {service!r} in project {name}",
                               hint="services: " + ", ".join(found.services()))
        for unit in units:
            argv += [flag, unit]
    if follow:
        argv.append("--follow")
    if lines is not None:
        argv += ["-n", str(lines)]
    if since is not None:  # journalctl takes @EPOCH seconds
        argv.append(f"--since=@{int(since)}")
    return argv


def unit_states(name: str, scope: Scope) -> dict[str, str]:
    """Installed project NAME's units and their ActiveState ({} when not installed)."""
    from hostctl.compose import installed
    from hostctl.systemd.dbus import Systemd

    if not (installed.projects_dir(for_scope(scope)) / name).is_dir():
        return {}
    found = installed.translation(name, scope)
    states = Systemd(scope).states([unit.unit for unit in found.containers])
    return {unit.unit: states.get(unit.unit, ("inactive",))[0] for unit in found.containers}


def stop(name: str, scope: Scope) -> bool:
    """Stop project NAME's units; whether any was running."""
    running = [unit for unit, state in unit_states(name, scope).items()
               if state not in ("inactive", "failed")]
    if running:
        control(name, scope, "StopUnit")
    return bool(running)
