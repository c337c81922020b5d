"""hostctl-generator: units and [Install] links in the output dir, broken files isolated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostctl.declarations.model import Container
from hostctl.declarations.search import ENV_PATH
from hostctl.errors import DeclarationError
from hostctl.paths import Scope
from hostctl.units import generator
from hostctl.units.build import install_links
from hostctl.units.gencache import ENV_CACHE
from hostctl.units.generator import generate, hostctl_program, main
from tests.unit.test_units_syntax import exec_argv, parse_unit, values

LAUNCHER = [sys.executable, "-sSE",
            str(Path(__file__).resolve().parents[2] / "hostctl" / "launcher" / "entry.py")]

WEB = """\
image: docker.io/library/nginx:1.27
restart: always
install:
  WantedBy: [multi-user.target, "default.target"]
  RequiredBy: app.target
  UpheldBy: watch.target
  Alias: www.service
"""


@pytest.fixture
def decls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A declaration directory on $HOSTCTL_DECLARATION_PATH; kmsg is a plain file."""
    directory = tmp_path / "decls"
    directory.mkdir()
    monkeypatch.setenv(ENV_PATH, str(directory))
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    (tmp_path / "kmsg").touch()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hostctl").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(bindir / "hostctl-generator")])
    return directory


def test_writes_units_and_install_links(decls: Path, tmp_path: Path) -> None:
    (decls / "web.yaml").write_text(WEB)
    (decls / "db.yml").write_text("image: postgres:16\n")
    out = tmp_path / "out"
    assert main([str(out), str(tmp_path / "early"), str(tmp_path / "late")]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "app.target.requires", "db-healthcheck.service", "db-healthcheck.timer",
        "db.service", "default.target.wants", "hostctl-auto-update.service",
        "hostctl-auto-update.timer", "multi-user.target.wants", "watch.target.upholds",
        "web-healthcheck.service", "web-healthcheck.timer", "web.service", "www.service",
    ]
    for link in ("multi-user.target.wants", "default.target.wants", "app.target.requires",
                 "watch.target.upholds"):
        path = out / link / "web.service"
        assert os.readlink(path) == "../web.service"
        assert path.resolve() == out / "web.service"
    assert os.readlink(out / "www.service") == "web.service"
    unit = parse_unit((out / "web.service").read_text())
    # The entry script of this very checkout, run by this interpreter without site.
    assert exec_argv(values(unit, "Service", "ExecStart")[0]) == [*LAUNCHER, "launch", "web"]
    assert exec_argv(values(unit, "Service", "ExecStopPost")[0]) == [*LAUNCHER, "cleanup", "web"]
    assert values(unit, "Service", "Restart") == ["always"]
    assert not list(out.glob(".*"))  # no temporary files left
    assert not (tmp_path / "early").exists()  # everything goes to the normal dir


def test_a_broken_declaration_gets_a_failing_unit_and_others_are_fine(
    decls: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (decls / "web.yaml").write_text(WEB)
    (decls / "bad.yaml").write_text("image: busybox\nrestart: sometimes\n")
    (decls / "my app.yaml").write_text("image: busybox\n")
    out = tmp_path / "out"
    assert main([str(out)]) == 0
    assert (out / "multi-user.target.wants" / "web.service").is_symlink()
    assert values(parse_unit((out / "web.service").read_text()), "Service", "Type") == ["notify"]
    bad = parse_unit((out / "bad.service").read_text())
    assert values(bad, "Service", "Type") == ["oneshot"]
    assert exec_argv(values(bad, "Service", "ExecStart")[0])[3:] == ["launch", "bad"]
    assert not (out / "my app.service").exists()
    stderr = capsys.readouterr().err
    assert f"hostctl-generator: {decls / 'bad.yaml'}:2:restart: 'sometimes' is not allowed" in (
        stderr
    )
    assert f"{decls / 'my app.yaml'}: 'my app' cannot be a container name" in stderr
    kmsg = (tmp_path / "kmsg").read_text()
    assert f"<3>hostctl-generator: {decls / 'bad.yaml'}:2:restart:" in kmsg


def test_user_scope_units(decls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMD_SCOPE", "user")
    (decls / "web.yaml").write_text("image: busybox\n")
    assert main([str(tmp_path / "out")]) == 0
    unit = parse_unit((tmp_path / "out" / "web.service").read_text())
    assert exec_argv(values(unit, "Service", "ExecStart")[0])[3:] == ["launch", "--user", "web"]


def test_user_scope_warns_about_system_targets(
    decls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SYSTEMD_SCOPE", "user")
    (decls / "web.yaml").write_text("image: busybox\ninstall: {WantedBy: multi-user.target}\n")
    assert main([str(tmp_path / "out")]) == 0
    assert f"{decls / 'web.yaml'}:2:install: multi-user.target does not exist" in (
        capsys.readouterr().err
    )


def test_rerun_replaces_previous_output(decls: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (decls / "web.yaml").write_text(WEB)
    assert main([str(out)]) == 0
    (decls / "web.yaml").write_text(WEB.replace("always", "on-failure"))
    assert main([str(out)]) == 0
    unit = parse_unit((out / "web.service").read_text())
    assert values(unit, "Service", "Restart") == ["on-failure"]
    assert os.readlink(out / "multi-user.target.wants" / "web.service") == "../web.service"


def test_alias_naming_another_unit_is_ignored(
    decls: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (decls / "web.yaml").write_text("image: busybox\ninstall: {Alias: db.service}\n")
    (decls / "db.yaml").write_text("image: postgres\n")
    out = tmp_path / "out"
    assert main([str(out)]) == 0
    assert not (out / "db.service").is_symlink()
    db = parse_unit((out / "db.service").read_text())
    assert exec_argv(values(db, "Service", "ExecStart")[0])[3:] == ["launch", "db"]
    assert "Alias=db.service is ignored" in capsys.readouterr().err


def test_install_links_refuse_paths_in_code_built_containers(tmp_path: Path) -> None:
    container = Container(
        name="web", source=tmp_path / "web.yaml", image="busybox",
        install=(("WantedBy", ("../../../etc/evil.target",)),),
    )
    with pytest.raises(DeclarationError, match="not a unit name"):
        install_links(container)


def test_dry_run_writes_nothing(decls: Path, tmp_path: Path) -> None:
    (decls / "web.yaml").write_text(WEB)
    (decls / "bad.yaml").write_text("imgae: x\n")
    reports: list[str] = []
    units = generate(Scope.SYSTEM, None, report=reports.append)
    assert sorted(units) == ["bad.service", "web-healthcheck.service",
                             "web-healthcheck.timer", "web.service"]
    assert "Type=oneshot" in units["bad.service"]
    assert len(reports) == 1
    assert "unknown key 'imgae'" in reports[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "decls", "kmsg"]


def test_explicit_dirs_override_the_search_path(decls: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "api.yaml").write_text("image: busybox\n")
    (decls / "web.yaml").write_text("image: busybox\n")
    assert list(generate(Scope.SYSTEM, None, [other])) == [
        "api.service", "api-healthcheck.timer", "api-healthcheck.service"]


def test_unwritable_kmsg_is_skipped(
    decls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(generator, "KMSG", tmp_path / "no" / "kmsg")
    (decls / "bad.yaml").write_text("imgae: x\n")
    assert main([str(tmp_path / "out")]) == 0
    assert "unknown key" in capsys.readouterr().err


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["a", "b"]) == 2
    assert "usage: hostctl-generator" in capsys.readouterr().err


def test_unwritable_output_dir(decls: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    (decls / "web.yaml").write_text("image: busybox\n")
    assert main([str(tmp_path / "file" / "out")]) == 1


def test_hostctl_program_prefers_the_script_beside_the_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "hostctl").write_text("")
    (bindir / "hostctl-generator").write_text("")
    link = tmp_path / "system-generators" / "hostctl-generator"
    link.parent.mkdir()
    link.symlink_to(bindir / "hostctl-generator")
    monkeypatch.setattr(sys, "argv", [str(link)])
    assert hostctl_program() == str(bindir / "hostctl")


def test_generator_imports_stay_lean() -> None:
    code = (
        "import sys, hostctl.units.generator as g; "
        "print(' '.join(m for m in ('typer', 'urllib3', 'rich', 'pydbus', 'click', "
        "'hostctl.images.reference', 'hostctl.cli', 'hostctl.api') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_a_short_image_name_is_reported_with_file_and_line_and_still_rendered(
    tmp_path: Path,
) -> None:
    (tmp_path / "web.yaml").write_text("image: nginx\n")
    reports: list[str] = []
    units = generate(Scope.SYSTEM, None, dirs=[tmp_path], report=reports.append)
    assert "ExecStart=" in units["web.service"]
    assert reports == [f"{tmp_path}/web.yaml:1:image: warning: 'nginx' is a short name; the "
                       "registry is chosen by registries.conf at each pull (hint: write it in "
                       "full, e.g. docker.io/library/nginx)"]


def test_a_container_named_like_anothers_health_units_is_a_clear_error(decls: Path) -> None:
    (decls / "web.yaml").write_text("image: docker.io/library/busybox:1\n")
    (decls / "web-healthcheck.yaml").write_text("image: docker.io/library/busybox:1\n")
    reports: list[str] = []
    units = generate(Scope.SYSTEM, None, report=reports.append)
    assert sorted(units) == ["web-healthcheck-healthcheck.service",
                             "web-healthcheck-healthcheck.timer", "web-healthcheck.service",
                             "web.service"]
    assert "Type=oneshot" in units["web.service"]  # the unit that fails with the error
    assert "ExecStart=" in units["web-healthcheck.service"]
    assert " launch web-healthcheck\n" in units["web-healthcheck.service"]
    [report] = reports
    assert str(decls / "web.yaml") in report
    assert str(decls / "web-healthcheck.yaml") + " declares a container named" in report
    assert "health_cmd: none" in report
    (decls / "web.yaml").write_text("image: docker.io/library/busybox:1\nhealth_cmd: none\n")
    assert sorted(generate(Scope.SYSTEM, None, report=reports.append))[-1] == "web.service"
    assert len(reports) == 1
