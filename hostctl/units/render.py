"""Rendering a declaration into its .service unit (templates in hostctl.unit_templates).

Nothing from the declaration's container settings (command, env, user...) is written
into the unit: ExecStart runs `hostctl launch NAME`, which reads the declaration itself.
What the unit does carry (name, file path, raw unit/service/install directives) goes
through hostctl.units.escape.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import jinja2

from hostctl.declarations.model import Container, Directives
from hostctl.errors import HostctlError
from hostctl.paths import Scope, for_scope
from hostctl.units.escape import (
    comment,
    directive_line,
    escape_value,
    exec_line,
)

TEMPLATE_PACKAGE = "hostctl.unit_templates"
START_TIMEOUT = 300  # seconds; the launcher extends it while it pulls an image


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, "."),
        autoescape=False,  # unit syntax, escaped by hostctl.units.escape before rendering
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _command(hostctl_bin: str, verb: str, name: str, scope: Scope) -> str:
    user = ["--user"] if scope is Scope.USER else []
    return exec_line([hostctl_bin, verb, *user, name])


def _directive_lines(directives: Directives) -> list[str]:
    return [directive_line(name, value) for name, values in directives for value in values]


def _common(name: str, source: str, hostctl_bin: str, scope: Scope) -> dict[str, object]:
    return {
        "name": escape_value("name", name),
        "source": source,
        "user": scope is Scope.USER,
        "exec_start": _command(hostctl_bin, "launch", name, scope),
        "exec_stop_post": _command(hostctl_bin, "cleanup", name, scope),
    }


def _source(source: Path) -> str:
    return escape_value("declaration path", os.path.abspath(source))


def render_unit(
    container: Container, *, hostctl_bin: str, scope: Scope, state_dir: Path | None = None
) -> str:
    """The text of CONTAINER's NAME.service for SCOPE, running HOSTCTL_BIN launch NAME.

    STATE_DIR (default: the scope's) is the image store the unit needs mounted."""
    template = _templates().get_template("container.service.j2")
    state = state_dir if state_dir is not None else for_scope(scope).state
    return template.render(
        _common(container.name, _source(container.source), hostctl_bin, scope),
        description=escape_value("description", f"hostctl container {container.name}"),
        state_dir=escape_value("state directory", str(state)),
        start_timeout=START_TIMEOUT,
        stop_timeout=int(container.stop_timeout),
        restart=escape_value("restart", str(container.restart)),
        unit=_directive_lines(container.unit),
        service=_directive_lines(container.service),
        install=_directive_lines(container.install),
    )


def render_failed_unit(
    name: str, source: Path | None, error: str, *, hostctl_bin: str, scope: Scope
) -> str:
    """A unit for declaration NAME that could not be loaded: starting it fails, and the
    launcher (which re-reads the file) logs ERROR; ERROR is only written as a comment."""
    template = _templates().get_template("failed.service.j2")
    try:
        source_value = _source(source) if source else ""
    except HostctlError:
        source_value = ""  # a path systemd cannot represent; the comment still shows it
    where = f" in {source}" if source else ""
    return template.render(
        _common(name, source_value, hostctl_bin, scope),
        description=_lossy(f"hostctl container {name}: broken declaration{where}"),
        error=comment(error),
    )


def _lossy(text: str) -> str:
    """TEXT made writable as a verbatim value by replacing what cannot be written."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text).strip().rstrip("\\")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return escape_value("description", cleaned)
