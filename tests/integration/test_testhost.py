"""The test bench's own systemd host: what makes a boot fail and what it retries."""

from __future__ import annotations

import pytest

from tests.support.testhost import TestHost, TestHostError

pytestmark = pytest.mark.integration

WANTS = "/etc/systemd/system/multi-user.target.d/flaky.conf"  # enabled by a drop-in


def _boot_unit(script: str) -> dict[str, str]:
    """Files for a boot-time oneshot unit flaky.service running SCRIPT."""
    unit = f"""\
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c '{script}'
"""
    return {"/etc/systemd/system/flaky.service": unit,
            WANTS: "[Unit]\nWants=flaky.service\nAfter=flaky.service\n"}


def test_a_boot_unit_that_failed_with_219_cgroup_once_is_started_again() -> None:
    """systemd sometimes cannot move a boot unit into its cgroup when several guests boot
    at once (status 219/CGROUP); the host restarts such units once and boots running."""
    files = _boot_unit("[ -e /var/lib/flaky-once ] && exit 0; touch /var/lib/flaky-once; exit 219")
    with TestHost(files=files) as host:
        assert host.run(["systemctl", "is-active", "flaky"]).stdout.strip() == "active"
        assert host.run(["systemctl", "is-system-running"]).stdout.strip() == "running"


def test_a_boot_unit_failing_otherwise_fails_the_boot_with_its_journal() -> None:
    host = TestHost(files=_boot_unit("echo flaky-said-this; exit 3"))
    try:
        with pytest.raises(TestHostError) as failure:
            host.start()  # closes the host itself when the boot fails
    finally:
        host.close()  # and here if it did not
    message = str(failure.value)
    assert "booted degraded" in message and "flaky.service" in message
    assert "flaky-said-this" in message
