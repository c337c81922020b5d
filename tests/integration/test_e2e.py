"""The whole path in a real systemd: declaration -> generator -> unit -> launcher -> runc."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
HOSTCTL = str(BIN / "hostctl")
DECLS = "/etc/hostctl/containers"


def declare(host: Any, name: str, body: str) -> None:
    # This test host shares the machine's network namespace: a bridge network would put
    # its bridge and firewall rules on the machine (tests/integration/test_network.py
    # covers networks in a guest with its own namespace).
    if "network:" not in body:
        body += "network: host\n"
    host.write_file(f"{DECLS}/{name}.yaml", body)
    host.run(["systemctl", "daemon-reload"])


def prop(host: Any, unit: str, name: str) -> str:
    out: str = host.run(["systemctl", "show", "-P", name, unit]).stdout
    return out.strip()


def wait_journal(host: Any, unit: str, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    journal = ""
    while time.monotonic() < deadline:
        journal = host.journal(unit)
        if text in journal:
            return journal
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the journal of {unit}:\n{journal}")


def cgroup_processes(host: Any, unit: str, settle: float = 2.0) -> list[str]:
    """The command names of every process in the unit's cgroup tree, once the launcher
    (which exits right after telling systemd READY=1) is gone or SETTLE seconds passed."""
    cg = prop(host, unit, "ControlGroup")
    script = (
        f"find /sys/fs/cgroup{cg} -name cgroup.procs -exec cat {{}} + "
        "| while read p; do cat /proc/$p/comm; done"
    )
    deadline = time.monotonic() + settle
    while True:
        names: list[str] = host.sh(script).stdout.split()
        launcher = [n for n in names if n in ("hostctl", "runc") or n.startswith("python")]
        if not launcher or time.monotonic() > deadline:
            return names
        time.sleep(0.05)


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    return test_host


APP = """\
image: {ref}
command: ["sh", "-c", "echo hello from app-container $GREETING; exec sleep infinity"]
env:
  GREETING: hi
stop_timeout: 3
"""


def test_systemctl_start_runs_the_declared_container(host: Any, busybox_ref: str) -> None:
    declare(host, "app-container", APP.format(ref=busybox_ref))
    unit = "app-container.service"
    host.run(["systemctl", "start", "app-container"])
    try:
        assert prop(host, unit, "ActiveState") == "active"
        wait_journal(host, unit, "hello from app-container hi")
        # systemd supervises the container's init itself: no launcher or runc stays.
        assert cgroup_processes(host, unit) == ["sleep"]
        main_pid = prop(host, unit, "MainPID")
        assert host.read_file(f"/proc/{main_pid}/comm").strip() == "sleep"

        started = time.monotonic()
        host.run(["systemctl", "stop", "app-container"])
        assert time.monotonic() - started < 3 + 2  # stop_timeout, then SIGKILL
        assert prop(host, unit, "ActiveState") in ("inactive", "failed")
        left = host.sh("ls /run/hostctl/containers/").stdout.strip()
        assert left == "", host.sh(f"ls -laR /run/hostctl/containers/; grep hostctl /proc/mounts;"
                                   f" journalctl -u {unit} --no-pager | tail -20").stdout

        host.run(["systemctl", "start", "app-container"])
        assert prop(host, unit, "ActiveState") == "active"
        first_pid = prop(host, unit, "MainPID")
        host.run(["systemctl", "restart", "app-container"])
        assert prop(host, unit, "ActiveState") == "active"
        assert prop(host, unit, "MainPID") != first_pid
        journal = host.journal(unit)
        assert journal.count("hello from app-container hi") >= 3
    finally:
        host.run(["systemctl", "stop", "app-container"], check=False)


def test_each_start_is_a_fresh_container(host: Any, busybox_ref: str) -> None:
    declare(host, "fresh", f"""\
image: {busybox_ref}
command: ["sh", "-c", "ls /marker && echo seen-marker; touch /marker; echo up; exec sleep 60"]
stop_timeout: 1
""")
    try:
        for _ in range(2):
            host.run(["systemctl", "restart", "fresh"])
            wait_journal(host, "fresh.service", "up")
        assert "seen-marker" not in host.journal("fresh.service")
    finally:
        host.run(["systemctl", "stop", "fresh"], check=False)


def test_image_config_user_workdir_and_exit_status(host: Any, busybox_ref: str) -> None:
    declare(host, "oneshot", f"""\
image: {busybox_ref}
entrypoint: ["/bin/sh", "-c"]
command: ["echo uid=$(id -u) gid=$(id -g) cwd=$(pwd); exit 7"]
user: app
workdir: /tmp
""")
    host.run(["systemctl", "start", "oneshot"], check=False)
    journal = wait_journal(host, "oneshot.service", "uid=1000 gid=1000 cwd=/tmp")
    deadline = time.monotonic() + 10
    while prop(host, "oneshot.service", "ActiveState") not in ("failed", "inactive"):
        assert time.monotonic() < deadline, journal
        time.sleep(0.2)
    assert prop(host, "oneshot.service", "ExecMainStatus") == "7"
    host.run(["systemctl", "reset-failed", "oneshot"], check=False)


def test_broken_declaration_gives_a_unit_that_fails_with_the_error(host: Any) -> None:
    declare(host, "broken", "image: 127.0.0.1:1/x:1\ncomand: [sh]\n")
    result = host.run(["systemctl", "start", "broken"], check=False)
    assert result.returncode != 0
    journal = wait_journal(host, "broken.service", "comand")
    assert f"{DECLS}/broken.yaml:2" in journal
    host.run(["rm", f"{DECLS}/broken.yaml"])
    host.run(["systemctl", "reset-failed"], check=False)


def test_missing_image_and_unreachable_registry_fail_clearly(host: Any, registry: Any) -> None:
    declare(host, "noimage", f"image: {registry.host}/demo/does-not-exist:1\ncommand: [true]\n")
    declare(host, "noregistry", "image: 127.0.0.1:9/demo/x:1\ncommand: [true]\n")
    for name, text in (("noimage", "does-not-exist"), ("noregistry", "127.0.0.1:9")):
        assert host.run(["systemctl", "start", name], check=False).returncode != 0
        line = [ln for ln in wait_journal(host, f"{name}.service", text).splitlines()
                if "hostctl launch" in ln]
        assert line, host.journal(f"{name}.service")
        assert "Traceback" not in host.journal(f"{name}.service")
    index = host.sh("cat /var/lib/hostctl/storage/images.json 2>/dev/null || echo {}").stdout
    assert "does-not-exist" not in index
    for name in ("noimage", "noregistry"):
        host.run(["rm", f"{DECLS}/{name}.yaml"])
    host.run(["systemctl", "reset-failed"], check=False)


def test_runc_missing_is_one_clear_line(host: Any, busybox_ref: str) -> None:
    runc = host.sh("command -v runc").stdout.strip()
    declare(host, "norunc", f"image: {busybox_ref}\ncommand: [true]\n")
    host.run(["mv", runc, runc + ".hidden"])
    try:
        assert host.run(["systemctl", "start", "norunc"], check=False).returncode != 0
        journal = wait_journal(host, "norunc.service", "runc not found")
        assert "install the runc package" in journal
        assert "Traceback" not in journal
    finally:
        host.run(["mv", runc + ".hidden", runc])
        host.run(["rm", f"{DECLS}/norunc.yaml"])
        host.run(["systemctl", "reset-failed"], check=False)


def test_generate_dry_run_prints_the_units(host: Any, busybox_ref: str) -> None:
    declare(host, "app-container", APP.format(ref=busybox_ref))
    out = host.run([HOSTCTL, "generate", "--dry-run"]).stdout
    assert "app-container.service" in out
    assert f"ExecStart={HOSTCTL} launch app-container" in out
    images = json.loads(host.run([HOSTCTL, "images", "--format", "json"]).stdout)
    assert any(busybox_ref in row["reference"] for row in images)
