"""The generator as the user generator ($SYSTEMD_SCOPE=user): units run `hostctl ...
--user`, wait for the network through hostctl-network-online.service (a user manager
cannot order itself after the system's network-online.target), and the wait unit is
written once, only when there are containers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hostctl.declarations.search import ENV_PATH
from hostctl.units import generator
from hostctl.units.gencache import ENV_CACHE
from hostctl.units.render import NETWORK_WAIT_UNIT
from tests.unit.test_units_syntax import exec_argv, parse_unit, values


@pytest.fixture
def decls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "decls"
    directory.mkdir()
    monkeypatch.setenv(ENV_PATH, str(directory))
    monkeypatch.setenv("SYSTEMD_SCOPE", "user")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    return directory


def test_user_units_wait_for_the_network_through_the_bounded_wait(
    decls: Path, tmp_path: Path
) -> None:
    (decls / "web.yaml").write_text("image: busybox\ninstall: {WantedBy: default.target}\n")
    out = tmp_path / "out"
    assert generator.main([str(out)]) == 0
    unit = parse_unit((out / "web.service").read_text())
    assert values(unit, "Unit", "Wants") == [NETWORK_WAIT_UNIT]
    assert values(unit, "Unit", "After") == [NETWORK_WAIT_UNIT]
    assert "network-online.target" not in (out / "web.service").read_text()
    assert exec_argv(values(unit, "Service", "ExecStart")[0])[3:] == ["launch", "--user", "web"]
    assert (out / "default.target.wants" / "web.service").is_symlink()

    wait = parse_unit((out / NETWORK_WAIT_UNIT).read_text())
    assert values(wait, "Service", "Type") == ["oneshot"]
    assert values(wait, "Service", "RemainAfterExit") == ["yes"]
    argv = exec_argv(values(wait, "Service", "ExecStart")[0])
    assert argv == [sys.executable, "-m", "hostctl.systemd.netwait", "90"]
    assert int(values(wait, "Service", "TimeoutStartSec")[0]) > 90  # the wait ends first


def test_system_units_want_network_online_target_and_get_no_wait_unit(
    decls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    (decls / "web.yaml").write_text("image: busybox\n")
    out = tmp_path / "out"
    assert generator.main([str(out)]) == 0
    unit = parse_unit((out / "web.service").read_text())
    assert values(unit, "Unit", "Wants") == ["network-online.target"]
    assert not (out / NETWORK_WAIT_UNIT).exists()


def test_no_containers_no_wait_unit(decls: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert generator.main([str(out)]) == 0
    assert list(out.iterdir()) == []


def test_user_scope_reads_the_users_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_PATH, raising=False)
    monkeypatch.setenv("SYSTEMD_SCOPE", "user")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("HOSTCTL_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    config = tmp_path / "home/.config/hostctl/containers"
    config.mkdir(parents=True)
    (config / "mine.yaml").write_text("image: busybox\n")
    out = tmp_path / "out"
    assert generator.main([str(out)]) == 0
    assert (out / "mine.service").exists()
    text = (out / "mine.service").read_text()
    assert f"SourcePath={config / 'mine.yaml'}" in text
