"""A loaded compose project as hostctl declarations: containers, networks, volumes.

    project P, service S (deploy.replicas N)  ->  containers P-S-1 .. P-S-N
        one replica: unit P-S.service (P-S-1.service an alias of it)
        more:        units P-S-1.service .. P-S-N.service
    compose network K                          ->  hostctl network `name:` (P_K)
    a service's networks (by priority, then   ->  `network` (the first: ports, default
      the file's order)                              route, ipv4_address/ipv6_address as
                                                     `ip`/`ip6`), `networks` (the others)
    named volume K                             ->  hostctl named volume `name:` (P_K)
    the project                                ->  P.target, which wants every unit

depends_on: service_started gives Requires= (Wants= when `required: false`) and After=;
service_healthy makes the dependency's units `notify: healthy` (active once their health
check passed), so After= waits for that; service_completed_successfully makes the
dependency a Type=oneshot unit (RemainAfterExit=yes), so After= waits for its end and
Requires= fails the dependent when it failed; `restart: true` adds PartOf= (the
dependent is restarted with it). Every unit is PartOf=P.target: stopping the target
stops the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostctl.compose.servicekeys import DEPLOY_IGNORED, ServiceReader
from hostctl.compose.servicelimits import resources, restart_policy
from hostctl.compose.source import Project
from hostctl.declarations.model import Container, Directives
from hostctl.declarations.settings import Restart
from hostctl.declarations.values import check_combination
from hostctl.errors import DeclarationError

DEFAULT_NETWORK = "default"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
_NETWORK_KEYS = ("name", "driver", "internal", "external", "ipam", "labels", "attachable",
                 "enable_ipv6", "driver_opts")
_VOLUME_KEYS = ("name", "driver", "external", "labels", "driver_opts")
_MTU_OPTION = "com.docker.network.driver.mtu"


@dataclass(frozen=True)
class ServiceUnit:
    """One container of a service: the service, its replica number, the declaration."""

    service: str
    replica: int
    container: Container

    @property
    def unit(self) -> str:
        return self.container.unit_name


@dataclass(frozen=True)
class NetworkSpec:
    """A compose network as a hostctl network (hostctl.network.defs.Network's keys)."""

    key: str  # the compose key (default, backend...)
    name: str  # the network's name (P_default)
    external: bool = False
    internal: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    mtu: int | None = None
    where: str = ""


@dataclass(frozen=True)
class Translation:
    """Everything a compose project becomes."""

    project: str
    source: Path  # the first compose file
    containers: tuple[ServiceUnit, ...]
    networks: tuple[NetworkSpec, ...]
    volumes: tuple[str, ...]  # the named volumes the project owns (not external)
    ignored: tuple[tuple[str, str], ...]  # (key path, why it has no meaning here)

    @property
    def target(self) -> str:
        return f"{self.project}.target"

    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(unit.service for unit in self.containers))

    def units_of(self, service: str) -> tuple[str, ...]:
        return tuple(unit.unit for unit in self.containers if unit.service == service)


def translate(project: Project) -> Translation:
    """PROJECT's model as declarations; DeclarationError naming FILE:LINE:KEY for a key
    hostctl cannot honour."""
    model = project.model
    networks = _networks(project)
    volumes = _volumes(project)
    services: Mapping[str, Any] = model.get("services") or {}
    readers = {name: _read_service(project, name, spec or {}, networks)
               for name, spec in services.items()}
    plans = {name: _Plan(reader) for name, reader in readers.items()}
    for name, spec in services.items():
        _dependencies(project, name, (spec or {}).get("depends_on") or {}, plans)
    containers = tuple(unit for name in services for unit in plans[name].units(project))
    ignored = [*project.ignored]
    for reader in readers.values():
        ignored += reader.ignored
    return Translation(project.name, project.files[0] if project.files else project.directory,
                       containers, tuple(networks.values()), volumes,
                       tuple(dict.fromkeys(ignored)))


class _Plan:
    """A service's settings and unit dependencies, before its containers are made."""

    def __init__(self, reader: ServiceReader) -> None:
        self.reader = reader
        self.replicas = 1
        self.container_name: str | None = None
        self.requires: list[str] = []
        self.wants: list[str] = []
        self.after: list[str] = []
        self.part_of: list[str] = []
        self.healthy = False  # a dependent waits for it to be healthy
        self.oneshot = False  # a dependent waits for it to complete
        self.oneshot_where = ""

    def unit_names(self, project: str) -> tuple[str, ...]:
        base = f"{project}-{self.reader.name}"
        if self.replicas == 1:
            return (f"{base}.service",)
        return tuple(f"{base}-{n}.service" for n in range(1, self.replicas + 1))

    def units(self, project: Project) -> list[ServiceUnit]:
        reader = self.reader
        settings = dict(reader.settings)
        if "image" not in settings:
            if "build" not in settings:
                raise reader.error("the service has neither image nor build", hint="add image:")
            settings["image"] = f"localhost/{project.name}-{reader.name}:latest"
        service = list(reader.service)
        if self.healthy:
            settings["notify"] = "healthy"
        if self.oneshot:
            if self.healthy:
                raise DeclarationError(
                    f"service {reader.name} is waited for both as healthy and as completed",
                    where=self.oneshot_where, hint="use one condition for it")
            service += [("Type", "oneshot"), ("RemainAfterExit", "yes")]
            if settings.get("restart") not in (None, Restart.NO, Restart.ON_FAILURE):
                settings["restart"] = Restart.ON_FAILURE
        settings["service"] = _directives(service)
        settings["unit"] = _directives([
            *(("Requires", unit) for unit in self.requires),
            *(("Wants", unit) for unit in self.wants),
            *(("After", unit) for unit in self.after),
            *(("PartOf", unit) for unit in [f"{project.name}.target", *self.part_of]),
            *reader.unit,
        ])
        try:
            check_combination(settings)
        except Exception as err:  # values.Conflict: an Invalid naming the setting
            setting = getattr(err, "key", None)
            raise DeclarationError(str(getattr(err, "message", err)),
                                   where=reader.origins.get(str(setting), reader.where()),
                                   hint=getattr(err, "hint", None)) from None
        return [self._unit(project, settings, n, unit)
                for n, unit in enumerate(self.unit_names(project.name), start=1)]

    def _unit(self, project: Project, settings: dict[str, Any], number: int, unit: str
              ) -> ServiceUnit:
        reader = self.reader
        base = f"{project.name}-{reader.name}"
        name = self.container_name or f"{base}-{number}"
        labels = (*settings.get("labels", ()), (LABEL_PROJECT, project.name),
                  (LABEL_SERVICE, reader.name), (LABEL_NUMBER, str(number)))
        source = project.files[0] if project.files else project.directory
        container = Container(
            name=name, source=source, **{**settings, "labels": labels},
            service_name=None if unit == f"{name}.service" else unit,
            origins=tuple(reader.origins.items()),
        )
        _check_name(reader, name)
        return ServiceUnit(reader.name, number, container)


def _directives(pairs: list[tuple[str, str]]) -> Directives:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return tuple((name, tuple(dict.fromkeys(found))) for name, found in grouped.items())


def _check_name(reader: ServiceReader, name: str) -> None:
    from hostctl.declarations.checks import Invalid, check_name

    try:
        check_name(name)
    except Invalid as err:
        raise reader.error(err.message, "container_name", hint=err.hint) from None


def _read_service(project: Project, name: str, spec: Mapping[str, Any],
                  networks: Mapping[str, NetworkSpec]) -> ServiceReader:
    reader = ServiceReader(project, name)
    reader.read(spec)
    _service_network(reader, spec, networks)
    for key, value in (spec.get("deploy") or {}).items():
        _deploy(reader, key, value)
    return reader


def _deploy(reader: ServiceReader, key: str, value: Any) -> None:
    if value is None:
        return
    if key in DEPLOY_IGNORED:
        reader.ignore(DEPLOY_IGNORED[key], "deploy", key)
    elif key == "resources":
        resources(reader, value)
    elif key == "restart_policy":
        restart_policy(reader, value)
    elif key != "replicas":
        raise reader.error(f"deploy key {key!r} is not supported by hostctl", "deploy", key)


def _replicas(reader: ServiceReader, spec: Mapping[str, Any]) -> int:
    deploy = spec.get("deploy") or {}
    for path, value in ((("deploy", "replicas"), deploy.get("replicas")),
                        (("scale",), spec.get("scale"))):
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise reader.error(f"{value!r} is not a number of replicas", *path)
            if value == 0:
                raise reader.error("0 replicas: the service would never run", *path,
                                   hint="remove the service, or put it in a profile")
            return value
    return 1


def _service_network(reader: ServiceReader, spec: Mapping[str, Any],
                     networks: Mapping[str, NetworkSpec]) -> None:
    mode = spec.get("network_mode")
    joined = spec.get("networks")
    if mode is not None:
        if mode not in ("host", "none", "bridge"):
            raise reader.error(f"network_mode {mode!r} is not supported by hostctl",
                               "network_mode", hint="host, none or bridge")
        reader.set("network", mode, "network_mode")
        return
    if isinstance(joined, list):
        joined = {key: None for key in joined}
    joined = joined or {DEFAULT_NETWORK: None}
    # the first network (highest priority, then the file's order) is eth0: its ports, its
    # default route; the others are `networks`
    order = sorted(joined, key=lambda key: -int((joined[key] or {}).get("priority") or 0))
    names: list[str] = []
    by_network: list[tuple[str, tuple[str, ...]]] = []
    for index, key in enumerate(order):
        network = networks.get(key)
        if network is None:
            raise reader.error(f"network {key!r} is not declared in the top-level networks",
                               "networks", key)
        names.append(network.name)
        aliases = _attachment(reader, key, joined[key] or {}, first=index == 0)
        aliases = [alias for alias in dict.fromkeys(aliases) if alias != reader.name]
        if aliases:
            by_network.append((network.name, tuple(aliases)))
    reader.set("network", names[0], "networks")
    if len(names) > 1:
        reader.set("networks", tuple(names[1:]), "networks")
    # the service's name on every network it joins (the container's own name is its
    # member name), an alias given under one network on that network only, as compose does
    reader.set("network_aliases", (reader.name,), "networks")
    if by_network:
        reader.set("network_aliases_by_network", tuple(by_network), "networks")


def _attachment(reader: ServiceReader, key: str, options: Mapping[str, Any],
                first: bool) -> list[str]:
    """The aliases of the service's attachment to network KEY (on that network only);
    its static address, on the first."""
    aliases = []
    for option, value in options.items():
        if option == "aliases":
            aliases += [str(alias) for alias in value or ()]
            for alias in aliases:
                if not alias or any(c.isspace() or c == "#" for c in alias):
                    raise reader.error(f"{alias!r} cannot be a host name",
                                       "networks", key, "aliases")
        elif option == "priority":
            continue  # the order of the networks
        elif option in ("ipv4_address", "ipv6_address"):
            if not first:
                raise reader.error(
                    "a static address on a service's second network", "networks", key,
                    option, hint="hostctl gives static addresses on the first network "
                    "(the highest priority) only; give this one the highest priority")
            setting = "ip" if option == "ipv4_address" else "ip6"
            reader.set(setting, value, "networks", key, option)
        else:
            raise reader.error(f"network option {option!r} is not supported by hostctl",
                               "networks", key, option,
                               hint="aliases, ipv4_address, ipv6_address, priority")
    return aliases


def _dependencies(project: Project, name: str, depends: Any, plans: dict[str, _Plan]) -> None:
    plan = plans[name]
    plan.replicas = _replicas(plan.reader, project.model["services"][name] or {})
    if isinstance(depends, list):
        depends = {dep: {} for dep in depends}
    for dep, spec in depends.items():
        spec = spec or {}
        where = project.where("services", name, "depends_on", dep)
        other = plans.get(dep)
        if other is None:
            if spec.get("required", True) is False:
                continue  # an optional dependency on a service not in the active profiles
            raise DeclarationError(f"service {dep!r} is not in the project", where=where,
                                   hint="add it, or enable its profile")
        other.replicas = _replicas(other.reader, project.model["services"][dep] or {})
        units = other.unit_names(project.name)
        condition = spec.get("condition", "service_started")
        if condition == "service_healthy":
            other.healthy = True
        elif condition == "service_completed_successfully":
            other.oneshot, other.oneshot_where = True, where
        elif condition != "service_started":
            raise DeclarationError(f"condition {condition!r} is unknown", where=where,
                                   hint="service_started, service_healthy or "
                                   "service_completed_successfully")
        (plan.requires if spec.get("required", True) else plan.wants).extend(units)
        plan.after.extend(units)
        if spec.get("restart"):
            plan.part_of.extend(units)
    container_name = (project.model["services"][name] or {}).get("container_name")
    if container_name:
        if plan.replicas > 1:
            raise plan.reader.error("container_name with more than one replica",
                                    "container_name", hint="drop container_name")
        plan.container_name = str(container_name)


def _networks(project: Project) -> dict[str, NetworkSpec]:
    found: dict[str, NetworkSpec] = {}
    declared: Mapping[str, Any] = project.model.get("networks") or {}
    if DEFAULT_NETWORK not in declared:
        declared = {**declared, DEFAULT_NETWORK: None}
    for key, spec in declared.items():
        found[key] = _network(project, key, spec or {})
    return found


def _network(project: Project, key: str, spec: Mapping[str, Any]) -> NetworkSpec:
    where = project.where("networks", key)
    for option in spec:
        if option not in _NETWORK_KEYS:
            raise DeclarationError(f"network key {option!r} is not supported by hostctl",
                                   where=project.where("networks", key, option))
    name = str(spec.get("name") or f"{project.name}_{key}")
    if spec.get("external"):
        return NetworkSpec(key, name, external=True, where=where)
    driver = spec.get("driver") or "bridge"
    if driver != "bridge":
        raise DeclarationError(f"network driver {driver!r} is not supported by hostctl",
                               where=project.where("networks", key, "driver"),
                               hint="hostctl's networks are bridges")
    if spec.get("enable_ipv6"):
        raise DeclarationError("IPv6 on a compose network is not supported by hostctl",
                               where=project.where("networks", key, "enable_ipv6"),
                               hint="declare the network in /etc/hostctl/networks with "
                               "ipv6_subnet and mark it external")
    mtu = _mtu(project, key, spec.get("driver_opts") or {})
    subnet, gateway, ip_range = _ipam(project, key, spec.get("ipam") or {})
    return NetworkSpec(key, name, internal=bool(spec.get("internal")), subnet=subnet,
                       gateway=gateway, ip_range=ip_range, mtu=mtu, where=where)


def _mtu(project: Project, key: str, options: Mapping[str, Any]) -> int | None:
    mtu = None
    for option, value in options.items():
        if option != _MTU_OPTION:
            raise DeclarationError(f"driver option {option!r} is not supported by hostctl",
                                   where=project.where("networks", key, "driver_opts"),
                                   hint=_MTU_OPTION)
        mtu = int(value)
    return mtu


def _ipam(project: Project, key: str, ipam: Mapping[str, Any]
          ) -> tuple[str | None, str | None, str | None]:
    where = project.where("networks", key, "ipam")
    if (ipam.get("driver") or "default") != "default" or ipam.get("options"):
        raise DeclarationError("IPAM drivers and options are not supported by hostctl",
                               where=where, hint="give ipam.config subnet/gateway/ip_range")
    configs = ipam.get("config") or []
    if len(configs) > 1:
        raise DeclarationError("more than one subnet on a network", where=where,
                               hint="hostctl's networks have one IPv4 subnet")
    config = configs[0] if configs else {}
    for option in config:
        if option not in ("subnet", "gateway", "ip_range"):
            raise DeclarationError(f"ipam key {option!r} is not supported by hostctl",
                                   where=where)
    return (config.get("subnet"), config.get("gateway"), config.get("ip_range"))


def _volumes(project: Project) -> tuple[str, ...]:
    owned = []
    for key, spec in (project.model.get("volumes") or {}).items():
        spec = spec or {}
        for option in spec:
            if option not in _VOLUME_KEYS:
                raise DeclarationError(f"volume key {option!r} is not supported by hostctl",
                                       where=project.where("volumes", key, option))
        if (spec.get("driver") or "local") != "local" or spec.get("driver_opts"):
            raise DeclarationError(
                "volume drivers and driver options are not supported by hostctl",
                where=project.where("volumes", key),
                hint="a named volume is a directory under /var/lib/hostctl/volumes; bind "
                "mount a host path instead")
        if not spec.get("external"):
            owned.append(str(spec.get("name") or f"{project.name}_{key}"))
    return tuple(owned)
