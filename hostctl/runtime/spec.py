"""The OCI runtime config (config.json) from the image config plus the declaration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def _base_mounts() -> list[dict[str, Any]]:
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
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
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
) -> dict[str, Any]:
    """A complete config.json; FILES maps container paths (/etc/hosts...) to host files."""
    caps = list(DEFAULT_CAPABILITIES)
    # As docker and podman do: a non-root user keeps the bounding set only.
    held = caps if identity.uid == 0 else []
    namespaces: list[dict[str, str]] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")
    ]
    if network_namespace == "new":
        namespaces.append({"type": "network"})
    elif network_namespace is not None:
        namespaces.append({"type": "network", "path": network_namespace})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {
        "ociVersion": "1.0.2",
        "process": {
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
                "bounding": caps,
                "effective": held,
                "permitted": held,
            },
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": _base_mounts() + _file_mounts(files),
        "annotations": dict(annotations),
        "linux": linux,
    }
