"""Differential correctness: the tree hostctl's snapshots give equals `umoci unpack`'s."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hostctl.images.pull import pull
from hostctl.images.store import Store
from tests.support.imagebuild import (
    Dir,
    File,
    Hardlink,
    ImageSpec,
    Layer,
    Opaque,
    Symlink,
    Whiteout,
    write_oci_layout,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci not installed")]


@dataclass(frozen=True)
class XattrFile:
    path: str
    content: bytes
    xattrs: tuple[tuple[str, str], ...]

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = tarfile.TarInfo(self.path)
        info.size, info.mode = len(self.content), 0o640
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in self.xattrs}
        return info, self.content


SHAPES: dict[str, tuple[Layer, ...]] = {
    "whiteouts-and-opaque": (
        Layer((Dir("etc"), File("etc/a", "a"), File("etc/b", "b"), Dir("opt"),
               Dir("opt/sub"), File("opt/sub/old", "old"), File("opt/keep", "k"))),
        Layer((Whiteout("etc/a"), Opaque("opt/sub"), File("opt/sub/new", "new"))),
    ),
    "hardlinks-and-symlink-chains": (
        Layer((Dir("bin"), File("bin/tool", "#!x", mode=0o755), Hardlink("bin/tool2", "bin/tool"),
               Symlink("bin/t1", "tool"), Symlink("bin/t2", "t1"), Symlink("abs", "/bin/t2"))),
        Layer((File("bin/other", "o"), Hardlink("bin/other2", "bin/other"))),
    ),
    "dir-file-replacement": (
        Layer((Dir("x"), File("x/inner", "i"), File("y", "file"), Dir("z"), File("z/f", "f"))),
        Layer((File("x", "now a file"), Dir("y", mode=0o700), File("y/in", "in"),
               Symlink("z", "y"))),
    ),
    "setuid-owners-xattrs": (
        Layer((Dir("usr"), Dir("usr/bin"),
               File("usr/bin/su", "su", mode=0o4755), File("usr/bin/wall", "w", mode=0o2755),
               File("owned", "o", uid=1000, gid=1001), Dir("tmp", mode=0o1777),
               XattrFile("tagged", b"t", (("user.note", "hello"),)))),
    ),
    "usr-merged": (
        Layer((Dir("usr"), Dir("usr/lib"), Dir("usr/bin"), Symlink("lib", "usr/lib"),
               Symlink("bin", "usr/bin"), File("usr/lib/libc.so", "libc"))),
        Layer((Dir("lib"), File("lib/libz.so", "z"), File("bin/sh", "sh", mode=0o755))),
    ),
}


def describe(root: Path) -> dict[str, Any]:
    """Type, mode, owner, target, content hash and hardlink group of every path."""
    tree: dict[str, Any] = {}
    inodes: dict[int, str] = {}
    for base, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(base) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            entry: dict[str, Any] = {"mode": oct(st.st_mode), "uid": st.st_uid,
                                     "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                entry["sha"] = hashlib.sha256(path.read_bytes()).hexdigest()
                entry["xattrs"] = sorted((k, os.getxattr(path, k)) for k in os.listxattr(path)
                                         if k.startswith("user."))
                if st.st_nlink > 1:
                    entry["link_group"] = inodes.setdefault(st.st_ino, rel)
            tree[rel] = entry
    return tree


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_tree_equals_umoci_unpack(shape: str, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(layout, "t", ImageSpec(SHAPES[shape], {"Cmd": ["sh"]}))
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:t", str(bundle)], check=True,
                   capture_output=True)
    image = pull(Store(tmp_path / "storage"), f"oci:{layout}:t")
    merged, upper, work = tmp_path / "merged", tmp_path / "upper", tmp_path / "work"
    for d in (merged, upper, work):
        d.mkdir()
    lower = ":".join(str(s) for s in reversed(image.snapshots))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
                   check=True)
    try:
        ours = describe(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    theirs = describe(bundle / "rootfs")
    theirs.pop("", None)
    assert ours == theirs


def test_hardlink_to_a_lower_layer_file_is_copied_up(tmp_path: Path) -> None:
    """umoci links the lower inode; snapshots cannot, so the file is copied up and linked
    (containerd's behaviour): same content, mode and owner, separate from the lower."""
    layers = (Layer((Dir("bin"), File("bin/tool", "#!x", mode=0o4755, uid=5))),
              Layer((Hardlink("bin/tool2", "bin/tool"),)))
    layout = tmp_path / "layout"
    write_oci_layout(layout, "t", ImageSpec(layers, {}))
    image = pull(Store(tmp_path / "storage"), f"oci:{layout}:t")
    top = image.snapshots[1] / "bin"
    first, second = os.lstat(top / "tool"), os.lstat(top / "tool2")
    assert first.st_ino == second.st_ino and first.st_nlink == 2
    assert (first.st_mode & 0o7777, first.st_uid) == (0o4755, 5)
    assert (top / "tool2").read_text() == "#!x"
