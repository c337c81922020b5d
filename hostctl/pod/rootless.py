"""A user's pod: its namespaces held by a holder process (podman's infra container, lean).

Rootless, nothing can be pinned by a bind mount in the host's mount namespace, and the
pod's namespaces must belong to one user namespace that every member joins. So the
pod's unit (Type=notify) runs `hostctl pod-setup --user NAME`, which:

1. forks the holder: it enters a new user namespace (the maps the launchers use,
   hostctl.runtime.userns.enter) together with new IPC and UTS namespaces and, unless
   the pod's network is `host`, a network namespace; sets the pod's host name, brings lo
   up, and execs `sleep infinity`, which keeps them all alive;
2. for the default network, starts pasta on the holder's network namespace: the pod's
   way out, and its published ports forwarded from the host (network `none`: loopback
   only; `host`: the user's own network);
3. writes RUN/pods/NAME/pod.json (hostctl.pod.holder.PodRecord, with the holder's
   identity) and tells systemd MAINPID=holder and READY=1.

A member's launcher joins the holder's user namespace (hostctl.runtime.userns.join)
before anything else; runc then joins the holder's net, IPC and UTS namespaces through
/proc/PID/ns/*. The members' /dev/shm is RUN/pods/NAME/shm, a directory on the user's
runtime directory (a tmpfs; a user cannot mount one the members could all see, so
`shm_size` is not enforced). Stopping the unit ends the holder and pasta (they are in
its cgroup); `hostctl pod-release --user NAME` (ExecStopPost) removes what is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal

from hostctl.declarations.pod_file import Pod
from hostctl.errors import RuntimeFailure
from hostctl.network.holder import start_time
from hostctl.paths import Paths
from hostctl.pod.holder import RECORD, PodRecord, identity, pod_dir
from hostctl.runtime.holding import end, fork_holder

_CLONE_NEWIPC, _CLONE_NEWUTS, _CLONE_NEWNET = 0x08000000, 0x04000000, 0x40000000
PASTA_PID = "pasta.pid"


def holder_pid(record: PodRecord) -> int | None:
    """The PID of RECORD's holder when it still runs (a user's pod), else None."""
    pid, _, start = record.holder.partition(":")
    if not pid.isdigit() or start_time(int(pid)) != start:
        return None
    return int(pid)


def _setup(flags: int, hostname: str) -> None:
    """In the holder: namespaces, host name, lo."""
    from hostctl.runtime import netns, userns

    userns.enter(*userns.id_maps(os.getuid(), os.getgid()), flags=flags)
    name = hostname.encode()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.sethostname(name, len(name)) != 0:
        raise RuntimeFailure(f"sethostname: {os.strerror(ctypes.get_errno())}")
    if flags & _CLONE_NEWNET:
        netns._loopback_up()


def _fork_holder(pod: Pod, own_network: bool) -> int:
    """Fork the pod's holder; its PID once its namespaces are made."""
    flags = _CLONE_NEWIPC | _CLONE_NEWUTS | (_CLONE_NEWNET if own_network else 0)
    pid, said = fork_holder(lambda: _setup(flags, pod.members_hostname))
    if said != "ok":
        raise RuntimeFailure(f"cannot make pod {pod.name}'s namespaces: {said}",
                             where=str(pod.source),
                             hint="check user.max_user_namespaces and the user's "
                                  "/etc/subuid and /etc/subgid ranges")
    return pid


def check_network(pod: Pod) -> None:
    """A user's pod runs on pasta (the default network), none or host."""
    from hostctl.network import defs, ports

    where = pod.where("network")
    if pod.network not in (defs.DEFAULT, "none", "host"):
        raise RuntimeFailure(
            f"a user's pod cannot join the declared network {pod.network}", where=where,
            hint="leave the pod on the default network (pasta), or use none or host")
    if pod.ports and pod.network != defs.DEFAULT:
        raise RuntimeFailure(f"ports cannot be published with network: {pod.network}",
                             where=where, hint="remove `ports:` or use the default network")
    ports.check_unbound(pod.ports, where)


def _extra_hosts(pod: Pod) -> tuple[tuple[str, str], ...]:
    """The pod's add_hosts lines (host.containers.internal as a rootless container's)."""
    from hostctl.network import defs, resolv

    gateway = {defs.DEFAULT: resolv.default_gateway(), "host": "127.0.0.1"}.get(pod.network)
    return resolv.extra_hosts(pod.add_hosts, gateway, pod.where("add_hosts"))


def setup(pod: Pod, paths: Paths) -> PodRecord:
    """Start POD's holder (and pasta), write its record and tell systemd; the pod's
    earlier leftovers must be released already."""
    from hostctl.launcher.notify import notify
    from hostctl.network import _resolv, defs, pasta
    from hostctl.pod.holder import _network_stand_in, _volume_text, write_record

    check_network(pod)
    hosts = _extra_hosts(pod)
    own_network = pod.network != "host"
    folder = pod_dir(paths, pod.name)
    folder.mkdir(parents=True)
    shm = folder / "shm"
    shm.mkdir()
    shm.chmod(0o1777)
    stand_in = _network_stand_in(pod, paths.scope)
    hosts_file = paths.containers / identity(pod.name) / "hosts"
    hosts_file.parent.mkdir(parents=True, exist_ok=True)
    hostname = pod.members_hostname
    hosts_file.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"
                          + "".join(f"{address}\t{names}\n" for address, names in hosts))
    pid = _fork_holder(pod, own_network)
    try:
        if pod.network == defs.DEFAULT:
            pasta.start(pid, pod.ports, folder / PASTA_PID)
        ns = f"/proc/{pid}/ns"
        record = PodRecord(
            name=pod.name, network=pod.network, netns=f"{ns}/net" if own_network else None,
            ipc=f"{ns}/ipc", uts=f"{ns}/uts", shm=str(shm), hosts=str(hosts_file),
            resolv_conf=_resolv(stand_in, own_network), hostname=hostname,
            volumes=tuple(_volume_text(v) for v in pod.volumes),
            exit_policy=str(pod.exit_policy), unit=pod.unit_name,
            holder=f"{pid}:{start_time(pid)}")
        write_record(folder, record)
    except BaseException:
        end(pid)
        raise
    notify(f"MAINPID={pid}", "READY=1", f"STATUS=pod {pod.name}: holder {pid}")
    return record


def release(name: str, paths: Paths) -> None:
    """End what is left of pod NAME's holder and pasta; remove its run state."""
    from hostctl.network import pasta
    from hostctl.pod.holder import read_record

    folder = pod_dir(paths, name)
    record = read_record(paths, name)
    if record is not None:
        pid = holder_pid(record)
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    pasta.stop(folder / PASTA_PID)
    (folder / RECORD).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(paths.containers / identity(name), ignore_errors=True)


def join(record: PodRecord) -> None:
    """Move this (single-threaded) launcher into RECORD's user namespace and a new mount
    namespace (hostctl.runtime.userns.join)."""
    from hostctl.runtime.userns import join as join_userns

    pid = holder_pid(record)
    if pid is None:
        raise RuntimeFailure(f"pod {record.name}'s holder is not running",
                             where=f"pod {record.name}",
                             hint=f"systemctl --user restart {record.unit}")
    join_userns(pid, "", owner=f"pod {record.name}",
                hint=f"restart the pod: systemctl --user restart {record.unit}")
