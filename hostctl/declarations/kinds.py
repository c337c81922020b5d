"""The kinds of setting values and the closed choices, used by the settings table."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Kind(StrEnum):
    """The shape of a setting's value, which decides how it is read and checked
    (readers: yaml_reader and quadlet_reader; value rules: checks and values)."""

    IMAGE = "image"  # an image reference, checked by hostctl.images.reference
    ARGV = "argv"  # a list of strings, or one string split like a shell would
    ENV = "env"  # NAME -> string (a map, or a list of NAME=VALUE)
    ABSPATH = "abspath"  # an absolute path inside the container
    ABSPATHS = "abspaths"  # a list of absolute host paths
    USER = "user"  # name or uid, optionally :group or :gid
    GROUP = "group"  # a group name or gid
    GROUPS = "groups"  # a list of group names or gids
    HOSTNAME = "hostname"  # an RFC 1123 host name
    SECONDS = "seconds"  # whole seconds, an integer >= 1
    DELAY = "delay"  # whole seconds, an integer >= 0
    COUNT = "count"  # an integer >= 1
    SIZE = "size"  # bytes: an integer, or a number with K, M, G or T (powers of 1024)
    CPUS = "cpus"  # a positive number of CPUs, fractions allowed
    BOOL = "bool"  # true or false
    CHOICE = "choice"  # one of Setting.choices
    SIGNAL = "signal"  # a signal name or number, normalised to SIGNAME
    TIMEZONE = "timezone"  # "local" or an Area/City zone name
    PLATFORM = "platform"  # os/arch[/variant]
    NETWORK = "network"  # host, none, bridge or a network name
    NETWORKS = "networks"  # a list of network names (bridge or declared networks)
    NETWORK_ALIASES = "network_aliases"  # NETWORK -> a list of host names
    CAPS = "caps"  # a list of capabilities, normalised to CAP_X (or ALL)
    VOLUMES = "volumes"  # a list of SRC:DST[:OPTIONS]
    TMPFS = "tmpfs"  # a list of DST[:OPTIONS]
    DEVICES = "devices"  # a list of [-]HOST[:CONTAINER][:rwm]
    ULIMITS = "ulimits"  # NAME -> SOFT[:HARD] (a map, or a list of NAME=SOFT[:HARD])
    SYSCTLS = "sysctls"  # NAME -> value (a map, or a list of NAME=VALUE)
    LABELS = "labels"  # NAME -> string (a map, or a list of NAME=VALUE)
    SECRETS = "secrets"  # a list of NAME or {name, source, target}
    PORTS = "ports"  # a list of [IP:]HOST:CONTAINER[/PROTOCOL]
    ADDRESSES = "addresses"  # a list of IP addresses
    DOMAINS = "domains"  # a list of DNS domain names
    DNS_OPTIONS = "dns_options"  # a list of resolv.conf options
    HOSTS = "hosts"  # NAME -> IP (a map, or a list of NAME:IP)
    DIRECTIVES = "directives"  # raw systemd directives for one unit section
    DURATION = "duration"  # seconds >= 0: a number, or 30s, 1m30s, 500ms, 2h
    HEALTH_CMD = "health_cmd"  # a string (/bin/sh -c), a list (exec form) or none
    NOTIFY = "notify"  # true, false or healthy
    SERVICE_NAME = "service_name"  # a unit name ending in .service (or its stem)
    BUILD = "build"  # {context, file, args, target}: how to build the image
    POD = "pod"  # the name of a declared pod (quadlet: NAME.pod)
    IPV4 = "ipv4"  # one IPv4 address
    IPV6 = "ipv6"  # one IPv6 address
    PROC_PATHS = "proc_paths"  # absolute paths in the container (a list, or one a:b:c)
    SECCOMP = "seccomp"  # unconfined, or an absolute host path of a JSON profile


# How each kind is spelled in the docs and in an Ansible argument_spec.
KIND_DOC_TYPE: Mapping[Kind, str] = {
    Kind.IMAGE: "str",
    Kind.ARGV: "list[str] | str",
    Kind.ENV: "map[str, str]",
    Kind.ABSPATH: "str (absolute path)",
    Kind.ABSPATHS: "list[str] (absolute host paths)",
    Kind.USER: "str (user[:group] or uid[:gid])",
    Kind.GROUP: "str (group name or gid)",
    Kind.GROUPS: "list[str] (group names or gids)",
    Kind.HOSTNAME: "str (host name)",
    Kind.SERVICE_NAME: "str (unit name)",
    Kind.SECONDS: "int (seconds, >= 1)",
    Kind.DELAY: "int (seconds, >= 0)",
    Kind.COUNT: "int (>= 1)",
    Kind.SIZE: "int (bytes) | str (e.g. 512M)",
    Kind.CPUS: "float (CPUs)",
    Kind.BOOL: "bool",
    Kind.CHOICE: "str (choice)",
    Kind.SIGNAL: "str (signal name, e.g. SIGTERM)",
    Kind.TIMEZONE: "str (local or Area/City)",
    Kind.PLATFORM: "str (os/arch[/variant])",
    Kind.NETWORK: "str (host | none | bridge | NAME)",
    Kind.NETWORKS: "list[str] (bridge | NAME)",
    Kind.NETWORK_ALIASES: "map[str, list[str]] (NETWORK: [host names])",
    Kind.CAPS: "list[str] (capabilities)",
    Kind.VOLUMES: "list[str] (SRC:DST[:OPTIONS])",
    Kind.TMPFS: "list[str] (DST[:OPTIONS])",
    Kind.DEVICES: "list[str] ([-]HOST[:CONTAINER][:rwm])",
    Kind.ULIMITS: "map[str, int | str] (NAME: SOFT[:HARD])",
    Kind.SYSCTLS: "map[str, str]",
    Kind.LABELS: "map[str, str]",
    Kind.SECRETS: "list[str | map] (NAME or {name, source, target | env})",
    Kind.PORTS: "list[str] ([IP:]HOST:CONTAINER[/tcp|udp])",
    Kind.ADDRESSES: "list[str] (IP addresses)",
    Kind.DOMAINS: "list[str] (domain names)",
    Kind.DNS_OPTIONS: "list[str] (resolv.conf options)",
    Kind.HOSTS: "map[str, str] (NAME: IP) | list[str] (NAME:IP)",
    Kind.DIRECTIVES: "map[str, str | list[str]]",
    Kind.DURATION: "str (duration: 30s, 1m30s, 500ms) | number (seconds)",
    Kind.HEALTH_CMD: "str (run by /bin/sh -c) | list[str] (exec form) | none",
    Kind.NOTIFY: "bool | healthy",
    Kind.BUILD: "map (context, file, args, target)",
    Kind.POD: "str (pod name)",
    Kind.IPV4: "str (IPv4 address)",
    Kind.IPV6: "str (IPv6 address)",
    Kind.PROC_PATHS: "list[str] (absolute paths in the container)",
    Kind.SECCOMP: "str (unconfined or an absolute host path)",
}
KIND_ANSIBLE_TYPE: Mapping[Kind, str] = {
    Kind.IMAGE: "str",
    Kind.ARGV: "raw",
    Kind.ENV: "raw",
    Kind.ABSPATH: "path",
    Kind.ABSPATHS: "list",
    Kind.USER: "str",
    Kind.GROUP: "str",
    Kind.GROUPS: "list",
    Kind.HOSTNAME: "str",
    Kind.SERVICE_NAME: "str",
    Kind.SECONDS: "int",
    Kind.DELAY: "int",
    Kind.COUNT: "int",
    Kind.SIZE: "raw",
    Kind.CPUS: "float",
    Kind.BOOL: "bool",
    Kind.CHOICE: "str",
    Kind.SIGNAL: "str",
    Kind.TIMEZONE: "str",
    Kind.PLATFORM: "str",
    Kind.NETWORK: "str",
    Kind.NETWORKS: "list",
    Kind.NETWORK_ALIASES: "dict",
    Kind.CAPS: "list",
    Kind.VOLUMES: "list",
    Kind.TMPFS: "list",
    Kind.DEVICES: "list",
    Kind.ULIMITS: "raw",
    Kind.SYSCTLS: "raw",
    Kind.LABELS: "raw",
    Kind.SECRETS: "list",
    Kind.PORTS: "list",
    Kind.ADDRESSES: "list",
    Kind.DOMAINS: "list",
    Kind.DNS_OPTIONS: "list",
    Kind.HOSTS: "raw",
    Kind.DIRECTIVES: "dict",
    Kind.DURATION: "raw",
    Kind.HEALTH_CMD: "raw",
    Kind.NOTIFY: "raw",
    Kind.BUILD: "dict",
    Kind.POD: "str",
    Kind.IPV4: "str",
    Kind.IPV6: "str",
    Kind.PROC_PATHS: "list",
    Kind.SECCOMP: "str",
}


class Restart(StrEnum):
    """systemd's Restart= values, which the unit gets unchanged."""

    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_WATCHDOG = "on-watchdog"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


class Pull(StrEnum):
    """When the launcher contacts the registry for the image (podman's --pull)."""

    MISSING = "missing"  # only when the image is not in the store
    ALWAYS = "always"  # at every start; a failed pull fails the start
    NEWER = "newer"  # at every start; a failed pull falls back to the stored image
    NEVER = "never"  # never; a missing image fails the start


class Runtime(StrEnum):
    """The OCI runtime that runs the container."""

    RUNC = "runc"
    CRUN = "crun"


class HealthOnFailure(StrEnum):
    """What a health check does when the container becomes unhealthy (podman's
    --health-on-failure); kill, stop and restart act through the container's unit."""

    NONE = "none"  # only the status changes
    KILL = "kill"  # SIGKILL to the container's init: the unit fails, `restart:` applies
    STOP = "stop"  # stop the unit
    RESTART = "restart"  # restart the unit (systemd's start limits apply)


class LogDriver(StrEnum):
    """Where the container's output goes (podman's --log-driver). journald and
    passthrough are the same here: the container's stdout and stderr are the unit's, which
    systemd writes to the journal under the unit's name."""

    JOURNALD = "journald"
    PASSTHROUGH = "passthrough"
    NONE = "none"  # dropped: the container's stdout and stderr are /dev/null


class AutoUpdate(StrEnum):
    """Where `hostctl auto-update` looks for a newer image (podman's AutoUpdate=)."""

    REGISTRY = "registry"  # the registry's digest for the reference differs
    LOCAL = "local"  # the store's image for the reference differs


class ExitPolicy(StrEnum):
    """What a pod's unit does when its last member stops (podman's --exit-policy)."""

    STOP = "stop"  # the pod's unit stops too (quadlet's default)
    CONTINUE = "continue"  # the pod's unit stays active, holding its namespaces
