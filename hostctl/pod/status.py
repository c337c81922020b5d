"""`hostctl pod ls|inspect`: the declared pods, their units and members."""

from __future__ import annotations

from dataclasses import dataclass

from hostctl.declarations.model import Port
from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Scope, for_scope


@dataclass(frozen=True)
class Member:
    name: str
    unit: str
    state: str  # the unit's ActiveState
    start_with_pod: bool


@dataclass(frozen=True)
class PodStatus:
    """One declared pod: its settings that matter at a glance, its unit and members."""

    name: str
    pod_name: str
    source: str
    unit: str
    state: str  # the pod unit's ActiveState
    network: str
    ports: list[str]
    ip: str | None  # the declared static addresses (None: leased or none)
    ip6: str | None
    network_aliases: list[str]  # more names it has on its declared network
    addresses: list[str]  # the running pod's addresses on its network (IPv4 first)
    hostname: str
    exit_policy: str
    labels: dict[str, str]
    members: list[Member]
    netns: str | None  # the running pod's network namespace (None: host's, or stopped)
    error: str | None = None  # the pod file's error when it does not load

    @property
    def running(self) -> int:
        return sum(1 for m in self.members if m.state in ("active", "reloading"))


def _port(port: Port) -> str:
    ip = f"{port.host_ip}:" if port.host_ip else ""
    return f"{ip}{port.host_port}:{port.container_port}/{port.protocol}"


def list_pods(scope: Scope) -> list[PodStatus]:
    """Every declared pod of SCOPE, with its members (the declared containers naming it)."""
    from hostctl.declarations.dirs import declaration_dirs
    from hostctl.declarations.pod_file import load_pod, pod_files, pods_dir
    from hostctl.declarations.search import load_file, scan_declarations
    from hostctl.network import addresses
    from hostctl.pod.holder import identity, read_record
    from hostctl.systemd.dbus import Systemd

    paths = for_scope(scope)
    dirs = declaration_dirs(scope)
    members: dict[str, list[tuple[str, str, bool]]] = {}
    for name, path in scan_declarations(scope, dirs).found.items():
        try:
            container = load_file(path, name, dirs)
        except HostctlError:
            continue  # a template, or a broken file: `hostctl ps` shows it
        if container.pod is not None:
            members.setdefault(container.pod, []).append(
                (name, container.unit_name, container.start_with_pod))
    systemd = Systemd(scope)
    rows = []
    for name, path in pod_files(dirs, pods_dir(paths.config)).items():
        try:
            pod = load_pod(path, user=scope is Scope.USER)
        except DeclarationError as err:
            rows.append(PodStatus(name, name, str(path), f"{name}-pod.service", "", "", [],
                                  None, None, [], [], "", "", {}, [], None, str(err)))
            continue
        own = members.get(name, [])
        states = systemd.states([pod.unit_name, *(unit for _, unit, _ in own)])
        record = read_record(paths, name)
        rows.append(PodStatus(
            name=name, pod_name=pod.display_name, source=str(path), unit=pod.unit_name,
            state=states.get(pod.unit_name, ("inactive", ""))[0], network=pod.network,
            ports=[_port(p) for p in pod.ports], ip=pod.ip, ip6=pod.ip6,
            network_aliases=list(pod.network_aliases),
            addresses=addresses(paths, identity(name)) if record is not None else [],
            hostname=pod.members_hostname,
            exit_policy=str(pod.exit_policy), labels=dict(pod.labels),
            members=[Member(m, unit, states.get(unit, ("inactive", ""))[0], start)
                     for m, unit, start in sorted(own)],
            netns=record.netns if record is not None else None))
    return rows


def inspect_pod(name: str, scope: Scope) -> PodStatus:
    """Pod NAME (its file name or its pod_name) of SCOPE."""
    for row in list_pods(scope):
        if name in (row.name, row.pod_name):
            return row
    raise HostctlError(f"no pod {name!r}", where=f"pod {name}",
                       hint="`hostctl pod ls` lists the declared pods")
