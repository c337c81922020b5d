"""Parsing the text of one structured setting value (a volume, a port, a size...).

Format-independent: the YAML reader and the quadlet reader hand each item's text here.
Each parser returns the normalised value or raises Invalid(message, hint).
"""

from __future__ import annotations

import ipaddress
import re
import signal
from collections.abc import Mapping
from typing import Any

from hostctl.declarations.checks import (
    Invalid,
    check_abspath,
    check_choice,
    check_env_name,
    check_string,
    suggest,
)
from hostctl.declarations.model import (
    RLIM_INFINITY,
    SECRETS_DIR,
    Device,
    Port,
    Protocol,
    Secret,
    Tmpfs,
    Ulimit,
    Volume,
    VolumeKind,
)

_ACCOUNT = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?|[0-9]+")
_ID_MAX = 2**32 - 2
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[kmgtKMGT]?)(?:i?[bB])?")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NETWORK_NAME = _VOLUME_NAME
_TIMEZONE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
_SYSCTL = re.compile(r"[a-z0-9_]+(?:[./][a-z0-9_-]+)+")
_CAP = re.compile(r"[A-Z_]+")
_DNS_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?::[A-Za-z0-9_.-]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CREDENTIAL = re.compile(r"[A-Za-z0-9_.@-]+")
VOLUME_OPTIONS = (
    "ro", "rw", "z", "Z", "U", "nocopy", "copy", "nosuid", "suid", "nodev", "dev",
    "noexec", "exec", "bind", "rbind", "shared", "rshared", "slave", "rslave", "private",
    "rprivate", "unbindable", "runbindable",
)  # fmt: skip
TMPFS_FLAGS = ("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev")
TMPFS_VALUES = ("size", "mode", "uid", "gid", "nr_inodes")
ULIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
# The kernel's capability list (linux/capability.h, 6.x).
CAPABILITIES = frozenset(
    (
     "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
     "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
     "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
     "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
     "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
     "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
     "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
     "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
     "CAP_CHECKPOINT_RESTORE",
    )
)
NETWORK_MODES = ("host", "none", "bridge")
CPUS_MIN, CPUS_MAX = 0.01, 4096.0


def single_line(text: str, what: str) -> str:
    """TEXT if it has no control characters (it ends up in a file line)."""
    if _CONTROL.search(text):
        raise Invalid(f"{what} contains a line break or control character", "one line")
    return text


def parse_bool(text: str) -> bool:
    """systemd's booleans: 1/yes/y/true/t/on and 0/no/n/false/f/off (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "yes", "y", "true", "t", "on"):
        return True
    if lowered in ("0", "no", "n", "false", "f", "off"):
        return False
    raise Invalid(f"{text!r} is not a boolean", "true or false")


_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|us|h|m|s))+|[0-9]+(?:\.[0-9]+)?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|us|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
DURATION_MAX = 366 * 86400.0  # a year: beyond that a check interval is a typo


def parse_duration(text: str) -> float:
    """Seconds from "30s", "1m30s", "500ms", "2h", a bare number of seconds, or
    "disable" (0: used by health_interval for "no timer")."""
    cleaned = text.strip()
    if cleaned.lower() == "disable":
        return 0.0
    if not _DURATION.fullmatch(cleaned):
        raise Invalid(f"{text!r} is not a duration",
                      "a number of seconds or a duration like 30s, 1m30s, 500ms, 2h")
    if cleaned[-1].isdigit():
        seconds = float(cleaned)
    else:
        seconds = sum(float(number) * _DURATION_UNITS[unit]
                      for number, unit in _DURATION_PART.findall(cleaned))
    if seconds > DURATION_MAX:
        raise Invalid(f"{text!r} is longer than a year", "give a shorter duration")
    return round(seconds, 6)


def format_duration(seconds: float) -> str:
    """SECONDS as systemd and podman write a time span: 30s, 1min30s, 500ms."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{round(seconds * 1000)}ms"
    parts = [(whole // 3600, "h"), (whole // 60 % 60, "min"), (whole % 60, "s")]
    return "".join(f"{n}{u}" for n, u in parts if n) or "0"


def parse_health_cmd(text: str, *, json_array: bool = True) -> tuple[str, ...]:
    """A health command as podman reads --health-cmd: none (disable the image's), a
    JSON array of strings (exec form; only with JSON_ARRAY) or a shell command line; in
    the image config's Healthcheck.Test form: ("NONE",), ("CMD", ARG...) or
    ("CMD-SHELL", TEXT). Text that is not a JSON array of strings is a shell command
    ("[ -f /ready ]" is one), as in podman."""
    stripped = text.strip()
    if not stripped:
        raise Invalid("the health command is empty", "give a command, or none")
    if stripped.lower() == "none":
        return ("NONE",)
    if json_array and stripped.startswith("["):
        import json

        try:
            words = json.loads(stripped)
        except ValueError:
            words = None
        if isinstance(words, list):
            return health_exec(words)
    check_string(text)
    return ("CMD-SHELL", text)


def health_exec(words: object) -> tuple[str, ...]:
    """A list of words (exec form) as ("CMD", WORD...)."""
    if (not isinstance(words, list) or not words
            or not all(isinstance(word, str) for word in words)):
        raise Invalid("the health command is not a list of strings",
                      'e.g. ["curl", "-f", "http://localhost/"]')
    if words[0].upper() in ("CMD", "CMD-SHELL", "NONE"):
        raise Invalid(f"the health command starts with {words[0]!r}",
                      "give the command itself; CMD and CMD-SHELL are the image's spelling")
    return ("CMD", *(check_string(word) for word in words))


def parse_notify(text: str) -> bool | str:
    """`notify`: a boolean, or healthy."""
    if text.strip().lower() == "healthy":
        return "healthy"
    try:
        return parse_bool(text)
    except Invalid:
        raise Invalid(f"{text!r} is not allowed", "true, false or healthy") from None


def parse_int(text: str, minimum: int, what: str = "number") -> int:
    """TEXT as a decimal integer >= MINIMUM."""
    if not re.fullmatch(r"-?[0-9]+", text.strip()):
        raise Invalid(f"{text!r} is not a whole number", f"a {what} >= {minimum}")
    value = int(text)
    if value < minimum:
        raise Invalid(f"{value} is too small", f"a {what} >= {minimum}")
    return value


def parse_size(text: str) -> int:
    """Bytes from "512M", "1.5g", "64KiB" or "1048576" (K, M, G, T are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise Invalid(
            f"{text!r} is not a size",
            "bytes, or a number with K, M, G or T (powers of 1024), e.g. 512M",
        )
    value = int(float(match["number"]) * _SIZE_UNITS[match["unit"].lower()])
    if value < 1:
        raise Invalid(f"{text!r} is zero", "a size of at least 1 byte")
    if value >= 2**63:
        raise Invalid(f"{text!r} is too large", "at most 8E")
    return value


def parse_cpus(text: str) -> float:
    """A number of CPUs between 0.01 and 4096 (CPUQuota= takes whole percents)."""
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{text!r} is not a number", "e.g. 0.5 or 2") from None
    if not CPUS_MIN <= value <= CPUS_MAX:
        raise Invalid(f"{text} CPUs is out of range", f"from {CPUS_MIN} to {CPUS_MAX:g}")
    return round(value, 2)


def parse_group(text: str) -> str:
    """A group name or gid."""
    if not _ACCOUNT.fullmatch(text):
        raise Invalid(f"{text!r} is not a group", "a group name or a gid, e.g. 1000")
    if text.isdigit() and int(text) > _ID_MAX:
        raise Invalid(f"id {text} is out of range", f"ids go from 0 to {_ID_MAX}")
    return text


def parse_hostname(text: str) -> str:
    """An RFC 1123 host name of at most 64 characters (the kernel's limit)."""
    if not _HOSTNAME.fullmatch(text) or len(text) > 64:
        raise Invalid(
            f"{text!r} is not a host name",
            "letters, digits and '-' in dot-separated labels, at most 64 characters",
        )
    return text


def parse_signal(text: str) -> str:
    """A signal as SIGNAME, from "SIGTERM", "term", "15" or "SIGRTMIN+2"."""
    word = text.strip().upper()
    if word.isdigit():
        try:
            return signal.Signals(int(word)).name
        except ValueError:
            raise Invalid(f"no signal number {word}", "e.g. SIGTERM or 15") from None
    name = word if word.startswith("SIG") else f"SIG{word}"
    realtime = re.fullmatch(r"SIGRTMIN\+([0-9]+)", name)
    if realtime and int(realtime[1]) <= signal.SIGRTMAX - signal.SIGRTMIN:
        return name
    if name in signal.Signals.__members__ and name not in ("SIGCLD", "SIGPOLL", "SIGIOT"):
        return name
    names = [s.name for s in signal.Signals]
    raise Invalid(f"{text!r} is not a signal", f"{suggest(name, names)}e.g. SIGTERM, SIGINT")


def parse_timezone(text: str) -> str:
    """"local" or a zone name like Europe/Berlin or UTC (whether it exists is checked when
    the container starts, against the host's zoneinfo)."""
    if text == "local":
        return text
    if not _TIMEZONE.fullmatch(text) or ".." in text:
        raise Invalid(f"{text!r} is not a time zone", "local, UTC or Area/City")
    return text


def parse_platform(text: str) -> str:
    """os/arch[/variant], lower case."""
    if not _PLATFORM.fullmatch(text):
        raise Invalid(f"{text!r} is not a platform", "os/arch[/variant], e.g. linux/arm64/v8")
    return text


def parse_network(text: str) -> str:
    """host, none, bridge or a network name."""
    if text in NETWORK_MODES or _NETWORK_NAME.fullmatch(text):
        return text
    raise Invalid(
        f"{text!r} is not a network",
        "host, none, bridge or a network name (letters, digits, _ . -)",
    )


def parse_joined_network(text: str) -> str:
    """A network a container joins besides its first: bridge or a network's name."""
    if text in ("host", "none") or not parse_network(text):
        raise Invalid(f"{text!r} cannot be one of several networks",
                      "bridge or a declared network's name")
    return text


def parse_pod(text: str) -> str:
    """The name of a declared pod (its file stem: NAME.yaml or NAME.pod)."""
    if _NETWORK_NAME.fullmatch(text) and not text.startswith("."):
        return text
    raise Invalid(f"{text!r} is not a pod name",
                  "the pod's file name without .pod or .yaml (letters, digits, _ . -)")


def parse_capability(text: str) -> str:
    """CAP_X (or ALL) from "net_admin", "CAP_NET_ADMIN" or "all"."""
    word = text.strip().upper()
    if word == "ALL":
        return word
    name = word if word.startswith("CAP_") else f"CAP_{word}"
    if not _CAP.fullmatch(name) or name not in CAPABILITIES:
        raise Invalid(
            f"{text!r} is not a capability",
            f"{suggest(name, CAPABILITIES)}e.g. NET_ADMIN, CAP_SYS_TIME or ALL",
        )
    return name


def parse_host_path(text: str) -> str:
    """An absolute host path (env_files)."""
    return check_abspath(single_line(text, "path"))


def _split_options(text: str) -> tuple[str, ...]:
    return tuple(option for option in text.split(",") if option)


def parse_volume(text: str) -> Volume:
    """SRC:DST[:OPTIONS], or DST alone (an anonymous volume)."""
    parts = check_string(text).split(":")
    if len(parts) == 1 and parts[0].startswith("/"):
        return Volume("", check_abspath(parts[0]), VolumeKind.ANONYMOUS)
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise Invalid(
            f"{text!r} is not SRC:DST[:OPTIONS]",
            "e.g. /srv/data:/data (bind mount), data:/data:ro (named volume) or /data "
            "(an anonymous volume, new at each start)",
        )
    source, destination = parts[0], parts[1]
    options = _split_options(parts[2]) if len(parts) == 3 else ()
    for option in options:
        check_choice(option, VOLUME_OPTIONS)
    check_abspath(destination)
    if source.startswith("/"):
        kind = VolumeKind.BIND
    elif _VOLUME_NAME.fullmatch(source) and not source.endswith(".volume"):
        kind = VolumeKind.VOLUME
    else:
        raise Invalid(
            f"{source!r} is neither an absolute host path nor a volume name",
            "a bind source starts with '/'; a volume name is letters, digits, _ . -",
        )
    return Volume(
        source=source,
        destination=destination,
        kind=kind,
        read_only="ro" in options,
        options=tuple(option for option in options if option not in ("ro", "rw")),
    )


def parse_tmpfs(text: str) -> Tmpfs:
    """DST[:OPTIONS]; size= is converted to bytes."""
    destination, _, rest = check_string(text).partition(":")
    check_abspath(destination)
    return Tmpfs(destination, tuple(_tmpfs_option(o) for o in _split_options(rest)))


def _tmpfs_option(option: str) -> str:
    name, equals, value = option.partition("=")
    if not equals:
        check_choice(name, TMPFS_FLAGS + TMPFS_VALUES)
        if name in TMPFS_VALUES:
            raise Invalid(f"tmpfs option {name} needs a value", f"e.g. {name}=...")
        return name
    check_choice(name, TMPFS_VALUES)
    if name == "size":
        return f"size={parse_size(value)}"
    if name == "mode":
        if not re.fullmatch(r"[0-7]{3,4}", value):
            raise Invalid(f"mode {value!r} is not octal", "e.g. mode=1777")
        return option
    parse_int(value, 0, name)
    return option


def parse_device(text: str) -> Device:
    """[-]HOST[:CONTAINER][:PERMISSIONS]."""
    optional = text.startswith("-")
    parts = check_string(text.removeprefix("-")).split(":")
    permissions = "rwm"
    if len(parts) > 1 and not parts[-1].startswith("/"):
        permissions = parts.pop()
        if not permissions or not re.fullmatch(r"r?w?m?", permissions):
            raise Invalid(f"{permissions!r} are not device permissions", "a subset of rwm")
    if len(parts) not in (1, 2):
        raise Invalid(f"{text!r} is not a device", "HOST[:CONTAINER][:rwm], e.g. /dev/fuse")
    host = check_abspath(parts[0])
    container = check_abspath(parts[1]) if len(parts) == 2 else host
    return Device(host, container, permissions, optional)


def parse_ulimit(text: str) -> Ulimit:
    """NAME=SOFT[:HARD]; -1 or "unlimited" for no limit."""
    name, equals, limits = text.partition("=")
    name = name.strip().lower().removeprefix("rlimit_")
    if not equals:
        raise Invalid(f"{text!r} is not NAME=SOFT[:HARD]", "e.g. nofile=1024:4096")
    check_choice(name, ULIMIT_NAMES)
    soft_text, _, hard_text = limits.partition(":")
    soft = _limit(soft_text)
    hard = _limit(hard_text) if hard_text else soft
    if soft > hard:
        raise Invalid(f"soft limit {soft} is above the hard limit {hard}", "SOFT <= HARD")
    return Ulimit(name, soft, hard)


def _limit(text: str) -> int:
    if text.strip() in ("-1", "unlimited", "infinity"):
        return RLIM_INFINITY
    return parse_int(text, 0, "limit")


def parse_sysctl_name(text: str) -> str:
    """A sysctl name like net.ipv4.ip_forward (dots or slashes)."""
    if not _SYSCTL.fullmatch(text):
        raise Invalid(f"{text!r} is not a sysctl name", "e.g. net.ipv4.ip_forward")
    return text


def parse_label_name(text: str) -> str:
    """A label or annotation name: not empty, one line, no '='."""
    if not text or "=" in text:
        raise Invalid(f"{text!r} is not a label name", "not empty, without '='")
    return single_line(text, "name")


def parse_secret(name: str, source: str | None = None, target: str | None = None,
                 env: str | None = None) -> Secret:
    """A secret: NAME a credential id; SOURCE a host path or a credential name (default
    NAME); TARGET an absolute path or a file name under /run/secrets (default NAME), or
    ENV the environment variable that holds it instead."""
    if not _CREDENTIAL.fullmatch(name):
        raise Invalid(f"{name!r} is not a secret name", "letters, digits and _ . @ -")
    source = source if source is not None else name
    if not source.startswith("/") and not _CREDENTIAL.fullmatch(source):
        raise Invalid(
            f"secret source {source!r} is neither an absolute path nor a credential name",
            "e.g. /etc/app/password, or the name of a credential systemd holds",
        )
    single_line(source, "secret source")
    if env is not None:
        if target is not None:
            raise Invalid("a secret is a file (target) or a variable (env), not both",
                          "keep target: or env:")
        return Secret(name, source, "", check_env_name(env))
    target = target if target is not None else name
    if not target.startswith("/"):
        if "/" in target or target in ("", ".", ".."):
            raise Invalid(f"secret target {target!r} is not a file name", "e.g. password")
        target = f"{SECRETS_DIR}/{target}"
    return Secret(name, source, check_abspath(single_line(target, "secret target")))


def parse_port(text: str) -> tuple[Port, ...]:
    """[IP:]HOST:CONTAINER[/PROTOCOL]; port ranges of equal length give one Port each."""
    rest, _, protocol_text = text.partition("/")
    protocol = Protocol(check_choice(protocol_text or "tcp", [p.value for p in Protocol]))
    host_ip, ports = _port_address(rest)
    parts = ports.split(":")
    if len(parts) != 2:
        raise Invalid(
            f"{text!r} is not [IP:]HOST:CONTAINER[/tcp|udp]",
            "both ports are needed, e.g. 8080:80 or 127.0.0.1:8080:80",
        )
    try:
        host, container = _port_range(parts[0]), _port_range(parts[1])
    except Invalid as err:
        raise Invalid(f"{text!r}: {err.message}", err.hint) from None
    if len(host) != len(container):
        raise Invalid(f"{text!r}: the two ranges differ in length", "e.g. 8000-8009:80-89")
    return tuple(Port(host_ip, h, c, protocol) for h, c in zip(host, container, strict=True))


def _port_address(text: str) -> tuple[str | None, str]:
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]:")
        if not bracket:
            raise Invalid(f"{text!r}: unclosed '['", "e.g. [::1]:8080:80")
        return parse_address(address), rest
    if text.count(":") == 2:
        address, _, rest = text.partition(":")
        return (parse_address(address) if address else None), rest
    return None, text


def _port_range(text: str) -> range:
    first, dash, last = text.partition("-")
    low = _port(first)
    high = _port(last) if dash else low
    if high < low:
        raise Invalid(f"range {text!r} goes backwards", "LOW-HIGH")
    return range(low, high + 1)


def _port(text: str) -> int:
    if not text:
        raise Invalid("a port is missing", "give both ports: [IP:]HOST:CONTAINER")
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise Invalid(f"{text!r} is not a port", "a number from 1 to 65535")
    return int(text)


def parse_address(text: str) -> str:
    """An IPv4 or IPv6 address, normalised."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(f"{text!r} is not an IP address", "e.g. 192.0.2.1 or 2001:db8::1") from None


def parse_domain(text: str) -> str:
    """A DNS search domain (or "." for none)."""
    if text == ".":
        return text
    return parse_hostname(text)


def parse_dns_option(text: str) -> str:
    """A resolv.conf option: a word, optionally :N (ndots:2, timeout:3, edns0)."""
    if not _DNS_OPTION.fullmatch(text):
        raise Invalid(f"{text!r} is not a resolver option", "e.g. ndots:2, edns0, rotate")
    return text


def parse_host_entry(text: str) -> tuple[str, str]:
    """NAME:IP (the IP may be IPv6, or host-gateway)."""
    name, colon, address = text.partition(":")
    if not colon:
        raise Invalid(f"{text!r} is not NAME:IP", "e.g. db.local:192.0.2.10")
    return parse_host_pair(name, address)


def parse_host_pair(name: str, address: str) -> tuple[str, str]:
    """(NAME, IP) for /etc/hosts."""
    parse_hostname(name)
    if address == "host-gateway":
        return name, address
    return name, parse_address(address)


class Conflict(Invalid):
    """Two settings that contradict each other; key is the one reported."""

    def __init__(self, key: str, message: str, hint: str) -> None:
        super().__init__(message, hint)
        self.key = key


_SERVICE_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+")


def parse_service_name(text: str) -> str:
    """A unit name for ServiceName=: NAME or NAME.service, returned as NAME.service."""
    stem = text.removesuffix(".service")
    if not _SERVICE_NAME.fullmatch(stem) or stem.startswith(".") or stem.count("@") > 1:
        raise Invalid(f"{text!r} is not a service name", "e.g. web-frontend")
    if stem.endswith("@") or len(stem) > 247:
        raise Invalid(f"{text!r} cannot name one service", "a plain name, e.g. web-frontend")
    return f"{stem}.service"


def check_combination(settings: Mapping[str, Any]) -> None:
    """Raise Conflict when settings read one by one contradict each other."""
    from hostctl.declarations.checks import check_oneshot

    problem = check_oneshot(settings.get("service", ()))
    if problem:
        raise Conflict("service", problem, "add Type=oneshot or drop RemainAfterExit=")
    if settings.get("notify") and any(
        name == "Type" and values and values[-1] == "oneshot"
        for name, values in settings.get("service", ())
    ):
        raise Conflict("service", "Type=oneshot with Notify=",
                       "a oneshot unit is done when the container ends; drop Notify=")
    user, group = settings.get("user"), settings.get("group")
    if user and ":" in user and group:
        raise Conflict(
            "group", "the group is given twice", "drop `group:` or the :group in `user:`"
        )
    mounts: dict[str, str] = {}
    for key in ("volumes", "tmpfs"):
        for mount in settings.get(key, ()):
            if mount.destination in mounts:
                raise Conflict(
                    key,
                    f"two mounts at {mount.destination}",
                    f"the other one is in `{mounts[mount.destination]}:`; keep one",
                )
            mounts[mount.destination] = key
    for key in ("health_timeout", "health_startup_timeout", "health_startup_interval"):
        if key in settings and not settings[key]:
            raise Conflict(key, "a zero duration", "give a duration of at least 1ms, e.g. 30s")
    _check_health(settings)
    _check_pod_member(settings)
    _check_networks(settings)
    from hostctl.declarations import values_runtime

    values_runtime.check_combination(settings)
    published: set[tuple[str | None, int, str]] = set()
    for port in settings.get("ports", ()):
        ident = (port.host_ip, port.host_port, str(port.protocol))
        if ident in published:
            raise Conflict("ports", f"host port {port.host_port} is published twice", "keep one")
        published.add(ident)


# A pod member's settings that belong to the pod (its namespaces are the pod's).
POD_OWNED = ("network", "networks", "network_aliases_by_network", "ports", "hostname", "dns",
             "dns_search", "dns_options", "add_hosts", "shm_size")


def _check_networks(settings: Mapping[str, Any]) -> None:
    more = settings.get("networks", ())
    first = settings.get("network", "bridge")
    if more and first in NETWORK_MODES and first != "bridge":
        raise Conflict("networks", f"network: {first} with more networks",
                       "give `network:` a bridge network, or drop `networks:`")
    seen = {first}
    for name in more:
        if name in seen:
            raise Conflict("networks", f"network {name} is joined twice", "keep one")
        seen.add(name)
    for name, _ in settings.get("network_aliases_by_network", ()):
        if name not in seen:
            raise Conflict("network_aliases_by_network",
                           f"aliases on network {name}, which the container does not join",
                           "name `network` or one of `networks`")
        if name in NETWORK_MODES:
            raise Conflict("network_aliases_by_network", f"aliases on network {name}",
                           "names are listed on declared networks only, not on "
                           f"{name}: drop them or join a declared network")


def _check_pod_member(settings: Mapping[str, Any]) -> None:
    pod = settings.get("pod")
    if not pod:
        return
    for key in POD_OWNED:
        if key in settings:
            raise Conflict(key, f"a member of pod {pod} cannot set {key}",
                           f"the pod's network, ports and names are shared: set {key} on "
                           f"the pod {pod} instead")


def _check_health(settings: Mapping[str, Any]) -> None:
    startup = settings.get("health_startup_cmd")
    if startup == ("NONE",):
        raise Conflict("health_startup_cmd", "a startup probe cannot be none",
                       "leave health_startup_cmd out for no startup probe")
    if startup and settings.get("health_cmd") == ("NONE",):
        raise Conflict("health_startup_cmd", "a startup probe without a health check",
                       "the startup probe gates the regular check: set health_cmd too")
    if settings.get("notify") == "healthy" and settings.get("health_cmd") == ("NONE",):
        raise Conflict("notify", "notify: healthy with health_cmd: none",
                       "give a health check, or use notify: false")
