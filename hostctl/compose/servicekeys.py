"""One compose service's keys as container settings (hostctl.declarations.settings).

Each compose key has a handler here, or is listed as ignored (no meaning on one host,
with the reason) or handled by the translation itself (dependencies, networks, replicas).
Any other key is an error naming the compose file, line and key. Values are checked
with the declaration readers' own parsers (hostctl.declarations.values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hostctl.compose.source import Project
from hostctl.declarations import values
from hostctl.declarations.checks import (
    Invalid,
    check_abspath,
    check_choice,
    check_env_name,
    split_argv,
    suggest,
)
from hostctl.declarations.model import Build, Tmpfs, Volume, VolumeKind
from hostctl.declarations.settings import Pull, Restart
from hostctl.errors import DeclarationError

Settings = dict[str, Any]

# Keys with no meaning for a service on one host: reported, not refused.
IGNORED: Mapping[str, str] = {
    "expose": "every port is reachable from the service's network",
    "profiles": "the active profiles were applied when the project was loaded",
    "extends": "merged when the project was loaded",
    "env_file": "merged into `environment` when the project was loaded",
    "logging": "the container's output goes to its unit's journal",
    "stdin_open": "a service has no terminal attached",
    "tty": "a service has no terminal attached",
    "attach": "output goes to the unit's journal (`hostctl compose logs`)",
    "mac_address": "the bridge gives addresses itself",
    "links": "services reach each other by service name on their network",
    "develop": "compose watch is a development tool",
}
# Keys the translation handles itself (hostctl.compose.translate).
HANDLED = ("depends_on", "networks", "network_mode", "deploy", "scale", "container_name")
# deploy: keys with no meaning on one host.
DEPLOY_IGNORED: Mapping[str, str] = {
    "mode": "one host runs the replicas it is given",
    "placement": "there is one host",
    "update_config": "services are replaced by restarting their units",
    "rollback_config": "services are replaced by restarting their units",
    "endpoint_mode": "services are found by name on their network",
    "labels": "swarm service labels have no container to go to",
}
_RESTART = {"no": Restart.NO, "always": Restart.ALWAYS, "on-failure": Restart.ON_FAILURE,
            "unless-stopped": Restart.ALWAYS}
_POLICY_CONDITIONS = {"none": Restart.NO, "on-failure": Restart.ON_FAILURE,
                      "any": Restart.ALWAYS}
_PULL = {"always": Pull.ALWAYS, "never": Pull.NEVER, "missing": Pull.MISSING,
         "if_not_present": Pull.MISSING}


class ServiceReader:
    """Reads service NAME of PROJECT into container settings, remembering where each
    setting came from (origins) and what was ignored."""

    def __init__(self, project: Project, name: str) -> None:
        self.project = project
        self.name = name
        self.settings: Settings = {}
        self.origins: dict[str, str] = {}
        self.ignored: list[tuple[str, str]] = []
        self.unit: list[tuple[str, str]] = []  # [Unit] directives
        self.service: list[tuple[str, str]] = []  # [Service] directives

    def where(self, *path: str | int) -> str:
        return self.project.where("services", self.name, *path)

    def error(self, message: str, *path: str | int, hint: str | None = None
              ) -> DeclarationError:
        return DeclarationError(message, where=self.where(*path), hint=hint)

    def parsed(self, parse: Callable[[str], Any], text: object, *path: str | int) -> Any:
        """PARSE(str(TEXT)), its Invalid as an error at PATH."""
        try:
            return parse(_text(text))
        except Invalid as err:
            raise self.error(err.message, *path, hint=err.hint) from None

    def set(self, setting: str, value: Any, *path: str | int) -> None:
        self.settings[setting] = value
        self.origins.setdefault(setting, self.where(*path))

    def ignore(self, reason: str, *path: str | int) -> None:
        dotted = ".".join(["services", self.name, *(str(p) for p in path)])
        self.ignored.append((dotted, reason))

    def read(self, service: Mapping[str, Any]) -> None:
        """Every key of SERVICE but those the translation handles."""
        for key, value in service.items():
            if key in HANDLED:
                continue
            if key in IGNORED:
                if key not in ("profiles", "extends", "env_file"):
                    self.ignore(IGNORED[key], key)
                continue
            handler = _HANDLERS.get(key)
            if handler is None:
                raise self.error(
                    f"compose key {key!r} is not supported by hostctl", key,
                    hint=suggest(key, [*_HANDLERS, *IGNORED, *HANDLED])
                    + "remove it, or run this service another way")
            if value is not None:
                handler(self, value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _words(reader: ServiceReader, value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return reader.parsed(split_argv, value, key)  # type: ignore[no-any-return]
    if not isinstance(value, list):
        raise reader.error("expected a list of strings", key)
    return tuple(_text(word) for word in value)


def _strings(reader: ServiceReader, value: object, key: str) -> list[str]:
    if isinstance(value, (str, int, float)):
        return [_text(value)]
    if not isinstance(value, list):
        raise reader.error("expected a list", key)
    return [_text(item) for item in value]


def _pairs(reader: ServiceReader, value: object, key: str, sep: str = "="
           ) -> list[tuple[str, str | None]]:
    """A map, or a list of NAME=VALUE (NAME alone: no value)."""
    if isinstance(value, Mapping):
        return [(str(k), None if v is None else _text(v)) for k, v in value.items()]
    if isinstance(value, list):
        result: list[tuple[str, str | None]] = []
        for item in value:
            name, found, text = _text(item).partition(sep)
            result.append((name, text if found else None))
        return result
    raise reader.error("expected a map or a list of NAME=VALUE", key)


def _image(reader: ServiceReader, value: object) -> None:
    reader.set("image", _text(value), "image")


def _build(reader: ServiceReader, value: object) -> None:
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, Mapping):
        raise reader.error("expected a map or a context path", "build")
    known = ("context", "dockerfile", "args", "target")
    for key in value:
        if key not in known:
            raise reader.error(f"build key {key!r} is not supported by hostctl",
                               "build", key, hint=f"hostctl build takes {', '.join(known)}")
    args = tuple((k, v or "") for k, v in _pairs(reader, value.get("args") or {}, "build"))
    context = _text(value.get("context") or reader.project.directory)
    if not context.startswith("/"):
        context = str(reader.project.directory / context)
    dockerfile = value.get("dockerfile")
    target = value.get("target")
    reader.set("build", Build(context, None if dockerfile is None else _text(dockerfile),
                              args, None if target is None else _text(target)), "build")


def _command(reader: ServiceReader, value: object) -> None:
    reader.set("command", _words(reader, value, "command"), "command")


def _entrypoint(reader: ServiceReader, value: object) -> None:
    reader.set("entrypoint", _words(reader, value, "entrypoint"), "entrypoint")


def _environment(reader: ServiceReader, value: object) -> None:
    env = []
    for name, text in _pairs(reader, value, "environment"):
        reader.parsed(check_env_name, name, "environment", name)
        if text is not None:  # a name without a value, unset where the project was loaded
            env.append((name, text))
    reader.set("env", tuple(env), "environment")


def _ports(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, list):
        raise reader.error("expected a list", "ports")
    ports = []
    for index, port in enumerate(value):
        if not isinstance(port, Mapping):
            port = {"target": port}
        published = _text(port.get("published") or "")
        if not published:
            raise reader.error(
                f"port {port.get('target')} has no published host port", "ports", index,
                hint="hostctl publishes fixed host ports: write HOST:CONTAINER")
        address = _text(port.get("host_ip") or "")
        address = f"[{address}]" if ":" in address else address
        target = _text(port.get("target"))
        if "-" in published and "-" not in target:
            raise reader.error(f"host port range {published} for one container port",
                               "ports", index, hint="publish one host port")
        text = f"{address}:{published}:{target}" if address else f"{published}:{target}"
        protocol = _text(port.get("protocol") or "tcp")
        ports += reader.parsed(values.parse_port, f"{text}/{protocol}", "ports", index)
    reader.set("ports", tuple(ports), "ports")


def _volumes(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, list):
        raise reader.error("expected a list", "volumes")
    mounts: list[Volume] = []
    tmpfs: list[Tmpfs] = list(reader.settings.get("tmpfs", ()))
    for index, mount in enumerate(value):
        if not isinstance(mount, Mapping):
            raise reader.error("expected the long syntax (the loader gives it)",
                               "volumes", index)
        kind = mount.get("type")
        if kind == "tmpfs":
            tmpfs.append(_tmpfs_mount(reader, mount, index))
        elif kind in ("bind", "volume"):
            mounts.append(_mount(reader, mount, index))
        else:
            raise reader.error(f"volume type {kind!r} is not supported by hostctl",
                               "volumes", index, "type", hint="bind, volume or tmpfs")
    reader.set("volumes", tuple(mounts), "volumes")
    if tmpfs:
        reader.set("tmpfs", tuple(tmpfs), "volumes")


def _mount(reader: ServiceReader, mount: Mapping[str, Any], index: int) -> Volume:
    target = reader.parsed(check_abspath, mount.get("target"), "volumes", index)
    options: list[str] = []
    for key in mount:
        if key not in ("type", "source", "target", "read_only", "bind", "volume",
                       "consistency"):
            raise reader.error(f"volume key {key!r} is not supported by hostctl",
                               "volumes", index, key)
    bind = mount.get("bind") or {}
    if bind.get("propagation"):
        options.append(reader.parsed(lambda t: check_choice(t, values.VOLUME_OPTIONS),
                                     bind["propagation"], "volumes", index, "bind"))
    if bind.get("selinux"):
        options.append(_text(bind["selinux"]))
    if (mount.get("volume") or {}).get("nocopy"):
        options.append("nocopy")
    if (mount.get("volume") or {}).get("subpath"):
        raise reader.error("volume subpath is not supported by hostctl",
                           "volumes", index, "volume", "subpath")
    if mount["type"] == "bind":
        source = reader.parsed(check_abspath, mount.get("source"), "volumes", index)
        kind = VolumeKind.BIND
    else:
        source = volume_name(reader, mount.get("source"), target)
        kind = VolumeKind.VOLUME
    return Volume(source, target, kind, bool(mount.get("read_only")), tuple(options))


def volume_name(reader: ServiceReader, source: object, target: str) -> str:
    """The hostctl volume a compose volume SOURCE names: the top-level volume's name; an
    anonymous volume (no source) is a named one of its own, kept per service and path."""
    if not source:
        import hashlib

        digest = hashlib.sha256(target.encode()).hexdigest()[:12]
        return f"{reader.project.name}_{reader.name}_{digest}"
    declared = (reader.project.model.get("volumes") or {}).get(source)
    if declared is None:
        raise reader.error(f"volume {source!r} is not declared in the top-level volumes",
                           "volumes", hint=f"add volumes: {{{source}: {{}}}}")
    return _text((declared or {}).get("name") or f"{reader.project.name}_{source}")


def _tmpfs_mount(reader: ServiceReader, mount: Mapping[str, Any], index: int) -> Tmpfs:
    options = []
    spec = mount.get("tmpfs") or {}
    if spec.get("size"):
        options.append(f"size={_text(spec['size'])}")
    if spec.get("mode"):
        mode = spec["mode"]
        options.append(f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}")
    if mount.get("read_only"):
        options.append("ro")
    text = ":".join([_text(mount.get("target")), ",".join(options)]) if options else \
        _text(mount.get("target"))
    return reader.parsed(values.parse_tmpfs, text, "volumes", index)  # type: ignore[no-any-return]


def _tmpfs(reader: ServiceReader, value: object) -> None:
    found = list(reader.settings.get("tmpfs", ()))
    found += [reader.parsed(values.parse_tmpfs, text, "tmpfs")
              for text in _strings(reader, value, "tmpfs")]
    reader.set("tmpfs", tuple(found), "tmpfs")


def _restart(reader: ServiceReader, value: object) -> None:
    policy, _, count = _text(value).partition(":")
    if policy not in _RESTART:
        raise reader.error(f"restart policy {policy!r} is unknown", "restart",
                           hint="no, always, on-failure[:N] or unless-stopped")
    reader.set("restart", _RESTART[policy], "restart")
    if count:
        attempts = reader.parsed(lambda t: values.parse_int(t, 1, "count"), count, "restart")
        reader.unit.append(("StartLimitBurst", str(attempts)))


def _healthcheck(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, Mapping):
        raise reader.error("expected a map", "healthcheck")
    if value.get("disable"):
        reader.set("health_cmd", ("NONE",), "healthcheck", "disable")
        return
    test = value.get("test")
    if test is not None:
        reader.set("health_cmd", _health_test(reader, test), "healthcheck", "test")
    for key, setting in (("interval", "health_interval"), ("timeout", "health_timeout"),
                         ("start_period", "health_start_period")):
        if value.get(key) is not None:
            seconds = reader.parsed(values.parse_duration, value[key], "healthcheck", key)
            reader.set(setting, seconds, "healthcheck", key)
    if value.get("retries") is not None:
        reader.set("health_retries", reader.parsed(
            lambda t: values.parse_int(t, 1, "count"), value["retries"], "healthcheck",
            "retries"), "healthcheck", "retries")
    if value.get("start_interval") is not None:
        reader.ignore("checks run every `interval` in the start period too",
                      "healthcheck", "start_interval")
    for key in value:
        if key not in ("test", "interval", "timeout", "start_period", "start_interval",
                       "retries", "disable"):
            raise reader.error(f"healthcheck key {key!r} is unknown", "healthcheck", key)


def _health_test(reader: ServiceReader, test: object) -> tuple[str, ...]:
    if isinstance(test, str):
        return ("CMD-SHELL", test)
    words = list(_words(reader, test, "healthcheck"))
    if not words:
        raise reader.error("the health check test is empty", "healthcheck", "test")
    kind = words[0].upper()
    if kind == "NONE":
        return ("NONE",)
    if kind == "CMD-SHELL" and len(words) == 2:
        return ("CMD-SHELL", words[1])
    if kind == "CMD" and len(words) > 1:
        return ("CMD", *words[1:])
    raise reader.error(f"health check test starting {words[0]!r}", "healthcheck", "test",
                       hint='["CMD", ARG...], ["CMD-SHELL", "TEXT"] or ["NONE"]')


def _user(reader: ServiceReader, value: object) -> None:
    from hostctl.declarations.checks import check_user

    reader.set("user", reader.parsed(check_user, value, "user"), "user")


def _working_dir(reader: ServiceReader, value: object) -> None:
    reader.set("workdir", reader.parsed(check_abspath, value, "working_dir"),
               "working_dir")


def _caps(key: str) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        caps = tuple(reader.parsed(values.parse_capability, cap, key)
                     for cap in _strings(reader, value, key))
        reader.set(key, caps, key)
    return handler


def _devices(reader: ServiceReader, value: object) -> None:
    found = []
    for index, device in enumerate(value if isinstance(value, list) else [value]):
        if isinstance(device, Mapping):
            parts = [_text(device.get("source")), _text(device.get("target")
                                                        or device.get("source"))]
            if device.get("permissions"):
                parts.append(_text(device["permissions"]))
            device = ":".join(parts)
        found.append(reader.parsed(values.parse_device, device, "devices", index))
    reader.set("devices", tuple(found), "devices")


def _ulimits(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, Mapping):
        raise reader.error("expected a map", "ulimits")
    found = []
    for name, limit in value.items():
        if isinstance(limit, Mapping):
            text = f"{name}={_text(limit.get('soft'))}:{_text(limit.get('hard'))}"
        else:
            text = f"{name}={_text(limit)}"
        found.append(reader.parsed(values.parse_ulimit, text, "ulimits", name))
    reader.set("ulimits", tuple(found), "ulimits")


def _sysctls(reader: ServiceReader, value: object) -> None:
    found = []
    for name, text in _pairs(reader, value, "sysctls"):
        reader.parsed(values.parse_sysctl_name, name, "sysctls", name)
        found.append((name, text or ""))
    reader.set("sysctls", tuple(found), "sysctls")


def _extra_hosts(reader: ServiceReader, value: object) -> None:
    found = []
    if isinstance(value, Mapping):
        items = [(str(k), _text(v)) for k, v in value.items()]
    else:
        items = []
        for entry in _strings(reader, value, "extra_hosts"):
            sep = "=" if "=" in entry else ":"
            host, _, address = entry.partition(sep)
            items.append((host, address.strip("[]")))
    for host, address in items:
        try:
            found.append(values.parse_host_pair(host, address))
        except Invalid as err:
            raise reader.error(err.message, "extra_hosts", hint=err.hint) from None
    reader.set("add_hosts", tuple(found), "extra_hosts")


def _list_of(setting: str, key: str, parse: Callable[[str], Any]
             ) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        reader.set(setting, tuple(reader.parsed(parse, item, key)
                                  for item in _strings(reader, value, key)), key)
    return handler


def _scalar(setting: str, key: str, parse: Callable[[str], Any]
            ) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        reader.set(setting, reader.parsed(parse, value, key), key)
    return handler


def _stop_grace_period(reader: ServiceReader, value: object) -> None:
    seconds = reader.parsed(values.parse_duration, value, "stop_grace_period")
    reader.set("stop_timeout", max(1, round(seconds)), "stop_grace_period")


def _labels(key: str, setting: str) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        found = tuple((reader.parsed(values.parse_label_name, name, key), text or "")
                      for name, text in _pairs(reader, value, key))
        reader.set(setting, found, key)
    return handler


def _mem_reservation(reader: ServiceReader, value: object) -> None:
    size = reader.parsed(values.parse_size, value, "mem_reservation")
    reader.service.append(("MemoryLow", str(size)))


def _cpu_shares(reader: ServiceReader, value: object) -> None:
    shares = reader.parsed(lambda t: values.parse_int(t, 2, "share"), value, "cpu_shares")
    # docker's shares (default 1024) on systemd's weights (default 100)
    reader.service.append(("CPUWeight", str(max(1, min(10000, shares * 100 // 1024)))))


def _cpuset(reader: ServiceReader, value: object) -> None:
    text = _text(value)
    if not text.replace(",", "").replace("-", "").isdigit():
        raise reader.error(f"{text!r} is not a CPU list", "cpuset", hint="e.g. 0-2,4")
    reader.service.append(("AllowedCPUs", text))


def _oom_score_adj(reader: ServiceReader, value: object) -> None:
    score = reader.parsed(lambda t: values.parse_int(t, -1000, "score"), value,
                          "oom_score_adj")
    if score > 1000:
        raise reader.error(f"{score} is above 1000", "oom_score_adj", hint="-1000 to 1000")
    reader.service.append(("OOMScoreAdjust", str(score)))


def _security_opt(reader: ServiceReader, value: object) -> None:
    for option in _strings(reader, value, "security_opt"):
        if option.replace("=", ":") in ("no-new-privileges:true", "no-new-privileges"):
            reader.set("no_new_privileges", True, "security_opt")
        elif option.replace("=", ":") != "no-new-privileges:false":
            raise reader.error(f"security option {option!r} is not supported by hostctl",
                               "security_opt", hint="only no-new-privileges is")


def _pull_policy(reader: ServiceReader, value: object) -> None:
    policy = _PULL.get(_text(value))
    if policy is None:
        raise reader.error(f"pull_policy {_text(value)!r} is not supported by hostctl",
                           "pull_policy", hint="always, never, missing or if_not_present")
    reader.set("pull", policy, "pull_policy")


def _runtime(reader: ServiceReader, value: object) -> None:
    from hostctl.declarations.settings import Runtime

    text = _text(value)
    if text not in tuple(Runtime):
        raise reader.error(f"runtime {text!r} is not supported by hostctl", "runtime",
                           hint=", ".join(Runtime))
    reader.set("runtime", Runtime(text), "runtime")


def _group_add(reader: ServiceReader, value: object) -> None:
    reader.set("groups", tuple(reader.parsed(values.parse_group, group, "group_add")
                               for group in _strings(reader, value, "group_add")),
               "group_add")


def _secrets_of(kind: str) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        from hostctl.compose.secrets import service_secrets

        found = (*reader.settings.get("secrets", ()),
                 *service_secrets(reader, kind, value))
        reader.set("secrets", found, kind)
    return handler


def restart_policy(reader: ServiceReader, policy: Mapping[str, Any]) -> None:
    """deploy.restart_policy: condition, delay, max_attempts, window."""
    path = ("deploy", "restart_policy")
    for key, value in policy.items():
        if key == "condition":
            if value not in _POLICY_CONDITIONS:
                raise reader.error(f"condition {value!r} is unknown", *path, key,
                                   hint="none, on-failure or any")
            reader.set("restart", _POLICY_CONDITIONS[value], *path, key)
        elif key == "delay":
            seconds = reader.parsed(values.parse_duration, value, *path, key)
            reader.set("restart_sec", round(seconds), *path, key)
        elif key == "max_attempts":
            count = reader.parsed(lambda t: values.parse_int(t, 1, "count"), value, *path, key)
            reader.unit.append(("StartLimitBurst", str(count)))
        elif key == "window":
            seconds = reader.parsed(values.parse_duration, value, *path, key)
            reader.unit.append(("StartLimitIntervalSec", f"{max(1, round(seconds))}s"))
        else:
            raise reader.error(f"restart_policy key {key!r} is unknown", *path, key)


def resources(reader: ServiceReader, given: Mapping[str, Any]) -> None:
    """deploy.resources: limits (cpus, memory, pids) and reservations (cpus, memory)."""
    path = ("deploy", "resources")
    for part, spec in given.items():
        if part not in ("limits", "reservations") or not isinstance(spec, Mapping):
            raise reader.error(f"resources key {part!r} is not supported by hostctl",
                               *path, part, hint="limits and reservations")
        for key, value in spec.items():
            _resource(reader, part, key, value)


def _resource(reader: ServiceReader, part: str, key: str, value: object) -> None:
    path = ("deploy", "resources", part, key)
    if part == "limits" and key == "cpus":
        reader.set("cpus", reader.parsed(values.parse_cpus, value, *path), *path)
    elif part == "limits" and key == "memory":
        reader.set("memory", reader.parsed(values.parse_size, value, *path), *path)
    elif part == "limits" and key == "pids":
        reader.set("pids_limit", reader.parsed(
            lambda t: values.parse_int(t, 1, "count"), value, *path), *path)
    elif part == "reservations" and key == "memory":
        reader.service.append(("MemoryLow", str(reader.parsed(values.parse_size, value,
                                                               *path))))
    elif part == "reservations" and key == "cpus":
        cpus = reader.parsed(values.parse_cpus, value, *path)
        # a share of the CPU time in proportion: one reserved CPU is systemd's default 100
        reader.service.append(("CPUWeight", str(max(1, min(10000, round(cpus * 100))))))
    else:
        raise reader.error(f"{part} key {key!r} is not supported by hostctl", *path,
                           hint="limits: cpus, memory, pids; reservations: cpus, memory")


_HANDLERS: dict[str, Callable[[ServiceReader, Any], None]] = {
    "image": _image,
    "build": _build,
    "command": _command,
    "entrypoint": _entrypoint,
    "environment": _environment,
    "ports": _ports,
    "volumes": _volumes,
    "tmpfs": _tmpfs,
    "restart": _restart,
    "healthcheck": _healthcheck,
    "user": _user,
    "working_dir": _working_dir,
    "cap_add": _caps("cap_add"),
    "cap_drop": _caps("cap_drop"),
    "devices": _devices,
    "ulimits": _ulimits,
    "sysctls": _sysctls,
    "extra_hosts": _extra_hosts,
    "dns": _list_of("dns", "dns", values.parse_address),
    "dns_search": _list_of("dns_search", "dns_search", values.parse_domain),
    "dns_opt": _list_of("dns_options", "dns_opt", values.parse_dns_option),
    "stop_signal": _scalar("stop_signal", "stop_signal", values.parse_signal),
    "stop_grace_period": _stop_grace_period,
    "init": _scalar("init", "init", values.parse_bool),
    "read_only": _scalar("read_only", "read_only", values.parse_bool),
    "labels": _labels("labels", "labels"),
    "annotations": _labels("annotations", "annotations"),
    "hostname": _scalar("hostname", "hostname", values.parse_hostname),
    "shm_size": _scalar("shm_size", "shm_size", values.parse_size),
    "mem_limit": _scalar("memory", "mem_limit", values.parse_size),
    "mem_reservation": _mem_reservation,
    "cpus": _scalar("cpus", "cpus", values.parse_cpus),
    "cpu_shares": _cpu_shares,
    "cpuset": _cpuset,
    "oom_score_adj": _oom_score_adj,
    "pids_limit": _scalar("pids_limit", "pids_limit",
                          lambda t: values.parse_int(t, 1, "count")),
    "group_add": _group_add,
    "platform": _scalar("platform", "platform", values.parse_platform),
    "pull_policy": _pull_policy,
    "runtime": _runtime,
    "security_opt": _security_opt,
    "secrets": _secrets_of("secrets"),
    "configs": _secrets_of("configs"),
}
