"""Snapshot records: what a snapshot held when applied, and how damage shows against it."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from hostctl.images import snaprecord

HEADER = snaprecord.Header("sha256:" + "a" * 64, "sha256:" + "b" * 64, rootless=True)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    root = tmp_path / "snap"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!" * 100)
    os.link(root / "usr/bin/tool", root / "usr/bin/alias")
    (root / "etc").mkdir()
    (root / "etc/conf").write_text("a=1\n")
    os.symlink("usr/bin", root / "bin")
    os.mkfifo(root / "pipe")
    (root / "a-b").mkdir()  # sorts between "a" entries and "a/..." paths
    (root / "a").mkdir()
    (root / "a/z").write_text("z")
    os.setxattr(root / "etc", "user.overlay.opaque", b"y")
    return root


def record(snapshot: Path) -> Path:
    path = snapshot.parent / "records" / "snap.gz"
    snaprecord.write(snapshot, path, HEADER)
    return path


def test_an_untouched_snapshot_matches_its_record(snapshot: Path) -> None:
    path = record(snapshot)
    assert snaprecord.compare(snapshot, path) == []
    assert snaprecord.read_header(path) == HEADER
    assert not list(path.parent.glob(".tmp-*"))


def test_each_kind_of_damage_is_named(snapshot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = record(snapshot)
    with open(snapshot / "etc/conf", "r+b") as handle:
        handle.truncate(1)
    os.chmod(snapshot / "usr/bin/tool", 0o4777)
    (snapshot / "a/z").unlink()
    (snapshot / "a/new").write_text("n")
    os.unlink(snapshot / "bin")
    os.symlink("/", snapshot / "bin")
    os.removexattr(snapshot / "etc", "user.overlay.opaque")
    monkeypatch.setattr(snaprecord, "SHOWN", 100)
    problems = {p.split(": ", 1)[0]: p.split(": ", 1)[1]
                for p in snaprecord.compare(snapshot, path)}
    assert problems.pop("etc/conf").startswith("size 4 -> 1")
    assert problems.pop("usr/bin/tool") == "mode 0o644 -> 0o4777"
    assert problems.pop("usr/bin/alias") == "mode 0o644 -> 0o4777"  # the same inode
    assert problems.pop("a/z") == "missing"
    assert problems.pop("a/new") == "not in the layer"
    assert problems.pop("bin").startswith("size 7 -> 1, mtime ")
    assert "detail y -> " in problems.pop("etc")  # the opaque marker is gone
    assert set(problems) == {".", "a"}  # directories whose entries changed: new mtimes
    assert all(change.startswith("mtime ") for change in problems.values())


def test_a_broken_hardlink_shows_in_the_link_count(snapshot: Path) -> None:
    path = record(snapshot)
    os.unlink(snapshot / "usr/bin/alias")
    problems = snaprecord.compare(snapshot, path)
    assert "usr/bin/alias: missing" in problems
    assert "usr/bin/tool: detail 2 -> 1" in problems


def test_a_report_names_a_few_differences_and_counts_the_rest(snapshot: Path) -> None:
    path = record(snapshot)
    for number in range(10):
        (snapshot / f"extra{number}").write_text("x")
    problems = snaprecord.compare(snapshot, path)
    assert len(problems) == snaprecord.SHOWN + 1
    assert problems[-1] == f"and {11 - snaprecord.SHOWN} more"  # 10 files and the root


def test_an_unreadable_record_is_reported(snapshot: Path) -> None:
    path = record(snapshot)
    path.write_bytes(gzip.compress(b"not json\n"))
    assert "unreadable" in snaprecord.compare(snapshot, path)[0]
    path.write_bytes(b"garbage")
    assert "unreadable" in snaprecord.compare(snapshot, path)[0]
