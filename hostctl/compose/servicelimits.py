"""A compose service's restart policies and resource limits and reservations as
container settings and unit directives (handlers of hostctl.compose.servicekeys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hostctl.compose.servicekeys import ServiceReader, text_of
from hostctl.declarations import values
from hostctl.declarations.settings import Restart

_RESTART = {"no": Restart.NO, "always": Restart.ALWAYS, "on-failure": Restart.ON_FAILURE,
            "unless-stopped": Restart.ALWAYS}
_POLICY_CONDITIONS = {"none": Restart.NO, "on-failure": Restart.ON_FAILURE,
                      "any": Restart.ALWAYS}


def restart(reader: ServiceReader, value: object) -> None:
    policy, _, count = text_of(value).partition(":")
    if policy not in _RESTART:
        raise reader.error(f"restart policy {policy!r} is unknown", "restart",
                           hint="no, always, on-failure[:N] or unless-stopped")
    reader.set("restart", _RESTART[policy], "restart")
    if count:
        attempts = reader.parsed(lambda t: values.parse_int(t, 1, "count"), count, "restart")
        reader.unit.append(("StartLimitBurst", str(attempts)))



def mem_reservation(reader: ServiceReader, value: object) -> None:
    size = reader.parsed(values.parse_size, value, "mem_reservation")
    reader.service.append(("MemoryLow", str(size)))


def cpu_shares(reader: ServiceReader, value: object) -> None:
    shares = reader.parsed(lambda t: values.parse_int(t, 2, "share"), value, "cpu_shares")
    # docker's shares (default 1024) on systemd's weights (default 100)
    reader.service.append(("CPUWeight", str(max(1, min(10000, shares * 100 // 1024)))))


def cpuset(reader: ServiceReader, value: object) -> None:
    text = text_of(value)
    if not text.replace(",", "").replace("-", "").isdigit():
        raise reader.error(f"{text!r} is not a CPU list", "cpuset", hint="e.g. 0-2,4")
    reader.service.append(("AllowedCPUs", text))


def oom_score_adj(reader: ServiceReader, value: object) -> None:
    score = reader.parsed(lambda t: values.parse_int(t, -1000, "score"), value,
                          "oom_score_adj")
    if score > 1000:
        raise reader.error(f"{score} is above 1000", "oom_score_adj", hint="-1000 to 1000")
    reader.service.append(("OOMScoreAdjust", str(score)))



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
