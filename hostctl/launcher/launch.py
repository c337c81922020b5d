"""What a container's unit runs: `hostctl launch NAME` and `hostctl cleanup NAME`.

launch: declaration -> image (pulled when missing) -> overlay rootfs -> config.json ->
runc create/start -> MAINPID= and READY=1 to systemd -> exit. Nothing stays resident:
systemd supervises the container's init directly.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl import network
from hostctl.launcher.notify import extend_timeout, notify
from hostctl.launcher.state import ContainerState, remove
from hostctl.network import NetworkPlan
from hostctl.paths import Paths, Scope, for_scope
from hostctl.runtime import cgroups
from hostctl.runtime.rootfs import mount_rootfs
from hostctl.runtime.spec import build_config, merge_process
from hostctl.runtime.users import resolve_user

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.pull import Image


def say(message: str) -> None:
    """One line to stderr, which the unit sends to the journal."""
    print(f"hostctl: {message}", file=sys.stderr, flush=True)


class _KeepStartAlive:
    """While a pull runs, keep extending systemd's start timeout (quadlet units time out)."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            extend_timeout(self._every * 3)

    def __enter__(self) -> None:
        if os.environ.get("NOTIFY_SOCKET"):
            self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def _image(container: Container, paths: Paths) -> Image:
    from hostctl.images.pull import pull
    from hostctl.images.store import Store

    with _KeepStartAlive():
        return pull(Store(paths.store), container.image, policy="missing",
                    rootless=paths.scope is Scope.USER, log=say)


def _etc_files(state: ContainerState, hostname: str, net: NetworkPlan) -> dict[str, str]:
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
        host = state.bundle / Path(dest).name
        host.write_text(content)
        mounts[dest] = str(host)
    return mounts


def _config(
    container: Container, image: Image, state: ContainerState, net: NetworkPlan
) -> dict[str, Any]:
    process = merge_process(
        image.config,
        entrypoint=container.entrypoint,
        command=container.command,
        env=container.env,
        workdir=container.workdir,
    )
    user = container.user or (image.config.get("config") or {}).get("User")
    identity = resolve_user(str(state.rootfs), user)
    unit_cgroup = cgroups.own_cgroup() if os.environ.get("INVOCATION_ID") else None
    if unit_cgroup and cgroups.is_unified():
        cgroups.leave_unit_cgroup(unit_cgroup)
    return build_config(
        process,
        identity,
        rootfs=str(state.rootfs),
        hostname=container.name,
        files=_etc_files(state, container.name, net),
        network_namespace=net.namespace,
        cgroups_path=cgroups.container_cgroup(unit_cgroup) if unit_cgroup else None,
        annotations={
            "io.hostctl.name": container.name,
            "io.hostctl.image": image.reference,
            "io.hostctl.image.digest": image.manifest_digest,
        },
    )


def launch(name: str, scope: Scope) -> int:
    """Start container NAME for systemd; returns the container's init PID."""
    from hostctl.declarations.search import load_declaration

    container = load_declaration(name, scope)
    paths = for_scope(scope)
    state = ContainerState(name, paths)
    runtime = state.runtime()
    remove(state, runtime)  # whatever a crash or power cut left behind
    image = _image(container, paths)
    state.bundle.mkdir(parents=True, exist_ok=True)
    try:
        mount_rootfs(list(image.snapshots), image.snapshots[0].parent if image.snapshots
                     else paths.store, state.scratch, state.rootfs,
                     rootless=scope is Scope.USER)
        net = network.plan(container, paths)
        config = _config(container, image, state, net)
        (state.bundle / "config.json").write_text(json.dumps(config))
        pid = runtime.create(name, state.bundle, state.pid_file)
        network.attach(container, pid, paths)
        runtime.start(name)
    except BaseException:
        remove(state, runtime)
        raise
    notify(f"MAINPID={pid}", "READY=1", f"STATUS=running {image.reference}")
    return pid


def cleanup(name: str, scope: Scope) -> None:
    """The unit's ExecStopPost: remove runc state, the rootfs mount and the writable layer."""
    state = ContainerState(name, for_scope(scope))
    remove(state, state.runtime())
