"""hostctl.systemd.systemctl: the jobs' results read from systemctl's exit status and
messages (a stand-in systemctl on $PATH says what systemd's says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.errors import HostctlError
from hostctl.paths import Scope
from hostctl.systemd.systemctl import Systemctl

FAKE = """#!/bin/sh
echo "$@" >> {log}
case "$*" in
  *missing.target*) echo "Failed to start missing.target: Unit missing.target not found." >&2
                    exit 5 ;;
  *shop-db.service*) echo "Job for shop-db.service failed because the control process \
exited with error code." >&2
                     echo "See \\"systemctl status shop-db.service\\" for details." >&2
                     exit 1 ;;
  *shop.target*) echo "A dependency job for shop.target failed. See 'journalctl -xe'." >&2
                 exit 1 ;;
esac
"""


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "systemctl"
    fake.write_text(FAKE.format(log=tmp_path / "log"))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path / "log"


def test_jobs_of_one_method_are_one_call_and_each_unit_gets_its_result(log: Path) -> None:
    systemctl = Systemctl(Scope.SYSTEM)
    assert systemctl.run_jobs([("TryRestartUnit", "shop-web.service"),
                               ("TryRestartUnit", "shop-db.service"),
                               ("StopUnit", "shop-old.service")]) == {
        "shop-web.service": "done", "shop-db.service": "failed", "shop-old.service": "done"}
    assert log.read_text().splitlines() == [
        "--no-ask-password try-restart --job-mode=replace shop-web.service shop-db.service",
        "--no-ask-password stop --job-mode=replace shop-old.service"]
    assert systemctl.run_job("StartUnit", "shop.target") == "failed"  # a dependency's


def test_a_job_systemd_refuses_is_an_error_naming_the_unit(log: Path) -> None:
    with pytest.raises(HostctlError, match=r"StartUnit missing\.target: Failed to start "
                       r"missing\.target: Unit missing\.target not found"):
        Systemctl(Scope.SYSTEM).run_job("StartUnit", "missing.target")


def test_a_user_scope_asks_the_users_manager(log: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    Systemctl(Scope.USER).reload()
    assert log.read_text() == "--no-ask-password --user daemon-reload\n"
