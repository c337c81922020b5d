"""config.json for one start: the image config plus every declaration key that acts
inside the container (the unit-side keys are rendered into the unit file)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError, RuntimeFailure
from hostctl.runtime import cgroups, security, volumes
from hostctl.runtime.spec import DEFAULT_CAPABILITIES, Extras, Process, build_config, merge_process
from hostctl.runtime.users import Identity, resolve_user

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.pull import Image
    from hostctl.launcher.state import ContainerState
    from hostctl.network import NetworkPlan
    from hostctl.paths import Paths
    from hostctl.runtime.userns import IdMap


def read_env_file(path: str, where: str) -> list[tuple[str, str]]:
    """KEY=VALUE lines (docker's --env-file): # comments, blank lines, KEY alone takes
    the launcher's own value when it has one."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RuntimeFailure(f"env file {path}: {exc.strerror}", where=where) from None
    pairs = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise RuntimeFailure(f"{path}:{number}: not a NAME=VALUE line", where=where)
        if sep:
            pairs.append((key, value))
        elif key in os.environ:
            pairs.append((key, os.environ[key]))
    return pairs


def _process(container: Container, image: Image, init: str | None) -> Process:
    env = list(container.env)
    for path in container.env_files:
        env += read_env_file(path, container.where("env_files"))
    env += volumes.secret_env(container.secrets, container.where)
    process = merge_process(image.config, entrypoint=container.entrypoint,
                            command=container.command, env=env, workdir=container.workdir)
    if init is None:
        return process
    return Process(args=(volumes.init_path(init), "--", *process.args), env=process.env,
                   cwd=process.cwd)


def _identity(container: Container, image: Image, rootfs: Path) -> Identity:
    user = container.user or (image.config.get("config") or {}).get("User")
    try:
        return resolve_user(str(rootfs), user, group=container.group, groups=container.groups)
    except HostctlError as err:
        key = "user" if container.user else ("group" if container.group else "groups")
        if err.where is None and (container.user or container.group or container.groups):
            err.where = container.where(key)
        raise


def _mounts(container: Container, state: ContainerState, paths: Paths, identity: Identity,
            init: str | None) -> list[dict[str, Any]]:
    where = container.where
    owner = (identity.uid, identity.gid)
    mounts = volumes.volume_mounts(container.volumes, paths.state / "volumes", state.rootfs,
                                   where, owner)
    mounts += volumes.tmpfs_mounts(container.tmpfs)
    if container.read_only:
        taken = {m["destination"] for m in mounts}
        mounts = volumes.read_only_tmpfs(taken) + mounts
    mounts += volumes.timezone_mount(container.timezone, where)
    mounts += volumes.secret_mounts(container.secrets, state.bundle / "secrets", owner, where)
    if init is not None:
        mounts.append(volumes.init_mount(init))
    return mounts


def _extras(container: Container, state: ContainerState, paths: Paths, identity: Identity,
            init: str | None, own_network: bool, user_maps: tuple[IdMap, IdMap] | None
            ) -> Extras:
    caps = security.capability_sets(DEFAULT_CAPABILITIES, container.cap_add,
                                    container.cap_drop, root=identity.uid == 0)
    nodes, rules = security.device_entries(container.devices, container.where)
    return Extras(
        read_only=container.read_only,
        capabilities=caps,
        no_new_privileges=container.no_new_privileges,
        mounts=tuple(_mounts(container, state, paths, identity, init)),
        devices=tuple(nodes),
        device_rules=tuple(rules),
        rlimits=tuple(security.rlimits(container.ulimits)),
        sysctls=security.sysctls(container.sysctls, own_network=own_network,
                                 where=container.where),
        shm_size=container.shm_size,
        # Rootless: runc runs as root of the launcher's own user namespace (which maps
        # the user and its sub-ids); the container shares that namespace.
        rootless=user_maps is not None,
    )


def etc_files(state: ContainerState, hostname: str, net: NetworkPlan) -> dict[str, str]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf, written into the bundle."""
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"
    hosts += "".join(f"{address}\t{names}\n" for address, names in net.hosts)
    files = {
        "/etc/hostname": f"{hostname}\n",
        "/etc/hosts": hosts,
        "/etc/resolv.conf": net.resolv_conf,
    }
    mounts = {}
    for dest, content in files.items():
        if dest == "/etc/hosts" and net.hosts_file:  # a pod's member: the pod's, shared
            mounts[dest] = net.hosts_file
            continue
        host = state.bundle / Path(dest).name
        host.write_text(content)
        mounts[dest] = str(host)
    return mounts


def container_config(container: Container, image: Image, state: ContainerState,
                     paths: Paths, net: NetworkPlan, *, unit_cgroup: str | None,
                     user_maps: tuple[IdMap, IdMap] | None) -> dict[str, Any]:
    """The complete config.json for this start."""
    init = volumes.init_binary() if container.init else None
    identity = _identity(container, image, state.rootfs)
    hostname = net.hostname or container.hostname or container.name
    annotations = {
        **dict(container.annotations),
        "io.hostctl.name": container.name,
        "io.hostctl.image": image.reference,
        "io.hostctl.image.digest": image.manifest_digest,
    }
    return build_config(
        _process(container, image, init),
        identity,
        rootfs=str(state.rootfs),
        hostname=hostname,
        files=etc_files(state, hostname, net),
        network_namespace=net.namespace,
        cgroups_path=cgroups.container_cgroup(unit_cgroup) if unit_cgroup else None,
        annotations=annotations,
        extras=dataclasses.replace(
            _extras(container, state, paths, identity, init, net.namespace is not None,
                    user_maps),
            joined=net.pod_namespaces, shm_source=net.shm),
    )
