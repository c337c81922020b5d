"""A process in a running container without runc: what `runc exec` (1.1) does for a
process without a terminal, done by the calling process itself.

The caller (a health check) forks; the child (the "joiner") moves itself into the
cgroup the container's init is in (for a rootless container, where the user may not
move it, it stays where it is, as with runc), sets oom_score_adj, and joins the init's
namespaces that differ from its own (/proc/PID/ns: user first, for a rootless
container, then mnt, which also makes the container's root its root, pid, ipc, uts,
net). It then forks the process that becomes the command, inside the container's PID
namespace (that process joins the cgroup namespace itself), goes back to its own cgroup
(only the command stays in the container's, as with runc), writes the command's PID to
the given pid file, waits for it and exits with its status (128 + signal when killed,
as runc does).

The command's process, as runc's setns init does: joins the session keyring
`_ses.NAME`, raises the soft RLIMIT_NOFILE to the hard one (runc's Go runtime does, and
its children inherit that), sets rlimits, no_new_privs when noNewPrivileges, loads the
seccomp filter early when without no_new_privs (loading it then takes privilege), tries
the working directory, drops the bounding set, keeps its capabilities across
setgroups/setgid/setuid to the process user (additionalGids unless setgroups is denied
in the user namespace), tries the working directory again, sets the capabilities
exactly (effective, permitted, inheritable, ambient), the umask when set (as runc 1.2
does), the AppArmor profile, HOME from the container's /etc/passwd when the
environment has none, looks the command up in the environment's PATH, loads the
seccomp filter last when with no_new_privs, and execs with exactly the process's
environment.

The filter is the BPF program hostctl.runtime.seccomp_bpf compiled from the same
config.json (once per start, kept with the check's state). What this module cannot do
exactly (an SELinux label, an AppArmor profile without AppArmor, ioPriority, scheduler,
a filter libseccomp cannot build as runc would, cgroup v1) makes plan() give a reason
instead, and the caller runs `runc exec`. A failure before the command's exec is written
to the failure pipe (close-on-exec: empty means the command was exec'd), so the caller
can still fall back: nothing of the command has run by then.

This module is on every check's path: it imports os and hostctl.runtime.libc (_ctypes)
at import, _signal and resource when it starts a command.
"""

from __future__ import annotations

import os

from hostctl.runtime import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWUSER = 0x10000000
# setns(2) order; CLONE_NEW* flags.
NAMESPACES = (("user", 0x10000000), ("mnt", 0x00020000), ("pid", 0x20000000),
              ("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000),
              ("cgroup", 0x02000000))
CAP_NAMES = """
CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO
SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE
"""
CAPABILITIES = tuple(CAP_NAMES.split())  # by number
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
           "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
           "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
           "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14,
           "RLIMIT_RTTIME": 15}
# Process keys this module reproduces (args, terminal and consoleSize are the caller's).
HANDLED = {"args", "terminal", "consoleSize", "user", "env", "cwd", "capabilities",
           "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj"}
KEYCTL = {"x86_64": 250, "aarch64": 219}  # keyctl(2)'s number, for the session keyring
PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_SET_KEEPCAPS = 23, 24, 8
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL = 47, 2, 4
KEYCTL_JOIN_SESSION_KEYRING = 1
CAP_VERSION_3 = 0x20080522
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
CGROUP2 = "/sys/fs/cgroup"
FAILED = 255  # the joiner's exit status when it failed before the exec
EXEC_FAILED = 255  # the command could not be found or exec'd (runc exec's status then)


def plan(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What a check needs to run as container NAME's process (from its CONFIG, the
    config.json it was started with): {"why": "", "process": ..., "bpf": bytes | None,
    "keyring": "_ses.NAME"}, or {"why": REASON} when this module cannot do it exactly."""
    process = dict(config.get("process") or {})
    unhandled = sorted(key for key, value in process.items()
                       if key not in HANDLED and value not in (None, "", {}, []))
    if unhandled:
        return {"why": f"process.{unhandled[0]} is set"}
    if process.get("apparmorProfile") and not apparmor_enabled():
        return {"why": "an AppArmor profile without AppArmor"}
    linux = config.get("linux") or {}
    if linux.get("namespaces") and any(ns.get("type") == "time" for ns in linux["namespaces"]):
        return {"why": "a time namespace"}
    if linux.get("intelRdt"):
        return {"why": "linux.intelRdt is set"}
    bpf = None
    if linux.get("seccomp"):
        from hostctl.runtime import seccomp_bpf

        try:
            bpf = seccomp_bpf.compile_profile(linux["seccomp"])
        except seccomp_bpf.Unsupported as err:
            return {"why": str(err)}
    machine = os.uname().machine
    if machine not in KEYCTL:
        return {"why": f"no keyctl number known for {machine}"}
    if not os.path.exists(os.path.join(CGROUP2, "cgroup.controllers")):
        return {"why": f"{CGROUP2} is not the cgroup v2 hierarchy"}
    process["args"], process["terminal"] = [], False
    process.setdefault("cwd", "/")
    return {"why": "", "process": process, "bpf": bpf, "keyring": f"_ses.{name}",
            "keyctl": KEYCTL[machine]}


def foreign_userns(init_pid: int | None) -> int | None:
    """An fd (close-on-exec) of the user namespace of INIT_PID (a container's init) when
    it is not this process's own: a rootless container's, which its runtime has to run
    in, as root of it (its owner may join it)."""
    if init_pid is None:
        return None
    try:
        if os.readlink(f"/proc/{init_pid}/ns/user") == os.readlink("/proc/self/ns/user"):
            return None
        return os.open(f"/proc/{init_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def join_userns(fd: int) -> None:
    """setns(2) into the user namespace open at FD (a single-threaded process only)."""
    if libc.setns(fd, CLONE_NEWUSER) != 0:
        raise OSError(libc.errno(), f"cannot join the container's user namespace: "
                      f"{os.strerror(libc.errno())}")


def apparmor_enabled() -> bool:
    try:
        with open(APPARMOR_ENABLED) as handle:
            return handle.read().strip() == "Y"
    except OSError:
        return False


def cap_last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        return int(handle.read())


def _mask(names: list[str] | None, last: int) -> int:
    """The bits of capability NAMES (unknown ones and those past LAST left out)."""
    mask = 0
    for name in names or ():
        short = str(name).removeprefix("CAP_")
        if short in CAPABILITIES and CAPABILITIES.index(short) <= last:
            mask |= 1 << CAPABILITIES.index(short)
    return mask


class Joined:
    """A started lean exec: the joiner's PID (exits with the command's status) and the
    read end of the failure pipe."""

    __slots__ = ("failure", "pid")

    def __init__(self, pid: int, failure: int) -> None:
        self.pid, self.failure = pid, failure

    def failed(self) -> str:
        """What went wrong before the exec ("" when the command was exec'd); closes the
        pipe. Call once the joiner has exited."""
        os.set_blocking(self.failure, False)
        try:
            data = os.read(self.failure, 4096)
        except BlockingIOError:
            data = b""
        finally:
            os.close(self.failure)
        return data.decode(errors="replace")


def start(lean: dict[str, Any], init_pid: int, argv: list[str], stdin: int, output: int,
          pid_fd: int) -> Joined:
    """Start ARGV in the container whose init is INIT_PID as LEAN (plan()) describes,
    with STDIN and OUTPUT (stdout and stderr); the command's PID (in this PID
    namespace) is written to PID_FD."""
    own = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind, _ in NAMESPACES}
    joins = []
    try:
        for kind, flag in NAMESPACES:
            path = f"/proc/{init_pid}/ns/{kind}"
            if os.readlink(path) != own[kind]:
                joins.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag, kind))
        with open(f"/proc/{init_pid}/cgroup") as handle:
            cgroup = next(line[3:] for line in handle.read().splitlines()
                          if line.startswith("0::"))
        procs = os.open(f"{CGROUP2}{cgroup}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        back = _own_cgroup_procs()
    except BaseException:
        for fd, _, _ in joins:
            os.close(fd)
        raise
    import _signal  # type: ignore[import-not-found]
    import resource  # noqa: F401  # the command's process sets rlimits after setns(mnt)

    last = cap_last_cap()
    failure_read, failure_write = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            _joiner(lean, joins, (procs, back), argv, stdin, output, pid_fd, failure_write,
                    last, _signal)
    finally:
        os.close(failure_write)
        os.close(procs)
        if back >= 0:
            os.close(back)
        for fd, _, _ in joins:
            os.close(fd)
    return Joined(pid, failure_read)


def _own_cgroup_procs() -> int:
    """An fd of this process's own cgroup.procs (-1 when it cannot be opened)."""
    try:
        with open("/proc/self/cgroup") as handle:
            own = next(line[3:] for line in handle.read().splitlines()
                       if line.startswith("0::"))
        return os.open(f"{CGROUP2}{own}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
    except (OSError, StopIteration):
        return -1


def _fail(failure: int, message: str) -> None:
    try:
        os.write(failure, message.encode())
    finally:
        os._exit(FAILED)


def _joiner(lean: dict[str, Any], joins: list[tuple[int, int, str]], cgroups: tuple[int, int],
            argv: list[str], stdin: int, output: int, pid_fd: int, failure: int, last: int,
            signals: Any) -> None:
    """The forked child: cgroup, oom_score_adj, namespaces (the cgroup namespace left to
    the command's process), then the command's process, after whose fork it goes back
    to its own cgroup: only the command stays in the container's, as with runc. Never
    returns."""
    procs, back = cgroups
    try:
        process = lean["process"]
        try:
            os.write(procs, b"0")
        except OSError as err:
            # runc ignores this for a rootless container (outside the user's delegated
            # subtree, e.g. run from a login session, the move is not allowed).
            if not any(flag == CLONE_NEWUSER for _, flag, _ in joins):
                _fail(failure, f"cannot join the container's cgroup: {err}")
        if process.get("oomScoreAdj") is not None:
            try:
                with open("/proc/self/oom_score_adj", "w") as handle:
                    handle.write(str(int(process["oomScoreAdj"])))
            except OSError as err:
                _fail(failure, f"cannot set oom_score_adj: {err}")
        cgroup_ns = [join for join in joins if join[2] == "cgroup"]
        for fd, flag, kind in joins:
            if kind != "cgroup" and libc.setns(fd, flag) != 0:
                _fail(failure, f"cannot join the container's {kind} namespace: "
                      f"{os.strerror(libc.errno())}")
        child = os.fork()
        if child == 0:
            for fd, flag, kind in cgroup_ns:
                if libc.setns(fd, flag) != 0:
                    _fail(failure, f"cannot join the container's {kind} namespace: "
                          f"{os.strerror(libc.errno())}")
            _command(lean, argv, stdin, output, failure, last, signals)
        os.write(pid_fd, f"{child}\n".encode())
        if back >= 0:
            try:
                os.write(back, b"0")
            except OSError:
                back = -1  # it stays in the container's cgroup while it waits
        _, status = os.waitpid(child, 0)
        if os.WIFSIGNALED(status):
            os._exit(128 + os.WTERMSIG(status))
        os._exit(os.waitstatus_to_exitcode(status))
    except BaseException as err:  # nothing may return into the caller's code
        _fail(failure, f"lean exec: {err!r}")


def _command(lean: dict[str, Any], argv: list[str], stdin: int, output: int, failure: int,
             last: int, signals: Any) -> None:
    """The command's process, in the container's namespaces; never returns."""
    import resource

    try:
        process = lean["process"]
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        for sig in (signals.SIGPIPE, signals.SIGXFSZ):  # Python ignores them: exec keeps that
            signals.signal(sig, signals.SIG_DFL)
        os.closerange(3, failure)
        os.closerange(failure + 1, 65536)
        if libc.syscall_args(lean["keyctl"], KEYCTL_JOIN_SESSION_KEYRING,
                             lean["keyring"].encode()) < 0 and libc.errno() != 38:
            _fail(failure, f"cannot join the session keyring: {os.strerror(libc.errno())}")
        # runc is a Go 1.19 program: its runtime raises the soft RLIMIT_NOFILE to the hard
        # one, and the processes it starts inherit that.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        for rlimit in process.get("rlimits") or ():
            resource.setrlimit(RLIMITS[rlimit["type"]], (rlimit["soft"], rlimit["hard"]))
        nnp = bool(process.get("noNewPrivileges"))
        if nnp and libc.prctl(PR_SET_NO_NEW_PRIVS, 1) != 0:
            _fail(failure, f"cannot set no_new_privs: {os.strerror(libc.errno())}")
        if not nnp:
            _seccomp(lean, failure)
        cwd = str(process.get("cwd") or "/")
        try:
            os.chdir(cwd)
            cwd_done = True
        except PermissionError:
            cwd_done = False  # again as the process's user
        caps = process.get("capabilities") or {}
        bounding = _mask(caps.get("bounding"), last)
        for cap in range(last + 1):
            if not bounding & (1 << cap) and libc.prctl(PR_CAPBSET_READ, cap) == 1 \
                    and libc.prctl(PR_CAPBSET_DROP, cap) != 0:
                _fail(failure, f"cannot drop capability {cap}: {os.strerror(libc.errno())}")
        libc.prctl(PR_SET_KEEPCAPS, 1)
        user = process.get("user") or {}
        uid, gid = int(user.get("uid") or 0), int(user.get("gid") or 0)
        with open("/proc/self/setgroups") as handle:
            setgroups = handle.read().strip() != "deny"
        if setgroups:
            os.setgroups([int(g) for g in user.get("additionalGids") or ()])
        os.setgid(gid)
        os.setuid(uid)
        if not cwd_done:
            os.chdir(cwd)
        libc.prctl(PR_SET_KEEPCAPS, 0)
        _set_caps(caps, last, failure)
        if user.get("umask") is not None:
            os.umask(int(user["umask"]))
        if process.get("apparmorProfile"):
            _apparmor(str(process["apparmorProfile"]))
        env = _environment(list(process.get("env") or ()), uid)
        try:
            path = _look_up(argv[0], env)
        except OSError as err:  # the check's own failure, as runc's would be: no fallback
            os.write(2, f"exec failed: unable to start container process: exec: "
                     f"{json_quote(argv[0])}: {err.strerror}\n".encode())
            os._exit(EXEC_FAILED)
        if nnp:
            _seccomp(lean, failure)
        try:
            os.execve(path, argv, env)
        except OSError as err:
            os.write(2, f"exec failed: unable to start container process: exec: "
                     f"{json_quote(path)}: {err.strerror}\n".encode())
            os._exit(EXEC_FAILED)
    except BaseException as err:  # nothing may return into the caller's code
        _fail(failure, f"cannot run {argv[0]} in the container: {err}")


def _set_caps(caps: dict[str, Any], last: int, failure: int) -> None:
    sets = {kind: _mask(caps.get(kind), last) for kind in CAP_SETS}
    header = CAP_VERSION_3.to_bytes(4, "little") + (0).to_bytes(4, "little")
    data = b"".join((sets[kind] >> shift & 0xFFFFFFFF).to_bytes(4, "little")
                    for shift in (0, 32) for kind in ("effective", "permitted", "inheritable"))
    if libc.capset(header, data) != 0:
        _fail(failure, f"cannot set capabilities: {os.strerror(libc.errno())}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last + 1):
        if sets["ambient"] & (1 << cap) \
                and libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap) != 0:
            _fail(failure, f"cannot raise ambient capability {CAPABILITIES[cap]}: "
                  f"{os.strerror(libc.errno())}")


def _seccomp(lean: dict[str, Any], failure: int) -> None:
    bpf = lean.get("bpf")
    if not bpf:
        return
    program = libc.Buffer(bpf)
    fprog = (len(bpf) // 8).to_bytes(8, "little") + program.address.to_bytes(8, "little")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog) != 0:
        _fail(failure, f"cannot load the seccomp filter: {os.strerror(libc.errno())}")


def _apparmor(profile: str) -> None:
    for attr in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        try:
            with open(attr, "w") as handle:
                handle.write(f"exec {profile}")
            return
        except FileNotFoundError:
            continue


def _environment(pairs: list[str], uid: int) -> dict[str, str]:
    """The process's environment, plus HOME from the container's /etc/passwd (else /)
    when it has none, as runc adds."""
    env = {}
    for pair in pairs:
        key, _, value = str(pair).partition("=")
        env[key] = value
    if not env.get("HOME"):
        env["HOME"] = "/"
        try:
            with open("/etc/passwd") as handle:
                for line in handle:
                    fields = line.rstrip("\n").split(":")
                    if len(fields) >= 6 and fields[2] == str(uid):
                        env["HOME"] = fields[5]
                        break
        except OSError:  # no readable /etc/passwd: HOME stays unset, as with runc exec
            return env
    return env


def json_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _look_up(command: str, env: dict[str, str]) -> str:
    """COMMAND found as Go's exec.LookPath (runc's) finds it in ENV's PATH."""
    if "/" in command:
        if os.path.isfile(command) and os.access(command, os.X_OK):
            return command
        raise OSError(2, "no such file or directory")
    for directory in env.get("PATH", "").split(":"):
        candidate = os.path.join(directory or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise OSError(2, "executable file not found in $PATH")
