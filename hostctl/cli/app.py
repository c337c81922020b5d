"""The typer application: parses arguments and calls hostctl.api; nothing else.

Each area's verbs live in their own module and register on the one `app` from
hostctl.cli.common when imported here.
"""

from __future__ import annotations

import subprocess
import sys

from hostctl.cli import (  # noqa: F401  (importing a module registers its verbs)
    build,
    compose,
    containers,
    doctor,
    images,
    kube,
    network,
    pod,
    quadlet,
    run,
    setup,
    ship,
    update,
)
from hostctl.cli.common import _state, app
from hostctl.cli.main import report_error
from hostctl.errors import HostctlError

__all__ = ["app", "run_app"]


def run_app() -> None:
    """Run the application, turning HostctlError into one line and its exit code."""
    try:
        app()  # standalone: typer itself reports usage errors and exits
    except (HostctlError, subprocess.CalledProcessError) as err:
        if _state["debug"] and isinstance(err, HostctlError):
            raise
        sys.exit(report_error(err))

