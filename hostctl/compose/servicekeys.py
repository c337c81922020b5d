"""One compose service's keys as container settings (hostctl.declarations.settings).

Each compose key has a handler here, or is listed as ignored (no meaning on one host,
with the reason) or handled by the translation itself (dependencies, networks, replicas).
Any other key is an error naming the compose file, line and key. Values are checked
with the declaration readers' own parsers (hostctl.declarations.values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from hostctl.compose.source import Project
from hostctl.declarations import values
from hostctl.declarations.checks import (
    Invalid,
    check_abspath,
    check_env_name,
    split_argv,
    suggest,
)
from hostctl.declarations.model import Build
from hostctl.declarations.settings import Pull
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
            return parse(text_of(text))
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
            handler = _handlers().get(key)
            if handler is None:
                raise self.error(
                    f"compose key {key!r} is not supported by hostctl", key,
                    hint=suggest(key, [*_handlers(), *IGNORED, *HANDLED])
                    + "remove it, or run this service another way")
            if value is not None:
                handler(self, value)


def text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def words_of(reader: ServiceReader, value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return reader.parsed(split_argv, value, key)  # type: ignore[no-any-return]
    if not isinstance(value, list):
        raise reader.error("expected a list of strings", key)
    return tuple(text_of(word) for word in value)


def strings_of(reader: ServiceReader, value: object, key: str) -> list[str]:
    if isinstance(value, (str, int, float)):
        return [text_of(value)]
    if not isinstance(value, list):
        raise reader.error("expected a list", key)
    return [text_of(item) for item in value]


def pairs_of(reader: ServiceReader, value: object, key: str, sep: str = "="
           ) -> list[tuple[str, str | None]]:
    """A map, or a list of NAME=VALUE (NAME alone: no value)."""
    if isinstance(value, Mapping):
        return [(str(k), None if v is None else text_of(v)) for k, v in value.items()]
    if isinstance(value, list):
        result: list[tuple[str, str | None]] = []
        for item in value:
            name, found, text = text_of(item).partition(sep)
            result.append((name, text if found else None))
        return result
    raise reader.error("expected a map or a list of NAME=VALUE", key)


def _image(reader: ServiceReader, value: object) -> None:
    reader.set("image", text_of(value), "image")


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
    args = tuple((k, v or "") for k, v in pairs_of(reader, value.get("args") or {}, "build"))
    context = text_of(value.get("context") or reader.project.directory)
    if not context.startswith("/"):
        context = str(reader.project.directory / context)
    dockerfile = value.get("dockerfile")
    target = value.get("target")
    reader.set("build", Build(context, None if dockerfile is None else text_of(dockerfile),
                              args, None if target is None else text_of(target)), "build")


def _command(reader: ServiceReader, value: object) -> None:
    reader.set("command", words_of(reader, value, "command"), "command")


def _entrypoint(reader: ServiceReader, value: object) -> None:
    reader.set("entrypoint", words_of(reader, value, "entrypoint"), "entrypoint")


def _environment(reader: ServiceReader, value: object) -> None:
    env = []
    for name, text in pairs_of(reader, value, "environment"):
        reader.parsed(check_env_name, name, "environment", name)
        if text is not None:  # a name without a value, unset where the project was loaded
            env.append((name, text))
    reader.set("env", tuple(env), "environment")


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
    words = list(words_of(reader, test, "healthcheck"))
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
                     for cap in strings_of(reader, value, key))
        reader.set(key, caps, key)
    return handler


def _ulimits(reader: ServiceReader, value: object) -> None:
    if not isinstance(value, Mapping):
        raise reader.error("expected a map", "ulimits")
    found = []
    for name, limit in value.items():
        if isinstance(limit, Mapping):
            text = f"{name}={text_of(limit.get('soft'))}:{text_of(limit.get('hard'))}"
        else:
            text = f"{name}={text_of(limit)}"
        found.append(reader.parsed(values.parse_ulimit, text, "ulimits", name))
    reader.set("ulimits", tuple(found), "ulimits")


def _sysctls(reader: ServiceReader, value: object) -> None:
    found = []
    for name, text in pairs_of(reader, value, "sysctls"):
        reader.parsed(values.parse_sysctl_name, name, "sysctls", name)
        found.append((name, text or ""))
    reader.set("sysctls", tuple(found), "sysctls")


def _extra_hosts(reader: ServiceReader, value: object) -> None:
    found = []
    if isinstance(value, Mapping):
        items = [(str(k), text_of(v)) for k, v in value.items()]
    else:
        items = []
        for entry in strings_of(reader, value, "extra_hosts"):
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
                                  for item in strings_of(reader, value, key)), key)
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
                      for name, text in pairs_of(reader, value, key))
        reader.set(setting, found, key)
    return handler


def _security_opt(reader: ServiceReader, value: object) -> None:
    for option in strings_of(reader, value, "security_opt"):
        if option.replace("=", ":") in ("no-new-privileges:true", "no-new-privileges"):
            reader.set("no_new_privileges", True, "security_opt")
        elif option.replace("=", ":") != "no-new-privileges:false":
            raise reader.error(f"security option {option!r} is not supported by hostctl",
                               "security_opt", hint="only no-new-privileges is")


def _pull_policy(reader: ServiceReader, value: object) -> None:
    policy = _PULL.get(text_of(value))
    if policy is None:
        raise reader.error(f"pull_policy {text_of(value)!r} is not supported by hostctl",
                           "pull_policy", hint="always, never, missing or if_not_present")
    reader.set("pull", policy, "pull_policy")


def _runtime(reader: ServiceReader, value: object) -> None:
    from hostctl.declarations.settings import Runtime

    text = text_of(value)
    if text not in tuple(Runtime):
        raise reader.error(f"runtime {text!r} is not supported by hostctl", "runtime",
                           hint=", ".join(Runtime))
    reader.set("runtime", Runtime(text), "runtime")


def _group_add(reader: ServiceReader, value: object) -> None:
    reader.set("groups", tuple(reader.parsed(values.parse_group, group, "group_add")
                               for group in strings_of(reader, value, "group_add")),
               "group_add")


def _secrets_of(kind: str) -> Callable[[ServiceReader, object], None]:
    def handler(reader: ServiceReader, value: object) -> None:
        from hostctl.compose.secrets import service_secrets

        found = (*reader.settings.get("secrets", ()),
                 *service_secrets(reader, kind, value))
        reader.set("secrets", found, kind)
    return handler


@cache
def _handlers() -> dict[str, Callable[[ServiceReader, Any], None]]:
    """Compose key -> its handler (the handlers in servicemounts and servicelimits
    import this module: the table is built on first use)."""
    from hostctl.compose import servicelimits as limits
    from hostctl.compose import servicemounts as mounts

    return {
        "image": _image,
        "build": _build,
        "command": _command,
        "entrypoint": _entrypoint,
        "environment": _environment,
        "ports": mounts.ports,
        "volumes": mounts.volumes,
        "tmpfs": mounts.tmpfs,
        "restart": limits.restart,
        "healthcheck": _healthcheck,
        "user": _user,
        "working_dir": _working_dir,
        "cap_add": _caps("cap_add"),
        "cap_drop": _caps("cap_drop"),
        "devices": mounts.devices,
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
        "mem_reservation": limits.mem_reservation,
        "cpus": _scalar("cpus", "cpus", values.parse_cpus),
        "cpu_shares": limits.cpu_shares,
        "cpuset": limits.cpuset,
        "oom_score_adj": limits.oom_score_adj,
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
