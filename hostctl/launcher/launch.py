"""What a container's unit runs: `hostctl launch NAME` and `hostctl cleanup NAME`.

launch: declaration -> image (pulled as `pull:` says) -> overlay rootfs -> config.json ->
runc create/start -> MAINPID= and READY=1 to systemd -> exit. Nothing stays resident:
systemd supervises the container's init directly.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl import network
from hostctl.images.store import Store
from hostctl.launcher import record as records
from hostctl.launcher import recording
from hostctl.launcher.config import container_config
from hostctl.launcher.handoff import drop_container_output, hand_off, say
from hostctl.launcher.notify import extend_timeout
from hostctl.launcher.state import ContainerState, remove
from hostctl.paths import Paths, Scope, for_scope
from hostctl.runtime import cgroups
from hostctl.runtime.rootfs import mount_rootfs
from hostctl.runtime.runc import runtime_for

# A start's health check: healthcheck.json's text, the check, the check's OCI process.
Health = tuple[str, dict[str, Any], dict[str, Any]]

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.pull import Image
    from hostctl.runtime.userns import IdMap

__all__ = ["cleanup", "launch", "say"]


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


def _image(container: Container, store: Store, paths: Paths) -> Image:
    """The container's image as its `pull:` and `platform:` settings say: missing (the
    stored one, pulled only when absent), always (the registry's, a failure fails the
    start), newer (the registry's, the stored one when the registry fails), never."""
    from hostctl.errors import ImageError
    from hostctl.images.pull import pull

    rootless = paths.scope is Scope.USER
    policy = str(container.pull)
    with _KeepStartAlive():
        if container.build is not None:
            reference = _build_if_missing(container, store, paths)
            return pull(store, reference, policy="never", rootless=rootless, log=say)
        if policy in ("missing", "never"):
            return pull(store, container.image, platform=container.platform, policy=policy,
                        rootless=rootless, log=say)
        try:
            image = pull(store, container.image, platform=container.platform,
                         policy="always", rootless=rootless, log=say)
        except ImageError as err:
            if policy != "newer":
                raise
            say(f"{err}; pull: newer starts the stored image")
            return pull(store, container.image, platform=container.platform,
                        policy="never", rootless=rootless, log=say)
        return _unless_rejected(container, store, image, rootless)


def _unless_rejected(container: Container, store: Store, image: Image, rootless: bool
                     ) -> Image:
    """IMAGE, unless auto-update rolled container NAME back from it (its rollback record
    rejects it): then the image the rollback left it on, with the reference pointed back
    at it, so that `pull: always|newer` does not start a release found broken again at
    every start."""
    from hostctl.images import pins

    pin = pins.read(store, container.name)
    if pin is None or pin.rejected is None:
        return image
    from hostctl.images.manifest import host_platform, parse_platform
    from hostctl.images.pull import pull
    from hostctl.updates.compare import stored_image_id

    wanted = parse_platform(container.platform) if container.platform else host_platform()
    pulled = stored_image_id(store, image.manifest_digest, wanted, container.image)
    if not pin.rejects(pulled.manifest) or pin.running.manifest == pulled.manifest:
        return image
    say(f"{container.image} is {pulled.manifest}, which was rolled back from "
        f"({pin.rejected.reason}); starting {pin.running.manifest} (hint: `hostctl "
        "auto-update` moves on when the registry offers another image)")
    store.record(image.reference, pin.running.digest, pin.running.manifest)
    return pull(store, image.reference, platform=container.platform, policy="never",
                rootless=rootless, log=say)


def _build_if_missing(container: Container, store: Store, paths: Paths) -> str:
    """`build:`: run `hostctl build` (its own process: its mounts live in a namespace of
    its own) when the image is not stored; the reference it is stored under."""
    from hostctl.api.build import canonical_tag

    reference = canonical_tag(container.image)
    if store.lookup(reference) is not None:
        return reference
    import subprocess
    import sys

    build = container.build
    assert build is not None
    argv = [sys.executable, "-m", "hostctl", "build", "-t", reference]
    if build.file:
        argv += ["-f", os.path.join(build.context, build.file)]
    argv += [f"--build-arg={name}={value}" for name, value in build.args]
    if build.target:
        argv += ["--target", build.target]
    if paths.scope is Scope.USER:
        argv.append("--user")
    say(f"building {reference} from {build.context}")
    done = subprocess.run([*argv, build.context], stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        from hostctl.errors import HostctlError

        raise HostctlError(f"building {reference} failed (exit {done.returncode})",
                           where=container.where("build"),
                           hint="the build's output is above in the unit's journal")
    return reference


def _enter_user_namespace(scope: Scope, container: Container | None = None,
                          cached: str | None = None, pod: str | None = None
                          ) -> tuple[IdMap, IdMap] | None:
    """Rootless: become root of our own user + mount namespace; the id maps used.

    A member of a user network (CONTAINER's, or CACHED: the one its last start joined)
    joins the user namespace of the network's holder instead, which has the same maps
    (hostctl.network.usernet); a pod's member (CONTAINER's pod, or POD: the pod its
    last start joined) that of the pod's holder (hostctl.pod.rootless)."""
    if scope is not Scope.USER:
        return None
    from hostctl.launcher import quickuser
    from hostctl.runtime.userns import enter, id_maps, join

    if quickuser.entered():  # a recorded start's, which fell back to this one
        return quickuser.entered_maps()
    maps = id_maps(os.getuid(), os.getgid())
    if container is not None:
        from hostctl.network.usernet import detach_other

        detach_other(container.name, for_scope(scope), container.network)
    if container is not None and container.pod is not None:  # the pod's holder's
        from hostctl.pod import member, rootless

        rootless.join(member.running_pod(container, for_scope(scope)))
        return maps
    if container is not None and container.network not in ("host", "none", "bridge"):
        from hostctl.network.usernet import running_holder

        join(running_holder(container, for_scope(scope)).pid, container.network)
        return maps
    if pod is not None and _joined_pod(pod, for_scope(scope)):
        return maps
    if cached is not None:
        from hostctl.network.holder import running

        found = running(for_scope(scope), cached)
        if found is not None:
            join(found.pid, cached)
            return maps
    enter(*maps)
    return maps


def _joined_pod(pod: str, paths: Paths) -> bool:
    """Join the user namespace of POD's holder if it still runs; whether it did."""
    from hostctl.pod import holder, rootless

    record = holder.read_record(paths, pod)
    if record is None or rootless.holder_pid(record) is None:
        return False
    rootless.join(record)
    return True


def launch(name: str, scope: Scope) -> int:
    """Start container NAME for systemd; returns the launcher's exit status (0)."""
    from hostctl.declarations.search import load_declaration

    container = load_declaration(name, scope)
    paths = for_scope(scope)
    if container.pod is not None:
        from hostctl.pod.member import with_pod_volumes

        container = with_pod_volumes(container, paths)
    state = ContainerState(name, paths)
    unit_cgroup = cgroups.unit_cgroup()
    maps = _enter_user_namespace(scope, container)
    remove(state)  # whatever a crash or power cut left behind
    _drop_record(name, scope)
    runtime = runtime_for(str(container.runtime), paths.runc_root)
    store = Store(paths.store)
    with store.shared():  # no prune between finding the image and mounting it
        image = _image(container, store, paths)
        state.bundle.mkdir(parents=True, exist_ok=True)
        state.record_runtime(runtime.binary)
        if container.service_name:  # the unit is not NAME.service: health checks ask
            (state.bundle / "unit").write_text(container.unit_name)
        try:
            mount_rootfs(list(image.snapshots), _layer_base(image, paths), state.scratch,
                         state.rootfs, rootless=scope is Scope.USER)
        except BaseException:
            remove(state)
            raise
    try:
        net = network.plan(container, paths)
        config = container_config(container, image, state, paths, net,
                                  unit_cgroup=unit_cgroup, user_maps=maps)
        (state.bundle / "config.json").write_text(json.dumps(config))
        check = _health_check(container, image, state, config)
        recordable = recording.eligible(container, scope, config)

        def attach(pid: int) -> None:
            network.attach(container, pid, paths)
            if recordable:  # once the network is wired: the record holds its outcome
                recording.save(container, image, state, paths, runtime, config,
                               str(_layer_base(image, paths)), check,
                               start_timer=_starts_timer(container, check), maps=maps)

        if str(container.log_driver) == "none":
            drop_container_output()
        hand_off(runtime, name, str(state.bundle), reference=image.reference,
                 ready_by_container=container.ready_by_container,
                 ready_when_healthy=container.ready_when_healthy and check is not None,
                 user=scope is Scope.USER, oneshot=container.oneshot, attach=attach)
    except BaseException:
        remove(state)
        _drop_record(name, scope)
        raise
    if _starts_timer(container, check):
        from hostctl.health.run import start_timer

        start_timer(name, scope is Scope.USER)
    return 0


def _health_check(container: Container, image: Image, state: ContainerState,
                  config: dict[str, Any]) -> Health | None:
    """Write this start's health files (hostctl.health.status.begin; none without a
    check); what they were made from, or None."""
    from hostctl.health import spec, status
    from hostctl.health.run import check_process

    check = spec.effective(container, image.config)
    health = (spec.dumps(check), check, check_process(config)) if check is not None else None
    text, found, process = health if health is not None else (None, None, None)
    status.begin(str(state.bundle), text, found, process, time.time())
    if health is None and container.ready_when_healthy:
        say(f"notify: healthy, but {image.reference} has no HEALTHCHECK and the declaration "
            "no health_cmd: ready at once")
    return health


def _starts_timer(container: Container, check: Health | None) -> bool:
    """Whether this start has to start the health timer (the image's HEALTHCHECK)."""
    from hostctl.health.spec import launcher_starts_timer

    return launcher_starts_timer(container, check[1] if check is not None else None)


def _drop_record(name: str, scope: Scope) -> None:
    """No record may outlive a full start that did not write it (see launcher.record)."""
    records.drop(name, scope is Scope.USER)


def _layer_base(image: Image, paths: Paths) -> Path:
    return image.snapshots[0].parent if image.snapshots else paths.store


def cleanup(name: str, scope: Scope) -> None:
    """The unit's ExecStopPost: remove runc state, the rootfs mount and the writable layer."""
    paths = for_scope(scope)
    state = ContainerState(name, paths)
    cached = None
    pods = [marker.parent.parent.name for marker in (paths.run / "pods").glob(f"*/members/{name}")]
    if scope is Scope.USER:
        from hostctl.network.usernet import cached_network

        cached = cached_network(name, paths)
    _enter_user_namespace(scope, cached=cached, pod=pods[0] if pods else None)
    remove(state)
    for pod in pods:
        from hostctl.pod.member import left

        left(name, pod, scope, paths)
