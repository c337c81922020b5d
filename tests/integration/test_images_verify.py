"""`image verify` finds damaged snapshots (against the record made when each was applied)
and repairs them by applying the stored layer blob again, without the registry."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostctl.images.manage import prune, remove, verify
from hostctl.images.pull import Image, pull
from hostctl.images.store import Store
from tests.support.imagebuild import Dir, File, ImageSpec, Layer, Symlink, push
from tests.support.registry import Registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="rootful layer application needs root"),
]

SPEC = ImageSpec((
    Layer((Dir("usr/bin"), File("usr/bin/tool", b"\x7fELF" * 5000, mode=0o755),
           Symlink("bin", "usr/bin"), File("etc/conf", "a=1\n"))),
    Layer((File("etc/conf", "a=2\n", mode=0o600), File("bin/extra", "x"))),
), {"Cmd": ["sh"]})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "storage")


@pytest.fixture
def image(registry: Registry, store: Store) -> Image:
    push(registry.host, "verify/two", "1", SPEC)
    return pull(store, f"{registry.host}/verify/two:1")


def no_pull(reference: str) -> object:
    raise AssertionError(f"repair needed the registry for {reference}")


def damage(snapshot: Path) -> None:
    with open(snapshot / "usr/bin/tool", "r+b") as handle:
        handle.truncate(100)
    (snapshot / "etc/intruder").write_text("x")
    os.chmod(snapshot / "etc/conf", 0o666)


def test_a_sound_store_verifies_clean(image: Image, store: Store) -> None:
    assert verify(store).problems == []
    assert sorted(p.name for p in store.records.iterdir()) == sorted(
        f"{s.name}.gz" for s in image.snapshots)


def test_damage_is_reported_and_repaired_from_the_stored_blob(image: Image,
                                                              store: Store) -> None:
    bottom, top = image.snapshots
    damage(bottom)
    report = verify(store)
    [problem] = report.problems
    assert f"snapshot sha256:{bottom.name} (layer {image.layers[0]}) is damaged" in problem
    for named in ("usr/bin/tool: size 20000 -> 100", "etc/intruder: not in the layer",
                  "etc/conf: mode 0o644 -> 0o666"):
        assert named in problem
    repaired = verify(store, repair=True, pull=no_pull)
    assert repaired.repaired == [f"snapshot sha256:{bottom.name}"]
    assert verify(store).problems == []
    assert (bottom / "usr/bin/tool").read_bytes() == b"\x7fELF" * 5000
    assert not (bottom / "etc/intruder").exists()
    assert (top / "usr/bin/extra").read_text() == "x"  # the upper snapshot was kept
    assert not list(store.root.rglob(".tmp-*"))


def test_damage_with_the_blob_gone_too_is_pulled_again(image: Image, store: Store) -> None:
    bottom = image.snapshots[0]
    damage(bottom)
    store.blob_path(image.layers[0]).unlink()
    pulled: list[str] = []

    def again(reference: str) -> object:
        pulled.append(reference)
        return pull(store, reference, policy="always")

    repaired = verify(store, repair=True, pull=again)
    assert pulled == [image.reference] and repaired.repaired == [image.reference]
    assert verify(store).problems == []
    assert (bottom / "usr/bin/tool").read_bytes() == b"\x7fELF" * 5000


@pytest.fixture
def mounted(image: Image, tmp_path: Path) -> Iterator[Path]:
    """The image's overlay mounted, as a running container's rootfs would be."""
    upper, work, target = (tmp_path / name for name in ("upper", "work", "merged"))
    for path in (upper, work, target):
        path.mkdir()
    lowers = ":".join(str(s) for s in reversed(image.snapshots))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lowers},upperdir={upper},workdir={work}", str(target)],
                   check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_snapshot_in_use_is_not_touched(image: Image, store: Store, mounted: Path) -> None:
    bottom = image.snapshots[0]
    damage(bottom)
    report = verify(store, repair=True, pull=no_pull)
    assert any("repair failed: a running container uses it" in p for p in report.problems)
    assert (bottom / "etc/intruder").exists() and (mounted / "etc/intruder").exists()


def test_a_snapshot_without_a_record_is_reported_and_reapplied(image: Image,
                                                               store: Store) -> None:
    top = image.snapshots[1]
    store.record_path("sha256:" + top.name).unlink()
    assert any("has no record" in p for p in verify(store).problems)
    assert verify(store, repair=True, pull=no_pull).repaired == [f"snapshot sha256:{top.name}"]
    assert verify(store).problems == []


def test_removing_the_image_removes_its_records(image: Image, store: Store) -> None:
    remove(store, [image.reference], None)
    assert list(store.records.iterdir()) == [] and list(store.snapshots.iterdir()) == []
    assert prune(store, None).removed == []
