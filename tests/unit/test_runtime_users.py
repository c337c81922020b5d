"""`user:` resolution against the image's own /etc/passwd and /etc/group, safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostctl.errors import RuntimeFailure
from hostctl.runtime.inroot import read_file
from hostctl.runtime.users import resolve_user


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
        "svc:x:999:998::/var/svc:/bin/false\n"
    )
    (etc / "group").write_text("root:x:0:\napp:x:1000:\nsvc:x:998:\nextra:x:50:app,svc\n")
    return tmp_path / "root"


def test_default_is_root(rootfs: Path) -> None:
    ident = resolve_user(str(rootfs), None)
    assert (ident.uid, ident.gid, ident.home) == (0, 0, "/root")


def test_name_resolves_uid_gid_home_and_groups(rootfs: Path) -> None:
    ident = resolve_user(str(rootfs), "app")
    assert (ident.uid, ident.gid, ident.home) == (1000, 1000, "/home/app")
    assert ident.additional_gids == (50,)


def test_numeric_uid_known_and_unknown(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "999").gid == 998
    unknown = resolve_user(str(rootfs), "4242")
    assert (unknown.uid, unknown.gid) == (4242, 0)


def test_user_and_group_names(rootfs: Path) -> None:
    ident = resolve_user(str(rootfs), "svc:extra")
    assert (ident.uid, ident.gid) == (999, 50)
    assert resolve_user(str(rootfs), "app:7").gid == 7


def test_unknown_name_is_an_error(rootfs: Path) -> None:
    with pytest.raises(RuntimeFailure, match="'nobody' not found"):
        resolve_user(str(rootfs), "nobody")
    with pytest.raises(RuntimeFailure, match="'nogroup' not found"):
        resolve_user(str(rootfs), "app:nogroup")


def test_uid_beyond_32_bits_is_refused_never_wrapped_to_root(rootfs: Path) -> None:
    with pytest.raises(RuntimeFailure, match="32 bits"):
        resolve_user(str(rootfs), str(2**32))
    with pytest.raises(RuntimeFailure, match="32 bits"):
        resolve_user(str(rootfs), "app:4294967296")


def test_passwd_symlink_to_a_host_file_resolves_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "hostpasswd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to(str(outside))  # absolute: re-anchored at root
    with pytest.raises(RuntimeFailure, match="'evil' not found"):
        resolve_user(str(root), "evil")
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("../../hostpasswd")  # .. stops at the root
    assert read_file(str(root), "/etc/passwd") is None


def test_passwd_that_is_a_fifo_or_huge_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(RuntimeFailure, match="not a regular file"):
        resolve_user(str(root), "app")
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").write_bytes(b"x" * (2 << 20))
    with pytest.raises(RuntimeFailure, match="larger than"):
        resolve_user(str(root), "app")


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("passwd2")
    (root / "etc" / "passwd2").symlink_to("passwd")
    with pytest.raises(RuntimeFailure, match="too many symlinks"):
        resolve_user(str(root), "app")
