"""set_enabled() and enable_dropin(): check mode changes nothing; no reload for no change."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.api import containers
from hostctl.api.containers import enable_dropin, set_enabled
from hostctl.errors import HostctlError
from hostctl.paths import Scope

DECLARATION = "image: 127.0.0.1:5000/demo/busybox:1\ncommand: [sleep, inf]\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    declarations = tmp_path / "config" / "containers"
    declarations.mkdir(parents=True)
    (declarations / "web.yaml").write_text(DECLARATION)
    return declarations


@pytest.fixture
def reloads(monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    """The daemon-reloads set_enabled() asks for (systemd itself is not involved)."""
    calls: list[Scope] = []

    def reload(scope: Scope) -> list[str]:
        calls.append(scope)
        return []

    monkeypatch.setattr(containers, "_reload", reload)
    return calls


def test_enable_dropin_is_next_to_the_declaration(config: Path) -> None:
    assert enable_dropin("web", Scope.SYSTEM) == (
        config / "web.yaml.d" / "50-hostctl-enable.yaml")
    (config / "q.container").write_text("[Container]\nImage=docker.io/library/busybox\n")
    assert enable_dropin("q", Scope.SYSTEM) == config / "q.container.d" / "50-hostctl-enable.conf"
    assert enable_dropin("later", Scope.SYSTEM) == (  # not declared yet: apply() writes yaml
        config / "later.yaml.d" / "50-hostctl-enable.yaml")


def test_check_mode_reports_and_changes_nothing(config: Path, reloads: list[Scope]) -> None:
    dropin = enable_dropin("web", Scope.SYSTEM)
    would = set_enabled("web", True, Scope.SYSTEM, check=True)
    assert would.changed and would.actions == (f"write {dropin}", "daemon-reload")
    assert "WantedBy: multi-user.target" in would.diff
    assert not dropin.exists() and reloads == []
    done = set_enabled("web", True, Scope.SYSTEM)
    assert done.changed and dropin.exists() and reloads == [Scope.SYSTEM]
    undo = set_enabled("web", False, Scope.SYSTEM, check=True)
    assert undo.changed and undo.actions[0] == f"delete {dropin}"
    assert dropin.exists() and reloads == [Scope.SYSTEM]


def test_no_change_means_no_daemon_reload(config: Path, reloads: list[Scope]) -> None:
    set_enabled("web", True, Scope.SYSTEM)
    again = set_enabled("web", True, Scope.SYSTEM)
    assert not again.changed and again.actions == () and reloads == [Scope.SYSTEM]
    set_enabled("web", False, Scope.SYSTEM)
    assert not enable_dropin("web", Scope.SYSTEM).exists()
    assert not set_enabled("web", False, Scope.SYSTEM).changed
    assert reloads == [Scope.SYSTEM, Scope.SYSTEM]


def test_disabling_what_the_declaration_enables_fails_and_keeps_the_dropin(
    config: Path, reloads: list[Scope]
) -> None:
    (config / "web.yaml").write_text(DECLARATION + "install: {WantedBy: multi-user.target}\n")
    set_enabled("web", True, Scope.SYSTEM)
    for check in (True, False):
        with pytest.raises(HostctlError, match="still enabled by its declaration") as err:
            set_enabled("web", False, Scope.SYSTEM, check=check)
        assert err.value.where == str(config / "web.yaml")
    assert enable_dropin("web", Scope.SYSTEM).exists()
    with pytest.raises(HostctlError, match="no declaration named 'nope'"):
        set_enabled("nope", True, Scope.SYSTEM, check=True)


def test_the_stop_timeout_note_only_for_a_stop_that_ended_in_sigkill() -> None:
    from hostctl.api.containers import stop_timeout_note
    from hostctl.systemd.dbus import UnitState

    def state(result: str, status: int) -> UnitState:
        return UnitState("deaf.service", "loaded", "failed", "failed", result, 0, 0, None,
                         status)

    note = stop_timeout_note(state("timeout", 9))
    assert note is not None and "init: true" in note and "reset-failed deaf.service" in note
    assert stop_timeout_note(state("timeout", 15)) is None  # a start that timed out
    assert stop_timeout_note(state("exit-code", 9)) is None
    assert stop_timeout_note(state("success", 0)) is None
