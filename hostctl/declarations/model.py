"""The validated declaration: one frozen dataclass per container.

Field names are the keys of settings.SETTINGS (plus name, source and locations), and
the defaults come from that table. Every parsed value is immutable: tuples, frozen
dataclasses, StrEnums, str, int, float, bool. Sizes are bytes, times are whole seconds,
capabilities are "CAP_X" (or "ALL"), signals are "SIGX".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hostctl.declarations.settings import (
    DEFAULTS,
    AutoUpdate,
    HealthOnFailure,
    LogDriver,
    Pull,
    Restart,
    Runtime,
)

# (directive, values) pairs of one unit section, in declaration order; a directive with
# several values is written once per value.
Directives = tuple[tuple[str, tuple[str, ...]], ...]
# (name, value) pairs in declaration order, names unique (env, sysctls, labels, ...).
Pairs = tuple[tuple[str, str], ...]

RLIM_INFINITY = 2**64 - 1  # an "unlimited" ulimit, as OCI's process.rlimits spells it
SECRETS_DIR = "/run/secrets"  # where a secret without a target is mounted
NOTIFY_HEALTHY = "healthy"  # `notify: healthy`


class VolumeKind(StrEnum):
    """What the source of a volume is."""

    BIND = "bind"  # an absolute host path, bind-mounted
    VOLUME = "volume"  # a named volume, kept under the state directory
    ANONYMOUS = "anonymous"  # "DST" alone: a fresh volume for each run, gone at its end


@dataclass(frozen=True)
class Volume:
    """`volumes:` entry "SRC:DST[:OPTIONS]" (quadlet Volume= / Mount=type=bind|volume).

    source: absolute host path (kind bind), a volume name (kind volume) or "" (kind
    anonymous: podman's anonymous volume of a --rm container, made empty, or with the
    image's content there, at each start and removed at the stop).
    destination: absolute path in the container.
    read_only: from the "ro" option ("rw" is the default and is not kept in options).
    options: the other options as written, in order: z, Z, U, nocopy, nosuid, nodev,
    noexec, suid, dev, exec, bind, rbind, and the propagation modes (shared, rshared,
    slave, rslave, private, rprivate, unbindable, runbindable).
    """

    source: str
    destination: str
    kind: VolumeKind
    read_only: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tmpfs:
    """`tmpfs:` entry "DST[:OPTIONS]" (quadlet Tmpfs= / Mount=type=tmpfs).

    options: mount options as written, comma-separated in the file: size=BYTES (a size
    like 64M is converted to bytes), mode=OCTAL, uid=N, gid=N, nr_inodes=N, ro, rw,
    noexec, exec, nosuid, suid, nodev, dev.
    """

    destination: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    """`devices:` entry "[-]HOST[:CONTAINER][:PERMISSIONS]" (quadlet AddDevice=).

    container_path defaults to host_path; permissions is a non-empty subset of "rwm" in
    that order (default "rwm"); optional (a leading "-") means a missing host device is
    skipped instead of failing the start.
    """

    host_path: str
    container_path: str
    permissions: str = "rwm"
    optional: bool = False


@dataclass(frozen=True)
class Ulimit:
    """`ulimits:` entry NAME=SOFT[:HARD] (quadlet Ulimit=); NAME without RLIMIT_, lower
    case (nofile, nproc, core...); SOFT and HARD are counts, RLIM_INFINITY for
    "unlimited" or -1; HARD defaults to SOFT."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Secret:
    """`secrets:` entry (quadlet Secret=NAME[,target=PATH]).

    name: the credential id inside the unit (LoadCredential=NAME:SOURCE).
    source: an absolute host file path, or the name of a credential the service manager
    itself holds (systemd looks a non-absolute source up among its own credentials).
    target: absolute path in the container where the secret is mounted read-only
    (default /run/secrets/NAME); "" for a secret given as an environment variable.
    env: the environment variable holding the secret instead of a file (quadlet
    Secret=NAME,type=env,target=VAR), or None.
    """

    name: str
    source: str
    target: str
    env: str | None = None


@dataclass(frozen=True)
class Build:
    """`build:`: how to build the image when it is not in the store (`hostctl build`).

    context: the absolute host directory (a relative one is taken from the declaration's
    directory); file: the Containerfile (None: CONTEXT/Containerfile, then Dockerfile;
    relative to the context); args: --build-arg pairs; target: the stage to build.
    """

    context: str
    file: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True)
class Port:
    """`ports:` entry "[IP:]HOST:CONTAINER[/tcp|udp]" (quadlet PublishPort=). A range
    "8000-8009:80-89" becomes one Port per pair. host_ip None means every address;
    IPv6 addresses are written in brackets: "[::1]:8080:80"."""

    host_ip: str | None
    host_port: int
    container_port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True)
class Container:
    """One declared container, as read from its declaration file and validated.

    Types of the settings (see settings.SETTINGS for help and defaults):
    image str; command/entrypoint tuple[str, ...] | None; env Pairs; env_files
    tuple[str, ...] of absolute host paths; env_host, http_proxy bool; mask/unmask
    tuple[str, ...] (absolute container paths; unmask may hold "ALL"); seccomp_profile
    str | None ("unconfined" or an absolute host path); ip/ip6 str | None; log_driver
    LogDriver; workdir str | None; user "user[:group]" |
    None; group str | None (name or gid); groups tuple[str, ...] (names or gids);
    hostname str | None; volumes tuple[Volume, ...]; tmpfs tuple[Tmpfs, ...];
    shm_size int | None (bytes); read_only bool; cap_add/cap_drop tuple[str, ...]
    ("CAP_X" or "ALL"); no_new_privileges bool; devices tuple[Device, ...]; ulimits
    tuple[Ulimit, ...]; sysctls Pairs; timezone str | None ("local" or an Area/City
    name); init bool; notify False, True (the container sends READY=1 itself) or
    "healthy" (ready once the health check passed); health_cmd and health_startup_cmd
    tuple[str, ...] | None in the image config's Healthcheck.Test form (("CMD-SHELL",
    TEXT), ("CMD", ARG...) or ("NONE",)); health_interval, health_timeout,
    health_start_period, health_startup_interval, health_startup_timeout float seconds
    (health_interval 0: no timer); health_retries int >= 1; health_startup_retries and
    health_startup_success int >= 0; health_on_failure HealthOnFailure; auto_update
    AutoUpdate | None; stop_signal str
    ("SIGTERM"); stop_timeout int (s); reload_signal str | None; restart Restart;
    restart_sec int | None (s); memory int | None (bytes); cpus float | None; pids_limit
    int | None; labels/annotations Pairs; secrets tuple[Secret, ...]; network str
    ("host", "none", "bridge" or a network name); networks tuple[str, ...] (more
    networks, eth1...: bridge or network names); network_aliases tuple[str, ...]
    (host names, on every named network); network_aliases_by_network tuple[tuple[str,
    tuple[str, ...]], ...] ((network, host names): on that network only); ports
    tuple[Port, ...]; dns tuple[str, ...] (IP addresses); dns_search tuple[str, ...]
    (domains); dns_options tuple[str, ...] (resolv.conf options); add_hosts Pairs
    (name, IP address or "host-gateway"); runtime Runtime; platform str | None
    ("os/arch[/variant]"); pull Pull; build Build | None; pod str | None (a pod's name);
    start_with_pod bool; unit/service/install Directives.
    """

    name: str
    source: Path
    image: str
    pull: Pull = DEFAULTS["pull"]
    build: Build | None = DEFAULTS["build"]
    auto_update: AutoUpdate | None = DEFAULTS["auto_update"]
    platform: str | None = DEFAULTS["platform"]
    command: tuple[str, ...] | None = DEFAULTS["command"]
    entrypoint: tuple[str, ...] | None = DEFAULTS["entrypoint"]
    env: Pairs = DEFAULTS["env"]
    env_files: tuple[str, ...] = DEFAULTS["env_files"]
    env_host: bool = DEFAULTS["env_host"]
    http_proxy: bool = DEFAULTS["http_proxy"]
    workdir: str | None = DEFAULTS["workdir"]
    user: str | None = DEFAULTS["user"]
    group: str | None = DEFAULTS["group"]
    groups: tuple[str, ...] = DEFAULTS["groups"]
    hostname: str | None = DEFAULTS["hostname"]
    volumes: tuple[Volume, ...] = DEFAULTS["volumes"]
    tmpfs: tuple[Tmpfs, ...] = DEFAULTS["tmpfs"]
    shm_size: int | None = DEFAULTS["shm_size"]
    read_only: bool = DEFAULTS["read_only"]
    mask: tuple[str, ...] = DEFAULTS["mask"]
    unmask: tuple[str, ...] = DEFAULTS["unmask"]
    seccomp_profile: str | None = DEFAULTS["seccomp_profile"]
    cap_add: tuple[str, ...] = DEFAULTS["cap_add"]
    cap_drop: tuple[str, ...] = DEFAULTS["cap_drop"]
    no_new_privileges: bool = DEFAULTS["no_new_privileges"]
    devices: tuple[Device, ...] = DEFAULTS["devices"]
    ulimits: tuple[Ulimit, ...] = DEFAULTS["ulimits"]
    sysctls: Pairs = DEFAULTS["sysctls"]
    timezone: str | None = DEFAULTS["timezone"]
    init: bool = DEFAULTS["init"]
    notify: bool | str = DEFAULTS["notify"]
    health_cmd: tuple[str, ...] | None = DEFAULTS["health_cmd"]
    health_interval: float = DEFAULTS["health_interval"]
    health_timeout: float = DEFAULTS["health_timeout"]
    health_retries: int = DEFAULTS["health_retries"]
    health_start_period: float = DEFAULTS["health_start_period"]
    health_on_failure: HealthOnFailure = DEFAULTS["health_on_failure"]
    health_startup_cmd: tuple[str, ...] | None = DEFAULTS["health_startup_cmd"]
    health_startup_interval: float = DEFAULTS["health_startup_interval"]
    health_startup_timeout: float = DEFAULTS["health_startup_timeout"]
    health_startup_retries: int = DEFAULTS["health_startup_retries"]
    health_startup_success: int = DEFAULTS["health_startup_success"]
    stop_signal: str = DEFAULTS["stop_signal"]
    stop_timeout: int = DEFAULTS["stop_timeout"]
    reload_signal: str | None = DEFAULTS["reload_signal"]
    reload_cmd: tuple[str, ...] | None = DEFAULTS["reload_cmd"]
    restart: Restart = DEFAULTS["restart"]
    restart_sec: int | None = DEFAULTS["restart_sec"]
    service_name: str | None = DEFAULTS["service_name"]
    default_dependencies: bool = DEFAULTS["default_dependencies"]
    memory: int | None = DEFAULTS["memory"]
    cpus: float | None = DEFAULTS["cpus"]
    pids_limit: int | None = DEFAULTS["pids_limit"]
    labels: Pairs = DEFAULTS["labels"]
    annotations: Pairs = DEFAULTS["annotations"]
    secrets: tuple[Secret, ...] = DEFAULTS["secrets"]
    pod: str | None = DEFAULTS["pod"]
    start_with_pod: bool = DEFAULTS["start_with_pod"]
    network: str = DEFAULTS["network"]
    networks: tuple[str, ...] = DEFAULTS["networks"]
    network_aliases: tuple[str, ...] = DEFAULTS["network_aliases"]
    network_aliases_by_network: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULTS[
        "network_aliases_by_network"]
    ip: str | None = DEFAULTS["ip"]
    ip6: str | None = DEFAULTS["ip6"]
    ports: tuple[Port, ...] = DEFAULTS["ports"]
    dns: tuple[str, ...] = DEFAULTS["dns"]
    dns_search: tuple[str, ...] = DEFAULTS["dns_search"]
    dns_options: tuple[str, ...] = DEFAULTS["dns_options"]
    add_hosts: Pairs = DEFAULTS["add_hosts"]
    log_driver: LogDriver = DEFAULTS["log_driver"]
    runtime: Runtime = DEFAULTS["runtime"]
    unit: Directives = DEFAULTS["unit"]
    service: Directives = DEFAULTS["service"]
    install: Directives = DEFAULTS["install"]
    # A template's [Install] DefaultInstance=: the instance its links enable.
    default_instance: str | None = None
    # Quadlet units the declaration names: ("container", NAME, FILE:LINE:KEY) for a
    # [Unit] dependency written NAME.container (translated to NAME.service), ("volume",
    # NAME, ...) for Volume=NAME.volume:... or Mount=...source=NAME.volume, ("image",
    # NAME, ...) for Image=NAME.image, ("build", NAME, ...) for Image=NAME.build. The
    # generator checks that they exist and makes the container's unit wait for the
    # volume's and image's units; a start with any is never recorded for the quick path.
    unit_refs: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)
    # setting key -> 1-based line in `source`, for errors found after loading (the
    # launcher's "user not found" can then point at FILE:LINE:user).
    locations: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    # setting key -> where it came from, written out ("FILE:LINE: services.web.user"), for
    # a declaration translated from another format (a compose file): where() says that.
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def where(self, key: str) -> str:
        """FILE:LINE:KEY for a setting of this declaration (FILE:KEY without a line)."""
        origin = dict(self.origins).get(key)
        if origin is not None:
            return origin
        line = dict(self.locations).get(key)
        return f"{self.source}:{line}:{key}" if line else f"{self.source}:{key}"

    def aliases_on(self, network: str) -> tuple[str, ...]:
        """The names besides its own the container has on NETWORK: `network_aliases`,
        then NETWORK's `network_aliases_by_network`."""
        more = dict(self.network_aliases_by_network).get(network, ())
        return tuple(dict.fromkeys((*self.network_aliases, *more)))

    @property
    def unit_name(self) -> str:
        return self.service_name or f"{self.name}.service"

    @property
    def oneshot(self) -> bool:
        """[Service] Type=oneshot: the unit runs the container to its end (its exit
        status is the start's result), instead of supervising it."""
        types = [value for name, values in self.service if name == "Type" for value in values]
        return bool(types) and types[-1] == "oneshot"

    @property
    def ready_by_container(self) -> bool:
        """`notify: true`: the container itself sends READY=1."""
        return self.notify is True

    @property
    def ready_when_healthy(self) -> bool:
        """`notify: healthy`: the unit becomes active once the health check passed."""
        return self.notify == NOTIFY_HEALTHY
