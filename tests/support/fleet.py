"""A fleet of systemd test hosts reachable over ssh, and ansible-playbook run against it.

Each host is a TestHost whose sshd listens on its own loopback port (the guests share the
machine's network namespace), with a generated key in root's authorized_keys. The fleet
writes an inventory and an ansible.cfg into a temp dir, links the collection into an
`ansible_collections/hostctl/hostctl` tree there, and runs the venv's ansible-playbook:

    with Fleet(3) as fleet:
        run = fleet.playbook(PLAY)
        assert run.changed == {"fleet1": 2, "fleet2": 2, "fleet3": 2}
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.testhost import TestHost

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collection"
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
GUEST_PYTHON = "/usr/bin/python3"

SSHD_CONF = """\
Port {port}
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

# Units that made a guest boot "degraded" now and then: journal-flush (moving the journal
# to /var/log) timing out with three guests booting at once on two cores, and podman's
# packaged timers and services. The runtime journal is enough here.
FLEET_MASKS = (
    "systemd-journal-flush.service",
    "podman-auto-update.service",
    "podman-auto-update.timer",
    "podman-restart.service",
    "podman.socket",
    "podman.service",  # Debian's package enables it in default.target: fails over overlayfs
)

# "fleet1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PlayRun:
    """One ansible-playbook run: exit status, output and the recap counters per host."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    recap: Mapping[str, Mapping[str, int]]

    @property
    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}

    @property
    def failed(self) -> dict[str, int]:
        return {host: counts["failed"] + counts["unreachable"]
                for host, counts in self.recap.items()}

    def check(self) -> PlayRun:
        """Raise with the whole output unless the play succeeded on every host."""
        if self.returncode != 0 or any(self.failed.values()):
            raise AssertionError(f"{' '.join(self.argv)} failed ({self.returncode}):\n"
                                 f"{self.stdout}\n{self.stderr}")
        return self


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    recap_at = stdout.rfind("PLAY RECAP")
    found: dict[str, dict[str, int]] = {}
    if recap_at < 0:
        return found
    for match in RECAP.finditer(stdout[recap_at:]):
        counts = dict(item.split("=") for item in match.group(2).split())
        found[match.group(1)] = {key: int(value) for key, value in counts.items()}
    return found


class Fleet:
    """SIZE booted test hosts named PREFIX1..PREFIXn, each with sshd on a loopback port."""

    def __init__(self, size: int = 3, *, prefix: str = "fleet",
                 files: Mapping[str, str | bytes] | None = None,
                 nspawn_args: Sequence[str] = (), binds: Sequence[str] = ()) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="hostctl-fleet-", dir="/var/tmp"))
        self.key = self.directory / "id_ed25519"
        self.ports = {f"{prefix}{i}": free_port() for i in range(1, size + 1)}
        self.extra_files = dict(files or {})
        self.nspawn_args = tuple(nspawn_args)
        # Guest paths that get a real directory of the machine each (one per host): what
        # mounts overlays there (podman's /var/lib/containers) cannot sit on the overlay.
        self.binds = tuple(binds)
        self.hosts: dict[str, TestHost] = {}

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> Fleet:
        """Generate the key, boot every host in parallel, start their sshd, write config."""
        try:
            self._keygen()
            self._write_config()
            with ThreadPoolExecutor(len(self.ports)) as pool:
                list(pool.map(self._boot, self.ports))
        except BaseException:
            self.close()
            raise
        return self

    def _keygen(self) -> None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet",
                        "-f", str(self.key)], check=True, capture_output=True)

    def _boot(self, name: str) -> None:
        public = (self.directory / "id_ed25519.pub").read_text()
        files: dict[str, str | bytes] = {
            "/etc/ssh/sshd_config.d/test.conf": SSHD_CONF.format(port=self.ports[name]),
            "/root/.ssh/authorized_keys": public,
            **self.extra_files,
        }
        # journal-flush (moving the journal to /var/log) timed out now and then with
        # three guests booting at once on two cores; the runtime journal is enough here.
        args = list(self.nspawn_args)
        for guest_path in self.binds:
            real = self.directory / "binds" / name / guest_path.strip("/").replace("/", "-")
            real.mkdir(parents=True)
            args.append(f"--bind={real}:{guest_path}")
        host = TestHost(name, files=files, nspawn_args=args,
                        masks=("systemd-journal-flush.service",))
        self.hosts[name] = host
        host.start()
        # sshd's directory must not be group/world writable (StrictModes).
        host.run(["chmod", "700", "/root/.ssh"])
        # Enabled inside the guest only (the link lands in its upper dir): every other test
        # host on the machine would otherwise fight over port 22.
        host.run(["systemctl", "enable", "--now", "ssh.service"])

    def close(self) -> None:
        """Close the ssh control masters, power every host off, remove the temp dir."""
        for name in self.ports:
            self._ssh_exit(name)
        hosts, self.hosts = list(self.hosts.values()), {}
        if hosts:
            with ThreadPoolExecutor(len(hosts)) as pool:
                list(pool.map(TestHost.close, hosts))
        shutil.rmtree(self.directory, ignore_errors=True)

    def _ssh_exit(self, name: str) -> None:
        control = self.directory / "cp" / f"127.0.0.1-{self.ports[name]}"
        if control.exists():
            subprocess.run(["ssh", "-o", f"ControlPath={control}", "-O", "exit",
                            "-p", str(self.ports[name]), "root@127.0.0.1"],
                           capture_output=True, check=False, timeout=10)

    # ---- ansible ----------------------------------------------------------------------

    @property
    def inventory(self) -> Path:
        return self.directory / "inventory.ini"

    @property
    def config(self) -> Path:
        return self.directory / "ansible.cfg"

    def _write_config(self) -> None:
        tree = self.directory / "collections/ansible_collections/hostctl"
        tree.mkdir(parents=True)
        (tree / "hostctl").symlink_to(COLLECTION)
        (self.directory / "cp").mkdir()
        lines = ["[fleet]"]
        for name, port in self.ports.items():
            lines.append(f"{name} ansible_host=127.0.0.1 ansible_port={port} "
                         f"ansible_user=root ansible_python_interpreter={GUEST_PYTHON}")
        self.inventory.write_text("\n".join(lines) + "\n")
        self.config.write_text(
            "[defaults]\n"
            f"collections_path = {self.directory / 'collections'}\n"
            "host_key_checking = False\n"
            "forks = 10\n"
            "retry_files_enabled = False\n"
            f"private_key_file = {self.key}\n"
            f"local_tmp = {self.directory / 'tmp'}\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            "ssh_args = -o ControlMaster=auto -o ControlPersist=120s "
            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR\n"
            f"control_path = {self.directory / 'cp'}/%%h-%%p\n"
        )

    def add_collections(self, path: Path) -> None:
        """Also search PATH (a directory holding ansible_collections/) for collections."""
        text = self.config.read_text()
        line = next(li for li in text.splitlines() if li.startswith("collections_path"))
        self.config.write_text(text.replace(line, f"{line}:{path}"))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.config),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def playbook(self, play: str | Path, *args: str, check: bool = False,
                 diff: bool = False, extra_vars: Mapping[str, object] | None = None,
                 timeout: float = 600) -> PlayRun:
        """Run ansible-playbook with PLAY (YAML text or a path) against the fleet."""
        path = Path(play) if isinstance(play, Path) else self._write_play(play)
        argv = [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory), str(path), *args]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if extra_vars:
            import json

            argv += ["--extra-vars", json.dumps(dict(extra_vars))]
        done = subprocess.run(argv, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        return PlayRun(tuple(argv), done.returncode, done.stdout, done.stderr,
                       parse_recap(done.stdout))

    def _write_play(self, text: str) -> Path:
        plays = self.directory / "plays"
        plays.mkdir(exist_ok=True)
        path = plays / f"play{len(list(plays.iterdir())) + 1}.yml"
        path.write_text(text)
        return path

    def ssh(self, name: str, command: str) -> subprocess.CompletedProcess[str]:
        """Run COMMAND on host NAME over ssh (proves the host answers as itself)."""
        argv = ["ssh", "-i", str(self.key), "-p", str(self.ports[name]),
                "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "root@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
