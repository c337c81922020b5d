"""Named network namespaces (`ip netns`), one per container on a bridge network.

The namespace exists before the container, so the CNI plugins wire it before `runc
create` joins it, and it outlives the container's processes, so DEL at stop still finds
the container's interface. /run/netns is a tmpfs: a reboot leaves none behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hostctl import proc
from hostctl.errors import ToolMissing

NETNS_DIR = Path("/run/netns")
PREFIX = "hostctl-"


def _ip() -> str:
    found = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise ToolMissing("ip not found", hint="install the iproute2 package")
    return found


def name_for(container: str) -> str:
    return f"{PREFIX}{container}"


def path_for(container: str) -> Path:
    return NETNS_DIR / name_for(container)


def create(container: str) -> Path:
    """A fresh namespace for CONTAINER with its loopback up; its path."""
    name = name_for(container)
    ip = _ip()
    proc.run([ip, "netns", "add", name])
    try:
        proc.run([ip, "-n", name, "link", "set", "lo", "up"])
    except BaseException:
        remove(container)
        raise
    return NETNS_DIR / name


def remove(container: str) -> None:
    """Delete CONTAINER's namespace if it exists."""
    if path_for(container).exists():
        proc.run([_ip(), "netns", "delete", name_for(container)], check=False)


def ours() -> list[str]:
    """The containers that have a hostctl namespace now."""
    try:
        return sorted(p.name[len(PREFIX):] for p in NETNS_DIR.iterdir()
                      if p.name.startswith(PREFIX))
    except OSError:
        return []
