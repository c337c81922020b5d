"""The generator's render cache: reused while nothing changed, and a fresh render after
any change to a declaration, a drop-in, a template, hostctl's code or version, or the
context; an unusable cache never stops the generator."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hostctl
from hostctl.declarations.search import ENV_PATH
from hostctl.paths import default_scope
from hostctl.units import gencache, generator
from hostctl.units.gencache import ENV_CACHE

WEB = "image: docker.io/library/nginx:1.27\nstop_timeout: 20\n"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Declarations in tmp/decls, the cache in tmp/cache; renders are counted."""
    decls = tmp_path / "decls"
    decls.mkdir()
    monkeypatch.setenv(ENV_PATH, str(decls))
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hostctl").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(bindir / "hostctl-generator")])
    (decls / "web.yaml").write_text(WEB)
    return decls


class Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.renders = 0
        real = generator.render

        def counted(*args: object, **kwargs: object) -> list[gencache.Unit]:
            self.renders += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(generator, "render", counted)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Counter:
    return Counter(monkeypatch)


def run(out: Path) -> dict[str, str]:
    """One generator run into a fresh OUT; the containers' unit files it wrote (not the
    auto-update timer's, written beside them whenever there are any)."""
    assert generator.main([str(out)]) == 0
    return {p.name: p.read_text() for p in out.iterdir()
            if p.is_file() and not p.name.startswith("hostctl-auto-update.")}


def test_an_unchanged_input_is_not_rendered_again(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    first = run(tmp_path / "out1")
    second = run(tmp_path / "out2")
    assert counter.renders == 1
    assert first == second and "web.service" in second


def test_the_cache_hit_does_not_import_yaml_or_jinja2(env: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from hostctl.units.generator import main; "
        f"assert main([{str(tmp_path / 'out')!r}]) == 0; "
        "print(' '.join(m for m in ('yaml', 'jinja2', 'hostctl.declarations.search') "
        "if m in sys.modules))"
    )
    argv = [sys.executable, "-c", code]
    cold = subprocess.run(argv, capture_output=True, text=True, check=True, env=os.environ)
    assert "yaml" in cold.stdout and "jinja2" in cold.stdout  # rendered: the slow path
    warm = subprocess.run(argv, capture_output=True, text=True, check=True, env=os.environ)
    assert warm.stdout.strip() == ""
    assert (tmp_path / "out" / "web.service").read_text().count("ExecStart=") == 1


def test_a_changed_declaration_is_rendered_even_with_its_mtime_and_size_restored(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    run(tmp_path / "out1")
    path = env / "web.yaml"
    before = path.stat()
    path.write_text(WEB.replace("20", "30"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    units = run(tmp_path / "out2")
    assert counter.renders == 2
    assert "TimeoutStopSec=30" in units["web.service"]


def test_added_and_removed_declarations_change_the_units(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    run(tmp_path / "out1")
    (env / "db.yaml").write_text("image: postgres:16\n")
    containers = {name for name in run(tmp_path / "out2") if "-healthcheck." not in name}
    assert containers == {"web.service", "db.service"}
    (env / "web.yaml").unlink()
    assert set(run(tmp_path / "out3")) == {"db.service", "db-healthcheck.timer",
                                           "db-healthcheck.service"}
    assert counter.renders == 3


@pytest.mark.parametrize("dropin_dir", ["web.yaml.d", "web.yml.d"])
def test_a_new_or_changed_dropin_is_rendered(
    env: Path, tmp_path: Path, counter: Counter, dropin_dir: str
) -> None:
    run(tmp_path / "out1")
    (env / dropin_dir).mkdir()
    dropin = env / dropin_dir / "10-stop.yaml"
    dropin.write_text("stop_timeout: 40\n")
    assert "TimeoutStopSec=40" in run(tmp_path / "out2")["web.service"]
    dropin.write_text("stop_timeout: 50\n")
    assert "TimeoutStopSec=50" in run(tmp_path / "out3")["web.service"]
    assert counter.renders == 3


def test_a_masking_symlink_and_its_removal_are_seen(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    run(tmp_path / "out1")
    (env / "web.yaml").unlink()
    (env / "web.yaml").symlink_to("/dev/null")
    assert "web.service" not in run(tmp_path / "out2")
    assert counter.renders == 2


def test_a_symlinked_declaration_whose_target_changes_is_rendered(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    real = tmp_path / "elsewhere.yaml"
    real.write_text(WEB)
    (env / "web.yaml").unlink()
    (env / "web.yaml").symlink_to(real)
    run(tmp_path / "out1")
    real.write_text(WEB.replace("20", "45"))
    assert "TimeoutStopSec=45" in run(tmp_path / "out2")["web.service"]
    assert counter.renders == 2


def test_a_changed_template_is_rendered(
    env: Path, tmp_path: Path, counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = gencache._templates_dir()
    assert templates is not None and Path(templates, "container.service.j2").is_file()
    copy = tmp_path / "templates"
    copy.mkdir()
    (copy / "container.service.j2").write_text(Path(templates, "container.service.j2").read_text())
    monkeypatch.setattr(gencache, "_templates_dir", lambda: str(copy))
    run(tmp_path / "out1")
    (copy / "container.service.j2").write_text("changed\n")
    run(tmp_path / "out2")
    assert counter.renders == 2


def test_hostctl_code_and_version_are_part_of_the_key(
    env: Path, tmp_path: Path, counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tmp_path / "out1")
    monkeypatch.setattr(hostctl, "__version__", "99.0")
    run(tmp_path / "out2")
    assert counter.renders == 2
    package = tmp_path / "pkg"
    (package / "units").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    module = package / "units" / "render.py"
    module.write_text("x = 1\n")
    monkeypatch.setattr(hostctl, "__file__", str(package / "__init__.py"))
    run(tmp_path / "out3")
    run(tmp_path / "out4")
    assert counter.renders == 3
    module.write_text("x = 2\n")
    run(tmp_path / "out5")
    assert counter.renders == 4


def test_the_program_the_units_run_is_part_of_the_key(
    env: Path, tmp_path: Path, counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tmp_path / "out1")
    other = tmp_path / "other" / "python3"
    monkeypatch.setattr(sys, "executable", str(other))
    units = run(tmp_path / "out2")
    assert f"ExecStart={other} -sSE " in units["web.service"]
    assert counter.renders == 2


def test_errors_are_reported_again_on_a_cache_hit(
    env: Path, tmp_path: Path, counter: Counter, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "bad.yaml").write_text("image: busybox\nrestart: sometimes\n")
    for out in ("out1", "out2"):
        run(tmp_path / out)
        assert "bad.yaml:2:restart" in capsys.readouterr().err
    assert counter.renders == 1


def test_a_cache_others_can_write_is_ignored(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    run(tmp_path / "out1")
    cache = tmp_path / "cache" / "system.cache"
    cache.chmod(0o666)
    run(tmp_path / "out2")
    assert counter.renders == 2


def test_a_corrupt_cache_is_ignored(env: Path, tmp_path: Path, counter: Counter) -> None:
    run(tmp_path / "out1")
    cache = tmp_path / "cache" / "system.cache"
    cache.write_bytes(cache.read_bytes()[:100])
    assert "web.service" in run(tmp_path / "out2")
    cache.write_bytes(b"\x00garbage")
    assert "web.service" in run(tmp_path / "out3")
    assert counter.renders == 3


def test_an_unwritable_cache_dir_only_costs_a_render(
    env: Path, tmp_path: Path, counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(ENV_CACHE, str(blocker / "cache"))  # a dir below a file: ENOTDIR
    assert "web.service" in run(tmp_path / "out1")
    assert "web.service" in run(tmp_path / "out2")
    assert counter.renders == 2


def test_caching_off(env: Path, tmp_path: Path, counter: Counter,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CACHE, "off")
    run(tmp_path / "out1")
    run(tmp_path / "out2")
    assert counter.renders == 2
    assert not (tmp_path / "cache").exists()


def test_default_cache_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_CACHE, raising=False)
    assert gencache.cache_file("system") == "/var/cache/hostctl/generator/system.cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert gencache.cache_file("user") == f"{tmp_path}/hostctl/generator/user.cache"


@pytest.mark.parametrize("told", ["system", "user", None])
def test_scope_name_agrees_with_default_scope(
    monkeypatch: pytest.MonkeyPatch, told: str | None
) -> None:
    if told is None:
        monkeypatch.delenv("SYSTEMD_SCOPE", raising=False)
    else:
        monkeypatch.setenv("SYSTEMD_SCOPE", told)
    assert generator.scope_name() == default_scope().value


AUDITED = """\
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(args) if event == "open" else None)
try:
    exec(compile({script!r}, "hostctl-generator", "exec"))
except SystemExit as done:
    assert not done.code, done.code
print(repr([(str(path), flags) for path, _, flags in opened if not isinstance(path, int)]))
print(" ".join(sorted(sys.modules)))
"""


def lean_run(tmp_path: Path, out: Path) -> tuple[list[tuple[str, int]], set[str]]:
    """The generator as systemd runs it (genentry's script, python -sSE) into OUT: the
    files other than modules it opened (path, flags) and the modules it imported."""
    from hostctl.units.genentry import script

    body = script().split("\n", 1)[1]  # the shebang's -sSE is given on the command line
    code = AUDITED.format(script=body)
    done = subprocess.run([sys.executable, "-sS", "-c", code, str(out)], capture_output=True,
                          text=True, env=os.environ, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    opened, modules = done.stdout.splitlines()
    files = [(path, flags) for path, flags in ast.literal_eval(opened)
             if not path.endswith((".py", ".pyc"))]  # imports of hostctl's own modules
    return files, set(modules.split())


def test_a_cache_hit_reads_nothing_but_stat_data_and_the_cache(env: Path, tmp_path: Path) -> None:
    (env / "web.yaml.d").mkdir()
    (env / "web.yaml.d" / "10-stop.yaml").write_text("stop_timeout: 40\n")
    cold, cold_modules = lean_run(tmp_path, tmp_path / "out1")
    assert str(env / "web.yaml") in {path for path, _ in cold}  # a render reads them
    assert "yaml" in cold_modules
    cache = tmp_path / "cache" / "system.cache"
    stored = cache.stat()
    warm, modules = lean_run(tmp_path, tmp_path / "out2")
    paths = {path for path, _ in warm}
    assert not {p for p in paths if p.startswith(str(env))}, warm  # no declaration, no drop-in
    assert {p for p in paths if not p.startswith(str(tmp_path / "out2"))} == {str(cache)}, warm
    written = {path for path, flags in warm if flags is not None and flags & os.O_ACCMODE}
    assert written and all(p.startswith(str(tmp_path / "out2")) for p in written), warm
    assert (cache.stat().st_ino, cache.stat().st_mtime_ns) == (stored.st_ino, stored.st_mtime_ns)
    assert "TimeoutStopSec=40" in (tmp_path / "out2" / "web.service").read_text()
    # builtin and frozen modules only: no yaml, jinja2, typing, collections, re
    assert not modules & {"yaml", "jinja2", "typing", "collections", "re", "contextlib"}, modules


KUBE_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: api}
spec:
  containers:
    - name: web
      image: docker.io/library/nginx:1.27
"""


def test_a_kube_files_yaml_is_stamped_itself_not_its_directory(
    env: Path, tmp_path: Path, counter: Counter
) -> None:
    app = tmp_path / "srv"
    app.mkdir()
    (app / "api.yaml").write_text(KUBE_POD)
    (env / "api.kube").write_text(f"[Kube]\nYaml={app / 'api.yaml'}\n")
    first = run(tmp_path / "out1")
    assert "api.service" in first
    (app / "access.log").write_text("a line\n")  # beside the YAML: not an input
    run(tmp_path / "out2")
    assert counter.renders == 1
    (app / "api.yaml").write_text(KUBE_POD.replace("nginx:1.27", "nginx:1.28"))
    run(tmp_path / "out3")
    assert counter.renders == 2
    (app / "api.yaml").unlink()
    run(tmp_path / "out4")
    assert counter.renders == 3
