"""Rendering a declaration into its .service unit (templates in hostctl.unit_templates).

Nothing from the declaration's container settings (command, env, user...) is written
into the unit: ExecStart runs `hostctl launch NAME`, which reads the declaration itself.
What the unit does carry (name, file path, raw unit/service/install directives) goes
through hostctl.units.escape.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import jinja2

from hostctl.declarations.image_file import ImageDecl
from hostctl.declarations.kube_file import KubeDecl
from hostctl.declarations.model import Container, Directives, VolumeKind
from hostctl.declarations.pod_file import Pod
from hostctl.declarations.values import format_duration
from hostctl.declarations.volume_file import VolumeDecl
from hostctl.errors import HostctlError
from hostctl.health import spec as health_spec
from hostctl.paths import Scope, for_scope
from hostctl.units.escape import (
    comment,
    directive_line,
    escape_value,
    exec_line,
)

TEMPLATE_PACKAGE = "hostctl.unit_templates"
START_TIMEOUT = 300  # seconds; the launcher extends it while it pulls an image
KILL = "/bin/kill"  # util-linux or procps kill; in every Debian base system
NETWORK_WAIT_UNIT = "hostctl-network-online.service"  # user scope's bounded wait
_PLAIN_PATH = re.compile(r"[^\s\\\"']+")


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


# The `hostctl` program, or the command line that runs its unit verbs
# (hostctl.units.generator.launcher_command).
Program = str | tuple[str, ...]


def _command(hostctl_bin: Program, verb: str, name: str, scope: Scope) -> str:
    user = ["--user"] if scope is Scope.USER else []
    prefix = [hostctl_bin] if isinstance(hostctl_bin, str) else list(hostctl_bin)
    return exec_line([*prefix, verb, *user, name])


def _directive_lines(directives: Directives) -> list[str]:
    return [directive_line(name, value) for name, values in directives for value in values]


def _common(name: str, source: str, hostctl_bin: Program, scope: Scope) -> dict[str, object]:
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
    container: Container, *, hostctl_bin: Program, scope: Scope, state_dir: Path | None = None,
    requires: tuple[str, ...] = (), binds_to: tuple[str, ...] = (),
) -> str:
    """The text of CONTAINER's NAME.service for SCOPE, running HOSTCTL_BIN launch NAME.

    STATE_DIR (default: the scope's) is the image store the unit needs mounted; REQUIRES
    are units it needs started before it (a user network's); BINDS_TO are units it is
    bound to and started after (its pod's)."""
    template = _templates().get_template("container.service.j2")
    state = state_dir if state_dir is not None else for_scope(scope).state
    return template.render(
        _common(container.name, _source(container.source), hostctl_bin, scope),
        description=escape_value("description", f"hostctl container {container.name}"),
        state_dir=_mount_path(str(state)),
        start_timeout="infinity" if container.oneshot else START_TIMEOUT,
        oneshot=container.oneshot,
        stop_timeout=int(container.stop_timeout),
        restart=escape_value("restart", str(container.restart)),
        init=container.init,
        network_wait=NETWORK_WAIT_UNIT,
        default_dependencies=container.default_dependencies,
        requires=[escape_value("unit name", unit) for unit in requires],
        binds_to=[escape_value("unit name", unit) for unit in binds_to],
        mounts_for=[_mount_path(path) for path in _bind_sources(container)],
        health_timer=health_timer_name(container) if health_spec.timer_wanted(container) else "",
        resources=_resources(container, hostctl_bin, scope),
        unit=_directive_lines(container.unit),
        service=_directive_lines(tuple(d for d in container.service if d[0] != "Type")),
        install=_directive_lines(container.install),
    )


HEALTH_SUFFIX = "-healthcheck"
HEALTH_MARGIN = 30  # seconds a check's unit gets beyond the check's own timeout


def health_unit_names(name: str) -> tuple[str, str]:
    """Container NAME's health check timer and service (for an instance PREFIX@INSTANCE
    of a template: PREFIX-healthcheck@INSTANCE, instances of a template too)."""
    prefix, at, instance = name.partition("@")
    stem = f"{prefix}{HEALTH_SUFFIX}{at}{instance}"
    return f"{stem}.timer", f"{stem}.service"


def health_timer_name(container: Container) -> str:
    return escape_value("unit name", health_unit_names(container.name)[0])


def _spec_path(name: str, scope: Scope) -> str:
    """Where the launcher writes NAME's healthcheck.json, in unit syntax: %t (/run, or
    the user's $XDG_RUNTIME_DIR) unless $HOSTCTL_RUN_DIR moves it."""
    if os.environ.get("HOSTCTL_RUN_DIR"):
        return escape_value("path", str(for_scope(scope).containers / name / "healthcheck.json"))
    return f"%t/hostctl/containers/{escape_value('name', name)}/healthcheck.json"


def _span(seconds: float) -> str:
    return format_duration(round(seconds, 3)) if seconds > 0 else "0"


def _health_timeout(container: Container) -> str:
    """TimeoutStartSec= of one run of the check's service: a regular check's timeout,
    or a whole startup phase (which is unlimited without health_startup_retries)."""
    own = max(container.health_timeout, 1.0)
    if health_spec.disabled(container.health_startup_cmd) or not container.health_startup_cmd:
        return str(int(own) + HEALTH_MARGIN)
    retries, success = container.health_startup_retries, container.health_startup_success
    if not retries:
        return "infinity"
    probes = retries * (max(success, 1) + 1) + max(success, 1)
    each = container.health_startup_interval + container.health_startup_timeout
    return str(int(probes * each + own) + HEALTH_MARGIN)


def render_health_units(container: Container, *, hostctl_bin: Program, scope: Scope
                        ) -> list[tuple[str, str]]:
    """CONTAINER's NAME-healthcheck.timer and .service, as (file name, text); none when
    its declaration says health_cmd: none or health_interval: 0 (health_spec.has_units).
    The container's unit wants the timer when the declaration has a check; otherwise the
    generator cannot know whether the image has a HEALTHCHECK (it may not be pulled), and
    the launcher starts the timer when it does (health_spec.launcher_starts_timer). The
    timer's ConditionPathExists= on this start's healthcheck.json guards both ways."""
    if not health_spec.has_units(container):
        return []
    timer, service = health_unit_names(container.name)
    common = {
        "source": _source(container.source),
        "container_unit": escape_value("unit name", container.unit_name),
        "timer": escape_value("unit name", timer),
        "user": scope is Scope.USER,
    }
    startup = container.health_startup_cmd and not health_spec.disabled(
        container.health_startup_cmd)
    interval = container.health_interval
    first = container.health_startup_interval if startup else interval
    timer_text = _templates().get_template("healthcheck.timer.j2").render(
        common,
        description=escape_value("description", f"hostctl health checks of {container.name}"),
        spec_path=_spec_path(container.name, scope),
        first=_span(first),
        interval=_span(interval),
        accuracy=_span(min(max(min(first, interval) / 100, 0.001), 1.0)),
    )
    service_text = _templates().get_template("healthcheck.service.j2").render(
        common,
        description=escape_value("description", f"hostctl health check of {container.name}"),
        exec_start=_command(hostctl_bin, "health-timer", container.name, scope),
        timeout=_health_timeout(container),
        identifier=escape_value("name", f"{container.name}{HEALTH_SUFFIX}"),
    )
    return [(timer, timer_text), (service, service_text)]


def _bind_sources(container: Container) -> list[str]:
    """Host paths the container needs mounted: bind sources and environment files."""
    paths = [v.source for v in container.volumes if v.kind is VolumeKind.BIND]
    paths += [os.path.dirname(path) for path in container.env_files]
    paths += [s.source for s in container.secrets if s.source.startswith("/")]
    return list(dict.fromkeys(paths))


def _mount_path(path: str) -> str:
    """PATH as one word of RequiresMountsFor= (quoted when it has spaces or quotes)."""
    text = escape_value("mount path", path)
    if _PLAIN_PATH.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _resources(container: Container, hostctl_bin: Program, scope: Scope) -> list[str]:
    """[Service] directives from the settings that map onto the unit."""
    lines = [f"KillSignal={container.stop_signal}"]
    if container.reload_signal:
        lines.append(f"ExecReload={KILL} -s {container.reload_signal} $MAINPID")
    if container.reload_cmd:
        prefix = [hostctl_bin] if isinstance(hostctl_bin, str) else list(hostctl_bin)
        user = ["--user"] if scope is Scope.USER else []
        lines.append("ExecReload=" + exec_line(
            [*prefix, "exec", *user, container.name, *container.reload_cmd]))
    if container.restart_sec is not None:
        lines.append(f"RestartSec={int(container.restart_sec)}")
    if container.memory is not None:
        lines.append(f"MemoryMax={int(container.memory)}")
    if container.cpus is not None:
        lines.append(f"CPUQuota={max(1, round(container.cpus * 100))}%")
    if container.pids_limit is not None:
        lines.append(f"TasksMax={int(container.pids_limit)}")
    for secret in container.secrets:
        value = escape_value("secret", f"{secret.name}:{secret.source}")
        lines.append(f"LoadCredential={value}")
    return lines


def render_failed_unit(
    name: str, source: Path | None, error: str, *, hostctl_bin: Program, scope: Scope
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


def render_volume_unit(volume: VolumeDecl, *, hostctl_bin: Program, scope: Scope,
                       state_dir: Path | None = None) -> str:
    """The oneshot NAME-volume.service that makes quadlet volume VOLUME ready
    (hostctl.volumes)."""
    state = state_dir if state_dir is not None else for_scope(scope).state
    device = volume.device if volume.device and volume.device.startswith("/") else None
    return _templates().get_template("volume.service.j2").render(
        name=escape_value("name", volume.name),
        source=_source(volume.source),
        user=scope is Scope.USER,
        device=volume.device is not None,
        state_dir=_mount_path(str(state)),
        mounts_for=[_mount_path(device)] if device and volume.fs_type == "bind" else [],
        identifier=escape_value("name", volume.unit_name.removesuffix(".service")),
        exec_start=_command(hostctl_bin, "volume-setup", volume.name, scope),
        exec_stop=_command(hostctl_bin, "volume-release", volume.name, scope),
    )


def render_pod_unit(pod: Pod, *, hostctl_bin: Program, scope: Scope, members: tuple[str, ...],
                    requires: tuple[str, ...] = (), state_dir: Path | None = None) -> str:
    """POD's oneshot unit (NAME-pod.service), running `hostctl pod-setup NAME`
    (hostctl.pod.holder) and Wants= its MEMBERS' units (those with start_with_pod)."""
    state = state_dir if state_dir is not None else for_scope(scope).state
    return _templates().get_template("pod.service.j2").render(
        description=escape_value("description", f"hostctl pod {pod.display_name}"),
        source=_source(pod.source),
        user=scope is Scope.USER,
        default_dependencies=pod.default_dependencies,
        network_wait=NETWORK_WAIT_UNIT,
        state_dir=_mount_path(str(state)),
        requires=[escape_value("unit name", unit) for unit in requires],
        members=[escape_value("unit name", unit) for unit in members],
        identifier=escape_value("name", pod.unit_name.removesuffix(".service")),
        exec_start=_command(hostctl_bin, "pod-setup", pod.name, scope),
        exec_stop=_command(hostctl_bin, "pod-release", pod.name, scope),
        stop_timeout=int(pod.stop_timeout),
        unit=_directive_lines(pod.unit),
        service=_directive_lines(pod.service),
        install=_directive_lines(pod.install),
    )


def render_image_unit(image: ImageDecl, *, hostctl_bin: Program, scope: Scope,
                      state_dir: Path | None = None) -> str:
    """The oneshot NAME-image.service that pulls quadlet image IMAGE
    (hostctl.pull_ahead)."""
    state = state_dir if state_dir is not None else for_scope(scope).state
    return _templates().get_template("image.service.j2").render(
        name=escape_value("name", image.name),
        reference=comment(image.reference),
        source=_source(image.source),
        user=scope is Scope.USER,
        default_dependencies=image.default_dependencies,
        network_wait=NETWORK_WAIT_UNIT,
        state_dir=_mount_path(str(state)),
        identifier=escape_value("name", image.unit_name.removesuffix(".service")),
        exec_start=_command(hostctl_bin, "image-pull", image.name, scope),
    )


NETWORK_START_TIMEOUT = 60  # seconds: namespaces, bridge, rules and pasta


def render_user_network(network: str, source: Path,
                        forwards: tuple[tuple[str | None, int, str], ...],
                        *, hostctl_bin: Program) -> str:
    """The unit keeping user network NETWORK (declared in SOURCE) up, its pasta forwarding
    FORWARDS (the host ports its members publish); see hostctl.network.holder."""
    from hostctl.network.holder import format_forwards, unit_name

    prefix = [hostctl_bin] if isinstance(hostctl_bin, str) else list(hostctl_bin)
    template = _templates().get_template("network.service.j2")
    return template.render(
        name=escape_value("name", network),
        identifier=unit_name(network).removesuffix(".service"),
        source=_source(source),
        network_wait=NETWORK_WAIT_UNIT,
        exec_start=exec_line([*prefix, "network-hold", "--user", network,
                              f"--tcp={format_forwards(forwards, 'tcp')}",
                              f"--udp={format_forwards(forwards, 'udp')}"]),
        exec_stop_post=exec_line([*prefix, "network-release", "--user", network]),
        timeout=NETWORK_START_TIMEOUT,
    )


NETWORK_WAIT_TIMEOUT = 90  # seconds a user unit waits for a network that is coming


def render_network_wait(*, python: str) -> str:
    """The user scope's oneshot unit that waits for the system's network-online.target,
    run by PYTHON (the interpreter hostctl is installed in)."""
    template = _templates().get_template("network-wait.service.j2")
    return template.render(
        exec_start=exec_line(
            [python, "-m", "hostctl.systemd.netwait", str(NETWORK_WAIT_TIMEOUT)]
        ),
        timeout=NETWORK_WAIT_TIMEOUT,
    )


def render_kube_unit(kube: KubeDecl, pods: tuple[str, ...], *, hostctl_bin: Program,
                     scope: Scope) -> str:
    """The oneshot unit of quadlet .kube file KUBE: `kube-setup` prepares its app, and its
    Wants= start the PODS' units (hostctl.kube.quadlet)."""
    return _templates().get_template("kube.service.j2").render(
        name=escape_value("name", kube.name),
        source=_source(kube.source),
        yaml=[_source(path) for path in kube.yaml],
        user=scope is Scope.USER,
        default_dependencies=kube.default_dependencies,
        network_wait=NETWORK_WAIT_UNIT,
        pods=pods,
        unit_lines=_directive_lines(kube.unit),
        service_lines=_directive_lines(kube.service),
        install_lines=_directive_lines(kube.install),
        identifier=escape_value("name", kube.unit_name.removesuffix(".service")),
        working_directory=escape_value("WorkingDirectory", kube.working_directory)
        if kube.working_directory else None,
        exec_start=_command(hostctl_bin, "kube-setup", kube.name, scope),
        exec_stop=_command(hostctl_bin, "kube-release", kube.name, scope),
    )
