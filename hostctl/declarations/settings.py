"""Every declaration setting, described once.

The YAML reader validates against this table; the docs, the quadlet-file reader and the
Ansible argument_spec are generated from it. A new setting is a new row here plus a field
of the same name on `Container` (tests check the two agree); a new *kind* of value also
needs a converter in yaml_reader and, when it has rules, a check in checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hostctl.declarations.kinds import (
    KIND_ANSIBLE_TYPE,
    KIND_DOC_TYPE,
    AutoUpdate,
    HealthOnFailure,
    Kind,
    LogDriver,
    Pull,
    Restart,
    Runtime,
)

__all__ = [
    "BY_KEY",
    "DEFAULTS",
    "INSTALL_DIRECTIVES",
    "KIND_ANSIBLE_TYPE",
    "KIND_DOC_TYPE",
    "RESERVED_DIRECTIVES",
    "SETTINGS",
    "AutoUpdate",
    "HealthOnFailure",
    "Kind",
    "LogDriver",
    "Pull",
    "Restart",
    "Runtime",
    "Setting",
]


@dataclass(frozen=True)
class Setting:
    """One key of a declaration: its type, default, help and where it ends up."""

    key: str  # snake_case, as written in YAML and in Ansible
    kind: Kind
    help: str
    maps_to: str  # the unit directive or OCI config field it becomes
    quadlet: str | None = None  # the quadlet [Container] key with the same meaning
    default: Any = None
    required: bool = False
    choices: type[StrEnum] | None = None  # for CHOICE: the allowed values
    section: str | None = None  # for DIRECTIVES: the unit section they go to
    example: str | None = None

    @property
    def doc_type(self) -> str:
        if self.choices is not None:
            return " | ".join(self.choices)
        return KIND_DOC_TYPE[self.kind]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        key="image", kind=Kind.IMAGE, required=True,
        help="The image to run; pulled from its registry when it is not in the store.",
        maps_to="OCI root filesystem and process defaults from the image config",
        quadlet="Image", example="docker.io/library/nginx:1.27",
    ),
    Setting(
        key="pull", kind=Kind.CHOICE, choices=Pull, default=Pull.MISSING,
        help="When the launcher asks the registry for the image: missing (only when not "
        "stored), always, newer (like always, but falls back to the stored image when the "
        "registry cannot be reached), never.",
        maps_to="the launcher's pull step", quadlet="Pull", example="newer",
    ),
    Setting(
        key="build", kind=Kind.BUILD,
        help="Build the image with `hostctl build` when it is not in the store, tagged "
        "as `image` (which then names a local image, e.g. localhost/app:1, and is never "
        "pulled): context (the directory; relative to the declaration's), file (the "
        "Containerfile, relative to the context; default Containerfile, then Dockerfile), "
        "args (build arguments), target (the stage).",
        maps_to="`hostctl build` run by the launcher when the image is missing",
        example="{context: /srv/app, args: {VERSION: '1.2'}}",
    ),
    Setting(
        key="auto_update", kind=Kind.CHOICE, choices=AutoUpdate,
        help="What `hostctl auto-update` compares the running image with: registry (the "
        "registry's digest for the reference; needs a fully qualified name) or local (the "
        "store's image for the reference).",
        maps_to="hostctl auto-update", quadlet="AutoUpdate", example="registry",
    ),
    Setting(
        key="platform", kind=Kind.PLATFORM,
        help="The os/arch[/variant] to pick from a multi-platform image (default: the "
        "host's).",
        maps_to="manifest list selection", example="linux/arm64/v8",
    ),
    Setting(
        key="command", kind=Kind.ARGV,
        help="Arguments replacing the image's Cmd; a string is split like a shell would.",
        maps_to="OCI process.args (after the entrypoint)",
        quadlet="Exec", example='["nginx", "-g", "daemon off;"]',
    ),
    Setting(
        key="entrypoint", kind=Kind.ARGV,
        help="Replaces the image's Entrypoint (and drops its Cmd unless `command` is set); "
        "[] clears it.",
        maps_to="OCI process.args (first)",
        quadlet="Entrypoint", example='["/docker-entrypoint.sh"]',
    ),
    Setting(
        key="env", kind=Kind.ENV, default=(),
        help="Environment variables added to the image's; numbers and booleans are written "
        "as in the file.",
        maps_to="OCI process.env", quadlet="Environment", example="{TZ: UTC, WORKERS: 4}",
    ),
    Setting(
        key="env_files", kind=Kind.ABSPATHS, default=(),
        help="Host files of NAME=VALUE lines read at each start, before `env`.",
        maps_to="OCI process.env", quadlet="EnvironmentFile",
        example="[/etc/app/app.env]",
    ),
    Setting(
        key="env_host", kind=Kind.BOOL, default=False,
        help="Pass the launcher's whole environment (the unit's: Environment= in "
        "`service:`, systemd's manager environment) to the container, over the image's "
        "and under `env_files` and `env`.",
        maps_to="OCI process.env", quadlet="EnvironmentHost", example="true",
    ),
    Setting(
        key="http_proxy", kind=Kind.BOOL, default=True,
        help="Pass the launcher's http_proxy, https_proxy, ftp_proxy and no_proxy "
        "variables (either case) to the container, over the image's and under "
        "`env_files` and `env`; false passes none.",
        maps_to="OCI process.env", quadlet="HttpProxy", example="false",
    ),
    Setting(
        key="workdir", kind=Kind.ABSPATH,
        help="Working directory of the container's process (default: the image's).",
        maps_to="OCI process.cwd", quadlet="WorkingDir", example="/srv/app",
    ),
    Setting(
        key="user", kind=Kind.USER,
        help="User to run as: a name or uid from the image, optionally :group or :gid "
        "(default: the image's User, else root).",
        maps_to="OCI process.user", quadlet="User", example="1000:1000",
    ),
    Setting(
        key="group", kind=Kind.GROUP,
        help="Primary group (name or gid) when `user` does not give one.",
        maps_to="OCI process.user.gid", quadlet="Group", example="www-data",
    ),
    Setting(
        key="groups", kind=Kind.GROUPS, default=(),
        help="Supplementary groups (names from the image, or gids).",
        maps_to="OCI process.user.additionalGids", quadlet="GroupAdd",
        example="[audio, 1001]",
    ),
    Setting(
        key="hostname", kind=Kind.HOSTNAME,
        help="The container's host name (default: the container name).",
        maps_to="OCI hostname", quadlet="HostName", example="web1",
    ),
    Setting(
        key="volumes", kind=Kind.VOLUMES, default=(),
        help="SRC:DST[:OPTIONS]: an absolute SRC is a bind mount of a host path (the unit "
        "waits for its file system), otherwise a named volume; options ro, rw, z, Z, U, "
        "nocopy, nosuid, nodev, noexec and propagation modes. DST alone is an anonymous "
        "volume: made at each start (with the image's content there) and removed at the "
        "stop, as podman's of a --rm container.",
        maps_to="OCI mounts; unit [Unit] RequiresMountsFor= for bind sources",
        quadlet="Volume", example='["/srv/app:/data", "cache:/var/cache:ro"]',
    ),
    Setting(
        key="tmpfs", kind=Kind.TMPFS, default=(),
        help="DST[:OPTIONS]: a tmpfs mounted at DST; options size=, mode=, uid=, gid=, "
        "nr_inodes=, ro, noexec, nosuid, nodev.",
        maps_to="OCI mounts (type tmpfs)", quadlet="Tmpfs",
        example='["/tmp:size=64M,mode=1777"]',
    ),
    Setting(
        key="shm_size", kind=Kind.SIZE,
        help="Size of /dev/shm (default 64M).",
        maps_to="OCI mounts (/dev/shm size=)", quadlet="ShmSize", example="256M",
    ),
    Setting(
        key="read_only", kind=Kind.BOOL, default=False,
        help="Mount the root file system read-only.",
        maps_to="OCI root.readonly", quadlet="ReadOnly", example="true",
    ),
    Setting(
        key="mask", kind=Kind.PROC_PATHS, default=(),
        help="Paths in the container hidden from it (over podman's default /proc and /sys "
        "ones): an empty file or directory is mounted on them.",
        maps_to="OCI linux.maskedPaths", quadlet="Mask",
        example="[/proc/sys/dev, /sys/firmware]",
    ),
    Setting(
        key="unmask", kind=Kind.PROC_PATHS, default=(),
        help="Default masked or read-only /proc and /sys paths given back to the "
        "container; ALL gives back every one.",
        maps_to="OCI linux.maskedPaths and linux.readonlyPaths", quadlet="Unmask",
        example="[/proc/sys]",
    ),
    Setting(
        key="seccomp_profile", kind=Kind.SECCOMP,
        help="The seccomp filter: unconfined (none), or a JSON profile file in podman's "
        "(docker's) format, read at each start, instead of the default profile.",
        maps_to="OCI linux.seccomp", quadlet="SeccompProfile",
        example="/etc/hostctl/seccomp/app.json",
    ),
    Setting(
        key="cap_add", kind=Kind.CAPS, default=(),
        help="Capabilities added to the default set (net_admin, CAP_NET_ADMIN or ALL).",
        maps_to="OCI process.capabilities", quadlet="AddCapability",
        example="[NET_ADMIN]",
    ),
    Setting(
        key="cap_drop", kind=Kind.CAPS, default=(),
        help="Capabilities removed from the default set (ALL drops every one).",
        maps_to="OCI process.capabilities", quadlet="DropCapability", example="[ALL]",
    ),
    Setting(
        key="no_new_privileges", kind=Kind.BOOL, default=False,
        help="Forbid gaining privileges (setuid binaries, file capabilities).",
        maps_to="OCI process.noNewPrivileges", quadlet="NoNewPrivileges", example="true",
    ),
    Setting(
        key="devices", kind=Kind.DEVICES, default=(),
        help="[-]HOST[:CONTAINER][:PERMISSIONS]: host devices made available; "
        "permissions are a subset of rwm; a leading - skips a missing device.",
        maps_to="OCI linux.devices and linux.resources.devices", quadlet="AddDevice",
        example='["/dev/fuse", "/dev/ttyUSB0:/dev/modem:rw"]',
    ),
    Setting(
        key="ulimits", kind=Kind.ULIMITS, default=(),
        help="NAME: SOFT[:HARD] resource limits (nofile, nproc, core...); -1 or "
        "unlimited for no limit.",
        maps_to="OCI process.rlimits", quadlet="Ulimit",
        example='{nofile: "1024:4096"}',
    ),
    Setting(
        key="sysctls", kind=Kind.SYSCTLS, default=(),
        help="Namespaced kernel parameters set in the container.",
        maps_to="OCI linux.sysctl", quadlet="Sysctl",
        example='{net.ipv4.ip_unprivileged_port_start: "80"}',
    ),
    Setting(
        key="timezone", kind=Kind.TIMEZONE,
        help="The container's time zone: an Area/City name, or local for the host's.",
        maps_to="/etc/localtime in the container", quadlet="Timezone",
        example="Europe/Berlin",
    ),
    Setting(
        key="init", kind=Kind.BOOL, default=False,
        help="Run a minimal init as PID 1 that reaps zombies and forwards signals.",
        maps_to="OCI process.args (init injected first)", quadlet="RunInit",
        example="true",
    ),
    Setting(
        key="notify", kind=Kind.NOTIFY, default=False,
        help="When the unit becomes active: false (as soon as the container starts), true "
        "(the container sends READY=1 itself, sd_notify), healthy (once its health check "
        "passed; the start period extends the start timeout).",
        maps_to="unit readiness (true: NOTIFY_SOCKET passed to the container)",
        quadlet="Notify", example="healthy",
    ),
    Setting(
        key="health_cmd", kind=Kind.HEALTH_CMD,
        help="The health check: a string runs with /bin/sh -c, a list is run as it is, "
        "none disables the image's HEALTHCHECK (default: the image's, if it has one).",
        maps_to="NAME-healthcheck.timer and .service; the check runs in the container",
        quadlet="HealthCmd", example='["curl", "-fsS", "http://localhost:8080/health"]',
    ),
    Setting(
        key="health_interval", kind=Kind.DURATION, default=30.0,
        help="Time between the end of one check and the next; disable (or 0) runs none "
        "on a timer (`hostctl healthcheck` still can).",
        maps_to="NAME-healthcheck.timer OnActiveSec= and OnUnitInactiveSec=",
        quadlet="HealthInterval", example="10s",
    ),
    Setting(
        key="health_timeout", kind=Kind.DURATION, default=30.0,
        help="A check still running after this is killed and counts as failed.",
        maps_to="the check's deadline", quadlet="HealthTimeout", example="5s",
    ),
    Setting(
        key="health_retries", kind=Kind.COUNT, default=3,
        help="Failed checks in a row that make the container unhealthy.",
        maps_to="the health state's failing streak", quadlet="HealthRetries", example="5",
    ),
    Setting(
        key="health_start_period", kind=Kind.DURATION, default=0.0,
        help="Time after the start in which failed checks do not count (a passing check "
        "ends it).",
        maps_to="the health state; with notify: healthy, EXTEND_TIMEOUT_USEC",
        quadlet="HealthStartPeriod", example="1m",
    ),
    Setting(
        key="health_on_failure", kind=Kind.CHOICE, choices=HealthOnFailure,
        default=HealthOnFailure.NONE,
        help="What happens when the container becomes unhealthy: none, kill (SIGKILL to "
        "its init: the unit fails and `restart:` applies), stop or restart the unit.",
        maps_to="the check's action on the unit", quadlet="HealthOnFailure", example="kill",
    ),
    Setting(
        key="health_startup_cmd", kind=Kind.HEALTH_CMD,
        help="A startup probe run before the regular checks begin: string, list or none, "
        "as health_cmd.",
        maps_to="the first phase of the health check", quadlet="HealthStartupCmd",
        example="test -e /run/app.ready",
    ),
    Setting(
        key="health_startup_interval", kind=Kind.DURATION, default=30.0,
        help="Time between startup probes.",
        maps_to="NAME-healthcheck.timer OnActiveSec=", quadlet="HealthStartupInterval",
        example="2s",
    ),
    Setting(
        key="health_startup_timeout", kind=Kind.DURATION, default=30.0,
        help="A startup probe still running after this is killed and counts as failed.",
        maps_to="the probe's deadline", quadlet="HealthStartupTimeout", example="5s",
    ),
    Setting(
        key="health_startup_retries", kind=Kind.DELAY, default=0,
        help="Failed startup probes after which the container is restarted (0: no limit).",
        maps_to="the startup phase", quadlet="HealthStartupRetries", example="10",
    ),
    Setting(
        key="health_startup_success", kind=Kind.DELAY, default=0,
        help="Passing startup probes in a row that end the startup phase (0: the first).",
        maps_to="the startup phase", quadlet="HealthStartupSuccess", example="2",
    ),
    Setting(
        key="stop_signal", kind=Kind.SIGNAL, default="SIGTERM",
        help="Signal that asks the container's init to stop.",
        maps_to="unit [Service] KillSignal=", quadlet="StopSignal", example="SIGQUIT",
    ),
    Setting(
        key="stop_timeout", kind=Kind.SECONDS, default=10,
        help="Seconds between the stop signal and SIGKILL when the service stops.",
        maps_to="unit [Service] TimeoutStopSec=", quadlet="StopTimeout", example="30",
    ),
    Setting(
        key="reload_signal", kind=Kind.SIGNAL,
        help="Signal sent to the container's init by `systemctl reload`.",
        maps_to="unit [Service] ExecReload=kill -s SIGNAL $MAINPID",
        quadlet="ReloadSignal", example="SIGHUP",
    ),
    Setting(
        key="reload_cmd", kind=Kind.ARGV,
        help="A command run in the container (as `hostctl exec`) by `systemctl reload`; "
        "instead of reload_signal.",
        maps_to="unit [Service] ExecReload=hostctl exec NAME COMMAND...",
        quadlet="ReloadCmd", example='["nginx", "-s", "reload"]',
    ),
    Setting(
        key="restart", kind=Kind.CHOICE, default=Restart.NO, choices=Restart,
        help="When systemd restarts the container after it exits.",
        maps_to="unit [Service] Restart=", example="on-failure",
    ),
    Setting(
        key="restart_sec", kind=Kind.DELAY,
        help="Seconds systemd waits before a restart (default: systemd's, 100 ms).",
        maps_to="unit [Service] RestartSec=", example="5",
    ),
    Setting(
        key="service_name", kind=Kind.SERVICE_NAME,
        help="The name of the generated unit, instead of NAME.service; NAME.service "
        "stays an alias of it, so hostctl's commands and other units' dependencies on "
        "NAME.service still reach it.",
        maps_to="the unit's file name (and an alias NAME.service)",
        quadlet="ServiceName", example="web-frontend",
    ),
    Setting(
        key="default_dependencies", kind=Kind.BOOL, default=True,
        help="Whether the unit waits for the network to be online (network-online.target, "
        "or the user scope's wait unit); false drops that dependency (quadlet "
        "[Quadlet] DefaultDependencies=).",
        maps_to="unit [Unit] Wants=/After= network-online.target",
        example="false",
    ),
    Setting(
        key="memory", kind=Kind.SIZE,
        help="Memory limit of the whole unit (container included).",
        maps_to="unit [Service] MemoryMax=", quadlet="Memory", example="512M",
    ),
    Setting(
        key="cpus", kind=Kind.CPUS,
        help="CPU time limit, in CPUs (1.5 = one and a half cores).",
        maps_to="unit [Service] CPUQuota= (cpus x 100%)", example="1.5",
    ),
    Setting(
        key="pids_limit", kind=Kind.COUNT,
        help="Most tasks (processes and threads) the unit may have.",
        maps_to="unit [Service] TasksMax=", quadlet="PidsLimit", example="256",
    ),
    Setting(
        key="labels", kind=Kind.LABELS, default=(),
        help="Labels recorded with the container (shown by `hostctl ps`).",
        maps_to="OCI annotations (org.hostctl.label.NAME)", quadlet="Label",
        example="{team: web}",
    ),
    Setting(
        key="annotations", kind=Kind.LABELS, default=(),
        help="OCI annotations passed to the runtime.",
        maps_to="OCI annotations", quadlet="Annotation",
        example="{org.opencontainers.image.title: app}",
    ),
    Setting(
        key="secrets", kind=Kind.SECRETS, default=(),
        help="Files handed over as systemd credentials and mounted read-only, by default at "
        "/run/secrets/NAME; SOURCE is a host file or a credential of the service manager "
        "(default: NAME); with env: VARIABLE the secret is that environment variable "
        "instead of a file (quadlet Secret=NAME,type=env,target=VARIABLE).",
        maps_to="unit [Service] LoadCredential=NAME:SOURCE; OCI mounts or process env",
        quadlet="Secret",
        example='[{name: db-password, source: /etc/app/db-password}]',
    ),
    Setting(
        key="pod", kind=Kind.POD,
        help="The pod the container is a member of (/etc/hostctl/pods/NAME.yaml or a "
        "NAME.pod file): it shares the pod's network, IPC and UTS namespaces and /dev/shm, "
        "so it cannot set network, ports, hostname, dns*, add_hosts or shm_size itself; "
        "its unit is BindsTo= and After= the pod's unit.",
        maps_to="OCI linux.namespaces (the pod's); unit [Unit] BindsTo=/After= NAME-pod.service",
        quadlet="Pod", example="web",
    ),
    Setting(
        key="start_with_pod", kind=Kind.BOOL, default=True,
        help="With `pod`: starting the pod's unit starts this container too (the pod's unit "
        "Wants= it); false leaves it to be started on its own.",
        maps_to="the pod unit's [Unit] Wants=/Before=", quadlet="StartWithPod", example="false",
    ),
    Setting(
        key="network", kind=Kind.NETWORK, default="bridge",
        help="host (the host's network), none (loopback only), bridge (hostctl's default "
        "network; rootless: pasta) or the name of a network declared in "
        "/etc/hostctl/networks/NAME.yaml (a user's rootless containers: "
        "~/.config/hostctl/networks/NAME.yaml, see networking.md).",
        maps_to="OCI linux.namespaces (network)", quadlet="Network", example="host",
    ),
    Setting(
        key="networks", kind=Kind.NETWORKS, default=(),
        help="More networks the container joins besides `network` (rootful; bridge or "
        "declared networks): eth1, eth2, ... in this order, `network` being eth0. Ports are "
        "published and the default route goes through `network`; the container's name and "
        "`network_aliases` are in every network's members' /etc/hosts "
        "(`network_aliases_by_network`: on one network only). Quadlet: the second and later "
        "Network= lines.",
        maps_to="one more interface (CNI bridge plugin) per network in the container's "
        "namespace", example="[backend]",
    ),
    Setting(
        key="network_aliases", kind=Kind.DOMAINS, default=(),
        help="More names the container is known by on its named networks: the other "
        "members' /etc/hosts list them with its address (a compose service's name).",
        maps_to="/etc/hosts of the network's other members", quadlet="NetworkAlias",
        example="[db, database]",
    ),
    Setting(
        key="network_aliases_by_network", kind=Kind.NETWORK_ALIASES, default=(),
        help="More names the container is known by on one of its named networks only "
        "(`network` or one of `networks`): only that network's other members' /etc/hosts "
        "list them (a compose service's networks.NET.aliases). Quadlet: "
        "Network=NAME:alias=A,alias=B.",
        maps_to="/etc/hosts of that network's other members",
        example="{backend: [db, primary]}",
    ),
    Setting(
        key="ip", kind=Kind.IPV4,
        help="A static IPv4 address on the container's network (bridge or a declared "
        "network; inside its subnet and IP range, and free); on `network` only, not on "
        "`networks`.",
        maps_to="the network's address assignment (host-local IPAM)", quadlet="IP",
        example="10.90.5.20",
    ),
    Setting(
        key="ip6", kind=Kind.IPV6,
        help="A static IPv6 address on the container's network (one with an IPv6 subnet).",
        maps_to="the network's address assignment (host-local IPAM)", quadlet="IP6",
        example="fd00:90:5::20",
    ),
    Setting(
        key="ports", kind=Kind.PORTS, default=(),
        help="[IP:]HOST:CONTAINER[/tcp|udp] ports published on the host; ranges like "
        "8000-8009:80-89 allowed.",
        maps_to="network port forwarding", quadlet="PublishPort",
        example='["8080:80", "127.0.0.1:5353:53/udp"]',
    ),
    Setting(
        key="dns", kind=Kind.ADDRESSES, default=(),
        help="Name servers for the container's /etc/resolv.conf.",
        maps_to="/etc/resolv.conf nameserver", quadlet="DNS", example="[192.0.2.53]",
    ),
    Setting(
        key="dns_search", kind=Kind.DOMAINS, default=(),
        help="Search domains for the container's /etc/resolv.conf.",
        maps_to="/etc/resolv.conf search", quadlet="DNSSearch",
        example="[example.com]",
    ),
    Setting(
        key="dns_options", kind=Kind.DNS_OPTIONS, default=(),
        help="Resolver options for the container's /etc/resolv.conf.",
        maps_to="/etc/resolv.conf options", quadlet="DNSOption",
        example='["ndots:2", "edns0"]',
    ),
    Setting(
        key="add_hosts", kind=Kind.HOSTS, default=(),
        help="NAME:IP lines added to the container's /etc/hosts (IP may be host-gateway).",
        maps_to="/etc/hosts", quadlet="AddHost", example='["db.local:192.0.2.10"]',
    ),
    Setting(
        key="log_driver", kind=Kind.CHOICE, choices=LogDriver, default=LogDriver.JOURNALD,
        help="Where the container's output goes: journald and passthrough (the unit's "
        "stdout and stderr, in the journal under the unit's name; `hostctl logs`), none "
        "(dropped).",
        maps_to="the container's stdout and stderr (none: /dev/null)",
        quadlet="LogDriver", example="none",
    ),
    Setting(
        key="runtime", kind=Kind.CHOICE, choices=Runtime, default=Runtime.RUNC,
        help="The OCI runtime that runs the container.",
        maps_to="the launcher's runtime binary", example="crun",
    ),
    Setting(
        key="unit", kind=Kind.DIRECTIVES, default=(), section="Unit",
        help="Extra [Unit] directives, as systemd syntax (specifiers like %n expand).",
        maps_to="unit [Unit]",
        example="{Requires: postgres.service, After: postgres.service}",
    ),
    Setting(
        key="service", kind=Kind.DIRECTIVES, default=(), section="Service",
        help="Extra [Service] directives, as systemd syntax (Nice=, CPUWeight=, ...).",
        maps_to="unit [Service]", example="{CPUWeight: 50, Nice: 5}",
    ),
    Setting(
        key="install", kind=Kind.DIRECTIVES, default=(), section="Install",
        help="[Install] directives (WantedBy=, RequiredBy=, UpheldBy=, Alias=); the "
        "generator creates the links itself, as generated units cannot be enabled.",
        maps_to="unit [Install] and the generator's .wants/.requires/.upholds links",
        example="{WantedBy: multi-user.target}",
    ),
)

BY_KEY: Mapping[str, Setting] = {setting.key: setting for setting in SETTINGS}

# Directives hostctl's unit sets itself and that a raw section must not change: the
# launcher depends on them, or a setting says the same thing. Section -> name -> hint.
RESERVED_DIRECTIVES: Mapping[str, Mapping[str, str]] = {
    "Service": {
        "ExecStart": "the unit runs `hostctl launch`; set `command:` or `entrypoint:`",
        "NotifyAccess": "hostctl's launcher needs NotifyAccess=all",
        "KillMode": "hostctl needs KillMode=mixed so the container's init gets SIGTERM",
        "Delegate": "hostctl needs Delegate=yes to place the container in a sub-cgroup",
        "PIDFile": "the launcher reports the container's PID to systemd itself",
        "Restart": "use the `restart:` setting",
        "TimeoutStopSec": "use the `stop_timeout:` setting",
        "User": "use the `user:` setting: the launcher itself must run as the unit's owner",
        "Group": "use the `user:` setting (user:group)",
        "DynamicUser": "use the `user:` setting",
        "KillSignal": "use the `stop_signal:` setting",
        "ExecReload": "use the `reload_signal:` setting",
        "RestartSec": "use the `restart_sec:` setting",
        "MemoryMax": "use the `memory:` setting",
        "CPUQuota": "use the `cpus:` setting",
        "TasksMax": "use the `pids_limit:` setting",
    },
}

# The only [Install] directives a generated unit can honour (as links the generator makes).
INSTALL_DIRECTIVES: Mapping[str, str] = {
    "WantedBy": "wants",
    "RequiredBy": "requires",
    "UpheldBy": "upholds",
    "Alias": "",
}

# key -> default; the model's field defaults come from here.
DEFAULTS: Mapping[str, Any] = {setting.key: setting.default for setting in SETTINGS}
