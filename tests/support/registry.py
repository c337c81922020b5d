"""A throwaway OCI registry: Debian's docker-registry on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

REGISTRY_BINARY = "docker-registry"

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class RegistryError(RuntimeError):
    """The registry could not be started; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Registry:
    """`with Registry() as reg:` serves an empty registry at reg.host until the block ends."""

    def __init__(self, *, start_timeout: float = 15.0) -> None:
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def pid(self) -> int:
        """The registry process's PID."""
        if self._proc is None:
            raise RegistryError("the registry is not running")
        return self._proc.pid

    @property
    def port(self) -> int:
        """The TCP port the registry listens on."""
        if self._proc is None:
            raise RegistryError("the registry is not running")
        return self._port

    @property
    def host(self) -> str:
        """host:port as used in image references, e.g. 127.0.0.1:40123."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the registry, e.g. http://127.0.0.1:40123."""
        return f"http://{self.host}"

    @property
    def storage(self) -> Path:
        """The registry's filesystem storage root."""
        if self._dir is None:
            raise RegistryError("the registry is not running")
        return self._dir / "storage"

    @property
    def log_path(self) -> Path:
        """The file the registry's stdout and stderr go to."""
        if self._dir is None:
            raise RegistryError("the registry is not running")
        return self._dir / "registry.log"

    def __enter__(self) -> Registry:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RegistryError("docker-registry not found (install the docker-registry package)")
        self._dir = Path(tempfile.mkdtemp(prefix="hostctl-registry-"))
        try:
            self._start(binary)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self, binary: str) -> None:
        # free_port() can race with another process taking the port: retry a few times.
        for _attempt in range(3):
            self._port = free_port()
            config = self.storage.parent / "config.yml"
            config.write_text(CONFIG_TEMPLATE.format(root=self.storage, port=self._port))
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    [binary, "serve", str(config)],
                    # REGISTRY_* variables override the config file: keep only ours.
                    env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_until_ready():
                return
            self._stop_process()
        raise RegistryError(f"docker-registry did not start:\n{_log_tail(self.log_path)}")

    def _wait_until_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if _answers(self._port):
                return True
            time.sleep(0.05)
        return False

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the registry process (by its PID) and delete its storage; idempotent."""
        try:
            self._stop_process()
        finally:
            directory, self._dir = self._dir, None
            if directory is not None:
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(directory)
