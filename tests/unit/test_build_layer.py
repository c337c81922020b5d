"""A step's upper directory written as a layer: whiteouts, opaque directories, hard
links, directories only copied up, determinism, and the store's applier reading it back.

Whiteout devices and trusted.* xattrs need root: those tests skip for other users."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from hostctl.build.layer import prepare_upper, write_layer
from hostctl.images.layers import apply_layer
from hostctl.images.store import Store

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mknod and xattrs")


def _upper(tmp_path: Path) -> tuple[Path, Path]:
    """A lower snapshot and an upper dir over it, as a RUN step leaves them."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for directory in (lower / "etc", lower / "var" / "lib", lower / "opt" / "old"):
        directory.mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "etc" / "gone").write_text("x\n")
    (lower / "opt" / "old" / "file").write_text("old\n")
    (upper / "etc").mkdir(parents=True)  # only copied up to hold a change below
    (upper / "etc" / "new").write_text("new\n")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "var").mkdir(mode=0o700)  # copied up with a new mode
    os.chmod(upper / "var", 0o700)
    (upper / "opt" / "old").mkdir(parents=True)  # opt: copied up, unchanged
    os.setxattr(upper / "opt" / "old", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "etc", "trusted.overlay.origin", b"\0fake")
    (upper / "opt" / "old" / "fresh").write_text("fresh\n")
    os.link(upper / "etc" / "new", upper / "etc" / "new-link")
    return lower, upper


@needs_root
def test_upper_becomes_the_layer_docker_expects(tmp_path: Path) -> None:
    lower, upper = _upper(tmp_path)
    assert prepare_upper(upper, [lower], rootless=False, clamp=1_700_000_000)
    assert "trusted.overlay.origin" not in os.listxattr(upper / "etc")
    store = Store(tmp_path / "store")
    blob = write_layer(store, upper, [lower], rootless=False, clamp=1_700_000_000)
    assert blob is not None
    with tarfile.open(store.blob_path(blob.digest)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["etc/.wh.gone", "etc/new", "etc/new-link", "opt/old",
                               "opt/old/.wh..wh..opq", "opt/old/fresh", "var"]
    assert members["etc/new-link"].islnk() and members["etc/new-link"].linkname == "etc/new"
    assert members["var"].mode == 0o700
    assert all(m.mtime <= 1_700_000_000 and m.uname == "" for m in members.values())
    # The same changes give the same bytes.
    again = write_layer(Store(tmp_path / "store2"), upper, [lower], rootless=False,
                        clamp=1_700_000_000)
    assert again == blob
    # The store's own applier reads it back into the same overlay-format snapshot.
    applied = tmp_path / "applied"
    applied.mkdir()
    apply_layer(store.blob_path(blob.digest), applied, diff_id=blob.diff_id, lowers=[lower])
    assert os.getxattr(applied / "opt" / "old", "trusted.overlay.opaque") == b"y"
    assert os.stat(applied / "etc" / "gone").st_rdev == 0
    assert (applied / "opt" / "old" / "fresh").read_text() == "fresh\n"


def test_an_upper_with_no_changes_gives_no_layer(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)  # copied up, nothing changed
    os.chmod(upper / "etc", stat.S_IMODE(os.stat(lower / "etc").st_mode))
    store = Store(tmp_path / "store")
    assert not prepare_upper(upper, [lower], rootless=False, clamp=None)
    assert write_layer(store, upper, [lower], rootless=False, clamp=None) is None
    assert not list(store.blobs.iterdir())  # nothing stored for an empty diff
