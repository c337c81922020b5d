"""The test bench itself works: registry, image builder, systemd test host, cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import hostfs
from tests.support.imagebuild import (
    Dir,
    File,
    ImageSpec,
    Layer,
    MediaType,
    Opaque,
    Symlink,
    Whiteout,
    busybox_image,
    fetch_manifest,
    push,
)
from tests.support.registry import Registry
from tests.support.testhost import GuestCommandError, TestHost

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True)
    return done.stdout


def unpack(registry: Registry, name: str, tmp_path: Path) -> Path:
    """Copy NAME:1 out of the registry with skopeo and unpack it with umoci: its rootfs."""
    layout = tmp_path / "layout"
    source = f"docker://{registry.host}/{name}:1"
    skopeo("copy", "--quiet", "--src-tls-verify=false", source, f"oci:{layout}:1")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", str(bundle)], check=True)
    return bundle / "rootfs"


# ---- registry and images -----------------------------------------------------------------


def test_registry_serves_the_pushed_busybox_image(registry: Registry, busybox_ref: str) -> None:
    expected = busybox_image().build().digest  # the build is deterministic
    digest, media_type, body = fetch_manifest(registry.host, "demo/busybox", "1")
    assert digest == expected
    assert media_type == MediaType.OCI
    assert len(json.loads(body)["layers"]) == 1
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{busybox_ref}"))
    assert inspected["Digest"] == expected
    assert inspected["Architecture"] == "amd64"
    config = json.loads(
        skopeo("inspect", "--config", "--tls-verify=false", f"docker://{busybox_ref}")
    )
    assert config["config"]["Cmd"] == ["sh"]


def test_busybox_image_unpacks_with_umoci(registry: Registry, tmp_path: Path) -> None:
    push(registry.host, "bench/unpack", "1", busybox_image(User="app", WorkingDir="/tmp"))
    rootfs = unpack(registry, "bench/unpack", tmp_path)
    assert (rootfs / "bin/busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (rootfs / "home/app").stat().st_uid == 1000
    assert "app:x:1000:1000:" in (rootfs / "etc/passwd").read_text()
    config = json.loads((tmp_path / "bundle/config.json").read_text())
    assert config["process"]["user"]["uid"] == 1000
    assert config["process"]["cwd"] == "/tmp"


def test_whiteouts_and_opaque_dirs_apply_like_umoci_does(
    registry: Registry, tmp_path: Path
) -> None:
    lower = Layer(
        (
            Dir("data"),
            File("data/old", "old"),
            File("keep", "k"),
            Dir("gone"),
            File("gone/x", "x"),
            File("drop", "d"),
        )
    )
    upper = Layer(
        (
            Whiteout("drop"),
            Opaque("data"),
            File("data/new", "new", mode=0o600),
            Symlink("link", "keep"),
        )
    )
    push(registry.host, "bench/layers", "1", ImageSpec((lower, upper)))
    rootfs = unpack(registry, "bench/layers", tmp_path)
    assert sorted(p.name for p in (rootfs / "data").iterdir()) == ["new"]
    assert (rootfs / "data/new").stat().st_mode & 0o777 == 0o600
    assert not (rootfs / "drop").exists()
    assert (rootfs / "gone/x").read_text() == "x"
    assert (rootfs / "link").read_text() == "k"


def test_docker_schema2_image_is_served_as_docker(registry: Registry) -> None:
    image = busybox_image(media_type=MediaType.DOCKER)
    digest = push(registry.host, "bench/docker", "1", image)
    raw = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/bench/docker:1")
    )
    assert raw["mediaType"] == MediaType.DOCKER
    assert fetch_manifest(registry.host, "bench/docker", digest)[0] == digest


def test_registry_close_stops_the_process_and_removes_storage() -> None:
    with Registry() as reg:
        pid = reg.pid
        storage = reg.storage
        push(reg.host, "bench/tmp", "1", busybox_image())
        assert storage.is_dir()
    assert hostfs.process_identity(pid) is None
    assert not storage.parent.exists()


# ---- the systemd test host ---------------------------------------------------------------


def test_host_boots_to_running(test_host: TestHost) -> None:
    assert test_host.run(["systemctl", "is-system-running"]).stdout.strip() == "running"
    assert test_host.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert test_host.read_file("/etc/hostname").strip() == test_host.name
    assert test_host.boot_seconds and test_host.boot_seconds[0] < 30


def test_files_written_in_the_guest_read_back(test_host: TestHost) -> None:
    test_host.write_file("/etc/hostctl/bench/a.txt", "hello\nworld\n", mode=0o600)
    assert test_host.read_file("/etc/hostctl/bench/a.txt") == "hello\nworld\n"
    assert test_host.run(["stat", "-c", "%a", "/etc/hostctl/bench/a.txt"]).stdout.strip() == "600"
    # Guest writes land in the upper dir, never on the machine itself.
    assert (test_host.upper / "etc/hostctl/bench/a.txt").read_text() == "hello\nworld\n"
    assert not Path("/etc/hostctl/bench/a.txt").exists()


def test_failing_guest_command_raises_with_its_output(test_host: TestHost) -> None:
    with pytest.raises(GuestCommandError, match="no-such-file"):
        test_host.run(["cat", "/no-such-file"])
    assert test_host.sh("exit 3", check=False).returncode == 3


def test_transient_units_run_and_report_failure(test_host: TestHost) -> None:
    ok = test_host.run(["systemd-run", "--wait", "--quiet", "-p", "TimeoutStopSec=5", "/bin/true"])
    assert ok.returncode == 0
    failed = test_host.run(["systemd-run", "--wait", "--quiet", "/bin/false"], check=False)
    assert failed.returncode != 0


def test_runc_runs_the_busybox_image_in_a_unit(
    test_host: TestHost, registry: Registry, busybox_ref: str
) -> None:
    layout = test_host.state_dir / "bench-layout"
    bundle = test_host.state_dir / "bench-bundle"
    skopeo(
        "copy", "--quiet", "--src-tls-verify=false", f"docker://{busybox_ref}", f"oci:{layout}:1"
    )
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["/bin/sh", "-c", "echo hi from $(id -un)"])
    (bundle / "config.json").write_text(json.dumps(config))
    argv = [
        "systemd-run",
        "--wait",
        "--pipe",
        "--quiet",
        "-p",
        "Delegate=yes",
        "runc",
        "run",
        "--bundle",
        "/var/lib/hostctl/bench-bundle",
        "bench",
    ]
    assert test_host.run(argv).stdout == "hi from root\n"


def test_machine_registry_is_reachable_from_the_guest(
    test_host: TestHost, registry: Registry, busybox_ref: str
) -> None:
    script = (
        "import urllib.request, sys\n"
        "req = urllib.request.Request(sys.argv[1], headers={'Accept': sys.argv[2]})\n"
        "print(urllib.request.urlopen(req).headers['Docker-Content-Digest'])\n"
    )
    url = f"{registry.url}/v2/demo/busybox/manifests/1"
    done = test_host.run(["/usr/bin/python3", "-c", script, url, MediaType.OCI])
    assert done.stdout.strip() == busybox_image().build().digest


def test_journal_has_a_units_output(test_host: TestHost) -> None:
    test_host.run(
        [
            "systemd-run",
            "--wait",
            "--quiet",
            "--unit",
            "bench-echo",
            "/bin/echo",
            "bench journal line",
        ]
    )
    deadline = time.monotonic() + 10
    while "bench journal line" not in test_host.journal("bench-echo"):
        assert time.monotonic() < deadline, "the unit's output never reached its journal"
        time.sleep(0.1)


def test_reboot_keeps_state_and_comes_back_running(test_host: TestHost) -> None:
    old_pid1 = test_host.pid1
    test_host.write_file("/var/lib/hostctl/bench-survivor", "still here\n")
    test_host.write_file("/etc/bench-upper", "upper\n")
    test_host.write_file("/run/bench-volatile", "gone after reboot\n")
    test_host.reboot()
    assert test_host.pid1 != old_pid1
    assert hostfs.process_identity(old_pid1) is None
    assert test_host.run(["systemctl", "is-system-running"]).stdout.strip() == "running"
    assert test_host.read_file("/var/lib/hostctl/bench-survivor") == "still here\n"
    assert test_host.read_file("/etc/bench-upper") == "upper\n"
    assert test_host.run(["test", "-e", "/run/bench-volatile"], check=False).returncode == 1
    assert len(test_host.boot_seconds) == 2


# ---- cleanup -----------------------------------------------------------------------------


def assert_gone(directory: Path, nspawn_pid: int, pid1: int) -> None:
    assert hostfs.mounts_under(directory) == []
    assert not directory.exists()
    assert hostfs.process_identity(nspawn_pid) is None
    assert hostfs.process_identity(pid1) is None


def test_close_leaves_nothing_behind() -> None:
    host = TestHost().start()
    directory, nspawn_pid, pid1 = host.directory, host.nspawn_pid, host.pid1
    # An overlay mounted in the guest's bind mount, as hostctl will do.
    host.sh(
        "cd /var/lib/hostctl && mkdir -p l u w m && "
        "mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m"
    )
    host.close()
    assert_gone(directory, nspawn_pid, pid1)
    host.close()  # idempotent


def test_close_kills_a_guest_whose_shutdown_hangs() -> None:
    host = TestHost(poweroff_timeout=3).start()
    directory, nspawn_pid, pid1 = host.directory, host.nspawn_pid, host.pid1
    try:
        host.run(
            [
                "systemd-run",
                "--quiet",
                "--unit",
                "bench-stubborn",
                "-p",
                "TimeoutStopSec=infinity",
                "/bin/sh",
                "-c",
                "trap '' TERM; while :; do sleep 1; done",
            ]
        )
        started = time.monotonic()
    finally:
        host.close()
    assert time.monotonic() - started < 25
    assert_gone(directory, nspawn_pid, pid1)


def run_owner(action: str) -> tuple[subprocess.Popen[str], Path, int]:
    """A separate Python process owning a booted test host; returns it, the dir, nspawn PID."""
    script = (
        "import sys, time\n"
        "from tests.support.testhost import TestHost\n"
        "host = TestHost().start()\n"
        "print(host.directory, host.nspawn_pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    line = owner.stdout.readline().split()
    assert line, f"the owner process failed before booting ({action})"
    return owner, Path(line[0]), int(line[1])


def test_sigterm_to_the_owner_closes_its_host() -> None:
    owner, directory, nspawn_pid = run_owner("sigterm")
    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=60) == 128 + signal.SIGTERM
    assert hostfs.mounts_under(directory) == []
    assert not directory.exists()
    assert hostfs.process_identity(nspawn_pid) is None


def test_cleanup_stale_removes_the_host_of_a_killed_run() -> None:
    owner, directory, nspawn_pid = run_owner("sigkill")
    owner.kill()
    owner.wait()
    assert hostfs.process_identity(nspawn_pid) is not None  # orphaned, still running
    assert directory in hostfs.cleanup_stale()
    assert hostfs.mounts_under(directory) == []
    assert not directory.exists()
    assert hostfs.process_identity(nspawn_pid) is None
