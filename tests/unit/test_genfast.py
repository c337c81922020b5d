"""The compiled generator (hostctl/units/genfast.c) writes exactly what the Python
generator writes: on a hit from its fast cache, and through the Python generator after
any change (a declaration, an added file, a removed drop-in, hostctl's version, the
environment) or a cache it must not trust (truncated, corrupt, escaping the output dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import hostctl
from hostctl.declarations.dirs import ENV_PATH
from hostctl.units import gencompile
from hostctl.units.gencache import ENV_CACHE
from hostctl.units.genentry import script

WEB = "image: docker.io/library/nginx:1.27\ninstall: {WantedBy: multi-user.target}\n"
DB = "image: docker.io/library/postgres:16\nnetwork: host\n"
BROKEN = "image: [not, a, string\n"
Tree = dict[str, tuple[str, bytes | str, int]]


@dataclass(frozen=True)
class Gen:
    tmp: Path
    binary: Path
    script: Path
    lib: Path  # a copy of the hostctl package the script imports
    env: dict[str, str]

    @property
    def fast(self) -> Path:
        return self.tmp / "cache" / "system.fast"

    def run(self, program: Path, out: Path, env: dict[str, str] | None = None) -> str:
        done = subprocess.run([str(program), str(out)], env=env or self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def compare(self, name: str) -> bool:
        """The compiled generator's output and messages against a fresh Python render (no
        cache); whether the compiled one answered alone (its fast cache untouched)."""
        before = self.fast.stat().st_ino if self.fast.exists() else None
        fast_err = self.run(self.binary, self.tmp / f"{name}-c")
        hit = before is not None and self.fast.stat().st_ino == before
        ref_err = self.run(self.script, self.tmp / f"{name}-py",
                           {**self.env, ENV_CACHE: "off"})
        assert tree(self.tmp / f"{name}-c") == tree(self.tmp / f"{name}-py")
        assert fast_err == ref_err
        return hit


def tree(root: Path) -> Tree:
    found: Tree = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode & 0o7777
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path), mode)
        elif path.is_dir():
            found[rel] = ("dir", "", mode)
        else:
            found[rel] = ("file", path.read_bytes(), mode)
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The compiled generator, the Python script it falls back to, hostctl's copy."""
    cc = gencompile.compiler()
    assert cc, "the compiled generator needs a C compiler (scripts/setup.sh installs gcc)"
    base = tmp_path_factory.mktemp("genfast")
    lib = base / "lib"
    shutil.copytree(Path(hostctl.__file__).parent, lib / "hostctl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # as installed: compiled already (a first __pycache__ changes its directory's stamp)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(lib)], check=True)
    program = base / "bin" / "hostctl-generator.py"
    program.parent.mkdir()
    program.write_text(script(path=str(lib)))
    program.chmod(0o755)
    (base / "bin" / "hostctl").write_text("#!/bin/sh\n")  # hostctl_program finds it
    binary = base / "bin" / "hostctl-generator"
    subprocess.run(gencompile.command(cc, str(program), binary), check=True)
    return binary, program, lib


@pytest.fixture
def gen(tmp_path: Path, built: tuple[Path, Path, Path]) -> Gen:
    decls = tmp_path / "decls"
    decls.mkdir()
    (decls / "web.yaml").write_text(WEB)
    (decls / "web.yaml.d").mkdir()
    (decls / "web.yaml.d" / "env.yaml").write_text("env: {EXTRA: dropin}\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SYSTEMD_SCOPE": "system",
           ENV_PATH: str(decls), ENV_CACHE: str(tmp_path / "cache"),
           "HOSTCTL_CONFIG_DIR": str(tmp_path / "config")}
    return Gen(tmp_path, *built, env)


def test_the_compiled_generator_writes_what_python_writes_after_every_change(
    gen: Gen,
) -> None:
    decls = Path(gen.env[ENV_PATH])
    assert not gen.compare("first")  # no cache yet: Python renders and writes both
    assert gen.compare("hit")
    assert gen.compare("hit-again")
    (decls / "web.yaml").write_text(WEB.replace("1.27", "1.28"))  # a modified declaration
    assert not gen.compare("modified")
    assert gen.compare("modified-hit")
    (decls / "db.yaml").write_text(DB)  # an added file
    assert not gen.compare("added")
    (decls / "web.yaml.d" / "env.yaml").unlink()  # a removed drop-in
    assert not gen.compare("removed")
    assert gen.compare("removed-hit")
    init = gen.lib / "hostctl" / "__init__.py"
    original = init.read_text()
    try:
        init.write_text(original.replace(hostctl.__version__, "99.0"))  # a new version
        assert not gen.compare("version")
        assert gen.compare("version-hit")
    finally:
        init.write_text(original)
    (gen.tmp / "config").mkdir()
    (gen.tmp / "config" / "auto-update-timer.enabled").touch()  # the timer's link appears
    assert not gen.compare("timer")
    assert (gen.tmp / "timer-c" / "timers.target.wants").is_dir()
    env = dict(gen.env)
    gen.env["HOSTCTL_EXTRA"] = "1"  # the environment is part of the context
    assert not gen.compare("environment")
    gen.env.clear()
    gen.env.update(env)
    assert not gen.compare("environment-back")


def test_messages_are_reported_again_on_a_hit(gen: Gen) -> None:
    (Path(gen.env[ENV_PATH]) / "bad.yaml").write_text(BROKEN)
    gen.compare("render")
    assert gen.compare("hit")
    assert "bad.yaml" in gen.run(gen.binary, gen.tmp / "again")


def test_a_second_run_into_the_same_directory_replaces_the_files(gen: Gen) -> None:
    gen.compare("first")
    out = gen.tmp / "same"
    gen.run(gen.binary, out)
    (out / "web.service").write_text("stale")
    gen.run(gen.binary, out)
    assert tree(out) == tree(gen.tmp / "first-py")


def _rewrite(fast: Path, old: bytes, new: bytes) -> None:
    data = fast.read_bytes()
    assert old in data
    fast.write_bytes(data.replace(old, new, 1))
    fast.chmod(0o600)


DAMAGES = ("truncated", "no-end", "trailing", "version", "escaping-unit", "escaping-link",
           "absolute-link", "foreign-target", "group-writable", "oversized-unit", "fifo")


def damage(gen: Gen, how: str) -> None:
    data = gen.fast.read_bytes()
    unit = f"U {b'web.service'.hex()} ".encode()
    link = f"K {b'multi-user.target.wants/web.service'.hex()} ".encode()
    if how == "truncated":
        gen.fast.write_bytes(data[: len(data) // 2])
    elif how == "no-end":
        gen.fast.write_bytes(data[:-2])
    elif how == "trailing":
        gen.fast.write_bytes(data + b"U 41 0\n\n")
    elif how == "version":
        _rewrite(gen.fast, b"hostctl-genfast 1\n", b"hostctl-genfast 2\n")
    elif how == "escaping-unit":
        _rewrite(gen.fast, unit, f"U {b'../escaped'.hex()} ".encode())
    elif how == "escaping-link":
        _rewrite(gen.fast, link, f"K {b'../../escaped'.hex()} ".encode())
    elif how == "absolute-link":
        _rewrite(gen.fast, link, f"K {str(gen.tmp / 'escaped').encode().hex()} ".encode())
    elif how == "foreign-target":
        _rewrite(gen.fast, f"{b'../web.service'.hex()}\n".encode(),
                 f"{b'../../../etc/passwd'.hex()}\n".encode())
    elif how == "group-writable":
        gen.fast.chmod(0o620)
    elif how == "fifo":  # neither program may wait for a writer
        for path in (gen.fast, gen.fast.with_suffix(".cache")):
            path.unlink()
            os.mkfifo(path, 0o600)
    elif how == "oversized-unit":
        size = data[data.index(unit) + len(unit):].split(b"\n", 1)[0]
        _rewrite(gen.fast, unit + size, unit + b"99999999")


def test_a_cache_it_cannot_trust_is_a_miss(gen: Gen) -> None:
    gen.compare("first")
    reference = tree(gen.tmp / "first-py")
    for how in DAMAGES:
        damage(gen, how)
        before = gen.fast.stat().st_ino
        gen.run(gen.binary, gen.tmp / how)
        assert gen.fast.stat().st_ino != before, how  # the Python generator answered
        assert tree(gen.tmp / how) == reference, how
        assert not (gen.tmp / "escaped").exists(), how
    assert gen.compare("repaired")


def test_a_user_scope_finds_its_fast_cache_under_xdg_cache_home(gen: Gen) -> None:
    del gen.env[ENV_CACHE]
    gen.env.update(SYSTEMD_SCOPE="user", XDG_CACHE_HOME=str(gen.tmp / "xdg"),
                   XDG_CONFIG_HOME=str(gen.tmp / "xdgconfig"))
    fast = gen.tmp / "xdg" / "hostctl" / "generator" / "user.fast"
    gen.run(gen.binary, gen.tmp / "first")
    inode = fast.stat().st_ino
    gen.run(gen.binary, gen.tmp / "hit")
    assert fast.stat().st_ino == inode
    assert tree(gen.tmp / "hit") == tree(gen.tmp / "first")
    assert "web.service" in os.listdir(gen.tmp / "hit")
