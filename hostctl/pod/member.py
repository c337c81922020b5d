"""A pod member's start: the running pod's namespaces, files and volumes.

The member's unit is BindsTo= and After= the pod's unit, so the pod's record
(hostctl.pod.holder.PodRecord) exists when the member's launcher runs; without it the
start fails naming the pod's unit. Each running member leaves a marker in
RUN/pods/NAME/members/; with `exit_policy: stop` the last member to stop stops the pod.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from typing import TYPE_CHECKING

from hostctl.declarations import values
from hostctl.declarations.pod_file import pod_where
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.paths import Paths, Scope
from hostctl.pod.holder import PodRecord, pod_dir, read_record

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.network import NetworkPlan


def running_pod(container: Container, paths: Paths) -> PodRecord:
    """The record of CONTAINER's pod, which must be running."""
    assert container.pod is not None
    record = read_record(paths, container.pod)
    if record is None:
        from hostctl.pod.holder import find_pod

        try:
            find_pod(container.pod, paths.scope, paths)
        except DeclarationError as err:
            raise DeclarationError(f"pod {container.pod} cannot be used: {err}",
                                   where=pod_where(container), hint=err.hint) from None
        raise RuntimeFailure(f"pod {container.pod} is not running", where=pod_where(container),
                             hint=f"start it: systemctl start {container.pod}-pod.service "
                             "(its members' units start it themselves)")
    return record


def with_pod_volumes(container: Container, paths: Paths) -> Container:
    """CONTAINER with the pod's volumes before its own (the pod's must be running)."""
    if container.pod is None:
        return container
    record = running_pod(container, paths)
    if not record.volumes:
        return container
    own = {volume.destination for volume in container.volumes}
    shared = tuple(v for v in (values.parse_volume(text) for text in record.volumes)
                   if v.destination not in own)
    return dataclasses.replace(container, volumes=(*shared, *container.volumes))


def plan(container: Container, paths: Paths) -> NetworkPlan:
    """The member's network: the pod's namespaces, hosts file, resolv.conf and name."""
    from hostctl.network import NetworkPlan

    record = running_pod(container, paths)
    marker = pod_dir(paths, record.name) / "members" / container.name
    marker.parent.mkdir(exist_ok=True)
    marker.touch()
    return NetworkPlan(record.netns, (), record.resolv_conf, record.network,
                       pod_namespaces=(("ipc", record.ipc), ("uts", record.uts)),
                       shm=record.shm, hosts_file=record.hosts, hostname=record.hostname)


def left(container_name: str, pod: str, scope: Scope, paths: Paths) -> None:
    """Member CONTAINER_NAME of POD stopped: with exit_policy stop and no other member
    running, stop the pod's unit (without waiting: it may be what is stopping us)."""
    folder = pod_dir(paths, pod)
    (folder / "members" / container_name).unlink(missing_ok=True)
    record = read_record(paths, pod)
    if record is None or record.exit_policy != "stop":
        return
    try:
        if any(os.scandir(folder / "members")):
            return
    except FileNotFoundError:
        return
    user = ["--user"] if scope is Scope.USER else []
    subprocess.run(["systemctl", *user, "stop", "--no-block", record.unit],
                   stdin=subprocess.DEVNULL, check=False)
