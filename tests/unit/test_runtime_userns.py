"""Rootless id maps: /etc/subuid ranges when usable, the user's own id otherwise."""

from __future__ import annotations

from pathlib import Path

from hostctl.runtime.userns import IdMap, sub_range


def test_sub_range_by_name_or_uid(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("bob:200000:65536\nalice:100000:65536\n1001:300000:1000\n")
    assert sub_range(subuid, "alice", 1000) == (100000, 65536)
    assert sub_range(subuid, "carol", 1001) == (300000, 1000)
    assert sub_range(subuid, "dave", 1002) is None
    assert sub_range(tmp_path / "absent", "alice", 1000) is None


def test_malformed_and_empty_ranges_are_skipped(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:x:65536\nalice:100000:0\nalice:5000:10\n")
    assert sub_range(subuid, "alice", 1000) == (5000, 10)


def test_id_map_puts_the_user_at_0_and_the_range_above() -> None:
    idmap = IdMap(1000, 100000, 65536)
    assert idmap.triples() == ((0, 1000, 1), (1, 100000, 65536))
    assert idmap.size == 65537
    assert idmap.to_host(0) == 1000
    assert idmap.to_host(1000) == 100999  # an image's uid 1000 on the host
    assert idmap.to_host(65537) is None


def test_single_mapping_without_a_range() -> None:
    idmap = IdMap(1000)
    assert idmap.triples() == ((0, 1000, 1),)
    assert idmap.size == 1 and idmap.to_host(1) is None
