"""The declaration search path of each scope (see hostctl.declarations.search).

Kept apart from the readers so the generator can list its inputs without importing them.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostctl.paths import Scope, for_scope

ENV_PATH = "HOSTCTL_DECLARATION_PATH"
SHARE_DIR = Path("/usr/share/hostctl/containers")
USERS_DIR = Path("/etc/hostctl/containers/users")


def declaration_dirs(scope: Scope) -> list[Path]:
    """The directories searched for SCOPE's declarations, highest priority first."""
    override = os.environ.get(ENV_PATH)
    if override:
        return [Path(part).absolute() for part in override.split(":") if part]
    paths = for_scope(scope)
    if scope is Scope.SYSTEM:
        return [paths.run / "containers", paths.config / "containers", SHARE_DIR]
    return [
        paths.run / "containers",
        paths.config / "containers",
        USERS_DIR / str(os.getuid()),
        USERS_DIR,
    ]
