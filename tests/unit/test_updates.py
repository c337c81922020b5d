"""Auto-update's pure logic: what is compared, the rollback records and prune, the
judgement of a restarted container, the result table and JSON, the timer units."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hostctl.declarations.model import Container
from hostctl.errors import ImageError
from hostctl.images import pins
from hostctl.images.manage import prune
from hostctl.images.manifest import Platform, sha256_digest
from hostctl.images.pins import ImageId, Pin, Rejected
from hostctl.images.store import Store
from hostctl.paths import Paths, Scope
from hostctl.updates.compare import Updated, decide, image_id, stored_image_id
from hostctl.updates.judge import (
    Health,
    Sample,
    Timing,
    check_timing,
    read_health,
    verdict,
    watch,
)

AMD64 = Platform("linux", "amd64")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _blob(store: Store, data: bytes) -> str:
    digest = sha256_digest(data)
    store.write_blob(digest, data)
    return digest


def _image(store: Store, word: str) -> str:
    """A stored manifest (config + one layer blob); its digest."""
    layer = _blob(store, f"layer {word}".encode())
    config = _blob(store, json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(word.encode())]},
    }).encode())
    return _blob(store, json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": 1}],
    }).encode())


def _index(*entries: tuple[str, str]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1,
         "platform": {"os": "linux", "architecture": arch}} for digest, arch in entries]
    }).encode()


D = {word: "sha256:" + word * 64 for word in "abcdef"}


# -- comparing ----------------------------------------------------------------------------


def test_an_index_is_compared_by_this_platforms_manifest() -> None:
    data = _index((D["a"], "arm64"), (D["b"], "amd64"))
    found = image_id(data, OCI_INDEX, sha256_digest(data), AMD64, "ref")
    assert found == ImageId(sha256_digest(data), D["b"])
    # Another index (a platform added) with the same amd64 image is no update.
    other = _index((D["c"], "arm64"), (D["b"], "amd64"))
    running = image_id(other, OCI_INDEX, sha256_digest(other), AMD64, "ref")
    assert running.digest != found.digest
    assert not decide(running, found, None, "ref").update


def test_a_plain_manifest_is_its_own_platform_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    top = _image(store, "one")
    assert stored_image_id(store, top, AMD64, "ref") == ImageId(top, top)
    # A running image whose documents are gone is still compared by its digest.
    assert stored_image_id(store, D["e"], AMD64, "ref") == ImageId(D["e"], D["e"])


def test_the_running_index_is_taken_to_its_platform_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    top = _blob(store, _index((D["a"], "amd64")))
    assert stored_image_id(store, top, AMD64, "ref") == ImageId(top, D["a"])


def test_decide_updates_only_to_another_image_not_rejected() -> None:
    running, new = ImageId(D["a"], D["a"]), ImageId(D["b"], D["b"])
    assert decide(running, new, None, "r").update
    assert not decide(running, running, None, "r").update
    rejected = Pin("web", "r", running, None, Rejected(new, "T", "exited after 0s"))
    decision = decide(running, new, rejected, "r")
    assert not decision.update
    assert D["b"] in decision.reason and "exited after 0s" in decision.reason
    # A newer release than the rejected one is tried; so is one for another reference.
    assert decide(running, ImageId(D["c"], D["c"]), rejected, "r").update
    assert decide(running, new, rejected, "other").update


# -- rollback records and prune --------------------------------------------------------


def test_a_record_round_trips_and_a_damaged_one_says_where(tmp_path: Path) -> None:
    store = Store(tmp_path)
    pin = Pin("web", "reg.example/app:1", ImageId(D["a"], D["b"]), ImageId(D["c"], D["c"]),
              Rejected(ImageId(D["d"], D["d"]), "2026-01-01T00:00:00Z", "unhealthy"))
    pins.write(store, pin)
    read = pins.read(store, "web")
    assert read is not None and read.at
    assert (read.running, read.previous, read.rejected) == (pin.running, pin.previous,
                                                            pin.rejected)
    assert pins.read(store, "other") is None
    pins.pin_path(store, "web").write_text('{"version": 1, "running": 3}')
    with pytest.raises(ImageError) as err:
        pins.read(store, "web")
    assert str(pins.pin_path(store, "web")) in str(err.value)
    with pytest.raises(ImageError):
        pins.pin_path(store, "../x")


def test_prune_keeps_the_previous_image_a_record_pins(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old = _image(store, "old")
    blobs = sorted(p.name for p in store.blobs.iterdir())
    pins.write(store, Pin("web", "r", ImageId(D["a"], D["a"]), ImageId(old, old)))
    assert prune(store, None).removed == []
    assert sorted(p.name for p in store.blobs.iterdir()) == blobs
    assert pins.remove(store, "web")
    assert len(prune(store, None).removed) == 3  # manifest, config, layer
    assert list(store.blobs.iterdir()) == []


# -- judging -------------------------------------------------------------------------------


def _s(state: str = "active", pid: int = 10, restarts: int = 0, health: str | None = None,
       status: int = 0) -> Sample:
    return Sample(state, "running" if state == "active" else "dead", pid, restarts, status,
                  health)


def test_a_container_that_exits_or_is_restarted_within_the_grace_period_failed() -> None:
    first = _s()
    exited = verdict(first, _s("failed", status=3), 1.0, 10, None)
    assert exited is not None and not exited.ok and "exit status 3" in exited.reason
    restarted = verdict(first, _s(pid=11, restarts=1), 1.0, 10, None)
    assert restarted is not None and not restarted.ok
    assert verdict(first, _s(), 1.0, 10, None) is None  # keep watching
    done = verdict(first, _s(), 10.0, 10, None)
    assert done is not None and done.ok


def test_with_a_check_the_container_must_also_become_healthy_in_time() -> None:
    first = _s(health="starting")
    assert verdict(first, _s(health="starting"), 11.0, 10, 20.0) is None
    assert verdict(first, _s(health="healthy"), 5.0, 10, 20.0) is None  # grace first
    ok = verdict(first, _s(health="healthy"), 10.0, 10, 20.0)
    assert ok is not None and ok.ok
    late = verdict(first, _s(health="starting"), 20.0, 10, 20.0)
    assert late is not None and not late.ok and "not healthy within 20s" in late.reason
    sick = verdict(first, dataclasses.replace(_s(health="unhealthy"), last_check="exit 1"),
                   3.0, 10, 20.0)
    assert sick is not None and not sick.ok
    assert sick.reason == "became unhealthy after 3s (last check: exit 1)"


def test_the_health_deadline_is_what_the_check_needs_to_give_up() -> None:
    assert Timing(start_period=30, interval=5, retries=3, timeout=2).deadline == 52.0


def test_watch_polls_until_the_verdict() -> None:
    clock = [0.0]
    samples = iter([_s(), _s(), _s("failed", status=1)])
    result = watch(lambda: next(samples), grace=10, deadline=None,
                   clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    assert not result.ok and "exited after 0s" in result.reason


def _paths(tmp_path: Path) -> Paths:
    return Paths(Scope.SYSTEM, tmp_path / "state", tmp_path / "run", tmp_path / "etc")


def test_health_is_read_from_the_contract_files(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    directory = paths.containers / "web"
    directory.mkdir(parents=True)
    assert read_health("web", paths) is None  # no check
    (directory / "healthcheck.json").write_text("{}")
    assert read_health("web", paths) == Health("starting")  # no state written yet
    (directory / "health.json").write_text('{"status": "healthy", "failing_streak": 0}')
    assert read_health("web", paths) == Health("healthy")
    (directory / "health.json").write_text(json.dumps({
        "status": "unhealthy", "failing_streak": 3, "log": [
            {"start": 1.0, "end": 2.0, "exit_code": 0, "output": "fine"},
            {"start": 3.0, "end": 4.0, "exit_code": 1, "output": "test: /ok:\n missing\n"}]}))
    assert read_health("web", paths) == Health("unhealthy", "exit 1: test: /ok: missing")
    (directory / "health.json").write_text("not json")
    assert read_health("web", paths) == Health("starting")


def test_check_timing_from_the_check_else_the_declaration(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    directory = paths.containers / "web"
    directory.mkdir(parents=True)
    container = Container("web", Path("/etc/hostctl/containers/web.yaml"), "r",
                          health_interval=7.0, health_retries=4)
    (directory / "healthcheck.json").write_text(json.dumps(
        {"timeout": 3, "StartPeriod": 5_000_000_000}))
    timing = check_timing("web", paths, container)
    assert timing == Timing(start_period=5.0, interval=7.0, retries=4, timeout=3.0)
    # A startup probe adds what it may take: interval x max(retries, success, 1) + timeout.
    (directory / "healthcheck.json").write_text(json.dumps(
        {"interval": 1, "retries": 2, "timeout": 1, "start_period": 0,
         "startup": {"interval": 2, "retries": 0, "success": 3, "timeout": 1}}))
    timing = check_timing("web", paths, container)
    assert timing.startup == 7.0 and timing.deadline == 7 + 2 + 1 + 5


# -- output ----------------------------------------------------------------------------------


def _results() -> list[Any]:
    from hostctl.api.update import UpdateResult

    return [
        UpdateResult("web.service", "web", "reg.example/web:1", "registry", Updated.TRUE,
                     D["a"], D["b"], D["b"]),
        UpdateResult("db.service", "db", "reg.example/db:16", "local", Updated.ROLLED_BACK,
                     D["a"], D["c"], D["a"], reason="the new image exited after 1s"),
        UpdateResult("far.service", "far", "far.example/x:1", "registry", Updated.FAILED,
                     reason="registry far.example unreachable: connection refused"),
    ]


def test_the_table_has_podmans_columns_and_reasons_are_one_line_each() -> None:
    from hostctl.cli.update import reasons, table

    lines = table(_results()).splitlines()
    assert lines[0].split() == ["UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED"]
    assert lines[1].split() == ["web.service", "web", "reg.example/web:1", "registry", "true"]
    assert lines[2].split()[-2:] == ["rolled", "back"]
    assert lines[0].index("UPDATED") == lines[2].index("rolled back")
    assert reasons(_results()) == [
        "db: rolled back: the new image exited after 1s",
        "far: failed: registry far.example unreachable: connection refused"]


def test_json_has_digests_reason_and_a_failed_result_is_a_failure() -> None:
    web, db, far = _results()
    assert web.as_json() == {
        "unit": "web.service", "container": "web", "image": "reg.example/web:1",
        "policy": "registry", "updated": "true", "running_digest": D["a"],
        "available_digest": D["b"], "digest": D["b"], "reason": "",
        "dependents": [], "dependents_failed": []}
    assert db.as_json()["updated"] == "rolled back"
    assert (web.failed, db.failed, far.failed) == (False, False, True)
    assert (web.changed, db.changed, far.changed) == (True, True, False)


# -- references --------------------------------------------------------------------------------


def _reference_of(image: str, policy: str = "registry") -> str:
    from hostctl.api.update import _reference
    from hostctl.declarations.settings import AutoUpdate

    container = Container("web", Path("/etc/hostctl/containers/web.yaml"), image,
                          auto_update=AutoUpdate(policy), locations=(("image", 1),))
    return _reference(None, container)  # type: ignore[arg-type]


def test_a_short_name_or_a_digest_is_an_error_for_that_container() -> None:
    with pytest.raises(ImageError) as err:
        _reference_of("busybox")
    assert "fully qualified" in str(err.value)
    assert "web.yaml:1:image" in str(err.value) and "docker.io/library/busybox" in str(err.value)
    with pytest.raises(ImageError) as err:
        _reference_of("reg.example/app@" + D["a"])
    assert "pinned by digest" in str(err.value)
    assert _reference_of("reg.example/app") == "reg.example/app:latest"


# -- the timer -----------------------------------------------------------------------------------


def test_the_timer_units_are_written_and_linked_only_when_enabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.units import autoupdate

    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path))
    (service, text, links), (timer, timer_text, timer_links) = \
        autoupdate.units("system", "/opt/hostctl/bin/hostctl")
    assert (service, timer) == ("hostctl-auto-update.service", "hostctl-auto-update.timer")
    assert "ExecStart=/opt/hostctl/bin/hostctl auto-update\n" in text
    assert "Type=oneshot" in text and "prune" not in text and links == ()
    for line in ("OnCalendar=daily", "RandomizedDelaySec=900", "Persistent=true"):
        assert line in timer_text
    assert timer_links == ()
    (tmp_path / autoupdate.MARKER).write_text("")
    assert autoupdate.units("system", "/x")[1][2] == ("timers.target.wants/" + timer,)
    user = autoupdate.units("user", "/opt/my tools/hostctl")[0][1]
    assert 'ExecStart="/opt/my tools/hostctl" auto-update --user' in user
    assert "network-online" not in user


def test_the_generators_config_dir_is_the_scopes(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from hostctl.paths import for_scope
    from hostctl.units.autoupdate import config_dir

    monkeypatch.delenv("HOSTCTL_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_dir("system") == str(for_scope(Scope.SYSTEM).config)
    assert config_dir("user") == str(for_scope(Scope.USER).config)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert config_dir("user") == str(for_scope(Scope.USER).config)


def test_the_generator_writes_the_timer_with_containers_or_when_enabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.units import autoupdate
    from hostctl.units.generator import timer_units

    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path))
    assert timer_units("user", False) == []  # a user without containers: no hostctl units
    assert [name for name, _, _ in timer_units("user", True)] == [
        autoupdate.SERVICE, autoupdate.TIMER]
    (tmp_path / autoupdate.MARKER).write_text("")
    assert timer_units("user", False)[1][2] == (autoupdate.WANTS_LINK,)


def test_hostctl_generate_shows_the_timer_units(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hostctl.cli.app import app
    from hostctl.declarations.search import ENV_PATH

    decls = tmp_path / "decls"
    decls.mkdir()
    (decls / "web.yaml").write_text("image: docker.io/library/busybox:1\n")
    monkeypatch.setenv(ENV_PATH, str(decls))
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "etc"))
    out = CliRunner().invoke(app, ["generate", "--dry-run"]).output
    assert "# web.service" in out and "# hostctl-auto-update.timer" in out
    assert "ExecStart=" in out.split("# hostctl-auto-update.service")[1]


def test_auto_update_parses_its_common_forms_without_typer_and_leaves_the_rest_to_it(
) -> None:
    from hostctl.cli.quick_update import parse
    from hostctl.updates.judge import GRACE

    assert parse(["--dry-run", "web", "--format", "json", "db", "--grace=2.5", "--user",
                  "--no-rollback"]) == {
        "names": ["web", "db"], "dry_run": True, "rollback": False, "grace": 2.5,
        "fmt": "json", "user": True}
    assert parse([]) == {"names": [], "dry_run": False, "rollback": True, "grace": GRACE,
                         "fmt": "table", "user": False}
    # typer's to parse: help, the timer, unknown options, values it refuses (it says why)
    for argv in (["--help"], ["--enable-timer"], ["--disable-timer"], ["--verbose"],
                 ["--", "web"], ["--format", "xml"], ["--format"], ["--grace", "-1"],
                 ["--grace", "soon"], ["--dry-run=yes"]):
        assert parse(argv) is None, argv
