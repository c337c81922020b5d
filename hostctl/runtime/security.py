"""What a container may do: capabilities, devices, rlimits and namespaced sysctls.

Every function here turns validated declaration values into OCI config fragments and
refuses what cannot work at start (a missing device, a host-wide sysctl) with a
RuntimeFailure naming the declaration's FILE:LINE:KEY.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostctl.errors import RuntimeFailure

if TYPE_CHECKING:
    from hostctl.declarations.model import Device, Ulimit

Where = Callable[[str], str]

# Every capability the kernel (6.x) knows, in number order.
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


@dataclass(frozen=True)
class CapabilitySets:
    bounding: tuple[str, ...]
    held: tuple[str, ...]  # effective = permitted (= inheritable and ambient for non-root)
    ambient: tuple[str, ...]


def capability_sets(
    defaults: Sequence[str], add: Iterable[str], drop: Iterable[str], *, root: bool
) -> CapabilitySets:
    """podman's rules: defaults, minus cap_drop ("ALL" drops every one), plus cap_add
    ("ALL" adds every one). Root holds its whole bounding set; another user holds only
    what cap_add named, as ambient capabilities (so they survive the exec)."""
    drop, add = set(drop), set(add)
    names = set() if "ALL" in drop else set(defaults) - drop
    added = set(ALL_CAPABILITIES) if "ALL" in add else add
    names |= added
    bounding = tuple(c for c in ALL_CAPABILITIES if c in names)
    bounding += tuple(sorted(names - set(ALL_CAPABILITIES)))
    if root:
        return CapabilitySets(bounding, bounding, ())
    ambient = tuple(c for c in bounding if c in added)
    return CapabilitySets(bounding, ambient, ambient)


def device_entries(
    devices: Iterable[Device], where: Where
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices, linux.resources.devices allow rules) for `devices:` entries."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for dev in devices:
        try:
            st = os.stat(dev.host_path)
        except OSError as exc:
            if dev.optional:
                continue
            raise RuntimeFailure(f"device {dev.host_path}: {exc.strerror}",
                                 where=where("devices"),
                                 hint="write -PATH to skip a device that may be absent") from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise RuntimeFailure(f"{dev.host_path} is not a device node", where=where("devices"))
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        nodes.append({"path": dev.container_path, "type": kind, "major": major,
                      "minor": minor, "fileMode": stat.S_IMODE(st.st_mode),
                      "uid": st.st_uid, "gid": st.st_gid})
        rules.append({"allow": True, "type": kind, "major": major, "minor": minor,
                      "access": dev.permissions})
    return nodes, rules


def rlimits(ulimits: Iterable[Ulimit]) -> list[dict[str, Any]]:
    return [{"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard}
            for u in ulimits]


# Sysctls that belong to a namespace the container has its own copy of.
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
UTS_SYSCTLS = ("kernel.domainname", "kernel.hostname")


def sysctls(pairs: Iterable[tuple[str, str]], *, own_network: bool, where: Where
            ) -> dict[str, str]:
    """linux.sysctl, refusing a sysctl that would change the whole host."""
    result = {}
    for name, value in pairs:
        namespaced = name in IPC_SYSCTLS or name.startswith("fs.mqueue.")
        namespaced = namespaced or name in UTS_SYSCTLS
        if name.startswith("net."):
            if not own_network:
                raise RuntimeFailure(
                    f"sysctl {name} would change the host: the container shares the host's "
                    "network", where=where("sysctls"), hint="give the container its own network")
            namespaced = True
        if not namespaced:
            raise RuntimeFailure(f"sysctl {name} is not namespaced: it would change the host",
                                 where=where("sysctls"),
                                 hint="only kernel.msg*/sem/shm*, fs.mqueue.* and net.* "
                                 "(with its own network) can be set per container")
        result[name] = value
    return result
