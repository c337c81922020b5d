"""Search paths: which directories, which file wins, and what is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostctl.declarations.search import (
    ENV_PATH,
    declaration_dirs,
    find_declarations,
    load_declaration,
    scan_declarations,
)
from hostctl.errors import DeclarationError
from hostctl.paths import Scope


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (ENV_PATH, "HOSTCTL_RUN_DIR", "HOSTCTL_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    """run > etc > share, like the system scope."""
    result = [tmp_path / "run", tmp_path / "etc", tmp_path / "share"]
    for directory in result:
        directory.mkdir()
    return result


def _declare(directory: Path, file: str, image: str = "busybox") -> Path:
    path = directory / file
    path.write_text(f"image: {image}\n")
    return path


def test_system_dirs() -> None:
    assert declaration_dirs(Scope.SYSTEM) == [
        Path("/run/hostctl/containers"),
        Path("/etc/hostctl/containers"),
        Path("/usr/share/hostctl/containers"),
    ]


def test_user_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    monkeypatch.setenv("HOME", "/home/ann")
    uid = os.getuid()
    assert declaration_dirs(Scope.USER) == [
        Path("/run/user/1234/hostctl/containers"),
        Path("/home/ann/.config/hostctl/containers"),
        Path(f"/etc/hostctl/containers/users/{uid}"),
        Path("/etc/hostctl/containers/users"),
    ]


def test_env_var_replaces_the_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_PATH, f"{tmp_path}/a::{tmp_path}/b")
    assert declaration_dirs(Scope.SYSTEM) == [tmp_path / "a", tmp_path / "b"]
    assert declaration_dirs(Scope.USER) == [tmp_path / "a", tmp_path / "b"]


def test_first_directory_wins(dirs: list[Path]) -> None:
    run, etc, share = dirs
    _declare(share, "web.yaml", "share/web")
    _declare(etc, "web.yml", "etc/web")
    _declare(share, "db.yaml", "share/db")
    _declare(run, "cache.yaml")
    assert find_declarations(Scope.SYSTEM, dirs) == {
        "cache": run / "cache.yaml",
        "db": share / "db.yaml",
        "web": etc / "web.yml",
    }
    assert list(find_declarations(Scope.SYSTEM, dirs)) == ["cache", "db", "web"]
    assert load_declaration("web", Scope.SYSTEM, dirs).image == "etc/web"
    assert load_declaration("db", Scope.SYSTEM, dirs).image == "share/db"


def test_env_var_is_used_when_no_dirs_are_given(
    monkeypatch: pytest.MonkeyPatch, dirs: list[Path]
) -> None:
    run, etc, _ = dirs
    _declare(etc, "web.yaml", "etc/web")
    _declare(run, "web.yaml", "run/web")
    monkeypatch.setenv(ENV_PATH, f"{etc}:{run}")
    assert load_declaration("web", Scope.SYSTEM).image == "etc/web"
    assert find_declarations(Scope.SYSTEM) == {"web": etc / "web.yaml"}


def test_a_broken_higher_file_still_shadows_the_lower(dirs: list[Path]) -> None:
    run, etc, _ = dirs
    (run / "web.yaml").write_text("imgae: busybox\n")
    _declare(etc, "web.yaml")
    with pytest.raises(DeclarationError, match="unknown key") as caught:
        load_declaration("web", Scope.SYSTEM, dirs)
    assert caught.value.where == f"{run / 'web.yaml'}:1:imgae"


def test_missing_declaration_lists_the_dirs(dirs: list[Path]) -> None:
    with pytest.raises(DeclarationError, match="no declaration named 'web'") as caught:
        load_declaration("web", Scope.SYSTEM, dirs)
    assert caught.value.hint is not None
    for directory in dirs:
        assert str(directory) in caught.value.hint


def test_yaml_and_yml_side_by_side_is_an_error(dirs: list[Path]) -> None:
    etc = dirs[1]
    _declare(etc, "web.yaml")
    _declare(etc, "web.yml")
    scan = scan_declarations(Scope.SYSTEM, dirs)
    assert scan.found == {"web": etc / "web.yaml"}
    assert "given twice" in scan.broken["web"].message
    with pytest.raises(DeclarationError, match="given twice"):
        load_declaration("web", Scope.SYSTEM, dirs)


def test_dev_null_link_masks_lower_declarations(dirs: list[Path]) -> None:
    run, etc, _ = dirs
    _declare(etc, "web.yaml")
    (run / "web.yaml").symlink_to("/dev/null")
    scan = scan_declarations(Scope.SYSTEM, dirs)
    assert scan.found == {}
    assert scan.masked == {"web": run / "web.yaml"}
    with pytest.raises(DeclarationError, match="masked"):
        load_declaration("web", Scope.SYSTEM, dirs)


def test_bad_file_names_are_reported_not_loaded(dirs: list[Path]) -> None:
    etc = dirs[1]
    _declare(etc, "web.yaml")
    _declare(etc, "my app.yaml")
    _declare(etc, "tmpl@@.yaml")
    _declare(etc, ".web.yaml.swp")
    _declare(etc, ".#web.yaml")
    _declare(etc, "notes.txt")
    (etc / "dir.yaml").mkdir()
    scan = scan_declarations(Scope.SYSTEM, dirs)
    assert scan.found == {"web": etc / "web.yaml"}
    assert sorted(e.where or "" for e in scan.skipped) == [
        str(etc / "my app.yaml"), str(etc / "tmpl@@.yaml"),
    ]
    assert all("cannot be a container name" in e.message for e in scan.skipped)


@pytest.mark.parametrize("name", ["../etc/passwd", "a b", ".hidden", "x@y@z", "@y", ""])
def test_load_refuses_bad_names(dirs: list[Path], name: str) -> None:
    with pytest.raises(DeclarationError, match="cannot be a container name"):
        load_declaration(name, Scope.SYSTEM, dirs)


def test_missing_directories_are_fine(tmp_path: Path) -> None:
    assert scan_declarations(Scope.SYSTEM, [tmp_path / "nope"]).found == {}


def test_broken_symlink_is_found_and_fails_to_load(dirs: list[Path]) -> None:
    etc = dirs[1]
    (etc / "web.yaml").symlink_to(etc / "gone.yaml")
    assert find_declarations(Scope.SYSTEM, dirs) == {"web": etc / "web.yaml"}
    with pytest.raises(DeclarationError, match="cannot read"):
        load_declaration("web", Scope.SYSTEM, dirs)
