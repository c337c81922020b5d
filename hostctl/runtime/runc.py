"""The OCI runtime driver: runc (or crun, which takes the same arguments).

create and start are on every container's start path, so they spawn the runtime with
os.posix_spawn rather than through subprocess (this module imports nothing heavy)."""

from __future__ import annotations

import os

from hostctl.errors import RuntimeFailure, ToolMissing

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any


DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PACKAGE = {"runc": "runc", "crun": "crun"}


def find_binary(name: str) -> str:
    """The absolute path of runtime NAME on $PATH, or ToolMissing naming its package."""
    for directory in (os.environ.get("PATH") or DEFAULT_PATH).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise ToolMissing(f"{name} not found", hint=f"install the {PACKAGE.get(name, name)} package")


def _clean_env(notify: bool = False) -> dict[str, str]:
    # NOTIFY_SOCKET makes runc proxy sd_notify and block `start` until the container
    # says READY=1; it is handed to the container only when it is meant to notify.
    dropped = ("LISTEN_FDS",) if notify else ("NOTIFY_SOCKET", "LISTEN_FDS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _last_error(log_file: str) -> str:
    """The last error runc logged (its --log is JSON lines)."""
    import json

    message = ""
    try:
        with open(log_file, errors="replace") as handle:
            lines = handle.read().splitlines()
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


def _spawn(argv: list[str], env: dict[str, str]) -> int:
    """Run ARGV with this process's stdout and stderr and /dev/null as stdin; its status."""
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0)])
    finally:
        os.close(devnull)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _alive(pid: int) -> bool:
    """PID exists and is not a zombie (it is not this process's child: waitpid can't tell)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def _await_fifo(fd: int, pid: int) -> bytes:
    """What init writes to exec.fifo (opened non-blocking at FD) once it has opened it;
    b"" when init is gone first. A reader that never had a writer gets no POLLHUP, so
    poll waits for init's write; init's death is looked for between waits, as runc does."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if poller.poll(100):
            return os.read(fd, 64)
        if not _alive(pid):
            try:  # it may have written and gone on between two polls
                return os.read(fd, 64)
            except BlockingIOError:
                return b""


def runtime_id(name: str) -> str:
    """The runtime's id of container NAME: runc refuses '@' (template instances), and no
    declaration name holds '+', so '@' becomes '+' without clashing."""
    return name.replace("@", "+")


class Runc:
    """runc (or crun) with its state under ROOT; BINARY is a name or an absolute path."""

    __slots__ = ("_path", "binary", "root")

    def __init__(self, root: Path | str, binary: str = "runc") -> None:
        self.root = str(root)
        self.binary = os.path.basename(binary)
        self._path = binary if os.path.isabs(binary) else None

    def __repr__(self) -> str:
        return f"Runc(root={str(self.root)!r}, binary={self.binary!r})"

    @property
    def path(self) -> str:
        """The runtime's absolute path (looked up on $PATH once)."""
        if self._path is None:
            self._path = find_binary(self.binary)
        return self._path

    def _argv(self, *args: str, log_file: str | None = None) -> list[str]:
        argv = [self.path, "--root", self.root]
        if log_file is not None:
            argv += ["--log", log_file, "--log-format", "json"]
        return [*argv, *args]

    def create(self, cid: str, bundle: Path | str, pid_file: Path | str, *,
               notify: bool = False) -> int:
        """Create the container with this process's stdio as its own; return its init PID."""
        cid = runtime_id(cid)
        log_file = os.path.join(bundle, "runtime.log")
        # stdio is inherited: with terminal=false runc hands it to the container, which is
        # how the container's output reaches the unit's journal.
        status = _spawn(self._argv("create", "--bundle", str(bundle), "--pid-file",
                                   str(pid_file), cid, log_file=log_file), _clean_env(notify))
        if status != 0:
            detail = _last_error(log_file) or f"exit status {status}"
            hint = None
            if self.binary == "crun" and "RLIM_MEMLOCK" in detail:
                hint = ("crun raises RLIMIT_MEMLOCK to load its device filter, which needs "
                        "CAP_SYS_RESOURCE (missing in some containers and nspawn hosts): "
                        "use `runtime: runc`")
            raise RuntimeFailure(f"{self.binary} create {cid} failed: {detail}", hint=hint)
        with open(pid_file) as handle:
            return int(handle.read().strip())

    def start(self, cid: str, *, notify: bool = False, log_file: str | None = None) -> None:
        """Start the created container; with NOTIFY, wait until it sends READY=1 (runc
        then sends MAINPID= and READY=1 to systemd itself)."""
        cid = runtime_id(cid)
        status = _spawn(self._argv("start", cid, log_file=log_file), _clean_env(notify))
        if status != 0:
            detail = (_last_error(log_file) if log_file else "") or f"exit status {status}"
            raise RuntimeFailure(f"{self.binary} start {cid} failed: {detail}")

    def start_created(self, cid: str, pid: int) -> bool:
        """Start created container CID (init PID) the way `runc start` does, without a
        second runc process (a Go runtime's start-up, about 9 ms of every start).

        runc's create leaves the container's init blocked opening `exec.fifo` in the
        container's state directory for writing; `runc start` opens it for reading, reads
        the "0" init writes, and removes it (its absence is how runc tells "running" from
        "created" afterwards). This has been runc's protocol since 1.0 and is unchanged in
        1.2. False when there is no such fifo (crun, or a runc that works otherwise):
        the caller runs start() then.
        """
        cid = runtime_id(cid)
        if self.binary != "runc":
            return False
        fifo = os.path.join(self.root, cid, "exec.fifo")
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            data = _await_fifo(fd, pid)
        finally:
            os.close(fd)
        if not data:
            raise RuntimeFailure(f"{self.binary} start {cid} failed: the container's init "
                                 f"(PID {pid}) ended before it was started",
                                 hint=f"see the unit's journal; {fifo} was empty")
        os.unlink(fifo)
        return True

    def exec_process_argv(self, cid: str, process_file: str, pid_file: str) -> list[str]:
        """`runc exec` of the OCI process in PROCESS_FILE in container CID, writing the
        process's PID (in this PID namespace) to PID_FILE (what a health check runs)."""
        cid = runtime_id(cid)
        return self._argv("exec", "--process", process_file, "--pid-file", pid_file, cid)

    @staticmethod
    def environment() -> dict[str, str]:
        """The environment the runtime is run with (without NOTIFY_SOCKET)."""
        return _clean_env()

    def delete(self, cid: str) -> None:
        """Remove the container and its state, killing it if it still runs."""
        cid = runtime_id(cid)
        from hostctl.proc import run

        run(self._argv("delete", "--force", cid), env=_clean_env(), check=False)

    def state(self, cid: str) -> dict[str, Any] | None:
        cid = runtime_id(cid)
        import json

        from hostctl.proc import run

        result = run(self._argv("state", cid), env=_clean_env(), check=False)
        if result.returncode != 0:
            return None
        loaded: dict[str, Any] = json.loads(result.stdout)
        return loaded

    def kill(self, cid: str, signal: str, *, all_processes: bool = False) -> None:
        cid = runtime_id(cid)
        from hostctl.proc import run

        extra = ["--all"] if all_processes else []
        run(self._argv("kill", *extra, cid, signal), env=_clean_env())

    def exec(self, cid: str, args: list[str], *, env: Sequence[str] = (), cwd: str | None = None,
             tty: bool = False, init_pid: int | None = None) -> int:
        """Run ARGS in the running container with this process's stdio; its exit status.
        INIT_PID: the container's init, whose user namespace runc runs in when it is
        not this process's (a rootless container's: runc created it from inside)."""
        import subprocess

        from hostctl.runtime import nsexec

        argv = self._argv("exec", *(["--tty"] if tty else []),
                          *[a for e in env for a in ("--env", e)],
                          *(["--cwd", cwd] if cwd else []), cid, *args)
        userns = nsexec.foreign_userns(init_pid)
        if userns is None:
            return subprocess.run(argv, env=_clean_env(), check=False).returncode
        try:
            return subprocess.run(argv, env=_clean_env(), check=False, pass_fds=(userns,),
                                  preexec_fn=lambda: nsexec.join_userns(userns)).returncode
        finally:
            os.close(userns)

    def list(self) -> list[dict[str, Any]]:
        """Every container under this root (runc list --format json)."""
        import json

        from hostctl.proc import run

        if not os.path.isdir(self.root):
            return []
        result = run(self._argv("list", "--format", "json"), env=_clean_env())
        loaded: list[dict[str, Any]] = json.loads(result.stdout or b"null") or []
        return loaded


def runtime_for(name: str, root: Path | str) -> Runc:
    """The driver for `runtime:` (runc or crun)."""
    if name not in ("runc", "crun"):
        raise RuntimeFailure(f"unknown runtime {name!r}", hint="use runc or crun")
    return Runc(root, name)
