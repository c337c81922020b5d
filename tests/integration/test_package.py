"""The Debian package, built from the tree (scripts/build-packages.sh: dpkg-buildpackage
-us -uc -b) once per session, installed in a fresh test host with dpkg -i: a declared
container starts through systemctl with no `hostctl install` step; purging keeps the
user's declarations and images unless HOSTCTL_PURGE_DATA=yes asks otherwise."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.testhost import CHECKOUT, TestHost

pytestmark = pytest.mark.integration
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_python3")


@pytest.fixture(scope="module")
def deb() -> Iterator[Path]:
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup.sh")
    # Under /var/tmp: the test host sees the machine's /var/tmp (its /tmp is its own).
    dist = Path(tempfile.mkdtemp(prefix="hostctl-deb-", dir="/var/tmp"))
    try:
        done = subprocess.run(["bash", str(CHECKOUT / "scripts/build-packages.sh"), "deb"],
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                   "HOSTCTL_DIST": str(dist), "HOME": "/root"},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        (found,) = dist.glob("hostctl_*.deb")
        dist.chmod(0o755)
        yield found
    finally:
        shutil.rmtree(dist, ignore_errors=True)


@pytest.fixture(scope="module")
def host(deb: Path) -> Iterator[Any]:
    with TestHost() as guest:
        # man-db rebuilds its whole index after each install (seconds): not this test's.
        guest.run(["rm", "-f", "/var/lib/man-db/auto-update"])
        guest.run(["dpkg", "-i", str(deb)])
        yield guest


DECLARATION = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo packaged-hello; while :; do sleep 1 & wait; done"]
network: host
stop_timeout: 2
"""


def test_the_package_runs_a_declared_container_and_purge_keeps_the_data(
    host: Any, busybox_ref: str
) -> None:
    assert host.run(["sh", "-c", "command -v hostctl"]).stdout.strip() == "/usr/bin/hostctl"
    assert host.run(["test", "-x", "/usr/lib/systemd/system-generators/hostctl-generator"],
                    check=False).returncode == 0
    # what systemd runs is the compiled generator (genfast.c), which execs the generator
    # started without site (hostctl.units.genentry) when its fast cache does not answer
    magic = host.run(["head", "-c", "4", "/usr/lib/systemd/system-generators/hostctl-generator"])
    assert magic.stdout == "\x7fELF"
    shebang = host.run(["head", "-1", "/usr/lib/hostctl/hostctl-generator.py"])
    assert shebang.stdout.strip() == "#!/usr/bin/python3 -sSE"
    shown = host.run(["python3", "-c", "import hostctl; print(hostctl.__file__)"]).stdout
    assert shown.startswith("/usr/lib/python3/dist-packages/hostctl/"), shown
    for path in ("/usr/share/man/man1/hostctl.1.gz",
                 "/usr/share/man/man5/hostctl-declarations.5.gz",
                 "/usr/share/bash-completion/completions/hostctl"):
        host.run(["test", "-s", path])
    host.write_file("/etc/hostctl/containers/pkg.yaml", DECLARATION.format(ref=busybox_ref))
    host.run(["systemctl", "daemon-reload"])  # a render: the Python generator writes the caches
    fast = "/var/cache/hostctl/generator/system.fast"
    inode = host.run(["stat", "-c", "%i", fast]).stdout
    host.run(["systemctl", "daemon-reload"])  # a hit: the compiled one alone, the cache kept
    assert host.run(["stat", "-c", "%i", fast]).stdout == inode
    host.run(["systemctl", "start", "pkg.service"])
    assert host.run(["systemctl", "is-active", "pkg.service"]).stdout.strip() == "active"
    exec_start = host.run(["systemctl", "show", "-P", "ExecStart", "pkg.service"]).stdout
    # The lean launcher of the packaged hostctl (no `hostctl install` ran in this host).
    assert "/usr/lib/python3/dist-packages/hostctl/launcher/entry.py launch pkg" in exec_start
    assert "packaged-hello" in host.journal("pkg.service")
    ps = host.run(["hostctl", "ps"]).stdout
    assert any(line.split()[:2] == ["pkg", "active/running"] for line in ps.splitlines()), ps
    host.run(["systemctl", "stop", "pkg.service"])

    purged = host.run(["dpkg", "--purge", "hostctl"])
    assert "kept /etc/hostctl and /var/lib/hostctl" in purged.stderr
    assert host.run(["test", "-e", "/usr/bin/hostctl"], check=False).returncode != 0
    assert host.run(["test", "-e", "/usr/lib/systemd/system-generators/hostctl-generator"],
                    check=False).returncode != 0
    host.run(["test", "-f", "/etc/hostctl/containers/pkg.yaml"])
    assert host.run(["ls", "/var/lib/hostctl/storage"]).stdout.strip(), "the store is gone"
    assert host.run(["test", "-e", fast], check=False).returncode != 0


def test_purge_removes_the_data_when_asked(host: Any, deb: Path) -> None:
    host.run(["dpkg", "-i", str(deb)])
    host.run(["sh", "-c", "HOSTCTL_PURGE_DATA=yes dpkg --purge hostctl"])
    assert host.run(["test", "-e", "/etc/hostctl"], check=False).returncode != 0
    assert host.run(["ls", "-A", "/var/lib/hostctl"], check=False).stdout.strip() == ""


def test_the_same_script_builds_the_wheel_and_the_collection() -> None:
    import tarfile
    import zipfile

    dist = Path(tempfile.mkdtemp(prefix="hostctl-dist-", dir="/var/tmp"))
    try:
        done = subprocess.run(
            ["bash", str(CHECKOUT / "scripts/build-packages.sh"), "wheel", "collection"],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOSTCTL_DIST": str(dist),
                 "HOME": "/root"}, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        (wheel,) = dist.glob("hostctl-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        for wanted in ("hostctl/doctor/runtimes.py", "hostctl/unit_templates/container.service.j2",
                       "hostctl/cli/doctor.py"):
            assert wanted in names, wanted
        (collection,) = dist.glob("hostctl-hostctl-*.tar.gz")
        with tarfile.open(collection) as archive:
            assert "MANIFEST.json" in archive.getnames()
    finally:
        shutil.rmtree(dist, ignore_errors=True)
