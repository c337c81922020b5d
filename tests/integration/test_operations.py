"""What an operator meets day to day, in a real systemd: `hostctl ps` (declared and
`hostctl run -d` containers, -a for stopped ones), a PID 1 that ignores SIGTERM explained
where the user looks (`hostctl stop`, `hostctl status`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_containers_systemd import HOSTCTL

pytestmark = pytest.mark.integration
DECLS = "/etc/hostctl/containers"
# PID 1 without a SIGTERM handler: the kernel drops the signal in the container.
DEAF = """\
image: {ref}
command: ["sleep", "600"]
network: host
stop_timeout: 1
{extra}"""


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    return test_host


def ps_rows(host: Any, *args: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json", *args]).stdout)
    return {row["name"]: row for row in rows}


def test_ps_shows_run_d_containers_and_stopped_ones_only_with_all(
    host: Any, busybox_ref: str
) -> None:
    host.write_file(f"{DECLS}/declared.yaml", DEAF.format(ref=busybox_ref, extra="init: true\n"))
    host.run(["systemctl", "daemon-reload"])
    try:
        started = host.run([HOSTCTL, "run", "-d", "--name", "adhoc", "--network", "host",
                            busybox_ref, "sleep", "600"])
        assert started.stdout.strip() == "adhoc"
        running = ps_rows(host)
        assert running["adhoc"]["active_state"] == "active", running
        assert running["adhoc"]["image"] == busybox_ref
        assert "declared" not in running  # declared but never started: stopped
        table = host.run([HOSTCTL, "ps"]).stdout
        assert any(line.split()[:2] == ["adhoc", "active/running"] for line in table.splitlines())
        every = ps_rows(host, "-a")
        assert every["declared"]["active_state"] == "inactive"
        assert "adhoc" in every
        host.run([HOSTCTL, "start", "declared"])
        assert ps_rows(host)["declared"]["active_state"] == "active"
        # init: true forwards SIGTERM: a clean stop, no note.
        stopped = host.run([HOSTCTL, "stop", "declared"])
        assert "timeout" not in stopped.stderr, stopped.stderr
        rows = ps_rows(host)
        assert "declared" not in rows, json.dumps(rows.get("declared"))
    finally:
        host.run(["systemctl", "stop", "adhoc.service"], check=False)
        host.run(["rm", "-f", f"{DECLS}/declared.yaml"])
        host.run(["systemctl", "daemon-reload"])


def test_a_pid_1_that_ignores_sigterm_is_explained_by_stop_and_status(
    host: Any, busybox_ref: str
) -> None:
    host.write_file(f"{DECLS}/deaf.yaml", DEAF.format(ref=busybox_ref, extra=""))
    host.run(["systemctl", "daemon-reload"])
    try:
        host.run([HOSTCTL, "start", "deaf"])
        stopped = host.run([HOSTCTL, "stop", "deaf"])
        assert "result timeout" in stopped.stderr and "init: true" in stopped.stderr, stopped
        status = host.run([HOSTCTL, "status", "deaf"], check=False)
        assert status.returncode == 3
        assert "failed" in status.stdout and "init: true" in status.stdout, status.stdout
        # The unit is listed as failed without -a: something to look at.
        assert ps_rows(host)["deaf"]["active_state"] == "failed"
        host.run(["systemctl", "reset-failed", "deaf.service"])
        status = host.run([HOSTCTL, "status", "deaf"], check=False)
        assert "init: true" not in status.stdout
    finally:
        host.run(["systemctl", "stop", "deaf.service"], check=False)
        host.run(["systemctl", "reset-failed", "deaf.service"], check=False)
        host.run(["rm", "-f", f"{DECLS}/deaf.yaml"])
        host.run(["systemctl", "daemon-reload"])
