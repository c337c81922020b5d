"""Running one health check (or startup probe) in a running container.

The check runs as the container's own process from its config.json: user, groups,
environment, working directory, capabilities, rlimits, noNewPrivileges, AppArmor
profile, with the check's arguments and no terminal, in the container's namespaces and
cgroup under its seccomp filter, so a check never has more privilege than the
container itself. By default without runc (hostctl.runtime.nsexec: the check's own
process does what `runc exec` does; lean_plan() decides once per start, from the
bundle's config.json, and keeps the compiled seccomp program in the check's store);
else, when that cannot be exact or fails before the command's exec, by `runc exec
--process FILE` with the process as the start keeps it in the store
(hostctl.health.status). A rootless container's runtime runs as root of the user
namespace the container lives in: the check's runc joins that namespace first (the
user owns it, so it may).

The check's stdout and stderr are captured (the last ~500 characters are kept). A check
still running at its timeout is killed (SIGKILL to the exec'd process, whose PID the
lean exec or runc wrote) and counts as failed with exit code -1.

This is what every check costs, so it imports only os, time, marshal, fcntl, select,
_ctypes, _signal, resource and hostctl's lean modules (no yaml, typer, jinja2, pydbus,
urllib3, and not json, dataclasses or pathlib either; json once per start, for
config.json).
"""

from __future__ import annotations

import os
import sys
import time

from hostctl.errors import CannotCheck
from hostctl.health import status
from hostctl.runtime.runc import Runc

TYPE_CHECKING = False  # typing itself is not imported on the check path
if TYPE_CHECKING:
    from typing import Any

KILL_GRACE = 5.0  # seconds runc gets to return after the check's process was killed
OUTPUT_READ_LIMIT = 64 * 1024  # bytes read from a check; only the end is kept
# Process keys of config.json a check inherits (args, terminal and consoleSize not).
INHERITED = ("user", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges",
             "apparmorProfile", "selinuxLabel", "oomScoreAdj", "ioPriority", "scheduler")


class Container:
    """A running container's bundle, runtime and init, as a check needs them."""

    __slots__ = ("bundle", "name", "pid", "runtime", "user")

    def __init__(self, name: str, user: bool) -> None:
        self.name, self.user = name, user
        self.bundle = status.bundle_dir(name, user)
        runc_root = os.path.join(status.run_dir(user), "runc")
        try:
            with open(os.path.join(runc_root, f"{name}.runtime")) as handle:
                binary = handle.read().strip()
        except OSError:
            binary = "runc"
        self.runtime = Runc(runc_root, binary if binary == "crun" else "runc")
        self.pid = _init_pid(self.bundle)

    def running(self) -> bool:
        """Whether the init in the pid file still runs, and is this container's: a PID
        the kernel gave to another process since must not be checked, let alone killed."""
        return self.pid is not None and _alive(self.pid, self.unit())

    def unit(self) -> str:
        """The container's unit: NAME.service, or the one the launcher recorded (a
        `service_name:`, a compose service's PROJECT-SERVICE.service)."""
        try:
            with open(os.path.join(self.bundle, "unit")) as handle:
                return handle.read().strip()
        except OSError:
            return f"{self.name}.service"

    def require_running(self) -> None:
        if not self.running():
            unit = f"systemctl{' --user' if self.user else ''} start {self.name}"
            raise CannotCheck(f"container {self.name} is not running",
                              hint=f"start it first: {unit}")


def _init_pid(bundle: str) -> int | None:
    try:
        with open(os.path.join(bundle, "pid")) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int, unit: str) -> bool:
    """PID exists, is not a zombie, and is in UNIT's container cgroup (UNIT/container,
    where the launcher puts every container)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return False
    if stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X"):
        return False
    return any(line.startswith("0::") and line.endswith(f"/{unit}/container")
               for line in lines)


def load_store(container: Container) -> dict[str, Any]:
    """The container's check store: spec, process, state (CannotCheck without a check)."""
    store = status.load_store(container.bundle)
    if store is None:
        raise CannotCheck(f"container {container.name} has no health check",
                          hint="declare health_cmd, or use an image with a HEALTHCHECK")
    return store


def argv_of(test: list[str]) -> list[str]:
    """The process arguments of a Healthcheck.Test: CMD-SHELL runs /bin/sh -c TEXT."""
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test[1:])


def check_process(config: dict[str, Any]) -> dict[str, Any]:
    """The OCI process a check runs as (its args set per check): the container's own
    (CONFIG: its config.json), without a terminal."""
    own = config.get("process") or {}
    process = {key: own[key] for key in INHERITED if key in own}
    process["args"] = []
    process["terminal"] = False
    process.setdefault("cwd", "/")
    return process


LEAN_KEY = "lean"  # the store's key for nsexec.plan()'s answer, made at a start's first check


def lean_plan(container: Container, store: dict[str, Any]) -> dict[str, Any]:
    """How this start's checks run without runc (hostctl.runtime.nsexec.plan, from the
    bundle's config.json); made by the first check of a start and kept in the store.
    {"why": REASON} when they go through `runc exec`."""
    lean = store.get(LEAN_KEY)
    if isinstance(lean, dict):
        return lean
    if container.runtime.binary != "runc":
        lean = {"why": f"the runtime is {container.runtime.binary}"}
    else:
        import json

        from hostctl.runtime import nsexec

        try:
            with open(os.path.join(container.bundle, "config.json"), encoding="utf-8") as f:
                lean = nsexec.plan(json.load(f), container.name)
        except (OSError, ValueError) as err:
            lean = {"why": f"cannot read config.json: {err}"}
    store[LEAN_KEY] = lean
    status.remember(container.bundle, LEAN_KEY, lean)
    return lean


def execute(container: Container, store: dict[str, Any], test: list[str], timeout: float
            ) -> dict[str, Any]:
    """Run TEST in CONTAINER as its check's process with TIMEOUT, without runc when
    lean_plan() allows, else by `runc exec`; the log entry
    (hostctl.health.status.result)."""
    start = time.time()
    tag = f"health-{os.getpid()}"
    pid_file = os.path.join(container.bundle, f"{tag}.pid")
    argv = argv_of(test)
    lean = lean_plan(container, store)
    try:
        if not lean["why"] and container.pid is not None:
            try:
                code, output, why = run_lean(lean, container.pid, argv, pid_file, timeout)
            except OSError as err:
                code, output, why = None, "", f"cannot start it: {err}"
            if not why:
                return _entry(start, code, output, timeout)
            # Nothing of the check ran: this start's checks go through runc from now on.
            say(f"{container.name}: the check runs through runc exec: {why}", 4)
            lean = {"why": why}
            store[LEAN_KEY] = lean
            status.remember(container.bundle, LEAN_KEY, lean)
        code, output = run_runc(container, store["process"], argv, pid_file, timeout)
    except OSError as err:
        return status.result(start, time.time(), -1, f"cannot run the check: {err}")
    finally:
        status.unlink_quietly(pid_file)
    return _entry(start, code, output, timeout)


def _entry(start: float, code: int | None, output: str, timeout: float) -> dict[str, Any]:
    if code is None:
        output = f"{output}\nthe check timed out after {timeout:g}s and was killed".lstrip()
        return status.result(start, time.time(), -1, output)
    return status.result(start, time.time(), code, output)


def run_lean(lean: dict[str, Any], init_pid: int, argv: list[str], pid_file: str,
              timeout: float) -> tuple[int | None, str, str]:
    """ARGV in the container by hostctl.runtime.nsexec: (exit code or None when it timed
    out, output, "" or why it could not be started)."""
    from hostctl.runtime import nsexec

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid_fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                             0o600)
            try:
                joined = nsexec.start(lean, init_pid, argv, devnull, write_end, pid_fd)
            finally:
                os.close(pid_fd)
        finally:
            os.close(devnull)
            os.close(write_end)
        code, output = _collect(joined.pid, read_end, pid_file, timeout)
    finally:
        os.close(read_end)
    return code, output, joined.failed()


def run_runc(container: Container, process: dict[str, Any], argv: list[str], pid_file: str,
              timeout: float) -> tuple[int | None, str]:
    """ARGV in the container by `runc exec --process`."""
    process_file = os.path.join(container.bundle, f"health-{os.getpid()}.process.json")
    try:
        with open(process_file, "w", encoding="utf-8") as handle:
            handle.write(status.to_json({**process, "args": argv}))
        runtime_argv = container.runtime.exec_process_argv(container.name, process_file,
                                                           pid_file)
        return _run(runtime_argv, container.pid, pid_file, timeout)
    finally:
        status.unlink_quietly(process_file)


def _run(argv: list[str], init_pid: int | None, pid_file: str, timeout: float
         ) -> tuple[int | None, str]:
    """Run ARGV (the runtime's exec) with output captured; (exit code, output), the code
    None when it timed out."""
    from hostctl.runtime import nsexec

    userns = nsexec.foreign_userns(init_pid)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    env = Runc.environment()
    pid = os.fork()  # not posix_spawn: the child must join the user namespace first
    if pid == 0:  # the child: into the container's user namespace, then the runtime
        try:
            if userns is not None:
                try:
                    nsexec.join_userns(userns)
                except OSError as err:
                    os.write(write_end, f"{err.strerror}\n".encode())
                    os._exit(125)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.execve(argv[0], argv, env)
        except BaseException as err:  # nothing may return into the parent's code
            try:
                os.write(write_end, f"cannot run {argv[0]}: {err}\n".encode())
            finally:
                os._exit(127)
    os.close(write_end)
    if userns is not None:
        os.close(userns)
    try:
        return _collect(pid, read_end, pid_file, timeout)
    finally:
        os.close(read_end)


def _collect(pid: int, read_end: int, pid_file: str, timeout: float) -> tuple[int | None, str]:
    """Read the output of child PID until it exits; kill the check at TIMEOUT."""
    import select

    pidfd = os.pidfd_open(pid)
    chunks: list[bytes] = []
    size = 0
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if timed_out:
                    break
                timed_out = True
                _kill_check(pid, pid_file)
                deadline = time.monotonic() + KILL_GRACE
                continue
            events = dict(poller.poll(int(left * 1000) + 1))
            if read_end in events:
                data = os.read(read_end, 65536)
                if data:
                    size += len(data)
                    chunks.append(data)
                    if size > OUTPUT_READ_LIMIT * 2:  # keep only the end
                        joined = b"".join(chunks)[-OUTPUT_READ_LIMIT:]
                        chunks, size = [joined], len(joined)
                else:
                    poller.unregister(read_end)
            if pidfd in events:
                break
        exited, wait_status = os.waitpid(pid, os.WNOHANG)
        if not exited:
            os.kill(pid, 9)
            _, wait_status = os.waitpid(pid, 0)
        _drain(read_end, chunks)
    finally:
        os.close(pidfd)
    output = b"".join(chunks)[-OUTPUT_READ_LIMIT:].decode(errors="replace")
    return (None if timed_out else os.waitstatus_to_exitcode(wait_status)), output


def _drain(read_end: int, chunks: list[bytes]) -> None:
    """What is left in the pipe, without waiting for processes still holding it open."""
    os.set_blocking(read_end, False)
    try:
        while data := os.read(read_end, 65536):
            chunks.append(data)
    except BlockingIOError:
        return


def _kill_check(runtime_pid: int, pid_file: str) -> None:
    """SIGKILL the check's process (runc then returns), or the runtime when it has not
    written the PID yet."""
    try:
        with open(pid_file) as handle:
            target = int(handle.read().strip())
    except (OSError, ValueError):
        target = runtime_pid
    kill(target)


def kill(pid: int) -> bool:
    """SIGKILL to PID; False when it was gone."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return False
    return True


JOURNAL_SOCKET = "/run/systemd/journal/socket"


def say(message: str, level: int = 6, container: Container | None = None) -> None:
    """One line to stderr: in a unit (stderr is the journal) with syslog LEVEL. Run by
    hand (`hostctl healthcheck`), the line about CONTAINER goes to the journal too, as
    one of its unit's (OBJECT_SYSTEMD_UNIT=), so that every status change is there."""
    if _stderr_is_journal():
        print(f"<{level}>hostctl: {message}", file=sys.stderr, flush=True)
        return
    print(f"hostctl: {message}", file=sys.stderr, flush=True)
    if container is not None:
        to_journal(container, f"hostctl: {message}", level)


def _stderr_is_journal() -> bool:
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def to_journal(container: Container, message: str, level: int) -> None:
    """MESSAGE about CONTAINER's unit into the journal (its native protocol); nothing
    when there is no journal."""
    import _socket

    unit_key = "OBJECT_SYSTEMD_USER_UNIT" if container.user else "OBJECT_SYSTEMD_UNIT"
    fields = {"MESSAGE": message, "PRIORITY": str(level),
              "SYSLOG_IDENTIFIER": f"{container.name}-healthcheck",
              unit_key: f"{container.name}.service"}
    data = b"".join(key.encode() + b"\n" + len(value.encode()).to_bytes(8, "little")
                    + value.encode() + b"\n" for key, value in fields.items())
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.sendto(data, JOURNAL_SOCKET)
    except OSError:
        return
    finally:
        sock.close()


def systemctl_no_block(verb: str, unit: str, user: bool) -> int:
    """`systemctl [--user] --no-block VERB UNIT`: the job queued, not awaited; the exit
    status."""
    from hostctl.runtime.runc import DEFAULT_PATH, find_binary

    env = dict(os.environ)
    env.setdefault("PATH", DEFAULT_PATH)
    argv = [find_binary("systemctl"), *(["--user"] if user else []), "--no-block", verb, unit]
    pid = os.posix_spawn(argv[0], argv, env)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)


def start_timer(name: str, user: bool) -> None:
    """Start container NAME's health timer (for a check the image gives: the container's
    unit wants the timer only for a declared one). The job waits for the container's
    unit to be active (After=); a failure is said, and the container runs unchecked."""
    from hostctl.errors import HostctlError

    prefix, at, instance = name.partition("@")  # a template's: PREFIX-healthcheck@INSTANCE
    unit = f"{prefix}-healthcheck{at}{instance}.timer"
    try:
        code = systemctl_no_block("start", unit, user)
    except (HostctlError, OSError) as err:
        say(f"{name}: cannot start {unit}: {err}", 4)
        return
    if code != 0:
        say(f"{name}: cannot start {unit}: systemctl exit status {code}", 4)
