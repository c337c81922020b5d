"""Rootless networking with pasta (Debian's passt): a user-mode network stack.

runc gives the rootless container a new network namespace (owned by the launcher's
user namespace); pasta joins it, configures an interface copied from the host's
(--config-net), and forwards exactly the published ports from the host into it. pasta
is the one process that stays next to a rootless container (the kernel cannot route
packets for an unprivileged user): it lives in the unit's cgroup, so stopping the unit
ends it, and detach() ends it by the PID it wrote.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from hostctl import proc
from hostctl.declarations.model import Port, Protocol
from hostctl.proc import which


def _spec(port: Port) -> str:
    bind = f"{port.host_ip}/" if port.host_ip else ""
    return f"{bind}{port.host_port}:{port.container_port}"


def argv(netns: str, userns: str | None, ports: Sequence[Port], pid_file: Path) -> list[str]:
    """pasta's command line for the namespace at NETNS (owned by USERNS, or by pasta's
    own user namespace when None)."""
    args = ["pasta", "--config-net", "--quiet", "--pid", str(pid_file), "--netns", netns,
            # Run as the launcher's own ids: pasta's default, "nobody", may not use the
            # container's namespace (the launcher is root of its user namespace).
            "--runas", f"{os.getuid()}:{os.getgid()}",
            # Nothing of the host's loopback is offered to the container.
            "-T", "none", "-U", "none"]
    args += ["--userns", userns] if userns else ["--netns-only"]
    for protocol, flag in ((Protocol.TCP, "-t"), (Protocol.UDP, "-u")):
        specs = [_spec(p) for p in ports if p.protocol is protocol]
        args += [flag, ",".join(specs)] if specs else [flag, "none"]
    return args


def for_record(ports: Sequence[Port], pid_file: Path, netns: str) -> list[str]:
    """pasta's command line, as start() runs it for a container in the launcher's own
    user namespace, with pasta's absolute path and NETNS for the namespace's (a start
    record's placeholder: hostctl.launcher.quickuser)."""
    return [which("pasta"), *argv(netns, None, ports, pid_file)[1:]]


def start(pid: int, ports: Sequence[Port], pid_file: Path) -> None:
    """Connect container PID's namespace; pasta daemonizes once it is ready.

    The paused `runc init` is not dumpable, so pasta (which drops its capabilities)
    could not open /proc/PID/ns/*: the launcher opens them and passes the descriptors.
    """
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    fds = [os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)]
    try:
        userns = None
        if not _same_userns(pid):
            fds.append(os.open(f"/proc/{pid}/ns/user", os.O_RDONLY))
            userns = f"/proc/self/fd/{fds[1]}"
        proc.run(argv(f"/proc/self/fd/{fds[0]}", userns, ports, pid_file), pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)


def _same_userns(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False


def stop(pid_file: Path) -> None:
    """End the pasta this file names, if it is still that pasta."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/comm").read_text().startswith(("pasta", "passt")):
            os.kill(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)
