"""Where one container's per-start state lives, and removing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hostctl.launcher.teardown import tear_down
from hostctl.paths import Paths
from hostctl.runtime.runc import Runc


@dataclass(frozen=True)
class ContainerState:
    """The bundle (config.json, rootfs mount point, /etc files) and the writable layer."""

    name: str
    paths: Paths

    @property
    def bundle(self) -> Path:
        return self.paths.containers / self.name

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def scratch(self) -> Path:
        return self.paths.state / "containers" / self.name

    @property
    def pid_file(self) -> Path:
        return self.bundle / "pid"

    @property
    def runtime_file(self) -> Path:
        """Which OCI runtime created the container (runc or crun), for cleanup."""
        return self.paths.runc_root / f"{self.name}.runtime"

    def record_runtime(self, binary: str) -> None:
        self.paths.runc_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.runtime_file.write_text(binary)

    def runtime(self) -> Runc:
        try:
            binary = self.runtime_file.read_text().strip()
        except OSError:
            binary = "runc"
        return Runc(root=self.paths.runc_root, binary=binary if binary == "crun" else "runc")


def remove(state: ContainerState) -> None:
    """Delete the runc container, unmount the rootfs, remove bundle and writable layer.

    Idempotent: runs before every start (stale state from a crash or power cut) and
    as the unit's ExecStopPost.
    """
    from hostctl import network

    tear_down(state.runtime(), state.name, str(state.bundle), str(state.scratch),
              str(state.runtime_file))
    network.detach(state.name, state.paths)
