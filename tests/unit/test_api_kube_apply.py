"""kube_apply: `kube play`/`kube down` that are idempotent, say what they change, and
change nothing in check mode (the Ansible kube module's API). systemd is a recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.api import kube_apply
from hostctl.errors import DeclarationError
from hostctl.paths import Scope, for_scope
from tests.unit.test_kube import DEPLOYMENT


@pytest.fixture
def jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The systemd jobs asked for; every pod unit reads as STATES says (default active)."""
    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    monkeypatch.setattr(kube_apply, "_state", lambda unit, scope: STATES.get(unit, "active"))
    STATES.clear()
    return []


STATES: dict[str, str] = {}


def recorder(jobs: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    def act(method: str, unit: str) -> str:
        jobs.append((method, unit))
        return "done"
    return act


def tree(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_file_is_played_once_then_left_alone(tmp_path: Path,
                                               jobs: list[tuple[str, str]]) -> None:
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(DEPLOYMENT)
    config = for_scope(Scope.SYSTEM).config
    checked = kube_apply.apply([manifest], Scope.SYSTEM, check=True, act=recorder(jobs))
    assert checked.changed and jobs == [] and not config.exists()
    assert checked.actions[-2:] == ("start web-pod-0-pod.service", "start web-pod-1-pod.service")
    member = str(config / "containers" / "web-pod-0-httpd.yaml")
    assert member in {path for path, before, _ in checked.diffs if before == ""}
    data = [text for path, _, text in checked.diffs if path.endswith("0/www/index.html")]
    assert data and "<h1>" not in data[0] and "sha256:" in data[0]  # a Secret's: unshown
    done = kube_apply.apply([manifest], Scope.SYSTEM, act=recorder(jobs))
    assert done.actions == checked.actions and set(done.after) == set(checked.after)
    assert jobs == [("reload", ""), ("StartUnit", "web-pod-0-pod.service"),
                    ("StartUnit", "web-pod-1-pod.service")]
    assert Path(member).is_file()
    files = tree(config)
    jobs.clear()
    again = kube_apply.apply([manifest], Scope.SYSTEM, act=recorder(jobs))
    assert not again.changed and again.diffs == [] and jobs == [] and tree(config) == files
    # a stopped pod is only started
    STATES["web-pod-1-pod.service"] = "inactive"
    started = kube_apply.apply([manifest], Scope.SYSTEM, act=recorder(jobs))
    assert started.actions == ("start web-pod-1-pod.service",)
    assert jobs == [("StartUnit", "web-pod-1-pod.service")] and tree(config) == files


def test_a_changed_manifest_replaces_the_app(tmp_path: Path,
                                             jobs: list[tuple[str, str]]) -> None:
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(DEPLOYMENT)
    kube_apply.apply([manifest], Scope.SYSTEM, act=recorder(jobs))
    jobs.clear()
    manifest.write_text(DEPLOYMENT.replace("GREETING: hello", "GREETING: howdy"))
    changed = kube_apply.apply([manifest], Scope.SYSTEM, act=recorder(jobs))
    assert sorted(path.rsplit("/", 2)[-1] for path, _, _ in changed.diffs) == [
        "GREETING", "GREETING", "web-pod-0-httpd.yaml", "web-pod-1-httpd.yaml"]
    assert "howdy" in changed.diffs[0][2] and "hello" in changed.diffs[0][1]
    assert ("StopUnit", "web-pod-0-pod.service") in jobs
    assert jobs[-2:] == [("StartUnit", "web-pod-0-pod.service"),
                         ("StartUnit", "web-pod-1-pod.service")]


def test_an_inline_definition_is_kept_with_the_app_and_goes_with_it(
        jobs: list[tuple[str, str]]) -> None:
    path = kube_apply.definition_path("shop", Scope.SYSTEM)
    checked = kube_apply.apply([path], Scope.SYSTEM, definition=DEPLOYMENT, check=True)
    assert checked.changed and f"write {path}" in checked.actions and not path.exists()
    kube_apply.apply([path], Scope.SYSTEM, definition=DEPLOYMENT, act=recorder(jobs))
    assert path.read_text() == DEPLOYMENT
    assert not kube_apply.apply([path], Scope.SYSTEM, definition=DEPLOYMENT).changed
    config = for_scope(Scope.SYSTEM).config
    gone_check = kube_apply.remove(path, Scope.SYSTEM, check=True)
    assert gone_check.changed and path.exists()
    assert f"delete {path}" in gone_check.actions
    assert "stop web-pod-0-pod.service" in gone_check.actions
    jobs.clear()
    gone = kube_apply.remove(path, Scope.SYSTEM, act=recorder(jobs))
    assert gone.actions == gone_check.actions and ("StopUnit", "web-pod-1-pod.service") in jobs
    assert not path.exists() and not list((config / "containers").iterdir())
    assert not kube_apply.remove(path, Scope.SYSTEM).changed


def test_a_bad_definition_writes_nothing(jobs: list[tuple[str, str]]) -> None:
    path = kube_apply.definition_path("shop", Scope.SYSTEM)
    bad = DEPLOYMENT.replace("replicas: 2", "replicas: 2\n  paused: true")
    with pytest.raises(DeclarationError) as caught:
        kube_apply.apply([path], Scope.SYSTEM, definition=bad, act=recorder(jobs))
    assert "paused" in str(caught.value) and str(path) in str(caught.value)
    assert not for_scope(Scope.SYSTEM).config.exists() and jobs == []


def test_a_pod_that_does_not_start_fails_with_the_users_journal_hint(
        tmp_path: Path, jobs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.errors import HostctlError

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(DEPLOYMENT)
    kube_apply.apply([manifest], Scope.USER, act=recorder(jobs))
    STATES["web-pod-0-pod.service"] = "failed"
    with pytest.raises(HostctlError) as caught:
        kube_apply.apply([manifest], Scope.USER, act=lambda method, unit: "failed")
    assert caught.value.message == "web-pod-0-pod.service did not start (failed)"
    assert caught.value.hint == "journalctl --user-unit web-pod-0-pod.service"
