"""YAML readers for the structured kinds (volumes, ports, sizes, booleans...).

Each reader takes the setting's node and returns the model's value; the value rules live
in hostctl.declarations.values, shared with the quadlet reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.declarations import checks, values, values_runtime
from hostctl.declarations.checks import Invalid
from hostctl.declarations.model import Build, Pairs, Secret
from hostctl.declarations.settings import Kind, Setting
from hostctl.declarations.yaml_nodes import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    Context,
    checked,
    pairs,
    scalar_text,
    type_error,
)

Reader = Callable[[Node, Context, Setting], Any]


def _scalar(parse: Callable[[str], Any]) -> Reader:
    def read(node: Node, context: Context, setting: Setting) -> Any:
        return checked(node, context, setting.key, parse)

    return read


def _items(node: Node, context: Context, key: str) -> list[tuple[str, Node]]:
    """(label, item) of a list; a single scalar counts as a list of one."""
    if isinstance(node, SequenceNode):
        return [(f"{key}[{i}]", item) for i, item in enumerate(node.value)]
    if isinstance(node, ScalarNode) and node.tag != NULL:
        return [(key, node)]
    raise type_error(node, context, key, "a list")


def _list(parse: Callable[[str], Any], flatten: bool = False) -> Reader:
    def read(node: Node, context: Context, setting: Setting) -> tuple[Any, ...]:
        result: list[Any] = []
        for label, item in _items(node, context, setting.key):
            value = checked(item, context, label, parse)
            result.extend(value) if flatten else result.append(value)
        return tuple(result)

    return read


def _pairs_of(
    parse_name: Callable[[str], str], parse_value: Callable[[str], str], separator: str = "="
) -> Reader:
    """NAME: VALUE mapping, or a list of NAME{separator}VALUE; names unique."""

    def read(node: Node, context: Context, setting: Setting) -> Pairs:
        key = setting.key
        entries: list[tuple[str, Node, str, Node]] = []
        if isinstance(node, MappingNode):
            for name, name_node, value_node in pairs(node, context, key):
                text = scalar_text(value_node, context, f"{key}.{name}", "a string or number")
                entries.append((name, name_node, text, value_node))
        else:
            for label, item in _items(node, context, key):
                text = scalar_text(item, context, label, f"NAME{separator}VALUE")
                name, found, value = text.partition(separator)
                if not found:
                    raise context.error(
                        item, label, f"{text!r} has no {separator!r}",
                        f"write NAME{separator}VALUE, or use a mapping",
                    )
                entries.append((name, item, value, item))
        return _checked_pairs(entries, context, key, parse_name, parse_value)

    return read


def _checked_pairs(
    entries: list[tuple[str, Node, str, Node]],
    context: Context,
    key: str,
    parse_name: Callable[[str], str],
    parse_value: Callable[[str], str],
) -> Pairs:
    result: dict[str, str] = {}
    for name, name_node, value, value_node in entries:
        label = f"{key}.{name}"
        try:
            parse_name(name)
            if name in result:
                raise Invalid(f"{name} is given twice", "keep one of them")
        except Invalid as err:
            raise context.invalid(name_node, label, err) from None
        try:
            result[name] = parse_value(value)
        except Invalid as err:
            raise context.invalid(value_node, label, err) from None
    return tuple(result.items())


def _read_ulimits(node: Node, context: Context, setting: Setting) -> tuple[Any, ...]:
    raw = _pairs_of(str, str)(node, context, setting)
    result = []
    for name, limits in raw:
        try:
            result.append(values.parse_ulimit(f"{name}={limits}"))
        except Invalid as err:
            raise context.invalid(node, f"{setting.key}.{name}", err) from None
    if len({u.name for u in result}) != len(result):
        raise context.error(node, setting.key, "a limit is given twice", "keep one of them")
    return tuple(result)


def _read_hosts(node: Node, context: Context, setting: Setting) -> Pairs:
    if isinstance(node, MappingNode):
        result = []
        for name, _, value_node in pairs(node, context, setting.key):
            label = f"{setting.key}.{name}"
            address = scalar_text(value_node, context, label)
            try:
                result.append(values.parse_host_pair(name, address))
            except Invalid as err:
                raise context.invalid(value_node, label, err) from None
        return tuple(result)
    return tuple(_list(values.parse_host_entry)(node, context, setting))


def _read_network_aliases(node: Node, context: Context, setting: Setting
                          ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """NETWORK: [NAME, ...] (one name alone counts as a list of one)."""
    if not isinstance(node, MappingNode):
        raise type_error(node, context, setting.key, "a mapping of network: [names]")
    result = []
    for network, name_node, value_node in pairs(node, context, setting.key):
        label = f"{setting.key}.{network}"
        try:
            values.parse_joined_network(network)
        except Invalid as err:
            raise context.invalid(name_node, label, err) from None
        names = [checked(item, context, item_label, values.parse_hostname)
                 for item_label, item in _items(value_node, context, label)]
        result.append((network, tuple(dict.fromkeys(names))))
    return tuple(result)


def _read_secrets(node: Node, context: Context, setting: Setting) -> tuple[Secret, ...]:
    result = []
    for label, item in _items(node, context, setting.key):
        if isinstance(item, MappingNode):
            fields: dict[str, str] = {}
            for field, field_node, value_node in pairs(item, context, label):
                if field not in ("name", "source", "target", "env"):
                    raise context.error(
                        field_node, f"{label}.{field}", f"unknown key {field!r}",
                        "a secret has name, source, and target (a file) or env (a variable)",
                    )
                fields[field] = scalar_text(value_node, context, f"{label}.{field}")
            if "name" not in fields:
                raise context.error(item, label, "the secret has no name", "add `name:`")
            try:
                result.append(values.parse_secret(**fields))
            except Invalid as err:
                raise context.invalid(item, label, err) from None
        else:
            result.append(checked(item, context, label, values.parse_secret))
    if len({s.name for s in result}) != len(result):
        raise context.error(node, setting.key, "a secret name is given twice", "keep one")
    return tuple(result)


_BUILD_KEYS = ("context", "file", "args", "target")


def _read_build(node: Node, context: Context, setting: Setting) -> Build:
    if not isinstance(node, MappingNode):
        raise type_error(node, context, setting.key, "a map with context, file, args, target")
    fields: dict[str, Any] = {}
    for field, field_node, value_node in pairs(node, context, setting.key):
        label = f"{setting.key}.{field}"
        if field not in _BUILD_KEYS:
            raise context.error(field_node, label, f"unknown key {field!r}",
                                "build has " + ", ".join(_BUILD_KEYS))
        if field == "args":
            fields["args"] = _pairs_of(checks.check_env_name,
                                       lambda v: values.single_line(v, "value"))(
                value_node, context, Setting(label, Kind.ENV, "", ""))
        else:
            fields[field] = values.single_line(scalar_text(value_node, context, label), field)
    if "context" not in fields or not fields["context"]:
        raise context.error(node, setting.key, "build has no context",
                            "add `context:` (the directory to build)")
    directory = context.origin.get(id(node), context.path).parent
    fields["context"] = str((directory / fields["context"]).resolve()) \
        if not fields["context"].startswith("/") else fields["context"]
    return Build(**fields)


def _read_bool(node: Node, context: Context, setting: Setting) -> bool:
    if not isinstance(node, ScalarNode) or node.tag != BOOL:
        raise type_error(node, context, setting.key, "true or false")
    return bool(checked(node, context, setting.key, values.parse_bool))


def _read_int(minimum: int, what: str) -> Reader:
    def read(node: Node, context: Context, setting: Setting) -> int:
        if not isinstance(node, ScalarNode) or node.tag != INT:
            raise type_error(node, context, setting.key, f"a whole number of {what}")
        return int(checked(node, context, setting.key, lambda t: values.parse_int(t, minimum)))

    return read


def _read_size(node: Node, context: Context, setting: Setting) -> int:
    if isinstance(node, ScalarNode) and node.tag == FLOAT:
        raise type_error(node, context, setting.key, "bytes or a size like 512M")
    return int(checked(node, context, setting.key, values.parse_size))


def _read_cpus(node: Node, context: Context, setting: Setting) -> float:
    if not isinstance(node, ScalarNode) or node.tag not in (INT, FLOAT):
        raise type_error(node, context, setting.key, "a number of CPUs")
    return float(checked(node, context, setting.key, values.parse_cpus))


def _read_signal(node: Node, context: Context, setting: Setting) -> str:
    return str(checked(node, context, setting.key, values.parse_signal))


def _read_duration(node: Node, context: Context, setting: Setting) -> float:
    if not isinstance(node, ScalarNode) or node.tag == NULL or node.tag == BOOL:
        raise type_error(node, context, setting.key, "a duration like 30s or 1m30s")
    if node.tag in (INT, FLOAT) and str(node.value).startswith("-"):
        raise context.error(node, setting.key, f"{node.value} is negative",
                            "a duration like 30s, or a number of seconds >= 0")
    return float(checked(node, context, setting.key, values.parse_duration))


def _read_health_cmd(node: Node, context: Context, setting: Setting) -> tuple[str, ...]:
    key = setting.key
    if isinstance(node, SequenceNode):
        words = [scalar_text(item, context, f"{key}[{i}]") for i, item in enumerate(node.value)]
        try:
            return values.health_exec(words)
        except Invalid as err:
            raise context.invalid(node, key, err) from None
    if isinstance(node, ScalarNode) and node.tag not in (NULL, BOOL):
        # A string is a shell command even when it looks like JSON ("[ -f /ready ]"):
        # YAML has lists for the exec form.
        return tuple(checked(node, context, key,
                             lambda text: values.parse_health_cmd(text, json_array=False)))
    raise type_error(node, context, key, "a command string, a list, or none")


def _read_notify(node: Node, context: Context, setting: Setting) -> bool | str:
    if not isinstance(node, ScalarNode) or node.tag == NULL:
        raise type_error(node, context, setting.key, "true, false or healthy")
    result: bool | str = checked(node, context, setting.key, values.parse_notify)
    return result


READERS: dict[Kind, Reader] = {
    Kind.ABSPATHS: _list(values.parse_host_path),
    Kind.GROUP: _scalar(values.parse_group),
    Kind.GROUPS: _list(values_runtime.parse_supplementary_group),
    Kind.HOSTNAME: _scalar(values.parse_hostname),
    Kind.SERVICE_NAME: _scalar(values.parse_service_name),
    Kind.DELAY: _read_int(0, "seconds"),
    Kind.COUNT: _read_int(1, "tasks"),
    Kind.SIZE: _read_size,
    Kind.CPUS: _read_cpus,
    Kind.BOOL: _read_bool,
    Kind.SIGNAL: _read_signal,
    Kind.TIMEZONE: _scalar(values.parse_timezone),
    Kind.PLATFORM: _scalar(values.parse_platform),
    Kind.NETWORK: _scalar(values.parse_network),
    Kind.NETWORKS: _list(values.parse_joined_network),
    Kind.NETWORK_ALIASES: _read_network_aliases,
    Kind.CAPS: _list(values.parse_capability),
    Kind.VOLUMES: _list(values.parse_volume),
    Kind.TMPFS: _list(values.parse_tmpfs),
    Kind.DEVICES: _list(values.parse_device),
    Kind.ULIMITS: _read_ulimits,
    Kind.SYSCTLS: _pairs_of(values.parse_sysctl_name, lambda v: values.single_line(v, "value")),
    Kind.LABELS: _pairs_of(values.parse_label_name, lambda v: values.single_line(v, "value")),
    Kind.SECRETS: _read_secrets,
    Kind.PORTS: _list(values.parse_port, flatten=True),
    Kind.ADDRESSES: _list(values.parse_address),
    Kind.DOMAINS: _list(values.parse_domain),
    Kind.DNS_OPTIONS: _list(values.parse_dns_option),
    Kind.HOSTS: _read_hosts,
    Kind.DURATION: _read_duration,
    Kind.HEALTH_CMD: _read_health_cmd,
    Kind.NOTIFY: _read_notify,
    Kind.BUILD: _read_build,
    Kind.POD: _scalar(values.parse_pod),
    Kind.IPV4: _scalar(values_runtime.parse_ipv4),
    Kind.IPV6: _scalar(values_runtime.parse_ipv6),
    Kind.PROC_PATHS: _list(values_runtime.parse_proc_path),
    Kind.SECCOMP: _scalar(values_runtime.parse_seccomp),
}
