"""Machine-side housekeeping for test hosts: mounts, process identity, stale leftovers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

TESTHOST_PARENT = Path("/var/tmp")
TESTHOST_PREFIX = "hostctl-testhost-"
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")


class CleanupError(RuntimeError):
    """Something under a test host directory could not be unmounted or removed."""


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below DIRECTORY in this mount namespace, deepest first."""
    prefix = str(directory).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all(directory: Path) -> None:
    """Unmount everything at or below DIRECTORY, deepest first; lazily as a last resort."""
    for _attempt in range(5):
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            done = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    left = mounts_under(directory)
    if left:
        raise CleanupError(f"still mounted after umount -l: {', '.join(map(str, left))}")


def remove_tree(directory: Path) -> None:
    """Delete DIRECTORY, refusing while anything below it is mounted (it may be '/')."""
    unmount_all(directory)
    if mounts_under(directory):
        raise CleanupError(f"refusing to delete {directory}: something is mounted below it")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(directory)


def process_identity(pid: int) -> str | None:
    """'PID STARTTIME' for a live process, None if PID is gone (guards against PID reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The comm field may contain spaces and parentheses: split after its closing ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return f"{pid} {fields[19]}"


def identity_alive(identity: str) -> bool:
    """Whether the process recorded as IDENTITY ('PID STARTTIME') still runs."""
    try:
        pid = int(identity.split()[0])
    except (ValueError, IndexError):
        return False
    return process_identity(pid) == identity.strip()


def children(pid: int) -> list[int]:
    """Direct children of PID (all its threads), empty if PID is gone."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until PID is gone (or a zombie); True if it went within TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while process_identity(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_quietly(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send SIG to PID, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def remove_propagate_dir(machine: str) -> None:
    """Drop the dir nspawn leaves in /run (it refuses to rm -rf it when /run is no tmpfs)."""
    path = NSPAWN_PROPAGATE / machine
    if path.is_dir() and not mounts_under(path):
        shutil.rmtree(path, ignore_errors=True)


def remove_cgroup(cgroup: Path, timeout: float = 5.0) -> None:
    """Remove the cgroup2 directory CGROUP and the ones below it (deepest first), once
    their processes are gone (a dead guest's cgroups may take a moment to empty)."""
    deadline = time.monotonic() + timeout
    while True:
        for directory, _dirs, _files in os.walk(cgroup, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        if not cgroup.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def cleanup_stale() -> list[Path]:
    """Remove test host dirs of earlier runs whose owner and nspawn are gone; returns them.

    A host whose owning process died (a SIGKILLed pytest) but whose nspawn still runs is
    stale too: its guest is killed first.
    """
    removed = []
    for directory in sorted(TESTHOST_PARENT.glob(TESTHOST_PREFIX + "*")):
        owner = _read(directory / "owner")
        if owner and identity_alive(owner):
            continue
        if not owner and time.time() - directory.stat().st_mtime < 300:
            continue  # being created right now by another session
        machine = _read(directory / "machine").strip()
        cgroup = _read(directory / "cgroup").strip()
        nspawn = _read(directory / "pid")
        if nspawn and identity_alive(nspawn):
            pid = int(nspawn.split()[0])
            for child in children(pid):
                kill_quietly(child)
            if not wait_gone(pid, 15):
                kill_quietly(pid)
                wait_gone(pid, 5)
        remove_tree(directory)
        if machine:
            remove_propagate_dir(machine)
        if cgroup:
            remove_cgroup(Path(cgroup))
        removed.append(directory)
    return removed
