"""The breakout suite through the whole pull path: crafted multi-layer images pushed to a
real docker-registry and pulled into a fresh store.

Each image aims at a canary directory outside the store (a file with a known content,
mode, owner, link count and mtime, in a directory with a known mode). After every pull the
canary must be exactly as it was, and the pull must either fail with a clear error and
leave nothing behind, or contain the entry inside the snapshot, where the test finds it.
The single-layer variants of these cases are in tests/unit/test_images_layers.py.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.manage import verify
from hostctl.images.pull import Image, pull
from hostctl.images.store import Store
from tests.support.imagebuild import (
    Dir,
    Entry,
    File,
    Hardlink,
    ImageSpec,
    Layer,
    Symlink,
    Whiteout,
    push,
)
from tests.support.registry import Registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="rootful layer application needs root"),
]

VICTIM_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Canary:
    """A host directory an image must never reach: DIR/victim, DIR/sub/."""

    path: Path

    @property
    def inside(self) -> str:
        """The canary's path as an image names it (relative to a root)."""
        return str(self.path).lstrip("/")

    def snapshot(self) -> list[tuple[str, int, int, int, int, int, bytes]]:
        seen = []
        for entry in sorted([self.path, *self.path.rglob("*")]):
            st = os.lstat(entry)
            content = entry.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            seen.append((str(entry), st.st_mode, st.st_uid, st.st_nlink, st.st_mtime_ns,
                         st.st_ino, content))
        return seen


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    path = tmp_path / "canary"
    (path / "sub").mkdir(parents=True)
    (path / "victim").write_bytes(b"original")
    os.chmod(path / "victim", VICTIM_MODE)
    os.chmod(path, DIR_MODE)
    os.utime(path / "victim", ns=(1_000_000_000, 1_000_000_000))
    found = Canary(path)
    before = found.snapshot()
    yield found
    assert found.snapshot() == before, "the image changed something outside its root"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "storage")


def pull_layers(registry: Registry, store: Store, name: str,
                *layers: tuple[Entry, ...]) -> Image:
    spec = ImageSpec(layers=tuple(Layer(entries) for entries in layers))
    push(registry.host, f"breakout/{name}", "1", spec)
    return pull(store, f"{registry.host}/breakout/{name}:1")


def refused(registry: Registry, store: Store, name: str, match: str, good: int,
            *layers: tuple[Entry, ...]) -> None:
    """The pull fails with MATCH and leaves no temp file, no index entry and no snapshot
    but those of the GOOD layers below the refused one."""
    with pytest.raises(ImageError, match=match):
        pull_layers(registry, store, name, *layers)
    assert len(list(store.snapshots.iterdir())) == good
    assert not list(store.root.rglob(".tmp-*"))
    assert store.images() == {}


def test_absolute_symlink_used_as_a_parent_by_a_later_layer(
    registry: Registry, store: Store, canary: Canary
) -> None:
    image = pull_layers(
        registry, store, "abs-parent",
        (Symlink("escape", str(canary.path)), Symlink("rel", "../../../../../../..")),
        (File("escape/victim", "pwned", mode=0o777), File("escape/new", "x"),
         Dir("escape/sub", mode=0o777), File("rel" + str(canary.path) + "/victim", "pwned")),
    )
    bottom, top = image.snapshots
    assert os.readlink(bottom / "escape") == str(canary.path)
    assert (top / canary.inside / "victim").read_text() == "pwned"
    assert (top / canary.inside / "new").read_text() == "x"
    assert stat.S_IMODE(os.stat(top / canary.inside / "sub").st_mode) == 0o777
    assert not os.path.lexists(top / "escape")  # the lower symlink still shows through
    assert not verify(store).problems


@pytest.mark.parametrize("root_name", [".", "./", "/"])
def test_root_replaced_by_a_symlink_then_written_through(
    registry: Registry, store: Store, canary: Canary, root_name: str
) -> None:
    """CVE-2021-29136: layer 1 turns `.` into a symlink, layer 2 writes etc/x."""
    refused(registry, store, f"dot-symlink-{len(root_name)}", "root must be a directory", 0,
            (Symlink(root_name, str(canary.path)),),
            (File("victim", "pwned", mode=0o777), Dir("etc"), File("etc/x", "x")))


def test_chmod_through_a_lower_symlink_to_a_host_file(
    registry: Registry, store: Store, canary: Canary
) -> None:
    """CVE-2021-32760: later entries named like a symlink to a host file or directory."""
    image = pull_layers(
        registry, store, "chmod-through",
        (Symlink("f", str(canary.path / "victim")), Symlink("d", str(canary.path)),
         Symlink("s", str(canary.path / "victim"))),
        (File("f", "new", mode=0o4777, uid=4242), Dir("d", mode=0o777, uid=4242),
         Hardlink("h", "f")),
    )
    bottom, top = image.snapshots
    assert (top / "f").read_text() == "new" and not (top / "f").is_symlink()
    assert stat.S_IMODE(os.lstat(top / "f").st_mode) == 0o4777
    assert os.stat(top / "h").st_ino == os.stat(top / "f").st_ino
    assert (top / "d").is_dir() and not (top / "d").is_symlink()
    assert os.lstat(top / "d").st_uid == 4242
    assert os.readlink(bottom / "s") == str(canary.path / "victim")


def test_hardlink_to_a_lower_symlink_links_the_symlink_itself(
    registry: Registry, store: Store, canary: Canary
) -> None:
    image = pull_layers(
        registry, store, "link-to-symlink",
        (Symlink("s", str(canary.path / "victim")), Symlink("d", str(canary.path))),
        (Hardlink("h", "s"), Hardlink("h2", "h"), File("other", "o")),
    )
    top = image.snapshots[1]
    assert os.readlink(top / "h") == str(canary.path / "victim")
    assert os.lstat(top / "h").st_ino == os.lstat(top / "s").st_ino == os.lstat(top / "h2").st_ino
    assert os.readlink(top / "s") == str(canary.path / "victim")  # copied up, as overlay does


def test_hardlink_through_a_lower_symlink_parent_is_refused(
    registry: Registry, store: Store, canary: Canary
) -> None:
    refused(registry, store, "link-through", "not a file or symlink", 1,
            (Symlink("d", str(canary.path)),), (Hardlink("x", "d/victim"),))


def test_whiteout_whose_parent_is_a_lower_symlink_out_of_the_root(
    registry: Registry, store: Store, canary: Canary
) -> None:
    image = pull_layers(
        registry, store, "whiteout-parent",
        (Symlink("d", str(canary.path)), Symlink("a", "/")),
        (Whiteout("d/victim"), Whiteout("d/sub"), Whiteout(f"a/{canary.inside}/x")),
    )
    top = image.snapshots[1]
    for name in ("victim", "sub", "x"):
        mark = os.lstat(top / canary.inside / name)
        assert stat.S_ISCHR(mark.st_mode) and mark.st_rdev == 0


def test_symlink_chain_across_three_layers_stays_inside(
    registry: Registry, store: Store, canary: Canary
) -> None:
    image = pull_layers(
        registry, store, "chain",
        (Symlink("one", "two/../three"), Dir("two")),
        (Symlink("three", str(canary.path.parent)),),
        (File(f"one/{canary.path.name}/victim", "pwned"),
         Dir(f"one/{canary.path.name}", mode=0o777)),
    )
    top = image.snapshots[2]
    assert (top / canary.inside / "victim").read_text() == "pwned"
    assert stat.S_IMODE(os.stat(top / canary.inside).st_mode) == 0o777
    shutil.rmtree(store.root)
