"""Finding quadlet files of one type: priority between directories, masking, YAML forms."""

from __future__ import annotations

import os
from pathlib import Path

from hostctl.declarations.image_file import image_files
from hostctl.declarations.scan import typed_files
from hostctl.declarations.volume_file import volume_files


def test_the_first_directory_wins_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    first, second = tmp_path / "etc", tmp_path / "usr"
    first.mkdir()
    second.mkdir()
    (first / "web.pod").write_text("[Pod]\n")
    (second / "web.pod").write_text("[Pod]\n")
    (second / "db.pod").write_text("[Pod]\n")
    (second / ".hidden.pod").write_text("[Pod]\n")
    found = typed_files([first, second, tmp_path / "missing"], ".pod")
    assert found == {"web": first / "web.pod", "db": second / "db.pod"}


def test_a_dev_null_link_masks_the_name_in_later_directories_and_the_yaml_form(
        tmp_path: Path) -> None:
    first, second, yaml_dir = tmp_path / "etc", tmp_path / "usr", tmp_path / "volumes"
    for directory in (first, second, yaml_dir):
        directory.mkdir()
    os.symlink("/dev/null", first / "data.volume")
    (second / "data.volume").write_text("[Volume]\n")
    (yaml_dir / "data.yaml").write_text("{}\n")
    (yaml_dir / "logs.yml").write_text("{}\n")
    assert volume_files([first, second], yaml_dir) == {"logs": yaml_dir / "logs.yml"}


def test_image_files_honour_masking_like_the_other_types(tmp_path: Path) -> None:
    first, second = tmp_path / "etc", tmp_path / "usr"
    first.mkdir()
    second.mkdir()
    os.symlink("/dev/null", first / "base.image")
    (second / "base.image").write_text("[Image]\nImage=example.com/base:1\n")
    (second / "tools.image").write_text("[Image]\nImage=example.com/tools:1\n")
    assert image_files([first, second]) == {"tools": second / "tools.image"}
