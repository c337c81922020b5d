"""The host itself: systemd as PID 1, cgroup v2 and its controllers, overlay mounts where
the store is, and free disk for the store."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from hostctl.doctor.finding import Finding, fail, ok, warn
from hostctl.errors import HostctlError
from hostctl.paths import Paths, Scope
from hostctl.proc import run

TESTED_SYSTEMD = 252  # Debian 12's; older ones are not tried
LIMIT_CONTROLLERS = ("cpu", "memory", "pids")  # CPUQuota=, MemoryMax=, TasksMax=
GIB = 1024**3
DISK_FAIL, DISK_WARN = 1 * GIB, 5 * GIB


def check_systemd(scope: Scope) -> Finding:
    if not Path("/run/systemd/system").is_dir():
        comm = _read("/proc/1/comm").strip() or "unknown"
        return fail("systemd", f"PID 1 is {comm}, not systemd",
                    "hostctl runs containers as systemd services: boot the host with systemd")
    try:
        first = run(["systemctl", "--version"]).stdout.decode().splitlines()[0]
    except (HostctlError, IndexError):
        return fail("systemd", "systemctl --version does not answer", "reinstall systemd")
    found = re.match(r"systemd (\d+)", first)
    version = int(found.group(1)) if found else 0
    if scope is Scope.USER:
        runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
        if not (runtime / "systemd/private").exists():
            return fail("systemd", f"no systemd user manager for uid {os.getuid()}"
                        f" (nothing at {runtime}/systemd/private)",
                        "log in through a session (not su), or `loginctl enable-linger USER`"
                        " and set XDG_RUNTIME_DIR=/run/user/UID")
    if version < TESTED_SYSTEMD:
        return warn("systemd", f"systemd {version} is PID 1",
                    f"hostctl is tested with systemd {TESTED_SYSTEMD} and newer: upgrade")
    where = "and your user manager runs" if scope is Scope.USER else "is PID 1"
    return ok("systemd", f"systemd {version} {where}")


def mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of this process's mounts, in mount order."""
    return parse_mountinfo(_read("/proc/self/mountinfo"))


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of each line of a /proc/PID/mountinfo TEXT."""
    found = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) > 4 and right:
            found.append((_unescape(fields[4]), right.split()[0]))
    return found


def filesystem_of(path: Path, table: list[tuple[str, str]]) -> tuple[str, str]:
    """The (mount point, type) PATH lies on: the last mounted of the longest prefix."""
    best = ("/", "unknown")
    text = str(path)
    for point, fstype in table:
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def check_cgroups(table: list[tuple[str, str]]) -> Finding:
    fstype = dict(table).get("/sys/fs/cgroup", "none")
    if fstype == "cgroup2":
        return ok("cgroup v2", "/sys/fs/cgroup is the unified (v2) hierarchy")
    return fail("cgroup v2", f"/sys/fs/cgroup is {fstype} (cgroup v1 or hybrid)",
                "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line")


def controllers_file(scope: Scope) -> Path:
    """Where the controllers a scope's containers can use are listed."""
    if scope is Scope.USER:
        uid = os.getuid()
        return Path(f"/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
                    "/cgroup.controllers")
    return Path("/sys/fs/cgroup/system.slice/cgroup.controllers")


def check_controllers(scope: Scope) -> Finding:
    path = controllers_file(scope)
    present = set(_read(str(path)).split())
    missing = [name for name in LIMIT_CONTROLLERS if name not in present]
    if not missing:
        return ok("cgroup controllers", f"{', '.join(LIMIT_CONTROLLERS)} delegated ({path})")
    detail = (f"{', '.join(missing)} not available in {path}: memory, cpus and pids_limit"
              " are accepted but not enforced")
    if scope is Scope.USER:
        fix = ("delegate them to users: `systemctl edit user@.service` with [Service]"
               " Delegate=cpu cpuset io memory pids, then log in again")
    else:
        fix = ("the kernel or the host's container manager keeps them (a host in a"
               " container?): enable them there, or accept unenforced limits")
    return warn("cgroup controllers", detail, fix)


def check_overlay(scope: Scope, paths: Paths, table: list[tuple[str, str]]) -> Finding:
    """Mount a real overlay where the store keeps its layers, in a mount namespace of its
    own (nothing stays mounted); rootless the way the launcher does: unprivileged, in a
    user namespace, with userxattr."""
    base = _existing(paths.state)
    point, fstype = filesystem_of(base, table)
    check = "unprivileged overlay" if scope is Scope.USER else "overlay"
    try:
        with tempfile.TemporaryDirectory(prefix=".doctor-", dir=base) as tmp:
            for sub in ("lower", "upper", "work", "merged"):
                os.mkdir(os.path.join(tmp, sub))
            options = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work"
            prefix = ["unshare", "--mount", "--propagation", "private"]
            if scope is Scope.USER:
                prefix = ["unshare", "--user", "--map-root-user", "--mount"]
                options += ",userxattr"
            done = run([*prefix, "mount", "-t", "overlay", "overlay", "-o", options,
                        f"{tmp}/merged"], check=False)
    except (OSError, HostctlError) as err:
        return fail(check, f"cannot try an overlay mount in {base}: {err}",
                    f"make {paths.state} a writable directory")
    if done.returncode == 0:
        return ok(check, f"overlay mounts in {base} ({fstype} on {point})")
    error = done.stderr.decode(errors="replace").strip().splitlines()
    detail = f"an overlay in {base} ({fstype} on {point}) fails: {error[-1] if error else '?'}"
    if fstype in ("overlay", "fuse", "nfs", "nfs4", "cifs"):
        fix = (f"put {paths.state} on ext4, xfs or btrfs: {fstype} cannot hold an"
               " overlay's upper dir")
    elif scope is Scope.USER:
        fix = ("rootless needs Linux 5.11+ with unprivileged user namespaces"
               " (sysctl kernel.unprivileged_userns_clone=1)")
    else:
        fix = "load the overlay module (modprobe overlay) or use a kernel with overlayfs"
    return fail(check, detail, fix)


def check_disk(paths: Paths) -> Finding:
    base = _existing(paths.state)
    free = shutil.disk_usage(base).free
    detail = f"{free / GIB:.1f} GiB free for the store in {base}"
    if free < DISK_FAIL:
        return fail("disk", detail, "free space or `hostctl image prune` (at least 1 GiB)")
    if free < DISK_WARN:
        return warn("disk", detail, "images need room: free space or `hostctl image prune`")
    return ok("disk", detail)


def _existing(path: Path) -> Path:
    """PATH, or its nearest parent that exists (the store may not be made yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _unescape(text: str) -> str:
    """A mountinfo field: spaces and the like are written as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)
