"""Every subprocess goes through here: argv lists, never a shell, errors as diagnostics."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from hostctl.errors import HostctlError, ToolMissing

log = logging.getLogger("hostctl.proc")

# Debian package that provides each tool we call, for the "not found" hint.
PACKAGES = {
    "runc": "runc",
    "crun": "crun",
    "tini": "tini",
    "catatonit": "catatonit",
    "newuidmap": "uidmap",
    "newgidmap": "uidmap",
    "systemd-nspawn": "systemd-container",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "pasta": "passt",
    "ip": "iproute2",
    "iptables": "iptables",
}


def which(tool: str) -> str:
    """The absolute path of TOOL, or ToolMissing naming the package that provides it."""
    found = shutil.which(tool, path=os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        package = PACKAGES.get(tool, tool)
        raise ToolMissing(f"{tool} not found", hint=f"install the {package} package")
    return found


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    capture: bool = True,
    pass_fds: Sequence[int] = (),
) -> subprocess.CompletedProcess[bytes]:
    """Run ARGV; on failure raise HostctlError carrying the program's own stderr."""
    argv = [which(argv[0]) if "/" not in argv[0] else argv[0], *argv[1:]]
    log.debug("run: %s", " ".join(argv))
    result = subprocess.run(
        argv,
        env=dict(env) if env is not None else None,
        input=input,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        pass_fds=tuple(pass_fds),
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or b"").decode(errors="replace").strip()
        name = os.path.basename(argv[0])
        raise HostctlError(
            f"{name} {argv[1] if len(argv) > 1 else ''} failed (exit {result.returncode})"
            + (f": {detail.splitlines()[-1]}" if detail else ""),
        )
    return result
