"""Volumes, tmpfs, secrets, time zone and init mounts in the OCI config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostctl.declarations.model import Secret, Tmpfs, Volume, VolumeKind
from hostctl.errors import RuntimeFailure
from hostctl.launcher.config import read_env_file
from hostctl.runtime import volumes


def where(key: str) -> str:
    return f"app.yaml:4:{key}"


def test_bind_options_default_to_rbind_rprivate() -> None:
    assert volumes.bind_options(False, ()) == ["rbind", "rprivate"]
    assert volumes.bind_options(True, ("nosuid", "rshared", "z")) == [
        "rbind", "ro", "nosuid", "rshared"]


def test_bind_volume_needs_an_existing_source(tmp_path: Path) -> None:
    vol = Volume(str(tmp_path / "absent"), "/data", VolumeKind.BIND)
    with pytest.raises(RuntimeFailure) as err:
        volumes.volume_mounts([vol], tmp_path, tmp_path, where, None)
    assert err.value.where == where("volumes")


def test_named_volume_is_created_once_from_the_image_content(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "srv/data").mkdir(parents=True)
    (rootfs / "srv/data/seed").write_text("from the image")
    vol = Volume("appdata", "/srv/data", VolumeKind.VOLUME)
    mounts = volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, None)
    source = Path(mounts[0]["source"])
    assert source == tmp_path / "volumes/appdata/_data"
    assert (source / "seed").read_text() == "from the image"
    (source / "seed").write_text("changed")
    volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, None)
    assert (source / "seed").read_text() == "changed"  # kept: not copied again
    nocopy = Volume("empty", "/srv/data", VolumeKind.VOLUME, options=("nocopy",))
    volumes.volume_mounts([nocopy], tmp_path / "volumes", rootfs, where, None)
    assert not any((tmp_path / "volumes/empty/_data").iterdir())


def test_new_named_volume_belongs_to_the_container_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chowned: list[tuple[str, int, int]] = []
    monkeypatch.setattr(volumes.os, "chown",
                        lambda path, uid, gid, **_: chowned.append((str(path), uid, gid)))
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    vol = Volume("appdata", "/var/lib/app", VolumeKind.VOLUME)
    mounts = volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, (1000, 1001))
    assert mounts[0]["source"] == str(tmp_path / "volumes/appdata/_data")
    assert chowned == [(str(tmp_path / "volumes/appdata/_new"), 1000, 1001)]
    assert (tmp_path / "volumes/appdata/_data").stat().st_mode & 0o777 == 0o755
    chowned.clear()
    volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, (1000, 1001))
    assert chowned == []  # an existing volume keeps its owner


def test_nocopy_volume_takes_the_mode_of_the_images_directory(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "srv/data").mkdir(parents=True)
    (rootfs / "srv/data/seed").write_text("from the image")
    (rootfs / "srv/data").chmod(0o710)
    vol = Volume("private", "/srv/data", VolumeKind.VOLUME, options=("nocopy",))
    mounts = volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, (0, 0))
    source = Path(mounts[0]["source"])
    assert source.stat().st_mode & 0o777 == 0o710
    assert not any(source.iterdir())


def test_image_symlink_at_a_volume_destination_never_copies_host_files(
    tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-etc"
    host_dir.mkdir()
    (host_dir / "shadow").write_text("host secret")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "srv").symlink_to(host_dir)  # absolute: means ROOTFS/<host_dir> inside
    (rootfs / "up").symlink_to("../../../../../../../..")
    for destination in ("/srv", "/up" + str(host_dir)):
        name = "v" + str(len(destination))
        vol = Volume(name, destination, VolumeKind.VOLUME)
        mounts = volumes.volume_mounts([vol], tmp_path / "volumes", rootfs, where, None)
        assert list(Path(mounts[0]["source"]).iterdir()) == []


def test_tmpfs_gets_safe_flags_unless_asked_otherwise() -> None:
    mounts = volumes.tmpfs_mounts([Tmpfs("/cache", ("size=1000", "exec"))])
    assert mounts[0]["options"] == ["size=1000", "exec", "nosuid", "nodev"]


def test_read_only_root_gets_writable_tmp_and_run() -> None:
    dests = [m["destination"] for m in volumes.read_only_tmpfs({"/var/tmp"})]
    assert dests == ["/tmp", "/run"]


def test_secrets_are_copied_for_the_container_user_and_mounted_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "db").write_text("s3cret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    owner = (os.getuid(), os.getgid())
    mounts = volumes.secret_mounts([Secret("db", "/etc/db", "/run/secrets/db")],
                                   tmp_path / "stage", owner, where)
    copy = Path(mounts[0]["source"])
    assert copy.read_text() == "s3cret"
    assert copy.stat().st_mode & 0o777 == 0o400
    assert (tmp_path / "stage").stat().st_mode & 0o777 == 0o700
    assert mounts[0]["destination"] == "/run/secrets/db" and "ro" in mounts[0]["options"]


def test_secrets_outside_a_unit_fail_clearly(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(RuntimeFailure) as err:
        volumes.secret_mounts([Secret("db", "/x", "/run/secrets/db")], tmp_path, (0, 0), where)
    assert err.value.where == where("secrets")


def test_unknown_time_zone_is_an_error() -> None:
    with pytest.raises(RuntimeFailure) as err:
        volumes.timezone_mount("Mars/Olympus", where)
    assert err.value.where == where("timezone")
    assert volumes.timezone_mount(None, where) == []


def test_env_file_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    env = tmp_path / "app.env"
    env.write_text("# comment\n\nA=1\nB = spaced\nFROM_HOST\nNOT_SET\nC=x=y\n")
    assert read_env_file(str(env), "w") == [("A", "1"), ("B", " spaced"), ("FROM_HOST", "h"),
                                            ("C", "x=y")]
    env.write_text("A=1\nbad key=2\n")
    with pytest.raises(RuntimeFailure, match=r"app.env:2"):
        read_env_file(str(env), "w")
