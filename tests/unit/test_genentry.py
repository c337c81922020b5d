"""The generator program `hostctl install` writes: a script for this interpreter started
without the site module, which renders on a miss and serves the cache on a hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostctl.api.setup import install_generators, uninstall_generators
from hostctl.declarations.search import ENV_PATH
from hostctl.units.gencache import ENV_CACHE
from hostctl.units.generator import compiled_launcher, entry_script


def test_install_writes_the_compiled_generator_once_and_replaces_an_old_link(
    tmp_path: Path,
) -> None:
    system = tmp_path / "etc/systemd/system-generators"
    system.mkdir(parents=True)
    (system / "hostctl-generator").symlink_to("/usr/bin/hostctl-generator")  # an older install
    first = install_generators(tmp_path)
    assert first.changed and first.compiled
    fallback = tmp_path / "usr/local/lib/hostctl/hostctl-generator.py"
    assert fallback.read_text().splitlines()[0] == f"#!{sys.executable} -sSE"
    for program in first.links:
        assert not program.is_symlink() and os.access(program, os.X_OK)
        data = program.read_bytes()
        assert data.startswith(b"\x7fELF") and str(fallback).encode() in data
    # the compiled launcher, where the generator looks for this interpreter's
    launcher = tmp_path / compiled_launcher(sys.executable, entry_script()).lstrip("/")
    assert os.access(launcher, os.X_OK) and launcher.read_bytes().startswith(b"\x7fELF")
    assert os.fsencode(entry_script()) in launcher.read_bytes()
    again = install_generators(tmp_path)
    assert not again.changed and again.links == first.links
    assert uninstall_generators(tmp_path).links == first.links
    assert not any(program.exists() for program in first.links)
    assert not list(fallback.parent.iterdir())


def test_without_a_compiler_install_writes_the_lean_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.delenv("CC", raising=False)
    result = install_generators(tmp_path)
    assert not result.compiled and any("no C compiler" in w for w in result.warnings)
    assert any("units run the Python launcher" in w for w in result.warnings)
    launcher = tmp_path / compiled_launcher(sys.executable, entry_script()).lstrip("/")
    assert not launcher.exists()
    for program in result.links:
        assert program.read_text().splitlines()[0] == f"#!{sys.executable} -sSE"


def test_the_written_script_generates_units_without_site(tmp_path: Path) -> None:
    program = install_generators(tmp_path).links[0]
    decls = tmp_path / "decls"
    decls.mkdir()
    (decls / "web.yaml").write_text("image: docker.io/library/nginx:1.27\n")
    env = {**os.environ, ENV_PATH: str(decls), ENV_CACHE: str(tmp_path / "cache"),
           "SYSTEMD_SCOPE": "system"}
    for out in ("out1", "out2"):  # a render (site loaded for yaml), then a cache hit
        done = subprocess.run([str(program), str(tmp_path / out)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        unit = (tmp_path / out / "web.service").read_text()
        assert f"ExecStart={sys.executable} -sSE " in unit
