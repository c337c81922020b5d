"""The canonical model printed as `docker compose config` prints it.

docker compose marshals Go structs and maps: a struct's fields come in the order the
struct declares them (compose-go's types: a service's `profiles` first, then mostly
alphabetical; a port's mode, host_ip, target, published, protocol...), a map's keys
sorted (services, environment, labels, networks...). The top level is name, services,
networks, volumes, secrets, configs. Sequences are indented under their key and text
that would read as another type is double-quoted ("8080"), as Go's encoder does.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SERVICE = (
    "profiles annotations attach build develop blkio_config cap_add cap_drop cgroup_parent "
    "cgroup cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpus "
    "cpuset cpu_shares command configs container_name credential_spec depends_on deploy "
    "device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint environment "
    "env_file expose extends external_links extra_hosts group_add gpus hostname healthcheck "
    "image init ipc isolation labels label_file links logging mem_limit mem_reservation "
    "memswap_limit mem_swappiness mac_address network_mode networks oom_kill_disable "
    "oom_score_adj pid pids_limit platform ports privileged pull_policy read_only restart "
    "runtime scale secrets security_opt shm_size stdin_open stop_grace_period stop_signal "
    "storage_opt sysctls tmpfs tty ulimits user userns_mode uts volumes volumes_from "
    "working_dir post_start pre_stop"
)
_BUILD = (
    "context dockerfile dockerfile_inline entitlements args ssh labels cache_from cache_to "
    "no_cache additional_contexts pull extra_hosts isolation network target secrets shm_size "
    "tags ulimits platforms privileged"
)
_FILE_REF = "source target uid gid mode"
_RESOURCE = "cpus memory pids devices generic_resources"
_FILE_OBJECT = "name file environment content external labels driver driver_opts template_driver"
ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {
    pattern: tuple(fields.split())
    for pattern, fields in {
        ("", "services", "*"): _SERVICE,
        ("", "services", "*", "build"): _BUILD,
        ("", "services", "*", "ports", "*"): "name mode host_ip target published protocol "
        "app_protocol",
        ("", "services", "*", "healthcheck"): "test timeout interval retries start_period "
        "start_interval disable",
        ("", "services", "*", "depends_on", "*"): "condition restart required",
        ("", "services", "*", "volumes", "*"): "type source target read_only consistency bind "
        "volume tmpfs image",
        ("", "services", "*", "volumes", "*", "bind"): "selinux propagation create_host_path "
        "recursive",
        ("", "services", "*", "volumes", "*", "volume"): "labels nocopy subpath",
        ("", "services", "*", "volumes", "*", "tmpfs"): "size mode",
        ("", "services", "*", "deploy"): "mode replicas resources restart_policy",
        ("", "services", "*", "deploy", "resources"): "limits reservations",
        ("", "services", "*", "deploy", "resources", "limits"): _RESOURCE,
        ("", "services", "*", "deploy", "resources", "reservations"): _RESOURCE,
        ("", "services", "*", "deploy", "restart_policy"): "condition delay max_attempts window",
        ("", "services", "*", "networks", "*"): "aliases driver_opts gw_priority interface_name "
        "ipv4_address ipv6_address link_local_ips mac_address priority",
        ("", "services", "*", "logging"): "driver options",
        ("", "services", "*", "secrets", "*"): _FILE_REF,
        ("", "services", "*", "configs", "*"): _FILE_REF,
        ("", "services", "*", "devices", "*"): "source target permissions",
        ("", "services", "*", "ulimits", "*"): "soft hard",
        ("", "networks", "*"): "name driver driver_opts ipam external internal attachable "
        "labels enable_ipv4 enable_ipv6",
        ("", "volumes", "*"): "name driver driver_opts external labels",
        ("", "secrets", "*"): _FILE_OBJECT,
        ("", "configs", "*"): _FILE_OBJECT,
        ("",): "name services networks volumes secrets configs",
    }.items()
}


# Sizes print as quoted byte counts (compose-go's UnitBytes), deploy cpus as a number.
_BYTES = {
    ("", "services", "*", key)
    for key in ("mem_limit", "mem_reservation", "memswap_limit", "shm_size")
} | {
    ("", "services", "*", "build", "shm_size"),
    ("", "services", "*", "volumes", "*", "tmpfs", "size"),
    ("", "services", "*", "deploy", "resources", "limits", "memory"),
    ("", "services", "*", "deploy", "resources", "reservations", "memory"),
}
_NUMBERS = {
    ("", "services", "*", "deploy", "resources", "limits", "cpus"),
    ("", "services", "*", "deploy", "resources", "reservations", "cpus"),
}


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        want in ("*", got) for got, want in zip(path, pattern, strict=True)
    )


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their mapping key and quotes with double quotes, as Go's
    YAML encoder does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _order(path: tuple[str, ...]) -> tuple[str, ...] | None:
    return next((fields for pattern, fields in ORDERS.items() if _matches(path, pattern)), None)


def _scalar(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, int) and any(_matches(path, pattern) for pattern in _BYTES):
        return str(value)
    if isinstance(value, str) and any(_matches(path, pattern) for pattern in _NUMBERS):
        return float(value) if "." in value else int(value)
    return value


def _arranged(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        fields = _order(path)
        if fields is None:
            keys = sorted(value)
        else:
            keys = [k for k in fields if k in value] + sorted(k for k in value if k not in fields)
        out = {key: _arranged(value[key], (*path, key)) for key in keys}
        if path[-2:-1] == ("depends_on",) and not out.get("restart"):
            out.pop("restart", None)  # Go's omitempty: printed only when true
        return out
    if isinstance(value, list):
        return [_arranged(item, (*path, "*")) for item in value]
    return _scalar(value, path)


def render_model(model: Mapping[str, Any]) -> str:
    """MODEL as YAML text in docker compose config's order."""
    return yaml.dump(
        _arranged(model, ("",)),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )
