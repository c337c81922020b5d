"""Drop-ins: NAME.yaml.d/*.yaml deep-merged, NAME.container.d/*.conf appended, across the
search path with higher directories shadowing a drop-in of the same name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.declarations.search import load_declaration
from hostctl.errors import DeclarationError
from hostctl.paths import Scope


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_yaml_dropins_deep_merge_in_name_order(tmp_path: Path) -> None:
    run, etc = tmp_path / "run", tmp_path / "etc"
    _write(etc / "web.yaml", "image: busybox\nenv: {A: '1', B: '2'}\nmemory: 1G\n")
    _write(etc / "web.yaml.d/20-mem.yaml", "memory: 2G\n")
    _write(etc / "web.yaml.d/10-env.yaml", "env: {B: x, C: '3'}\n")
    _write(run / "web.yaml.d/20-mem.yaml", "memory: 3G\n")  # shadows etc's 20-mem
    c = load_declaration("web", Scope.SYSTEM, [run, etc])
    assert c.env == (("A", "1"), ("B", "x"), ("C", "3"))
    assert c.memory == 3 * 2**30


def test_an_error_in_a_dropin_names_the_dropin(tmp_path: Path) -> None:
    _write(tmp_path / "web.yaml", "image: busybox\n")
    dropin = _write(tmp_path / "web.yaml.d/x.yaml", "\ncpus: lots\n")
    with pytest.raises(DeclarationError) as caught:
        load_declaration("web", Scope.SYSTEM, [tmp_path])
    assert caught.value.where == f"{dropin}:2:cpus"


def test_quadlet_dropins_are_appended(tmp_path: Path) -> None:
    _write(tmp_path / "q.container", "[Container]\nImage=busybox\nEnvironment=A=1\n")
    _write(tmp_path / "q.container.d/override.conf", "[Container]\nEnvironment=B=2\nImage=alpine\n")
    c = load_declaration("q", Scope.SYSTEM, [tmp_path])
    assert (c.image, c.env) == ("alpine", (("A", "1"), ("B", "2")))


def test_yaml_and_container_of_one_name_in_one_directory_conflict(tmp_path: Path) -> None:
    _write(tmp_path / "q.container", "[Container]\nImage=busybox\n")
    _write(tmp_path / "q.yaml", "image: busybox\n")
    with pytest.raises(DeclarationError, match="given twice"):
        load_declaration("q", Scope.SYSTEM, [tmp_path])
