"""The validated declaration: one frozen dataclass per container.

Field names are the keys of settings.SETTINGS (plus name, source and locations), and
the defaults come from that table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hostctl.declarations.settings import DEFAULTS, Restart

# (directive, values) pairs of one unit section, in declaration order; a directive with
# several values is written once per value.
Directives = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Container:
    """One declared container, as read from its declaration file and validated."""

    name: str
    source: Path
    image: str
    command: tuple[str, ...] | None = DEFAULTS["command"]
    entrypoint: tuple[str, ...] | None = DEFAULTS["entrypoint"]
    env: tuple[tuple[str, str], ...] = DEFAULTS["env"]
    workdir: str | None = DEFAULTS["workdir"]
    user: str | None = DEFAULTS["user"]
    stop_timeout: int = DEFAULTS["stop_timeout"]
    restart: Restart = DEFAULTS["restart"]
    unit: Directives = DEFAULTS["unit"]
    service: Directives = DEFAULTS["service"]
    install: Directives = DEFAULTS["install"]
    # setting key -> 1-based line in `source`, for errors found after loading (the
    # launcher's "user not found" can then point at FILE:LINE:user).
    locations: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def where(self, key: str) -> str:
        """FILE:LINE:KEY for a setting of this declaration (FILE:KEY without a line)."""
        line = dict(self.locations).get(key)
        return f"{self.source}:{line}:{key}" if line else f"{self.source}:{key}"

    @property
    def unit_name(self) -> str:
        return f"{self.name}.service"
