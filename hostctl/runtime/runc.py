"""The OCI runtime driver: runc (or crun, which takes the same arguments)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hostctl.errors import RuntimeFailure
from hostctl.proc import run, which


class Runtime(Protocol):
    """What the launcher needs from an OCI runtime."""

    def create(self, cid: str, bundle: Path, pid_file: Path, *, notify: bool = False
               ) -> int: ...
    def start(self, cid: str, *, notify: bool = False) -> None: ...
    def delete(self, cid: str) -> None: ...
    def state(self, cid: str) -> dict[str, Any] | None: ...


def _clean_env(notify: bool = False) -> dict[str, str]:
    # NOTIFY_SOCKET makes runc proxy sd_notify and block `start` until the container
    # says READY=1; it is handed to the container only when it is meant to notify.
    dropped = ("LISTEN_FDS",) if notify else ("NOTIFY_SOCKET", "LISTEN_FDS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def _last_error(log_file: Path) -> str:
    """The last error runc logged (its --log is JSON lines)."""
    message = ""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return message
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", ""))
    return message


@dataclass(frozen=True)
class Runc:
    """runc (or crun) with its state under ROOT."""

    root: Path
    binary: str = "runc"

    def _argv(self, *args: str, log_file: Path | None = None) -> list[str]:
        argv = [which(self.binary), "--root", str(self.root)]
        if log_file is not None:
            argv += ["--log", str(log_file), "--log-format", "json"]
        return [*argv, *args]

    def create(self, cid: str, bundle: Path, pid_file: Path, *, notify: bool = False) -> int:
        """Create the container with this process's stdio as its own; return its init PID."""
        log_file = bundle / "runtime.log"
        argv = self._argv("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid,
                          log_file=log_file)
        # stdio is inherited: with terminal=false runc hands it to the container, which is
        # how the container's output reaches the unit's journal.
        result = subprocess.run(argv, env=_clean_env(notify), check=False,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            detail = _last_error(log_file) or f"exit status {result.returncode}"
            raise RuntimeFailure(f"{self.binary} create {cid} failed: {detail}")
        return int(pid_file.read_text().strip())

    def start(self, cid: str, *, notify: bool = False) -> None:
        """Start the created container; with NOTIFY, wait until it sends READY=1 (runc
        then sends MAINPID= and READY=1 to systemd itself)."""
        run(self._argv("start", cid), env=_clean_env(notify))

    def delete(self, cid: str) -> None:
        """Remove the container and its state, killing it if it still runs."""
        run(self._argv("delete", "--force", cid), env=_clean_env(), check=False)

    def state(self, cid: str) -> dict[str, Any] | None:
        result = run(self._argv("state", cid), env=_clean_env(), check=False)
        if result.returncode != 0:
            return None
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded

    def kill(self, cid: str, signal: str, *, all_processes: bool = False) -> None:
        extra = ["--all"] if all_processes else []
        run(self._argv("kill", *extra, cid, signal), env=_clean_env())

    def exec(self, cid: str, args: list[str], *, env: Sequence[str] = (), cwd: str | None = None,
             tty: bool = False) -> int:
        """Run ARGS in the running container with this process's stdio; its exit status."""
        argv = self._argv("exec", *(["--tty"] if tty else []),
                          *[a for e in env for a in ("--env", e)],
                          *(["--cwd", cwd] if cwd else []), cid, *args)
        return subprocess.run(argv, env=_clean_env(), check=False).returncode

    def list(self) -> list[dict[str, Any]]:
        """Every container under this root (runc list --format json)."""
        if not self.root.is_dir():
            return []
        result = run(self._argv("list", "--format", "json"), env=_clean_env())
        loaded: list[dict[str, Any]] = json.loads(result.stdout or b"null") or []
        return loaded


def runtime_for(name: str, root: Path) -> Runc:
    """The driver for `runtime:` (runc or crun)."""
    if name not in ("runc", "crun"):
        raise RuntimeFailure(f"unknown runtime {name!r}", hint="use runc or crun")
    return Runc(root=root, binary=name)
