"""Writing a start record after a full start (see hostctl.launcher.record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hostctl
from hostctl import __version__
from hostctl.images.reference import is_short_name
from hostctl.launcher import record as records
from hostctl.network import resolv
from hostctl.paths import Scope
from hostctl.runtime.runc import runtime_id

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.pull import Image
    from hostctl.launcher.state import ContainerState
    from hostctl.paths import Paths
    from hostctl.runtime.runc import Runc
    from hostctl.runtime.userns import IdMap

ETC_FILES = ("hostname", "hosts", "resolv.conf")  # as launcher.config.etc_files names them


def eligible(container: Container, scope: Scope, config: dict[str, Any]) -> bool:
    """Whether the next start of CONTAINER may reuse this one (with CONFIG).

    Only for starts by systemd (the config has the unit's cgroup). Not for: a user's
    container in a pod or on a declared (user) network (it joins the namespaces of their
    holders; a user's container on its default network, pasta's, or on host or none is
    fine: hostctl.launcher.quickuser), secrets
    (copied from the unit's credentials at each start), volumes with the `U` option (chowned at each
    start), anonymous volumes (made anew at each start), short image names (resolved
    through registries.conf at each start), `pull: always` or `newer` (the registry is
    asked at each start), `env_host` (the container gets the variables systemd sets anew
    for each start), `log_driver: none` (the full start hands the container /dev/null),
    quadlet files that name other files (Image=NAME.image or NAME.build,
    Volume=NAME.volume: those files are not among the record's inputs, so a change to
    them must reach the next start; Pod=NAME.pod is fine: what of the pod matters to a
    member is in the pod's record) and containers on several networks (`networks`: the
    network replay, hostctl.network.replay, wires one network). A compose project's
    container is fine: every installed project's files are among its record's inputs
    (save()).
    """
    image_text = str(container.image)
    rootless_ok = container.pod is None and container.network in ("bridge", "host", "none")
    return ((scope is Scope.SYSTEM or rootless_ok)
            and bool(config.get("linux", {}).get("cgroupsPath"))
            and str(container.pull) in ("missing", "never")
            and not container.secrets
            and not container.oneshot
            and all(kind == "pod" for kind, _, _ in container.unit_refs)
            and not container.env_host
            and not container.networks
            and str(container.log_driver) != "none"
            and not any("U" in volume.options or volume.kind == "anonymous"
                        for volume in container.volumes)
            and (image_text.startswith(("oci:", "oci-archive:")) or not is_short_name(image_text)))


def _bind_sources(config: dict[str, Any], bundle: str, pods: tuple[str, ...] = ()
                  ) -> list[str]:
    """Host paths the config bind-mounts, other than the bundle's own files and the
    pod's /dev/shm and hosts file (PODS: made anew at each start of the pod, at the
    same paths: the pod's record stands for them)."""
    return [str(m["source"]) for m in config.get("mounts", [])
            if any(o in ("bind", "rbind") for o in m.get("options", ()))
            and not str(m["source"]).startswith(bundle + "/")
            and str(m["source"]) not in pods]


def _pod_input(container: Container, paths: Paths) -> dict[str, str] | None:
    """A member's pod as an input of its record: the pod's record (pod.json), whose
    text must be the same at the next start (same namespaces, files and volumes at the
    same paths), and the marker a running member leaves (hostctl.pod.member)."""
    if container.pod is None:
        return None
    from hostctl.pod.holder import RECORD, pod_dir

    folder = pod_dir(paths, container.pod)
    return {"name": container.pod, "record": str(folder / RECORD),
            "text": (folder / RECORD).read_text(),
            "marker": str(folder / "members" / container.name)}


def _own_code() -> list[str]:
    """hostctl's own modules: a record is only good for the code that wrote it (an
    upgrade, or an edited checkout, means a full start)."""
    package = Path(hostctl.__file__).parent
    return sorted(str(p) for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _rootless(maps: tuple[IdMap, IdMap]) -> tuple[dict[str, Any], list[str], list[str]]:
    """A user's start: the id maps (and the tools that wrote them) for the record, with
    the paths whose content and presence they depend on."""
    from hostctl.launcher.quickuser import default_route
    from hostctl.proc import which

    uids, gids = maps
    tools = [which("newuidmap"), which("newgidmap")] if len(uids.triples()) > 1 else []
    part = {"uid_map": [list(t) for t in uids.triples()],
            "gid_map": [list(t) for t in gids.triples()], "tools": tools,
            "route": default_route()}
    return part, ["/etc/subuid", "/etc/subgid", "/etc/passwd"], tools


def recorded_config(config: dict[str, Any], pasta: bool) -> str:
    """CONFIG's text for a record: placeholders for the cgroup and, with PASTA (a user's
    container on its default network), the network namespace, which the recorded start
    makes itself (hostctl.launcher.quickuser) where runc made it for the full start."""
    linux = {**config.get("linux", {}), "cgroupsPath": records.CGROUP_PLACEHOLDER}
    if pasta:
        linux["namespaces"] = [
            {"type": "network", "path": records.NETNS_PLACEHOLDER} if n["type"] == "network"
            else n for n in linux.get("namespaces", [])]
    return json.dumps({**config, "linux": linux})


def save(container: Container, image: Image, state: ContainerState, paths: Paths,
         runtime: Runc, config: dict[str, Any], layer_base: str,
         health: tuple[str, dict[str, Any], dict[str, Any]] | None, *,
         start_timer: bool, maps: tuple[IdMap, IdMap] | None = None) -> None:
    """Record this start of CONTAINER for the next one (called between runc create and
    start, once the network is attached); HEALTH is its check
    (hostctl.launcher.launch.Health; None: no check), START_TIMER whether the start has
    to start the check's timer; MAPS a user's start's id maps. Nothing is recorded for a
    network that cannot be replayed (hostctl.network.for_record)."""
    from hostctl import network
    from hostctl.declarations.search import declaration_inputs

    wired = network.for_record(container, paths)
    if wired is None:
        return
    net, net_content, net_present, listed = wired

    bundle = str(state.bundle)
    scope = paths.scope
    content = [str(p) for p in declaration_inputs(container.name, scope)]
    content += [str(p) for p in container.env_files]
    if container.seccomp_profile and container.seccomp_profile.startswith("/"):
        content.append(container.seccomp_profile)  # read at each full start
    content.append(str(paths.store / "images.json"))  # hostctl.images.store's index
    content += _own_code() + net_content
    if container.origins:  # translated from a compose project
        from hostctl.compose.installed import record_inputs

        content += record_inputs(scope)
    rootless = None
    if maps is not None:
        rootless, user_content, user_present = _rootless(maps)
        content += user_content
        net_present = [*net_present, *user_present]
    content = list(dict.fromkeys(content))
    pod = _pod_input(container, paths)
    pods: tuple[str, ...] = ()
    if pod is not None:
        from hostctl.pod.holder import PodRecord

        shared = PodRecord.from_json(pod["text"])
        pods = (shared.shm, shared.hosts)
    present = [runtime.path, *(str(s) for s in image.snapshots),
               *_bind_sources(config, bundle, pods), *(d.host_path for d in container.devices),
               *net_present]
    absent = [bundle, str(state.scratch), str(paths.runc_root / runtime_id(container.name)),
              str(state.runtime_file)]
    if net is not None and "pasta" in net:  # its last PID file: the last stop ended it
        from hostctl.network import state_dir

        absent += [net["pid_file"], str(state_dir(paths) / "cni" / f"{container.name}.json")]
    elif net is not None:  # what the last stop removed, or the full start must clean up
        absent += [net["netns"], net["cache"], net["claims_file"]]
    config_text = recorded_config(config, net is not None and "pasta" in net)
    record = {
        "format": records.FORMAT,
        "hostctl": __version__,
        "env": records.start_environment(),
        "content": [[p, records.content_signature(p)] for p in content],
        "present": [[p, records.presence_signature(p)] for p in present],
        # by their text: many hosts write them anew at each boot (the record outlives one)
        "text": [[p, records.text_signature(p)]
                 for p in (str(resolv.HOST_RESOLV), str(resolv.RESOLVED_UPSTREAM))],
        "absent": absent,
        "listed": [list(entry) for entry in listed],
        "store": str(paths.store),
        "reference": image.reference,
        "lowerdirs": [str(s) for s in image.snapshots],
        "layer_base": layer_base,
        "scratch": str(state.scratch),
        "bundle": bundle,
        "runc_root": str(paths.runc_root),
        "runtime": runtime.path,
        "runtime_file": str(state.runtime_file),
        "notify": container.ready_by_container,
        "notify_healthy": container.ready_when_healthy and health is not None,
        "health": list(health) if health is not None else None,
        "health_timer": start_timer,
        # a pod's member mounts the pod's hosts file: it has none in its bundle
        "files": {name: (state.bundle / name).read_text() for name in ETC_FILES
                  if (state.bundle / name).exists()},
        "config": config_text,
        "pod": pod,
        "net": net,
        "rootless": rootless,
    }
    records.save(container.name, record, scope is Scope.USER)
