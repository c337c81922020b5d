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
import time
from typing import TYPE_CHECKING

from hostctl import network
from hostctl.errors import RuntimeFailure
from hostctl.launcher.config import container_config
from hostctl.launcher.config import unit_cgroup as container_cgroup_of_unit
from hostctl.launcher.notify import extend_timeout, notify
from hostctl.launcher.state import ContainerState, remove
from hostctl.paths import Paths, Scope, for_scope
from hostctl.runtime.rootfs import mount_rootfs
from hostctl.runtime.runc import Runc, runtime_for

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.pull import Image
    from hostctl.runtime.userns import IdMap


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
        if self._thread.is_alive():
            self._thread.join()


def _image(container: Container, paths: Paths) -> Image:
    from hostctl.images.pull import pull
    from hostctl.images.store import Store

    with _KeepStartAlive():
        return pull(Store(paths.store), container.image, policy="missing",
                    rootless=paths.scope is Scope.USER, log=say)


def _enter_user_namespace(scope: Scope) -> tuple[IdMap, IdMap] | None:
    """Rootless: become root of our own user + mount namespace; the id maps used."""
    if scope is not Scope.USER:
        return None
    from hostctl.runtime.userns import enter, id_maps

    maps = id_maps(os.getuid(), os.getgid())
    enter(*maps)
    return maps


def _create(runtime: Runc, state: ContainerState, *, notify: bool) -> int:
    """runc create, again if systemd removed the container's new cgroup under it: after a
    quick restart, systemd's late "cgroup empty" handling of the previous run can trim the
    still-empty UNIT/container that runc has just made."""
    for attempt in range(3):
        try:
            return runtime.create(state.name, state.bundle, state.pid_file, notify=notify)
        except RuntimeFailure as err:
            vanished = "cgroup" in err.message and "no such file or directory" in err.message
            if attempt == 2 or not vanished:
                raise
            runtime.delete(state.name)
            say("the unit's cgroup was being cleaned up from the last run: creating again")
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def launch(name: str, scope: Scope) -> int:
    """Start container NAME for systemd; returns the launcher's exit status (0)."""
    from hostctl.declarations.search import load_declaration

    container = load_declaration(name, scope)
    paths = for_scope(scope)
    state = ContainerState(name, paths)
    unit_cgroup = container_cgroup_of_unit()
    maps = _enter_user_namespace(scope)
    remove(state)  # whatever a crash or power cut left behind
    runtime = runtime_for(str(container.runtime), paths.runc_root)
    image = _image(container, paths)
    state.bundle.mkdir(parents=True, exist_ok=True)
    state.record_runtime(runtime.binary)
    try:
        mount_rootfs(list(image.snapshots), image.snapshots[0].parent if image.snapshots
                     else paths.store, state.scratch, state.rootfs,
                     rootless=scope is Scope.USER)
        net = network.plan(container, paths)
        config = container_config(container, image, state, paths, net,
                                  unit_cgroup=unit_cgroup, user_maps=maps)
        (state.bundle / "config.json").write_text(json.dumps(config))
        pid = _create(runtime, state, notify=container.notify)
        network.attach(container, pid, paths)
        # Hand the init to systemd while it still waits in `runc init` for the start: it
        # is alive and already systemd's child (runc create has exited), so systemd takes
        # it as the main process and collects its exit status even if the container ends
        # the moment it starts (one that exits 0 before READY=1 below fails the start).
        notify(f"MAINPID={pid}", f"STATUS=starting {image.reference}")
        runtime.start(name, notify=container.notify)
    except BaseException:
        remove(state)
        raise
    # With `notify: true` the container itself has said READY=1 (runc start waited).
    notify(*(() if container.notify else ("READY=1",)), f"STATUS=running {image.reference}")
    return 0


def cleanup(name: str, scope: Scope) -> None:
    """The unit's ExecStopPost: remove runc state, the rootfs mount and the writable layer."""
    state = ContainerState(name, for_scope(scope))
    _enter_user_namespace(scope)
    remove(state)
