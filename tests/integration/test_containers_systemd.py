"""Declared containers in a real systemd: `hostctl apply` (twice: no change the second
time), start/stop through D-Bus, a quadlet .container file running, a broken declaration
giving a failing unit that shows the error, and an enabled container after a reboot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.imagebuild import busybox_image

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
DECLS = "/etc/hostctl/containers"
KEPT_RECORD = "/var/lib/hostctl/launch/web.record"

SIMPLE = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo {word}; while :; do sleep 1 & wait; done"]
network: host
stop_timeout: 2
"""


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    return test_host


def state(host: Any, unit: str) -> str:
    out: str = host.run(["systemctl", "show", "-P", "ActiveState", unit]).stdout
    return out.strip()


def test_apply_starts_once_and_reports_no_change_the_second_time(
    host: Any, busybox_ref: str
) -> None:
    host.write_file("/tmp/web.yaml", SIMPLE.format(ref=busybox_ref, word="applied"))
    try:
        first = host.run([HOSTCTL, "apply", "/tmp/web.yaml"])
        assert "web: changed, active" in first.stdout
        assert state(host, "web.service") == "active"
        pid = host.run(["systemctl", "show", "-P", "MainPID", "web.service"]).stdout
        second = host.run([HOSTCTL, "apply", "/tmp/web.yaml"])
        assert "web: unchanged" in second.stdout
        assert host.run(["systemctl", "show", "-P", "MainPID", "web.service"]).stdout == pid
        ps = host.run([HOSTCTL, "ps"]).stdout
        assert "web" in ps and "active/running" in ps and busybox_ref in ps
        rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
        digest = busybox_image().build().digest  # the image the registry serves
        assert [row["digest"] for row in rows if row["name"] == "web"] == [digest]
        assert digest[:19] in ps
        # its start kept a record that outlives a reboot (hostctl.launcher.record)
        assert host.run(["test", "-e", KEPT_RECORD], check=False).returncode == 0
    finally:
        host.run([HOSTCTL, "rm", "web"], check=False)
    assert state(host, "web.service") == "inactive", host.journal("web.service")
    assert host.run(["test", "-e", f"{DECLS}/web.yaml"], check=False).returncode != 0
    # rm leaves no record behind, in /run or on disk
    assert host.run(["test", "-e", KEPT_RECORD], check=False).returncode != 0
    assert host.run(["test", "-e", "/run/hostctl/launch/web.record"],
                    check=False).returncode != 0


def test_a_quadlet_container_file_runs(host: Any, busybox_ref: str) -> None:
    host.write_file(
        f"{DECLS}/quad.container",
        f"[Container]\nImage={busybox_ref}\nExec=sh -c 'trap \"exit 0\" TERM; "
        "while :; do sleep 1 & wait; done'\nNetwork=host\nStopTimeout=2\nMemory=64M\n",
    )
    try:
        host.run(["systemctl", "daemon-reload"])
        host.run([HOSTCTL, "start", "quad"])
        assert state(host, "quad.service") == "active"
        limit = host.run(["systemctl", "show", "-P", "MemoryMax", "quad.service"]).stdout
        assert limit.strip() == str(64 * 2**20)
        host.run([HOSTCTL, "stop", "quad"])
        assert state(host, "quad.service") == "inactive"
    finally:
        host.run(["systemctl", "stop", "quad"], check=False)
        host.run(["rm", "-f", f"{DECLS}/quad.container"])
        host.run(["systemctl", "daemon-reload"])


def test_a_broken_declaration_gives_a_failing_unit_that_shows_the_error(host: Any) -> None:
    host.write_file(f"{DECLS}/broken.yaml", "image: busybox\ncpus: lots\n")
    try:
        host.run(["systemctl", "daemon-reload"])
        done = host.run([HOSTCTL, "start", "broken"], check=False)
        assert done.returncode != 0
        assert "broken.yaml:2:cpus" in done.stderr and "a number of CPUs" in done.stderr
    finally:
        host.run(["rm", "-f", f"{DECLS}/broken.yaml"])
        host.run(["systemctl", "reset-failed", "broken.service"], check=False)
        host.run(["systemctl", "daemon-reload"])


def test_an_enabled_container_runs_after_a_reboot(host: Any, busybox_ref: str) -> None:
    host.write_file(f"{DECLS}/boot.yaml", SIMPLE.format(ref=busybox_ref, word="booted"))
    try:
        host.run(["systemctl", "daemon-reload"])
        assert "boot: enabled" in host.run([HOSTCTL, "enable", "boot"]).stdout
        host.reboot()
        host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
        assert state(host, "boot.service") == "active"
        host.run([HOSTCTL, "disable", "boot"])
    finally:
        host.run(["systemctl", "stop", "boot"], check=False)
        host.run(["rm", "-rf", f"{DECLS}/boot.yaml", f"{DECLS}/boot.yaml.d"])
        host.run(["systemctl", "daemon-reload"])
