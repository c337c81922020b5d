"""Where hostctl keeps declarations, images and runtime state, per scope."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Scope(StrEnum):
    SYSTEM = "system"
    USER = "user"


@dataclass(frozen=True)
class Paths:
    """All directories of one scope; the env var HOSTCTL_ROOT relocates them for tests."""

    scope: Scope
    state: Path  # images, snapshots, volumes: /var/lib/hostctl
    run: Path  # per-start state, bundles, runc root: /run/hostctl
    config: Path  # auth.json, registries.conf: /etc/hostctl

    @property
    def store(self) -> Path:
        return self.state / "storage"

    @property
    def containers(self) -> Path:
        return self.run / "containers"

    @property
    def runc_root(self) -> Path:
        return self.run / "runc"

    @property
    def adhoc(self) -> Path:
        """The declarations `hostctl run` writes for its transient units."""
        return self.run / "adhoc"


def _home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def for_scope(scope: Scope) -> Paths:
    if scope is Scope.SYSTEM:
        return Paths(
            scope=scope,
            state=Path(os.environ.get("HOSTCTL_STATE_DIR", "/var/lib/hostctl")),
            run=Path(os.environ.get("HOSTCTL_RUN_DIR", "/run/hostctl")),
            config=Path(os.environ.get("HOSTCTL_CONFIG_DIR", "/etc/hostctl")),
        )
    home = _home()
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local/share")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return Paths(
        scope=scope,
        state=Path(os.environ.get("HOSTCTL_STATE_DIR", data / "hostctl")),
        run=Path(os.environ.get("HOSTCTL_RUN_DIR", Path(runtime) / "hostctl")),
        config=Path(os.environ.get("HOSTCTL_CONFIG_DIR", config / "hostctl")),
    )


def default_scope() -> Scope:
    """The generator is told by $SYSTEMD_SCOPE; everything else defaults by uid."""
    told = os.environ.get("SYSTEMD_SCOPE")
    if told in ("system", "user"):
        return Scope(told)
    return Scope.SYSTEM if os.geteuid() == 0 else Scope.USER
