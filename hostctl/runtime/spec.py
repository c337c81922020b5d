"""The OCI runtime config (config.json) from the image config plus the declaration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hostctl.runtime.security import CapabilitySets
from hostctl.runtime.users import Identity

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# podman's default capability set (containers.conf default_capabilities).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)

# The /proc and /sys paths podman hides or makes read-only.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/proc/interrupts",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


@dataclass(frozen=True)
class Process:
    """What runs in the container, after the image config and the declaration are merged."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str


def merge_process(
    image_config: Mapping[str, Any],
    *,
    entrypoint: Sequence[str] | None,
    command: Sequence[str] | None,
    env: Sequence[tuple[str, str]],
    workdir: str | None,
) -> Process:
    """Docker's rules: a declared entrypoint drops the image's Cmd unless a command is given."""
    cfg = image_config.get("config") or {}
    if entrypoint is not None:
        args = [*entrypoint, *(command or ())]
    else:
        image_cmd = cfg.get("Cmd") or []
        args = [*(cfg.get("Entrypoint") or []), *(command if command is not None else image_cmd)]
    if not args:
        from hostctl.errors import RuntimeFailure

        raise RuntimeFailure(
            "nothing to run: the image has no Entrypoint or Cmd and the declaration no command",
            hint="add `command:` to the declaration",
        )
    merged: dict[str, str] = {}
    for item in cfg.get("Env") or []:
        key, _, value = str(item).partition("=")
        merged[key] = value
    merged.update(env)
    merged.setdefault("PATH", DEFAULT_PATH)
    return Process(
        args=tuple(str(a) for a in args),
        env=tuple(f"{k}={v}" for k, v in merged.items()),
        cwd=workdir or cfg.get("WorkingDir") or "/",
    )


@dataclass(frozen=True)
class Extras:
    """Everything the declaration adds to the base config (defaults: podman's)."""

    read_only: bool = False
    capabilities: CapabilitySets | None = None  # None: podman's defaults for the user
    no_new_privileges: bool = False
    mounts: tuple[dict[str, Any], ...] = ()  # after the base and /etc file mounts
    devices: tuple[dict[str, Any], ...] = ()
    device_rules: tuple[dict[str, Any], ...] = ()
    rlimits: tuple[dict[str, Any], ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    # Rootless: (container id, host id, size) triples for a user namespace the
    # container gets (ids as the launcher's own user namespace sees them).
    uid_mappings: tuple[tuple[int, int, int], ...] = ()
    gid_mappings: tuple[tuple[int, int, int], ...] = ()
    seccomp: bool = True
    # The launcher runs in its own user namespace (rootless): /sys is bind-mounted, as
    # only the owner of the host's network namespace may mount sysfs.
    rootless: bool = False
    # A pod's member: (type, path) of the pod's namespaces it joins (ipc, uts), and the
    # pod's /dev/shm directory, bind-mounted instead of a tmpfs of its own.
    joined: tuple[tuple[str, str], ...] = ()
    shm_source: str | None = None


def _shm_mount(shm_size: int | None, source: str | None) -> dict[str, Any]:
    if source is not None:
        return {"destination": "/dev/shm", "type": "bind", "source": source,
                "options": ["rbind", "nosuid", "noexec", "nodev"]}
    shm = f"size={shm_size}" if shm_size else "size=65536k"
    return {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", shm]}


def _base_mounts(shm_size: int | None, rootless: bool, shm_source: str | None = None
                 ) -> list[dict[str, Any]]:
    sysfs: dict[str, Any] = {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    }
    if rootless:
        # sysfs can only be mounted by the owner of the network namespace (the host's).
        sysfs = {"destination": "/sys", "type": "bind", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        _shm_mount(shm_size, shm_source),
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        sysfs,
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]


def _file_mounts(files: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}
        for dest, src in files.items()
    ]


def _namespaces(network_namespace: str | None, user: bool,
                joined: tuple[tuple[str, str], ...] = ()) -> list[dict[str, str]]:
    paths = dict(joined)
    namespaces: list[dict[str, str]] = [
        {"type": t, "path": paths[t]} if t in paths else {"type": t}
        for t in ("pid", "ipc", "uts", "mount", "cgroup")
    ]
    if network_namespace == "new":
        namespaces.append({"type": "network"})
    elif network_namespace is not None:
        namespaces.append({"type": "network", "path": network_namespace})
    if user:
        namespaces.append({"type": "user"})
    return namespaces


def _mapping(triples: Sequence[tuple[int, int, int]]) -> list[dict[str, int]]:
    return [{"containerID": c, "hostID": h, "size": n} for c, h, n in triples]


def _capabilities(identity: Identity, extras: Extras) -> CapabilitySets:
    if extras.capabilities is not None:
        return extras.capabilities
    # As docker and podman do: a non-root user keeps the bounding set only.
    held = DEFAULT_CAPABILITIES if identity.uid == 0 else ()
    return CapabilitySets(DEFAULT_CAPABILITIES, held, ())


def _linux(network_namespace: str | None, cgroups_path: str | None, caps: CapabilitySets,
           extras: Extras) -> dict[str, Any]:
    linux: dict[str, Any] = {
        "namespaces": _namespaces(network_namespace, bool(extras.uid_mappings), extras.joined),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [{"allow": False, "access": "rwm"},
                                  *extras.device_rules]},
    }
    if extras.devices:
        linux["devices"] = list(extras.devices)
    if extras.sysctls:
        linux["sysctl"] = dict(extras.sysctls)
    if extras.uid_mappings:
        linux["uidMappings"] = _mapping(extras.uid_mappings)
        linux["gidMappings"] = _mapping(extras.gid_mappings)
    if extras.seccomp:
        from hostctl.runtime.seccomp import profile

        linux["seccomp"] = profile(caps.bounding)
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return linux


def build_config(
    process: Process,
    identity: Identity,
    *,
    rootfs: str,
    hostname: str,
    files: Mapping[str, str],
    cgroups_path: str | None,
    annotations: Mapping[str, str],
    network_namespace: str | None = None,
    extras: Extras | None = None,
) -> dict[str, Any]:
    """A complete config.json; FILES maps container paths (/etc/hosts...) to host files."""
    extras = extras or Extras()
    caps = _capabilities(identity, extras)
    user_process: dict[str, Any] = {
        "terminal": False,
        "user": {
            "uid": identity.uid,
            "gid": identity.gid,
            "additionalGids": list(identity.additional_gids),
        },
        "args": list(process.args),
        "env": list(process.env),
        "cwd": process.cwd,
        "capabilities": {
            "bounding": list(caps.bounding),
            "effective": list(caps.held),
            "permitted": list(caps.held),
            "inheritable": list(caps.ambient),
            "ambient": list(caps.ambient),
        },
        "noNewPrivileges": extras.no_new_privileges,
    }
    if extras.rlimits:
        user_process["rlimits"] = list(extras.rlimits)
    rootless = extras.rootless or bool(extras.uid_mappings)
    return {
        "ociVersion": "1.0.2",
        "process": user_process,
        "root": {"path": rootfs, "readonly": extras.read_only},
        "hostname": hostname,
        "mounts": _base_mounts(extras.shm_size, rootless, extras.shm_source)
        + _file_mounts(files)
        + list(extras.mounts),
        "annotations": dict(annotations),
        "linux": _linux(network_namespace, cgroups_path, caps, extras),
    }
