"""The canonical model printed as `docker compose config` prints it: name first, then
services (sorted, each service's keys sorted), networks, volumes, secrets, configs;
sequences indented under their key, numbers kept as numbers, text that would read as
another type quoted ("8080")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

ORDER = ("name", "services", "networks", "volumes", "secrets", "configs")


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their mapping key, as Go's YAML encoder does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style  # Go's encoder quotes with double quotes


def _ordered(model: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ORDER:
        if key not in model:
            continue
        value = model[key]
        if key == "services":
            value = {name: _service(value[name]) for name in sorted(value)}
        elif isinstance(value, Mapping):
            value = {name: value[name] for name in sorted(value)}
        out[key] = value
    return out


def _service(service: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: service[key] for key in sorted(service)}
    depends = out.get("depends_on")
    if isinstance(depends, Mapping):  # docker prints `restart` only when it is true
        out["depends_on"] = {
            name: {k: v for k, v in spec.items() if k != "restart" or v}
            for name, spec in depends.items()
        }
    return out


def render_model(model: Mapping[str, Any]) -> str:
    """MODEL as YAML text in docker compose config's order."""
    return yaml.dump(
        _ordered(model),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )
