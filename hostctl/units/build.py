"""Building the generator's units: load every declaration of a scope and render it.

This is the generator's slow path (yaml, jinja2 and the declaration modules), taken only
when the render cache (hostctl.units.gencache) does not match.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hostctl.declarations.checks import (
    TEMPLATE_INSTANCE,
    Invalid,
    check_directive,
    check_directive_value,
    short_image_warning,
    template_parts,
)
from hostctl.declarations.image_file import ImageDecl, image_files, load_image
from hostctl.declarations.kube_file import kube_files
from hostctl.declarations.model import Container, VolumeKind
from hostctl.declarations.pod_file import Pod, load_pod, pod_files, pod_where, pods_dir
from hostctl.declarations.search import load_file, scan_declarations
from hostctl.declarations.settings import INSTALL_DIRECTIVES
from hostctl.declarations.volume_file import (
    VolumeDecl,
    load_volume,
    volume_files,
    volumes_dir,
)
from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Paths, Scope, for_scope
from hostctl.units.render import (
    HEALTH_SUFFIX,
    NETWORK_WAIT_UNIT,
    Program,
    render_failed_unit,
    render_health_units,
    render_image_unit,
    render_kube_unit,
    render_network_wait,
    render_pod_unit,
    render_unit,
    render_user_network,
    render_volume_unit,
)

if TYPE_CHECKING:
    from hostctl.kube.generate import KubeApps

Report = Callable[[str], None]


@dataclass(frozen=True)
class Generated:
    """One unit to write: its file name, text, and the links pointing at it."""

    unit_name: str
    text: str
    links: tuple[str, ...] = ()  # paths relative to the output dir, e.g. x.target.wants/u

    def as_tuple(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.unit_name, self.text, self.links)


def install_links(container: Container | Pod) -> tuple[str, ...]:
    """The links [Install] asks for, relative to the output directory."""
    links = []
    for directive, values in container.install:
        try:  # again here: a Container built in code has not been through the reader
            check_directive("Install", directive)
            for value in values:
                check_directive_value("Install", directive, value)
        except Invalid as err:
            raise DeclarationError(
                err.message, where=container.where("install"), hint=err.hint
            ) from None
        suffix = INSTALL_DIRECTIVES[directive]
        for word in (word for value in values for word in value.split()):
            links.append(f"{word}.{suffix}/{container.unit_name}" if suffix else word)
    return tuple(dict.fromkeys(links))


def build(scope: Scope, searched: list[Path], hostctl_bin: Program, report: Report
          ) -> list[Generated]:
    """Load and render every declaration of SCOPE found in SEARCHED; problems go to REPORT."""
    paths = for_scope(scope)
    state_dir = paths.state
    scan = scan_declarations(scope, searched)
    for problem in scan.skipped:
        report(f"{problem} (file ignored)")
    units = []
    volumes: dict[str, VolumeDecl] = {}
    broken: dict[str, HostctlError] = {}  # NAME.volume or NAME.image -> why it is unusable
    for volume_name, volume_path in volume_files(searched, volumes_dir(paths.config)).items():
        try:
            volume = load_volume(volume_path, user=scope is Scope.USER)
        except HostctlError as err:
            report(f"{err} (file ignored)")
            broken[f"{volume_name}.volume"] = err
            continue
        volumes[volume_name] = volume
        units.append(Generated(volume.unit_name, render_volume_unit(
            volume, hostctl_bin=hostctl_bin, scope=scope, state_dir=state_dir)))
    images: dict[str, ImageDecl] = {}
    for image_name, image_path in image_files(searched).items():
        try:
            image = load_image(image_path)
        except HostctlError as err:
            report(f"{err} (file ignored)")
            broken[f"{image_name}.image"] = err
            continue
        images[image_name] = image
        units.append(Generated(image.unit_name, render_image_unit(
            image, hostctl_bin=hostctl_bin, scope=scope, state_dir=state_dir)))
    pods, pod_members = _load_pods(scope, searched, broken, report)
    members: dict[str, list[Container]] = {}  # user network -> its declared members
    kube = _kube_apps(searched, paths, scan.found, pods, report)
    if kube is not None:
        pods.update(kube.pods)
        units += _kube_units(kube, hostctl_bin, scope)
    entries: list[tuple[str, Path, Container | None]] = [
        (n, p, None) for n, p in scan.found.items() if not _kube_copy(p, kube, paths)]
    if kube is not None:
        entries += [(n, c.source, c) for n, c in kube.containers.items()]
    for name, path, translated in entries:
        prefix, instance, templated = template_parts(name)
        template = templated and not instance
        try:
            if name in scan.broken:
                raise scan.broken[name]
            container = translated or load_file(
                path, f"{prefix}@{TEMPLATE_INSTANCE}" if template else name, searched)
            _check_references(container, scan.found, {**volumes, **images}, broken)
            pod = _pod_of(container, pods, broken)
            network = user_network(scope, container)
            if network is not None:
                members.setdefault(network, []).append(container)
            needed = [(volumes[n] if k == "volume" else images[n]).unit_name
                      for k, n, _ in container.unit_refs if k in ("volume", "image")]
            needed += [volumes[v.source].unit_name for v in container.volumes
                       if v.kind is VolumeKind.VOLUME and v.source in volumes]
            if network:
                from hostctl.network.holder import unit_name as network_unit_name

                needed.append(network_unit_name(network))
            if pod is not None:
                needed += [volumes[v.source].unit_name for v in pod.volumes
                           if v.kind is VolumeKind.VOLUME and v.source in volumes]
                if container.start_with_pod and not template:
                    pod_members.setdefault(pod.name, []).append(
                        container.service_name or f"{name}.service")
            text = render_unit(
                container, hostctl_bin=hostctl_bin, scope=scope, state_dir=state_dir,
                requires=tuple(dict.fromkeys(needed)),
                binds_to=(pod.unit_name,) if pod is not None else (),
            )
            health = render_health_units(container, hostctl_bin=hostctl_bin, scope=scope)
            if health:
                _check_health_names(container, scan.found)
            links = install_links(container)
            _warn_system_targets(scope, container, links, report)
            warning = short_image_warning(container.image, container.where("image"))
            if warning:
                report(warning)
            if template:
                units += _template_units(container, text, links, health)
                continue
            if container.service_name:  # NAME.service stays a name of the unit
                links = (*links, f"{name}.service")
            units.append(Generated(container.unit_name, text, links))
            units += [Generated(unit_name, unit_text) for unit_name, unit_text in health]
        except HostctlError as err:
            report(str(err).replace(TEMPLATE_INSTANCE, "%i"))
            failed = render_failed_unit(
                f"{prefix}@{TEMPLATE_INSTANCE}" if template else name, path, str(err),
                hostctl_bin=hostctl_bin, scope=scope,
            )
            units.append(Generated(f"{name}.service", failed.replace(TEMPLATE_INSTANCE, "%i")))
    for pod in pods.values():
        if scope is Scope.USER:  # its unit is written all the same: it fails saying so
            _report_user_pod_network(pod, report)
        links = install_links(pod)
        if pod.service_name:
            links = (*links, f"{pod.name}-pod.service")
        units.append(Generated(pod.unit_name, render_pod_unit(
            pod, hostctl_bin=hostctl_bin, scope=scope, state_dir=state_dir,
            members=tuple(pod_members.get(pod.name, ())),
            requires=tuple(dict.fromkeys(volumes[v.source].unit_name for v in pod.volumes
                                         if v.kind is VolumeKind.VOLUME
                                         and v.source in volumes))), links))
    from hostctl.compose.units import project_units

    units += project_units(scope, hostctl_bin, report, {unit.unit_name for unit in units},
                           members)
    if scope is Scope.USER:
        units += _user_networks(paths, members, hostctl_bin)
    if scope is Scope.USER and units:
        units.append(Generated(NETWORK_WAIT_UNIT, render_network_wait(python=sys.executable)))
    return _drop_clashing_aliases(units, report)


def _user_networks(paths: Paths, members: dict[str, list[Container]], hostctl_bin: Program
                   ) -> list[Generated]:
    """A user's network units: every declared network (`hostctl run --network` may use
    one) and every network the user's compose projects own, each forwarding its MEMBERS'
    ports. (hostctl.network is imported only here and in user_network(): a system
    scope's render, compose projects' included, needs none of it.)"""
    from hostctl.compose.networks import owned_sources
    from hostctl.network.defs import network_files, user_file
    from hostctl.network.holder import forwards_of
    from hostctl.network.holder import unit_name as network_unit_name

    owned = owned_sources(paths)
    for network_name in [*network_files(paths), *owned]:
        if user_file(network_name, paths) is not None or network_name in owned:
            members.setdefault(network_name, [])
    units = []
    for network, containers in sorted(members.items()):
        source = user_file(network, paths) or owned.get(network)
        assert source is not None  # user_network() found it
        forwards = forwards_of([port for c in containers for port in c.ports])
        units.append(Generated(network_unit_name(network), render_user_network(
            network, source, forwards, hostctl_bin=hostctl_bin)))
    return units


def _kube_apps(searched: list[Path], paths: Paths, found: dict[str, Path],
               pods: dict[str, Pod], report: Report) -> KubeApps | None:
    """Every .kube file's app (hostctl.kube.generate.kube_apps); None when there is no
    .kube file (hostctl.kube is then not imported: a render of compose projects and
    declarations needs none of it)."""
    if not kube_files(searched):
        return None
    from hostctl.kube.generate import kube_apps

    return kube_apps(searched, paths, found, pods, report)


def _kube_copy(path: Path, kube: KubeApps | None, paths: Paths) -> bool:
    """Whether PATH is a member declaration `kube-setup` wrote (its .kube file's own
    translation is rendered instead; a failed app's copies are left out too)."""
    if kube is not None and path in kube.own_files:
        return True
    if path.parent != paths.run / "containers":
        return False
    from hostctl.kube.install import KUBE_HEADER

    try:
        with open(path, encoding="utf-8") as file:
            return file.readline().startswith(KUBE_HEADER)
    except OSError:
        return False


def _kube_units(kube: KubeApps, hostctl_bin: Program, scope: Scope) -> list[Generated]:
    """Each .kube file's unit (one that fails with the reason for a file that cannot be
    played)."""
    units = []
    for decl, pods in kube.kube_units:
        text = render_kube_unit(decl, pods, hostctl_bin=hostctl_bin, scope=scope)
        links = []
        for directive, values in decl.install:
            try:
                check_directive("Install", directive)
            except Invalid as err:
                raise DeclarationError(err.message, where=str(decl.source),
                                       hint=err.hint) from None
            suffix = INSTALL_DIRECTIVES[directive]
            links += [f"{word}.{suffix}/{decl.unit_name}" if suffix else word
                      for value in values for word in value.split()]
        if decl.service_name:
            links.append(f"{decl.name}.service")
        units.append(Generated(decl.unit_name, text, tuple(dict.fromkeys(links))))
    for name, path, problem in kube.failed:
        units.append(Generated(f"{name}.service", render_failed_unit(
            name, path, str(problem), hostctl_bin=hostctl_bin, scope=scope)))
    return units


def _load_pods(scope: Scope, searched: list[Path], broken: dict[str, HostctlError],
               report: Report) -> tuple[dict[str, Pod], dict[str, list[str]]]:
    """SCOPE's declared pods by name (a broken one reported, and put in BROKEN), and an
    empty name -> member units table for the members found later."""
    pods: dict[str, Pod] = {}
    for pod_name, pod_path in pod_files(searched, pods_dir(for_scope(scope).config)).items():
        try:
            pods[pod_name] = load_pod(pod_path, user=scope is Scope.USER)
        except HostctlError as err:
            report(f"{err} (file ignored)")
            broken[f"{pod_name}.pod"] = err
    return pods, {}


def _pod_of(container: Container, pods: dict[str, Pod], broken: dict[str, HostctlError]
            ) -> Pod | None:
    """The declared pod CONTAINER is a member of (None: no pod)."""
    if container.pod is None:
        return None
    where = pod_where(container)
    if f"{container.pod}.pod" in broken:
        raise DeclarationError(f"pod {container.pod} cannot be used: "
                               f"{broken[f'{container.pod}.pod']}", where=where,
                               hint=f"fix the pod {container.pod} first")
    if container.pod not in pods:
        raise DeclarationError(f"pod {container.pod} is not declared", where=where,
                               hint=f"add {container.pod}.pod beside the container "
                               f"declarations, or pods/{container.pod}.yaml")
    return pods[container.pod]


def _template_units(container: Container, text: str, links: tuple[str, ...],
                    health: list[tuple[str, str]]) -> list[Generated]:
    """The template units PREFIX@.service (and its health check's) of CONTAINER, read
    with TEMPLATE_INSTANCE: that instance becomes %i, and the [Install] links enable the
    DefaultInstance= (none without one, as quadlet does)."""
    def templated(value: str) -> str:
        return value.replace(TEMPLATE_INSTANCE, "%i")

    def unit_file(value: str) -> str:
        return value.replace(TEMPLATE_INSTANCE, "")

    own = container.unit_name
    default = container.default_instance
    enabled = tuple(
        link.replace(own, own.replace(TEMPLATE_INSTANCE, default))
        for link in links if "/" in link
    ) if default else ()
    return [
        Generated(unit_file(own), templated(text), enabled),
        *(Generated(unit_file(unit_name), templated(unit_text)) for unit_name, unit_text in health),
    ]


def _check_references(container: Container, found: dict[str, Path],
                      others: dict[str, VolumeDecl | ImageDecl],
                      broken: dict[str, HostctlError]) -> None:
    """Each NAME.container CONTAINER's dependencies name must be declared (quadlet refuses
    a dependency it cannot translate): an instance PREFIX@I by itself or its template."""
    for kind, name, where in container.unit_refs:
        prefix, instance, templated = template_parts(name)
        if f"{name}.{kind}" in broken:
            raise DeclarationError(f"{name}.{kind} cannot be used: {broken[f'{name}.{kind}']}",
                                   where=where, hint=f"fix {name}.{kind} first")
        if kind == "volume":
            if not isinstance(others.get(name), VolumeDecl):
                raise DeclarationError(
                    f"{name}.volume is not declared", where=where,
                    hint=f"add {name}.volume beside the container declarations, or name "
                    f"the volume {name} without .volume (made on first use)")
            continue
        if kind == "pod":
            continue  # checked with the pod itself (_pod_of)
        if kind == "image":
            if not isinstance(others.get(name), ImageDecl):
                raise DeclarationError(
                    f"{name}.image is not among the declarations", where=where,
                    hint=f"put {name}.image in a declaration directory (its unit pulls it)")
            continue
        if kind != "container" or name in found or (
                templated and instance and f"{prefix}@" in found):
            continue  # a .build was read with the container itself
        raise DeclarationError(
            f"{name}.container is not declared",
            where=where,
            hint=f"add {name}.container (or a YAML declaration named {name}), or name a "
            "unit instead",
        )


def _check_health_names(container: Container, found: dict[str, Path]) -> None:
    """CONTAINER's health check units must not be another declared container's unit."""
    clash = f"{container.name}{HEALTH_SUFFIX}"
    if clash in found:
        raise DeclarationError(
            f"its health check units would be {clash}.timer and {clash}.service, but "
            f"{found[clash]} declares a container named {clash}",
            where=str(container.source),
            hint=f"rename one of them, or give {container.name} health_cmd: none",
        )


def user_network(scope: Scope, container: Container) -> str | None:
    """The user network CONTAINER is a member of (declared, or a user's compose project's
    own), None for host, none, bridge (pasta), a system container or a network no file
    or project declares (its start reports that)."""
    if scope is not Scope.USER:
        return None
    from hostctl.network.defs import DEFAULT as DEFAULT_NETWORK
    from hostctl.network.defs import user_file, user_project_network

    if container.network in ("host", "none", DEFAULT_NETWORK):
        return None
    paths = for_scope(scope)
    if user_file(container.network, paths) is not None:
        return container.network
    try:
        owned = user_project_network(container.network, paths)
    except HostctlError:
        return None  # left out: the start reports why
    return container.network if owned is not None else None


def _warn_system_targets(
    scope: Scope, container: Container, links: tuple[str, ...], report: Report
) -> None:
    """A user's systemd has no multi-user.target: such a unit would never start at boot."""
    if scope is Scope.USER and any(link.startswith("multi-user.target.") for link in links):
        report(
            f"{container.where('install')}: multi-user.target does not exist in a user's "
            "systemd (hint: use WantedBy: default.target)"
        )


def _drop_clashing_aliases(units: list[Generated], report: Report) -> list[Generated]:
    """An Alias= naming another generated unit would overwrite that unit's file."""
    names = {unit.unit_name for unit in units}
    result = []
    for unit in units:
        links = []
        for link in unit.links:
            if "/" not in link and link in names:
                report(f"{unit.unit_name}: Alias={link} is ignored: {link} is a unit itself")
            else:
                links.append(link)
        result.append(Generated(unit.unit_name, unit.text, tuple(links)))
    return result


def _report_user_pod_network(pod: Pod, report: Callable[[str], None]) -> None:
    """A user's pod on a network it cannot use (hostctl.pod.rootless.check_network)."""
    from hostctl.pod.rootless import check_network

    try:
        check_network(pod)
    except HostctlError as err:
        report(str(err))
