"""Power cuts: the test host killed without a shutdown (TestHost.power_cut) in the middle
of a pull in an enabled container's start, and of an apply of a changed declaration.
After the boot: `hostctl image verify` finds nothing broken, no declaration is
truncated, and the enabled container runs again."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_containers_systemd import HOSTCTL
from tests.support.faultproxy import FaultProxy
from tests.support.imagebuild import File, Layer, busybox_image, push, sha256_digest
from tests.support.registry import Registry
from tests.support.testhost import TestHost

pytestmark = pytest.mark.integration
DECL = "/etc/hostctl/containers/web.yaml"
WEB = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo {word}; while :; do sleep 1 & wait; done"]
network: host
stop_timeout: 2
install:
  WantedBy: multi-user.target
"""


@pytest.fixture(scope="module")
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as fault_proxy:
        yield fault_proxy


@pytest.fixture(scope="module")
def big(registry: Registry) -> tuple[str, str]:
    """An image with a layer of several download chunks (the registry client writes a
    blob to the store chunk by chunk, 1 MiB each): (repository:tag, that layer's digest)."""
    layer = Layer((File("big", os.urandom(4 * 1024 * 1024)),))
    push(registry.host, "ops/big", "1", busybox_image(extra_layers=[layer]))
    return "ops/big:1", sha256_digest(layer.blob())


@pytest.fixture(scope="module")
def host(test_host: TestHost) -> TestHost:
    test_host.run([HOSTCTL, "install"])
    return test_host


def wait_active(host: Any, unit: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while host.run(["systemctl", "is-active", unit], check=False).stdout.strip() != "active":
        assert time.monotonic() < deadline, host.journal(unit)
        time.sleep(0.3)


def assert_consistent(host: Any, name: str = "web") -> None:
    verified = host.run([HOSTCTL, "image", "verify"], check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    valid = host.run([HOSTCTL, "validate", f"/etc/hostctl/containers/{name}.yaml"],
                     check=False)
    assert valid.returncode == 0, valid.stderr
    wait_active(host, f"{name}.service")


def test_a_power_cut_mid_pull_of_an_enabled_container(
    host: Any, proxy: FaultProxy, big: tuple[str, str]
) -> None:
    name, layer = big
    ref = f"{proxy.host}/{name}"
    host.write_file(DECL, WEB.format(ref=ref, word="first"))
    host.run(["systemctl", "daemon-reload"])
    proxy.stalled.clear()
    proxy.released.clear()
    proxy.fault(f"/blobs/{layer}", "stall", times=1)
    host.run(["systemctl", "start", "--no-block", "web.service"])
    left: list[str] = []

    def look() -> None:  # the store as the cut left it (the guest's /var/lib/hostctl)
        left.extend(p.name for p in (host.state_dir / "storage").rglob(".tmp-*"))

    try:
        assert proxy.stalled.wait(timeout=60), host.journal("web.service")
        host.power_cut(while_off=look)
    finally:
        proxy.released.set()
    assert left, "the cut did not land mid-write"
    # Started at boot, the blob pulled again; the pull removed the half-written one.
    assert_consistent(host)
    assert "first" in host.journal("web.service")
    temps = ["find", "/var/lib/hostctl/storage", "-name", ".tmp-*"]
    assert host.run(temps).stdout.strip() == ""


def test_a_power_cut_mid_apply(host: Any, proxy: FaultProxy, big: tuple[str, str]) -> None:
    ref = f"{proxy.host}/{big[0]}"
    wait_active(host, "web.service")
    host.write_file("/root/web.yaml", WEB.format(ref=ref, word="second"))
    # The cut lands somewhere in the apply: writing the declaration, reloading, restarting.
    host.run(["sh", "-c", f"setsid {HOSTCTL} apply /root/web.yaml >/dev/null 2>&1 &"])
    time.sleep(0.3)
    host.power_cut()
    assert_consistent(host)
    text = host.read_file(DECL)
    assert text in (WEB.format(ref=ref, word="first"), WEB.format(ref=ref, word="second"))
    rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
    assert [(row["name"], row["error"]) for row in rows] == [("web", None)], rows


UPDATED = """\
image: {ref}
auto_update: registry
command: ["sh", "-c", "trap 'exit 0' TERM; echo upd-$(cat /release); while :; do sleep 1; done"]
network: host
stop_timeout: 2
install:
  WantedBy: multi-user.target
"""


def release(name: str) -> tuple[Any, str]:
    """An image whose /release says NAME, with a layer of several download chunks."""
    layer = Layer((File("release", name), File("big", os.urandom(4 * 1024 * 1024))))
    return busybox_image(extra_layers=[layer]), sha256_digest(layer.blob())


def test_a_power_cut_mid_auto_update(host: Any, proxy: FaultProxy, registry: Registry) -> None:
    first, _ = release("one")
    push(registry.host, "ops/upd", "1", first)
    host.write_file("/etc/hostctl/containers/upd.yaml",
                    UPDATED.format(ref=f"{proxy.host}/ops/upd:1"))
    host.run(["systemctl", "daemon-reload"])
    try:
        host.run([HOSTCTL, "start", "upd"])
        second, layer = release("two")
        new = push(registry.host, "ops/upd", "1", second)
        proxy.stalled.clear()
        proxy.released.clear()
        proxy.fault(f"/blobs/{layer}", "stall", times=1)
        host.run(["sh", "-c", f"setsid {HOSTCTL} auto-update >/root/au.out 2>&1 &"])
        left: list[str] = []

        def look() -> None:
            left.extend(p.name for p in (host.state_dir / "storage").rglob(".tmp-*"))

        try:
            assert proxy.stalled.wait(timeout=60), host.read_file("/root/au.out")
            host.power_cut(while_off=look)
        finally:
            proxy.released.set()
        assert left, "the cut did not land mid-download"
        # The old release runs again at boot; the store is whole; the update completes.
        assert_consistent(host, "upd")
        assert "upd-one" in host.journal("upd.service")
        done = host.run([HOSTCTL, "auto-update", "--format", "json"], timeout=180)
        assert json.loads(done.stdout)[0]["container"] == "upd", done.stdout
        rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
        assert [row["digest"] for row in rows if row["name"] == "upd"] == [new]
        verified = host.run([HOSTCTL, "image", "verify"], check=False)
        assert verified.returncode == 0, verified.stdout
    finally:
        host.run(["systemctl", "stop", "upd.service"], check=False)
        host.run(["rm", "-f", "/etc/hostctl/containers/upd.yaml"])
        host.run(["systemctl", "daemon-reload"])


def test_a_power_cut_mid_stop(host: Any, busybox_ref: str) -> None:
    # PID 1 ignores SIGTERM: the stop waits for stop_timeout, and the cut lands in it.
    host.write_file("/etc/hostctl/containers/slow.yaml", f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo slow-up; exec sleep 600"]
network: host
stop_timeout: 60
install:
  WantedBy: multi-user.target
""")
    host.run(["systemctl", "daemon-reload"])
    try:
        host.run([HOSTCTL, "start", "slow"])
        host.run(["systemctl", "stop", "--no-block", "slow.service"])
        deadline = time.monotonic() + 10
        while host.run(["systemctl", "show", "-P", "ActiveState", "slow.service"]
                       ).stdout.strip() != "deactivating":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        host.power_cut()
        assert_consistent(host, "slow")
        # Writable layers only of the containers that run now: none left half set up.
        left = host.run(["ls", "/var/lib/hostctl/containers"]).stdout.split()
        rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
        assert sorted(left) == sorted(row["name"] for row in rows), (left, rows)
        assert "slow" in left
    finally:
        host.run(["systemctl", "kill", "-s", "KILL", "slow.service"], check=False)
        host.run(["systemctl", "stop", "slow.service"], check=False)
        host.run(["rm", "-f", "/etc/hostctl/containers/slow.yaml"])
        host.run(["systemctl", "daemon-reload"])


def test_a_power_cut_mid_layer_apply(host: Any, registry: Registry) -> None:
    # Thousands of small files: the layer takes a while to apply after its download.
    files = tuple(File(f"many/{i // 100}/{i}", os.urandom(64)) for i in range(6000))
    push(registry.host, "ops/many", "1", busybox_image(extra_layers=[Layer(files)]))
    ref = f"{registry.host}/ops/many:1"
    snapshots = host.state_dir / "storage/snapshots"
    host.run(["sh", "-c", f"setsid {HOSTCTL} pull {ref} >/root/pull.out 2>&1 &"])
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tmp-") for p in snapshots.glob(".tmp-*")):
        assert time.monotonic() < deadline, host.read_file("/root/pull.out")
        time.sleep(0.005)
    left: list[str] = []
    host.power_cut(while_off=lambda: left.extend(p.name for p in snapshots.glob(".tmp-*")))
    assert left, "the cut did not land mid-apply"
    verified = host.run([HOSTCTL, "image", "verify"], check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    host.run([HOSTCTL, "pull", ref], timeout=120)
    assert list(snapshots.glob(".tmp-*")) == []
    verified = host.run([HOSTCTL, "image", "verify"], check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    host.run([HOSTCTL, "image", "rm", ref])
