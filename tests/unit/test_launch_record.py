"""Start records (hostctl.launcher.record): when a record still holds, and when not."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hostctl.launcher import record as records
from hostctl.paths import Scope, for_scope


def _record(tmp_path: Path) -> dict[str, Any]:
    decl, snap, gone = tmp_path / "app.yaml", tmp_path / "snap", tmp_path / "bundle"
    decl.write_text("image: x\n")
    (tmp_path / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    snap.mkdir()
    return {
        "format": records.FORMAT,
        "hostctl": "1.0",
        "env": records.start_environment(),
        "content": [[str(decl), records.content_signature(str(decl))],
                    [str(tmp_path / "app.yml"), None]],
        "present": [[str(snap), records.presence_signature(str(snap))]],
        "text": [[str(tmp_path / "resolv.conf"), "nameserver 192.0.2.1\n"],
                 [str(tmp_path / "upstream.conf"), None]],
        "absent": [str(gone)],
        "listed": [[str(tmp_path), ".network", []]],
    }


def test_a_fresh_record_is_current(tmp_path: Path) -> None:
    assert records.is_current(_record(tmp_path), "1.0")


def test_an_edited_declaration_of_the_same_size_is_seen(tmp_path: Path) -> None:
    record = _record(tmp_path)
    decl = tmp_path / "app.yaml"
    decl.write_text("image: y\n")
    os.utime(decl, ns=(0, 0))  # even with the old times back, the inode change time moved
    assert not records.is_current(record, "1.0")


def test_a_new_file_that_would_shadow_the_declaration_is_seen(tmp_path: Path) -> None:
    record = _record(tmp_path)
    (tmp_path / "app.yml").write_text("image: z\n")
    assert not records.is_current(record, "1.0")


def test_a_replaced_snapshot_is_seen(tmp_path: Path) -> None:
    record = _record(tmp_path)
    (tmp_path / "snap").rename(tmp_path / "old")
    (tmp_path / "snap").mkdir()
    assert not records.is_current(record, "1.0")


def test_a_network_file_added_to_a_declaration_directory_is_seen(tmp_path: Path) -> None:
    record = _record(tmp_path)
    (tmp_path / "other-bundle").mkdir()  # the directory changes, but not its .network files
    assert records.is_current(record, "1.0")
    (tmp_path / "backend.network").write_text("[Network]\n")
    assert not records.is_current(record, "1.0")


def test_leftovers_of_an_unclean_stop_are_seen(tmp_path: Path) -> None:
    record = _record(tmp_path)
    (tmp_path / "bundle").mkdir()
    assert not records.is_current(record, "1.0")


def test_a_members_record_holds_while_its_pod_is_the_same(tmp_path: Path) -> None:
    pod = tmp_path / "pod.json"
    pod.write_text('{"name": "shop"}')
    record = _record(tmp_path) | {"pod": {"name": "shop", "record": str(pod),
                                          "text": '{"name": "shop"}', "marker": ""}}
    pod.unlink()
    assert not records.is_current(record, "1.0")  # the pod is not running
    pod.write_text('{"name": "shop"}')  # started again, the same: a new file, same text
    assert records.is_current(record, "1.0")
    pod.write_text('{"name": "shop", "hostname": "x"}')  # changed
    assert not records.is_current(record, "1.0")


def test_a_resolv_conf_written_anew_with_the_same_lines_keeps_the_record(
        tmp_path: Path) -> None:
    record = _record(tmp_path)
    resolv = tmp_path / "resolv.conf"
    resolv.unlink()  # as a boot writes it: another file, the same text
    resolv.write_text("nameserver 192.0.2.1\n")
    assert records.is_current(record, "1.0")
    resolv.write_text("nameserver 192.0.2.2\n")
    assert not records.is_current(record, "1.0")
    resolv.write_text("nameserver 192.0.2.1\n")
    (tmp_path / "upstream.conf").write_text("nameserver 198.51.100.1\n")  # appeared
    assert not records.is_current(record, "1.0")


def test_what_no_longer_holds_is_named_for_the_journal(tmp_path: Path) -> None:
    record = _record(tmp_path)
    assert records.stale_input(record, "1.0") is None
    assert records.stale_input(record, "1.1") == "another hostctl version"
    (tmp_path / "app.yaml").write_text("image: y\n")
    assert records.stale_input(record, "1.0") == f"{tmp_path / 'app.yaml'} changed"
    record["content"][0][1] = records.content_signature(str(tmp_path / "app.yaml"))
    (tmp_path / "app.yml").write_text("image: z\n")
    assert records.stale_input(record, "1.0") == f"{tmp_path / 'app.yml'} appeared"
    (tmp_path / "app.yml").unlink()
    (tmp_path / "bundle").mkdir()
    assert records.stale_input(record, "1.0") == f"{tmp_path / 'bundle'} left by the last run"
    assert records.stale_input({"format": records.FORMAT}, "1.0") == "a record of another layout"


def test_the_kept_copy_serves_the_first_start_after_a_boot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    record = _record(tmp_path) | {"lowerdirs": []}  # no fast record for it
    records.save("app", record)
    assert records.load_for_start("app") == (record, False)
    (tmp_path / "run" / "launch" / "app.record").unlink()  # a reboot empties the run dir
    assert records.load_for_start("app") == (record, True)
    records.restore("app", record)
    assert records.load_for_start("app") == (record, False)
    # a broken run record means a full start, never the copy in its place
    (tmp_path / "run" / "launch" / "app.record").write_bytes(b"\x00garbage")
    assert records.load_for_start("app") == (None, False)
    records.drop("app")  # as a full start does first: neither is left
    assert records.load_for_start("app") == (None, True)
    assert not list((tmp_path / "state" / "launch").iterdir())
    assert not list((tmp_path / "run" / "launch").iterdir())


def test_the_kept_copy_is_in_the_state_dir(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.delenv("HOSTCTL_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert records.kept_path("app") == str(for_scope(Scope.SYSTEM).state / "launch/app.record")
    assert records.kept_path("app", True) == str(
        for_scope(Scope.USER).state / "launch/app.record")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert records.kept_path("app", True) == str(
        for_scope(Scope.USER).state / "launch/app.record")


def test_another_environment_or_version_is_seen(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    record = _record(tmp_path)
    assert not records.is_current(record, "1.1")
    monkeypatch.setenv("HOSTCTL_TEST_SETTING", "1")
    assert not records.is_current(record, "1.0")


def test_what_systemd_sets_for_each_start_is_not_an_input(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    record = _record(tmp_path)
    monkeypatch.setenv("INVOCATION_ID", "0123")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    assert records.is_current(record, "1.0")


def test_records_round_trip_privately_and_garbage_reads_as_none(tmp_path: Path) -> None:
    path = str(tmp_path / "launch" / "app.record")
    record = _record(tmp_path)
    records.write(path, record)
    assert records.load(path) == record
    assert os.stat(path).st_mode & 0o777 == 0o600
    Path(path).write_bytes(b"\x00garbage")
    assert records.load(path) is None
    records.discard(path)
    records.discard(path)
    assert records.load(path) is None


def test_record_path_is_in_the_system_run_dir(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.delenv("HOSTCTL_RUN_DIR", raising=False)
    expected = for_scope(Scope.SYSTEM).run / "launch" / "app.record"
    assert records.record_path("app") == str(expected)
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path))
    assert records.record_path("app") == str(for_scope(Scope.SYSTEM).run / "launch/app.record")


@pytest.mark.parametrize("text", ["/system.slice/app\\x2dweb.service/container", 'a"b',
                                  "tab\there", "\x01", "ünï"])
def test_json_string_is_valid_json_for_the_same_text(text: str) -> None:
    assert json.loads(records.json_string(text)) == text
