"""A pod's namespaces, made by `hostctl pod-setup` and removed by `hostctl pod-release`.

See hostctl.pod for the layout. The bind mounts of nsfs files and of a tmpfs need
CAP_SYS_ADMIN in the host's mount namespace: a user's pod is hostctl.pod.rootless's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hostctl.declarations.kube_file import kube_pods_dir
from hostctl.declarations.model import Container
from hostctl.declarations.pod_file import Pod, load_pod, pod_files, pods_dir
from hostctl.errors import DeclarationError, HostctlError
from hostctl.paths import Paths, Scope
from hostctl.pod import pins

_MNT_DETACH = 2
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
    holder: str = ""  # a user's pod: its holder's PID:START (hostctl.pod.rootless)

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


def _network_stand_in(pod: Pod, scope: Scope) -> Container:
    """The pod's network as the network module knows it: a container named NAME-pod,
    known on a declared network by the pod's name, its aliases and its members' names
    (as podman's pods are)."""
    aliases: tuple[str, ...] = ()
    if pod.network not in ("host", "none", "bridge"):
        aliases = tuple(dict.fromkeys((pod.display_name, *pod.network_aliases,
                                       *_member_names(pod.name, scope))))
    return Container(name=identity(pod.name), source=pod.source, image="localhost/pod",
                     network=pod.network, network_aliases=aliases, ip=pod.ip, ip6=pod.ip6,
                     ports=pod.ports, dns=pod.dns,
                     dns_search=pod.dns_search, dns_options=pod.dns_options,
                     add_hosts=pod.add_hosts,
                     locations=tuple((key, line) for key, line in pod.locations))


def _member_names(name: str, scope: Scope) -> list[str]:
    """The names of pod NAME's declared members (templates and broken files left out)."""
    from hostctl.declarations.dirs import declaration_dirs
    from hostctl.declarations.search import load_file, scan_declarations

    dirs = declaration_dirs(scope)
    names = []
    for member, path in scan_declarations(scope, dirs).found.items():
        try:
            container = load_file(path, member, dirs)
        except HostctlError:
            continue
        if container.pod == name:
            names.append(member)
    return sorted(names)


def setup(name: str, scope: Scope, paths: Paths) -> PodRecord:
    """Make pod NAME's namespaces and write its record (what is left of an earlier run is
    released first)."""
    from hostctl import network
    from hostctl.runtime import netns

    pod = find_pod(name, scope, paths)
    release(name, scope, paths)
    if scope is Scope.USER:
        from hostctl.pod import rootless

        return rootless.setup(pod, paths)
    folder = pod_dir(paths, name)
    folder.mkdir(parents=True)
    libc = pins.libc()
    try:
        hostname = pod.members_hostname
        pins.namespaces(libc, str(folder), hostname)
        shm = pins.shm(libc, str(folder), pod.shm_size)
        stand_in = _network_stand_in(pod, scope)
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
        write_record(folder, record)
        _save_setup(pod, paths, record, hosts.read_text())
    except BaseException:
        release(name, scope, paths)
        raise
    return record


def _save_setup(pod: Pod, paths: Paths, record: PodRecord, hosts: str) -> None:
    """Record this setup for the next one (hostctl.pod.quick): for a pod on the host's
    network, whose setup reads nothing but its declaration and the host's resolv.conf."""
    from hostctl import __version__
    from hostctl.declarations.dirs import declaration_dirs
    from hostctl.launcher import record as records
    from hostctl.launcher.recording import _own_code
    from hostctl.network import resolv
    from hostctl.pod.quick import record_path

    path = record_path(pod.name)
    if pod.network != "host" or paths.scope is not Scope.SYSTEM:
        records.discard(path)
        return
    # every file that could be (or shadow) the pod's declaration (find_pod's order)
    content = [str(d / f"{pod.name}.pod") for d in declaration_dirs(Scope.SYSTEM)]
    content += [str(pods_dir(paths.config) / f"{pod.name}.{suffix}") for suffix in ("yaml", "yml")]
    content += [str(kube_pods_dir(paths.run) / f"{pod.name}.yaml"), str(pod.source),
                *_own_code()]
    texts = [str(resolv.HOST_RESOLV), str(resolv.RESOLVED_UPSTREAM)]
    folder = pod_dir(paths, pod.name)
    records.write(path, {
        "format": records.FORMAT, "hostctl": __version__, "env": records.start_environment(),
        "content": [[p, records.content_signature(p)] for p in content],
        "text": [[p, records.text_signature(p)] for p in texts],
        "present": [], "absent": [str(folder)], "listed": [],
        "folder": str(folder), "hostname": record.hostname, "shm_size": pod.shm_size,
        "hosts_file": record.hosts, "hosts": hosts, "pod_json": record.to_json(),
    })


def write_record(folder: Path, record: PodRecord) -> None:
    partial = folder / f".{RECORD}.tmp"
    partial.write_text(record.to_json())
    partial.replace(folder / RECORD)


def _volume_text(volume: object) -> str:
    from hostctl.declarations.model import Volume

    assert isinstance(volume, Volume)
    options = (*(("ro",) if volume.read_only else ()), *volume.options)
    return f"{volume.source}:{volume.destination}" + (f":{','.join(options)}" if options else "")


def release(name: str, scope: Scope, paths: Paths) -> None:
    """Remove pod NAME's namespaces, network and record; nothing there is fine."""
    from hostctl import network

    if scope is Scope.USER:
        from hostctl.pod import rootless

        rootless.release(name, paths)
        return
    folder = pod_dir(paths, name)
    network.detach(identity(name), paths)
    libc = pins.libc()
    for kind in ("ipc", "uts", "shm"):
        target = folder / kind
        if os.path.lexists(target):
            libc.umount2(bytes(target), _MNT_DETACH)  # EINVAL: not mounted (a crash)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
    shutil.rmtree(paths.containers / identity(name), ignore_errors=True)
