"""The recorded start: a container started again exactly as its last full start made it.

hostctl.launcher.record explains what a record holds and when it is current. This path
runs when it is: a fresh writable layer over the same snapshots, the same config.json
(with this start's cgroup), then the hand-off to systemd. It imports no declaration,
image or network code; when the record is missing or stale it returns None and the
caller runs the full start.
"""

from __future__ import annotations

import _thread
import fcntl
import os
import time

from hostctl import __version__
from hostctl.errors import RuntimeFailure
from hostctl.launcher import record as records
from hostctl.launcher.handoff import hand_off, say
from hostctl.launcher.teardown import tear_down
from hostctl.runtime import cgroups
from hostctl.runtime.rootfs import mount_rootfs
from hostctl.runtime.runc import Runc

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    Result = TypeVar("Result")


def launch_recorded(name: str) -> int | None:
    """Start system container NAME from its record; None when a full start is needed."""
    if not os.environ.get("INVOCATION_ID"):
        return None  # not started by systemd: no record applies
    # imported here: a user's recorded start (quickuser) shares the helpers below, not this
    from hostctl.launcher import quicknet

    # Leaving the unit's cgroup waits for an RCU grace period in the kernel (about 10 ms):
    # it runs in a thread while this one checks the record and mounts the rootfs.
    unit_cgroup = in_background(cgroups.unit_cgroup)
    record, kept = records.load_for_start(name)
    if record is None or not isinstance(record.get("store"), str):
        unit_cgroup()
        return None
    lock = shared_store_lock(record["store"])
    if lock is None:
        unit_cgroup()
        return None
    net = record.get("net")
    try:
        changed = records.stale_input(record, __version__)
        current = changed is None
        if current:
            if kept:  # the first start since a boot: this boot's stop and starts use it
                records.restore(name, record)
            prepare(record)
    except BaseException:
        os.close(lock)
        unit_cgroup()
        remove_started(name)
        raise
    os.close(lock)  # the overlay is mounted: prune sees the snapshots in use from here on
    if not current:
        say(f"the recorded start does not apply ({changed}): starting in full")
        unit_cgroup()
        return None
    wiring = None
    try:
        if net is not None:  # wired in a thread while runc create runs
            wiring = quicknet.connect(name, net)
        unit = unit_cgroup()
        if unit is None:
            raise RuntimeFailure("cannot find this unit's cgroup in /proc/self/cgroup",
                                 hint="hostctl needs the unified cgroup hierarchy (v2)")
        write_bundle(record, cgroups.container_cgroup(unit))
        if record["pod"] is not None:  # a running member's marker (hostctl.pod.member)
            os.makedirs(os.path.dirname(record["pod"]["marker"]), exist_ok=True)
            os.close(os.open(record["pod"]["marker"], os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                             0o644))
        if wiring is not None:
            wiring.bundle_written()
        say(records.RECORDED_START)
        hand_off(Runc(record["runc_root"], record["runtime"]), name, record["bundle"],
                 reference=record["reference"], ready_by_container=record["notify"],
                 ready_when_healthy=record["notify_healthy"],
                 attach=wiring.wait if wiring is not None else None)
    except quicknet.Doubt as doubt:
        say(f"the recorded start does not apply ({doubt}): starting in full")
        remove_started(name)
        return None
    except BaseException:
        if wiring is not None:  # its plugin and rules finish before the cleanup undoes them
            wiring.settle()
        remove_started(name)
        raise
    if record["health_timer"]:
        from hostctl.health.run import start_timer

        start_timer(name, False)
    return 0


def cleanup_recorded(name: str) -> bool:
    """The unit's ExecStopPost for a system container whose last start was made from (or
    wrote) its record: False when there is no record, and the full cleanup must run.

    A full start drops the record before anything else and writes one once its network
    is wired, so a record says what there is to undo: this removes the runc container,
    the rootfs mount, the writable layer and the bundle, as
    hostctl.launcher.state.remove does, and what the network's replay took
    (hostctl.launcher.quicknet.release), without the network code; whatever that cannot
    release as recorded, the full cleanup's network half does.
    """
    record = records.load(records.record_path(name))
    if record is None:
        return False
    try:
        runc_root, runtime = str(record["runc_root"]), str(record["runtime"])
        bundle, scratch = str(record["bundle"]), str(record["scratch"])
        runtime_file = str(record["runtime_file"])
    except KeyError:
        return False
    net = record.get("net")
    from hostctl.launcher import quicknet

    # The container's processes are gone: its network is released (rules, plugin DEL)
    # while runc's state, the mount and the layer are removed, as systemd gives the
    # whole cleanup TimeoutStopSec= (stop_timeout) only.
    released = in_background(lambda: quicknet.release(name, net)) if net is not None else None
    tear_down(Runc(runc_root, runtime), name, bundle, scratch, runtime_file)
    if released is not None and not released():
        from hostctl.launcher import enable_site

        enable_site()
        from hostctl import network
        from hostctl.paths import Scope, for_scope

        network.detach(name, for_scope(Scope.SYSTEM))
    if record.get("pod") is not None:  # a pod's member: as the full cleanup does
        from hostctl.launcher import enable_site

        enable_site()  # idempotent: the network's release may have loaded it
        from hostctl.paths import Scope, for_scope
        from hostctl.pod.member import left

        left(name, record["pod"]["name"], Scope.SYSTEM, for_scope(Scope.SYSTEM))
    return True


def in_background(func: Callable[[], Result]) -> Callable[[], Result]:
    """Run FUNC in a thread of its own; the returned function waits for its result."""
    done = _thread.allocate_lock()
    done.acquire()
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(func())
        except BaseException as err:  # handed to the waiting thread
            outcome.append(err)
        finally:
            done.release()

    _thread.start_new_thread(run, ())

    def wait() -> Result:
        done.acquire()  # until run() has finished
        done.release()  # so that a second wait() returns at once
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[return-value]  # what func returned

    return wait


def shared_store_lock(store: str) -> int | None:
    """The store's gc lock, shared (as a pull holds it): no prune while we check and mount."""
    try:
        fd = os.open(os.path.join(store, "locks", "gc.lock"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def prepare(record: dict[str, Any]) -> None:
    """The runtime marker, the bundle and the overlay, as the full start makes them."""
    os.makedirs(record["runc_root"], mode=0o700, exist_ok=True)
    with open(record["runtime_file"], "w") as handle:
        handle.write(os.path.basename(record["runtime"]))
    os.makedirs(record["bundle"], exist_ok=True)
    mount_rootfs(record["lowerdirs"], record["layer_base"], record["scratch"],
                 os.path.join(record["bundle"], "rootfs"),
                 rootless=record.get("rootless") is not None)


def write_bundle(record: dict[str, Any], cgroup: str, netns: str | None = None) -> None:
    """The /etc files and config.json, with this start's cgroup (and network namespace:
    a user's container with pasta, hostctl.launcher.quickuser)."""
    for file_name, content in record["files"].items():
        with open(os.path.join(record["bundle"], file_name), "w") as handle:
            handle.write(content)
    placeholder = records.json_string(records.CGROUP_PLACEHOLDER)
    config = record["config"].replace(placeholder, records.json_string(cgroup), 1)
    if netns is not None:
        placeholder = records.json_string(records.NETNS_PLACEHOLDER)
        config = config.replace(placeholder, records.json_string(netns), 1)
    with open(os.path.join(record["bundle"], "config.json"), "w") as handle:
        handle.write(config)
    if record["health"] is not None:  # healthcheck.json's text, the check, its process
        from hostctl.health.status import begin

        text, check, process = record["health"]
        begin(record["bundle"], text, check, process, time.time())


def remove_started(name: str, user: bool = False) -> None:
    """A failed recorded start: undo it as the full cleanup does, and drop the record
    (USER: a user's container, from inside its user namespace)."""
    from hostctl.launcher import enable_site

    enable_site()
    from hostctl.launcher.state import ContainerState, remove
    from hostctl.paths import Scope, for_scope

    records.drop(name, user)
    remove(ContainerState(name, for_scope(Scope.USER if user else Scope.SYSTEM)))
