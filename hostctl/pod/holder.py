"""A pod's namespaces, made by `hostctl pod-setup` and removed by `hostctl pod-release`.

See hostctl.pod for the layout. Everything here is rootful: bind mounts of nsfs files
and of a tmpfs need CAP_SYS_ADMIN in the host's mount namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from hostctl.declarations.kube_file import kube_pods_dir
from hostctl.declarations.model import Container
from hostctl.declarations.pod_file import Pod, load_pod, pod_files, pods_dir
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.paths import Paths, Scope

_CLONE_NEWIPC, _CLONE_NEWUTS = 0x08000000, 0x04000000
_MS_BIND = 4096
_MNT_DETACH = 2
SHM_DEFAULT = 64 << 20  # podman's /dev/shm size
RECORD = "pod.json"


@dataclass(frozen=True)
class PodRecord:
    """What a running pod's members join (RUN/pods/NAME/pod.json)."""

    name: str
    network: str
    netns: str | None  # None: the host's network namespace
    ipc: str
    uts: str
    shm: str
    hosts: str  # the pod's hosts file, bind-mounted as every member's /etc/hosts
    resolv_conf: str
    hostname: str
    volumes: tuple[str, ...]  # SRC:DST[:OPTIONS] mounted in every member
    exit_policy: str
    unit: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__ | {"volumes": list(self.volumes)})

    @classmethod
    def from_json(cls, text: str) -> PodRecord:
        data = json.loads(text)
        data["volumes"] = tuple(data["volumes"])
        return cls(**data)


def pod_dir(paths: Paths, name: str) -> Path:
    return paths.run / "pods" / name


def identity(name: str) -> str:
    """The name the pod's network attachment goes by (as its unit: NAME-pod)."""
    return f"{name}-pod"


def find_pod(name: str, scope: Scope, paths: Paths) -> Pod:
    """The declared pod NAME of SCOPE."""
    from hostctl.declarations.dirs import declaration_dirs

    found = pod_files(declaration_dirs(scope), pods_dir(paths.config))
    from_kube = kube_pods_dir(paths.run) / f"{name}.yaml"  # a .kube file's pod
    if name not in found and from_kube.is_file():
        found[name] = from_kube
    if name not in found:
        raise DeclarationError(f"pod {name!r} is not declared", where=f"pod {name}",
                               hint=f"add {pods_dir(paths.config)}/{name}.yaml or a {name}.pod "
                               "beside the container declarations")
    return load_pod(found[name], user=scope is Scope.USER)


def read_record(paths: Paths, name: str) -> PodRecord | None:
    try:
        return PodRecord.from_json((pod_dir(paths, name) / RECORD).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _pin(libc: ctypes.CDLL, hostname: str, targets: dict[str, Path], failure: list[str]) -> None:
    """In a thread of its own: new IPC and UTS namespaces, the host name set, each pinned
    by a bind mount of its nsfs file on its target."""
    if libc.unshare(_CLONE_NEWIPC | _CLONE_NEWUTS) != 0:
        failure.append(f"unshare: {os.strerror(ctypes.get_errno())}")
        return
    name = hostname.encode()
    if libc.sethostname(name, len(name)) != 0:
        failure.append(f"sethostname: {os.strerror(ctypes.get_errno())}")
        return
    task = f"/proc/self/task/{threading.get_native_id()}/ns"
    for kind, target in targets.items():
        if libc.mount(f"{task}/{kind}".encode(), bytes(target), b"none", _MS_BIND, None) != 0:
            failure.append(f"mount {kind}: {os.strerror(ctypes.get_errno())}")
            return


def _namespaces(libc: ctypes.CDLL, folder: Path, hostname: str) -> None:
    targets = {kind: folder / kind for kind in ("ipc", "uts")}
    for target in targets.values():
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    failure: list[str] = []
    worker = threading.Thread(target=_pin, args=(libc, hostname, targets, failure), daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise RuntimeFailure(f"cannot make the pod's namespaces: {failure[0]}",
                             where=f"pod {folder.name}",
                             hint="a pod's namespaces need root (CAP_SYS_ADMIN)")


def _shm(libc: ctypes.CDLL, folder: Path, size: int | None) -> Path:
    target = folder / "shm"
    target.mkdir(mode=0o755)
    options = f"mode=1777,size={size or SHM_DEFAULT}".encode()
    if libc.mount(b"shm", bytes(target), b"tmpfs", 2 | 4 | 8, options) != 0:  # nosuid,nodev,noexec
        raise RuntimeFailure(f"cannot mount the pod's /dev/shm: "
                             f"{os.strerror(ctypes.get_errno())}", where=f"pod {folder.name}",
                             hint="a pod's /dev/shm needs root (CAP_SYS_ADMIN)")
    return target


def _network_stand_in(pod: Pod) -> Container:
    """The pod's network as the network module knows it: a container named NAME-pod."""
    return Container(name=identity(pod.name), source=pod.source, image="localhost/pod",
                     network=pod.network, ports=pod.ports, dns=pod.dns,
                     dns_search=pod.dns_search, dns_options=pod.dns_options,
                     add_hosts=pod.add_hosts,
                     locations=tuple((key, line) for key, line in pod.locations))


def setup(name: str, scope: Scope, paths: Paths) -> PodRecord:
    """Make pod NAME's namespaces and write its record (what is left of an earlier run is
    released first)."""
    from hostctl import network
    from hostctl.runtime import netns

    if scope is Scope.USER:
        raise RuntimeFailure("rootless pods are not supported", where=f"pod {name}",
                             hint="declare the pod and its members for root "
                             "(/etc/hostctl/pods, /etc/hostctl/containers)")
    pod = find_pod(name, scope, paths)
    release(name, scope, paths)
    folder = pod_dir(paths, name)
    folder.mkdir(parents=True)
    libc = _libc()
    try:
        hostname = pod.members_hostname
        _namespaces(libc, folder, hostname)
        shm = _shm(libc, folder, pod.shm_size)
        stand_in = _network_stand_in(pod)
        plan = network.plan(stand_in, paths)
        namespace = plan.namespace
        if namespace == "new":  # network none: a namespace with loopback only
            namespace = str(netns.create(stand_in.name))
        hosts = paths.containers / stand_in.name / "hosts"  # the names module refreshes it
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"
                         + "".join(f"{address}\t{names}\n" for address, names in plan.hosts))
        network.attach(stand_in, os.getpid(), paths)
        record = PodRecord(
            name=name, network=plan.network, netns=namespace, ipc=str(folder / "ipc"),
            uts=str(folder / "uts"), shm=str(shm), hosts=str(hosts),
            resolv_conf=plan.resolv_conf, hostname=hostname,
            volumes=tuple(_volume_text(v) for v in pod.volumes),
            exit_policy=str(pod.exit_policy), unit=pod.unit_name)
        partial = folder / f".{RECORD}.tmp"
        partial.write_text(record.to_json())
        partial.replace(folder / RECORD)
    except BaseException:
        release(name, scope, paths)
        raise
    return record


def _volume_text(volume: object) -> str:
    from hostctl.declarations.model import Volume

    assert isinstance(volume, Volume)
    options = (*(("ro",) if volume.read_only else ()), *volume.options)
    return f"{volume.source}:{volume.destination}" + (f":{','.join(options)}" if options else "")


def release(name: str, scope: Scope, paths: Paths) -> None:
    """Remove pod NAME's namespaces, network and record; nothing there is fine."""
    from hostctl import network

    if scope is Scope.USER:
        return
    folder = pod_dir(paths, name)
    network.detach(identity(name), paths)
    libc = _libc()
    for kind in ("ipc", "uts", "shm"):
        target = folder / kind
        if os.path.lexists(target):
            libc.umount2(bytes(target), _MNT_DETACH)  # EINVAL: not mounted (a crash)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
    shutil.rmtree(paths.containers / identity(name), ignore_errors=True)
