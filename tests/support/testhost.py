"""A throwaway systemd "test host": systemd-nspawn booting an overlay of the machine's root.

The machine's PID 1 is not systemd, so tests that need systemd boot one (about 2.5 s; see
/work/shared/reference/test-host.md): D/root is an overlay with lowerdir=/ and its upper
dir in D/upper, so the guest sees everything installed here (runc, the virtualenv) while
its writes land in D/upper only. /var/lib/hostctl and /home in the guest are real
directories of the machine (D/state, D/home) because overlayfs refuses an upper dir on
overlayfs, and hostctl mounts overlays there.

    with TestHost() as host:
        host.run(["systemctl", "start", "app-container"])
        print(host.journal("app-container"))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from tests.support import hostfs

SYSCALL_FILTER = (
    "@keyring @mount @privileged @raw-io @clock @cpu-emulation @debug @module @obsolete"
    " @reboot @swap"
)
# Units masked in every guest: packaged services that fail or clash in a guest sharing the
# machine's network (docker-registry on :5000, postgresql on :5432), timers that would do
# maintenance mid-test, and anything that would change the shared kernel or clock.
CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_MASKS = (
    "docker-registry.service",
    "postgresql.service",
    "postgresql@.service",
    "systemd-modules-load.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-timesyncd.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "networking.service",
    "systemd-resolved.service",
    "console-getty.service",
    "e2scrub_reap.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "man-db.timer",
    "systemd-tmpfiles-clean.timer",
    "systemd-journal-flush.service",
    # podman is installed on some machines for the benchmarks only.
    "podman-auto-update.timer",
    "podman-auto-update.service",
    "podman-restart.service",
    "podman.socket",
    "podman.service",  # enabled by the package; fails in a guest once the machine's
    # /var/lib/containers holds overlay storage (overlay over the guest's overlayfs)
)
# Units the machine may have enabled that every guest would start on the shared network
# (sshd on port 22 in each): hidden in the guest by an overlay whiteout on the enablement
# link, so a guest can still `systemctl enable` them itself (tests/support/fleet.py).
DISABLED_LINKS = (
    "etc/systemd/system/multi-user.target.wants/ssh.service",
    "etc/systemd/system/sockets.target.wants/ssh.socket",
)
GUEST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "USER": "root",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
STATE_DIR = "/var/lib/hostctl"


class TestHostError(RuntimeError):
    """The test host could not be booted or stopped; the message carries diagnostics."""

    __test__ = False


class GuestCommandError(subprocess.CalledProcessError):
    """A command run in the guest failed; str() shows its stdout and stderr."""

    def __str__(self) -> str:
        return (
            f"{self.cmd!r} exited with {self.returncode} in the test host\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


_LIVE: set[TestHost] = set()


def _close_live_hosts() -> None:
    for host in list(_LIVE):
        host.close()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into SystemExit so `finally`, fixture teardown and atexit run.
    raise SystemExit(128 + signum)


def _install_cleanup_hooks() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _exit_on_signal)


atexit.register(_close_live_hosts)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class TestHost:
    """A booted systemd guest; use as a context manager or call start() and close()."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str | None = None,
        *,
        masks: Sequence[str] = (),
        nspawn_args: Sequence[str] = (),
        files: Mapping[str, str | bytes] | None = None,
        boot_timeout: float = 90.0,
        poweroff_timeout: float = 30.0,
    ) -> None:
        token = secrets.token_hex(4)
        self.name = name or f"testhost-{token}"
        self.directory = hostfs.TESTHOST_PARENT / f"{hostfs.TESTHOST_PREFIX}{token}"
        self.masks = tuple(dict.fromkeys((*DEFAULT_MASKS, *masks)))
        # Extra systemd-nspawn options (e.g. --private-network) and files written into the
        # guest before its first boot (guest path -> content), e.g. an sshd drop-in.
        self.nspawn_args = tuple(nspawn_args)
        self.files = dict(files or {})
        self.boot_timeout = boot_timeout
        self.poweroff_timeout = poweroff_timeout
        self.boot_seconds: list[float] = []
        self._nspawn: subprocess.Popen[bytes] | None = None
        self._pid1: int | None = None
        self._cgroup_retried = False  # per boot: see _retry_cgroup_failures
        self._cgroup: Path | None = None  # this host's own cgroup2 directory (_own_cgroup)
        self._closed = False

    # ---- paths on the machine ---------------------------------------------------------

    @property
    def root(self) -> Path:
        """The overlay mount the guest boots from (machine side)."""
        return self.directory / "root"

    @property
    def upper(self) -> Path:
        """The overlay's upper dir: every file the guest changed outside the bind mounts."""
        return self.directory / "upper"

    @property
    def state_dir(self) -> Path:
        """The machine-side directory the guest sees as /var/lib/hostctl."""
        return self.directory / "state"

    @property
    def home_dir(self) -> Path:
        """The machine-side directory the guest sees as /home."""
        return self.directory / "home"

    @property
    def log_path(self) -> Path:
        """systemd-nspawn's output (the guest's console), appended at every boot."""
        return self.directory / "nspawn.log"

    @property
    def pid1(self) -> int:
        """The guest's systemd (PID 1 inside, a normal PID on the machine)."""
        if self._pid1 is None:
            raise TestHostError(f"test host {self.name} is not running")
        return self._pid1

    @property
    def nspawn_pid(self) -> int:
        """The systemd-nspawn process on the machine."""
        if self._nspawn is None:
            raise TestHostError(f"test host {self.name} is not running")
        return self._nspawn.pid

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> TestHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> TestHost:
        """Create the host's directory, write masks and hostname, boot to `running`."""
        if os.geteuid() != 0:
            raise TestHostError("a test host needs root (mount, systemd-nspawn)")
        for tool in ("systemd-nspawn", "nsenter", "umount"):
            if shutil.which(tool) is None:
                raise TestHostError(f"{tool} not found (scripts/setup.sh installs it)")
        _install_cleanup_hooks()
        _LIVE.add(self)
        try:
            self._prepare()
            self._boot()
        except BaseException:
            self.close()
            raise
        return self

    def _prepare(self) -> None:
        self.directory.mkdir(mode=0o700)
        (self.directory / "owner").write_text(hostfs.process_identity(os.getpid()) or "")
        (self.directory / "machine").write_text(self.name)
        for sub in ("upper", "work", "root", "state", "home"):
            (self.directory / sub).mkdir()
        units = self.upper / "etc/systemd/system"
        units.mkdir(parents=True)
        for link in DISABLED_LINKS:
            whiteout = self.upper / link
            whiteout.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(whiteout, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        for unit in self.masks:
            (units / unit).symlink_to("/dev/null")
        (self.upper / "etc/hostname").write_text(self.name + "\n")
        self._open_checkout_path()
        for guest_path, content in self.files.items():
            target = self.upper / guest_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            target.write_bytes(content)

    def _open_checkout_path(self) -> None:
        """Let the guest's users reach the checkout's virtualenv, wherever the checkout is.

        A clone under /root (mode 0700) would leave a rootless user's generator and
        `hostctl` failing with "Permission denied". The directories on the way to the
        checkout are overlay directories in the guest: the same directory in the upper dir,
        with search permission for everyone, merges with the machine's one (same contents,
        the upper dir's mode). The machine's directories are left alone.
        """
        ancestors = list(reversed(CHECKOUT.parents[:-1]))  # /root before /root/src
        modes = [stat.S_IMODE(a.stat().st_mode) for a in ancestors]
        closed = [i for i, mode in enumerate(modes) if mode & 0o011 != 0o011]
        depth = max(closed, default=-1) + 1
        for ancestor, mode in zip(ancestors[:depth], modes[:depth], strict=True):
            merged = self.upper / ancestor.relative_to("/")
            merged.mkdir(exist_ok=True)
            owner = ancestor.stat()
            os.chown(merged, owner.st_uid, owner.st_gid)
            merged.chmod(mode | 0o011)
        checkout_mode = stat.S_IMODE(CHECKOUT.stat().st_mode)
        if checkout_mode & 0o005 != 0o005:
            raise TestHostError(
                f"the checkout {CHECKOUT} is mode {checkout_mode:04o}: the test host's users"
                " cannot read its virtualenv (run `chmod o+rx` on it, or clone it elsewhere)")

    def _unmount_below_root(self) -> None:
        """Between two boots: what the last one left mounted below the root, not the root's
        own overlay. A machine's disk stays the same device across a reboot; a remounted
        overlay may get another anonymous device number (st_dev), which a real reboot
        would not change (start records compare it: hostctl.launcher.record)."""
        for point in hostfs.mounts_under(self.root):
            if point != self.root:
                hostfs.unmount_all(point)

    def _mount_root(self) -> None:
        options = f"lowerdir=/,upperdir={self.upper},workdir={self.directory / 'work'}"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise TestHostError(f"mounting the overlay on {self.root} failed: {done.stderr}")

    def _nspawn_argv(self) -> list[str]:
        return [
            "systemd-nspawn",
            f"--directory={self.root}",
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "--capability=all",
            f"--system-call-filter={SYSCALL_FILTER}",
            f"--bind={self.state_dir}:{STATE_DIR}",
            f"--bind={self.home_dir}:/home",
            # The checkout and its .venv at the same path, wherever it lies: the guest's
            # own /tmp (a tmpfs) would otherwise hide a checkout under the machine's /tmp.
            f"--bind-ro={CHECKOUT}",
            f"--machine={self.name}",
            *self.nspawn_args,
            "--boot",
        ]

    def _boot(self) -> None:
        if self.root not in hostfs.mounts_under(self.root):
            self._mount_root()
        started = time.monotonic()
        deadline = started + self.boot_timeout
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with self.log_path.open("ab") as log:
            log.write(f"--- boot {len(self.boot_seconds) + 1} ---\n".encode())
            log.flush()
            argv = self._nspawn_argv()
            cgroup = self._own_cgroup()
            if cgroup is not None:  # the shell moves itself there, then becomes nspawn
                argv = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"',
                        str(cgroup), *argv]
            self._nspawn = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid: a Ctrl-C on the terminal is ours to handle
            )
        (self.directory / "pid").write_text(hostfs.process_identity(self._nspawn.pid) or "")
        self._pid1 = self._find_pid1(deadline)
        self._cgroup_retried = False
        self._wait_running(deadline)
        self.boot_seconds.append(time.monotonic() - started)

    def _own_cgroup(self) -> Path | None:
        """A cgroup2 directory of this host's own, next to this process's cgroup, for its
        systemd-nspawn (which makes supervisor/ and payload/ in the cgroup it starts in:
        test hosts started from one cgroup would share them, and two guests' units of the
        same name one cgroup). None where there is no writable cgroup2 hierarchy: nspawn
        then starts where this process is, as before."""
        if self._cgroup is not None:
            return self._cgroup
        try:
            mount = next(line.split()[4] for line in
                         Path("/proc/self/mountinfo").read_text().splitlines()
                         if " - cgroup2 " in line)
            own = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                       if line.startswith("0::"))
            cgroup = Path(mount + own.rstrip("/")) / self.name
            cgroup.mkdir(exist_ok=True)
            (self.directory / "cgroup").write_text(f"{cgroup}\n")  # for cleanup_stale
        except (StopIteration, OSError):
            return None
        self._cgroup = cgroup
        return cgroup

    def _find_pid1(self, deadline: float) -> int:
        assert self._nspawn is not None
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise TestHostError(f"systemd-nspawn exited early:\n{_tail(self.log_path)}")
            for child in hostfs.children(self._nspawn.pid):
                # nspawn's short-lived intermediate child is not systemd yet: wait for comm.
                try:
                    comm = Path(f"/proc/{child}/comm").read_text().strip()
                except (FileNotFoundError, ProcessLookupError):
                    continue  # that short-lived child has just exited
                if comm == "systemd":
                    return child
            time.sleep(0.02)
        raise TestHostError(f"no guest systemd appeared:\n{_tail(self.log_path)}")

    def _wait_running(self, deadline: float) -> None:
        assert self._nspawn is not None
        state = ""
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise TestHostError(f"the guest stopped while booting:\n{self.diagnostics()}")
            remaining = max(1.0, deadline - time.monotonic())
            try:
                done = self._exec(["systemctl", "is-system-running", "--wait"], None, remaining)
            except subprocess.TimeoutExpired:
                break
            state = done.stdout.decode().strip()
            if state == "running":
                return
            if state == "degraded" and self._retry_cgroup_failures():
                continue
            if state in ("degraded", "maintenance", "stopping"):
                raise TestHostError(f"the guest booted {state}:\n{self.diagnostics()}")
            time.sleep(0.05)  # the bus is not up yet ("Failed to connect to bus")
        raise TestHostError(
            f"the guest was not running after {self.boot_timeout:.0f} s (state {state!r}):\n"
            + self.diagnostics()
        )

    def _retry_cgroup_failures(self) -> bool:
        """Start again, once per boot, boot units that failed with status 219/CGROUP:
        when several guests boot at once on this machine, systemd now and then cannot
        move a boot unit's process into its cgroup (seen with systemd-remount-fs and
        systemd-update-utmp-runlevel in fleets of three). True when it restarted them."""
        if self._cgroup_retried:
            return False
        self._cgroup_retried = True
        argv = ["systemctl", "--failed", "--no-legend", "--plain"]
        failed = self._exec(argv, None, 10).stdout.decode()
        units = [line.split()[0] for line in failed.splitlines() if line.strip()]
        if not units:
            return False
        for unit in units:
            result = self._exec(["systemctl", "show", "-P", "ExecMainStatus", unit], None, 10)
            if result.stdout.decode().strip() != "219":
                return False
        self._exec(["systemctl", "reset-failed", *units], None, 10)
        return self._exec(["systemctl", "restart", *units], None, 60).returncode == 0

    def diagnostics(self) -> str:
        """The tail of the nspawn log and `systemctl --failed`, for error messages."""
        failed = "(guest not reachable)"
        if self._pid1 is not None and self._nspawn is not None and self._nspawn.poll() is None:
            try:
                argv = ["systemctl", "--failed", "--no-legend", "--plain"]
                failed = self._exec(argv, None, 10).stdout.decode() or "(none)"
                units = [line.split()[0] for line in failed.splitlines() if ".service" in line]
                if units:  # why they failed
                    argv = ["journalctl", "--no-pager", "-b", "-n", "30"]
                    argv += [f"--unit={unit}" for unit in units]
                    failed += self._exec(argv, None, 10).stdout.decode()
            except (subprocess.TimeoutExpired, OSError) as error:
                failed = f"(systemctl --failed: {error})"
        return (
            f"--- {self.log_path} (tail) ---\n{_tail(self.log_path)}\n"
            f"--- systemctl --failed ---\n{failed}"
        )

    def reboot(self) -> None:
        """Power the guest off and boot it again over the same upper and bind-mounted dirs."""
        self._shutdown()
        self._unmount_below_root()
        try:
            self._boot()
        except BaseException:
            self.close()
            raise

    def power_cut(self, while_off: Callable[[], None] | None = None) -> None:
        """Kill the guest without a shutdown (SIGKILL to its PID 1 ends every process in
        it, mid-write), call WHILE_OFF (to look at what it left), then boot it again over
        the same upper and bind-mounted dirs.

        Files already written stay in the machine's page cache, so this tests what an
        interrupted operation leaves behind, not the loss of unsynced data."""
        nspawn, self._nspawn = self._nspawn, None
        self._pid1 = None
        if nspawn is not None:
            for child in hostfs.children(nspawn.pid):
                hostfs.kill_quietly(child)
            try:
                nspawn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                nspawn.kill()
                nspawn.wait()
        self._unmount_below_root()
        try:
            if while_off is not None:
                while_off()
            self._boot()
        except BaseException:
            self.close()
            raise

    def _shutdown(self) -> None:
        nspawn, self._nspawn = self._nspawn, None
        pid1, self._pid1 = self._pid1, None
        if nspawn is None:
            return
        if nspawn.poll() is None and pid1 is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                self._exec_in(pid1, ["systemctl", "poweroff", "--no-block"], None, 10)
        try:
            nspawn.wait(timeout=self.poweroff_timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        # Last resort: SIGKILL on the guest's PID 1 ends every process of the guest.
        for child in hostfs.children(nspawn.pid):
            hostfs.kill_quietly(child)
        try:
            nspawn.wait(timeout=15)
        except subprocess.TimeoutExpired:
            nspawn.kill()
            nspawn.wait()

    def close(self) -> None:
        """Power off (SIGKILL as a last resort), unmount everything under the dir, delete it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._shutdown()
        finally:
            _LIVE.discard(self)
            if self._cgroup is not None:
                hostfs.remove_cgroup(self._cgroup)
                self._cgroup = None
            if self.directory.exists():
                hostfs.remove_tree(self.directory)
            hostfs.remove_propagate_dir(self.name)

    # ---- commands in the guest --------------------------------------------------------

    def _exec(
        self,
        argv: Sequence[str],
        data: bytes | None,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return self._exec_in(self.pid1, argv, data, timeout, env)

    def _exec_in(
        self,
        pid1: int,
        argv: Sequence[str],
        data: bytes | None,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full = ["nsenter", "-t", str(pid1), "-a", "--", *argv]
        proc = subprocess.Popen(
            full,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**GUEST_ENV, **(env or {})},
            start_new_session=True,  # its own process group, so a timeout kills it all
        )
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            hostfs.kill_quietly(-proc.pid)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(list(argv), timeout, out, err) from None
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ARGV in the guest (all its namespaces, a clean root environment plus ENV)."""
        data = input.encode() if isinstance(input, str) else input
        raw = self._exec(argv, data, timeout, env)
        out = raw.stdout.decode(errors="replace")
        err = raw.stderr.decode(errors="replace")
        if check and raw.returncode != 0:
            raise GuestCommandError(raw.returncode, list(argv), out, err)
        return subprocess.CompletedProcess(list(argv), raw.returncode, out, err)

    def sh(
        self,
        script: str,
        *,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run SCRIPT with /bin/sh -c in the guest; the other arguments as for run()."""
        argv = ["/bin/sh", "-c", script]
        return self.run(argv, check=check, input=input, timeout=timeout, env=env)

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Write CONTENT to PATH in the guest (parents created), then chmod MODE."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"'
        self.run(["/bin/sh", "-c", script, "sh", path, f"{mode:o}"], input=content)

    def read_file(self, path: str) -> str:
        """The text of PATH in the guest."""
        return self.run(["cat", "--", path]).stdout

    def lingering_user(self, name: str, timeout: float = 30) -> str:
        """Add user NAME (with a home) with lingering on; its uid once its manager runs."""
        self.run(["useradd", "-m", name])
        self.run(["loginctl", "enable-linger", name])
        uid: str = self.run(["id", "-u", name]).stdout.strip()
        deadline = time.monotonic() + timeout
        while self.run(["systemctl", "is-active", f"user@{uid}.service"],
                       check=False).stdout.strip() != "active":
            if time.monotonic() > deadline:
                raise TestHostError(f"user@{uid}.service ({name}) did not start:\n"
                                    + self.diagnostics())
            time.sleep(0.2)
        return uid

    def journal(self, unit: str, *, user: bool = False, output: str = "cat") -> str:
        """The journal of UNIT (a user unit with USER=True) as journalctl -o OUTPUT prints it."""
        selector = "--user-unit" if user else "--unit"
        return self.run(["journalctl", "--no-pager", "-o", output, selector, unit]).stdout
