"""The test host the benches that race podman share: a systemd guest beside a loopback
registry holding a busybox image, with podman's storage bound from /var/tmp (overlay
storage cannot sit on the guest's own overlay root) and no pids limit on podman's
containers (systemd's TasksMax= applies, as to hostctl's)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.imagebuild import busybox_image, push  # noqa: E402
from tests.support.registry import Registry  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

PODMAN_CONF = {"/etc/containers/containers.conf": "[containers]\npids_limit = 0\n"}


@contextmanager
def podman_storage(prefix: str = "bench-containers-") -> Iterator[Path]:
    """A directory for the guest's /var/lib/containers, removed afterwards."""
    storage = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield storage
    finally:
        shutil.rmtree(storage, ignore_errors=True)


@contextmanager
def registry_guest() -> Iterator[tuple[TestHost, str]]:
    """(the running guest, the reference of bench/busybox:1 in the loopback registry)."""
    with podman_storage() as storage, Registry() as registry:
        push(registry.host, "bench/busybox", "1", busybox_image())
        with TestHost(nspawn_args=[f"--bind={storage}:/var/lib/containers"],
                      files=PODMAN_CONF) as host:
            yield host, f"{registry.host}/bench/busybox:1"
