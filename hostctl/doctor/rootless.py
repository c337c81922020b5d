"""What a user's (rootless) containers need: sub-ids, newuidmap, lingering, pasta."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hostctl.doctor.finding import Finding, ok, warn
from hostctl.errors import HostctlError
from hostctl.proc import which
from hostctl.runtime.userns import sub_range
from hostctl.systemd.linger import is_lingering, linger_hint, user_name

FULL_RANGE = 65536  # what images assume: uids and gids 0..65535


def check_subids(etc: Path = Path("/etc")) -> list[Finding]:
    name, uid = user_name(), os.getuid()
    fix = (f"as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}")
    found = []
    for kind in ("subuid", "subgid"):
        got = sub_range(etc / kind, name, uid)
        if got is None:
            found.append(warn(kind, f"no range for {name} in {etc / kind}: containers get"
                              " only your own id, so images that chown or switch users fail",
                              fix))
        elif got[1] < FULL_RANGE:
            found.append(warn(kind, f"{name} has {got[1]} ids from {got[0]} in {etc / kind}"
                              f" (images may use ids up to {FULL_RANGE - 1})", fix))
        else:
            found.append(ok(kind, f"{name}: {got[1]} ids from {got[0]}"))
    return found


def _privileged(path: str) -> bool:
    """Whether PATH is setuid root or carries file capabilities (newuidmap needs either)."""
    info = os.stat(path)
    if info.st_mode & stat.S_ISUID and info.st_uid == 0:
        return True
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def check_newuidmap() -> Finding:
    try:
        tools = [which(name) for name in ("newuidmap", "newgidmap")]
    except HostctlError:
        return warn("newuidmap", "newuidmap/newgidmap are not installed: containers get"
                    " only your own id", "apt-get install uidmap")
    plain = [tool for tool in tools if not _privileged(tool)]
    if plain:
        return warn("newuidmap", f"{', '.join(plain)} is neither setuid root nor has file"
                    " capabilities, so it cannot map sub-ids",
                    "apt-get install --reinstall uidmap")
    return ok("newuidmap", f"{tools[0]} and {tools[1]} can map sub-ids")


def check_linger() -> Finding:
    name = user_name()
    if is_lingering(name):
        return ok("linger", f"{name} lingers: enabled containers start at boot")
    return warn("linger", linger_hint(name).split(":", 1)[0],
                f"loginctl enable-linger {name} (or hostctl enable --user --linger NAME)")


def check_pasta() -> Finding:
    try:
        return ok("pasta", f"{which('pasta')} (user networks and published ports)")
    except HostctlError:
        return warn("pasta", "pasta is not installed: user networks and -p/ports: of rootless"
                    " containers cannot work", "apt-get install passt")
