"""The command line: verbs listed and documented, errors as one line with an exit code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostctl.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
HOSTCTL = str(Path(sys.executable).parent / "hostctl")


def verbs() -> set[str]:
    return {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}


def test_help_lists_every_verb() -> None:
    out = CliRunner().invoke(app, ["--help"]).output
    for verb in verbs():
        assert verb in out


def test_every_verb_is_documented_in_docs_cli() -> None:
    text = (ROOT / "docs/cli.md").read_text()
    documented = set(re.findall(r"^### `hostctl ([\w-]+)", text, re.M))
    assert verbs() <= documented, verbs() - documented


def test_launch_usage_error_without_typer(tmp_path: Path) -> None:
    done = subprocess.run([HOSTCTL, "launch"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage: hostctl launch [--user] NAME" in done.stderr


def test_launch_of_an_undeclared_name_says_where_it_looked(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOSTCTL_DECLARATION_PATH": str(tmp_path),
           "HOSTCTL_STATE_DIR": str(tmp_path / "state"), "HOSTCTL_RUN_DIR": str(tmp_path / "run")}
    done = subprocess.run([HOSTCTL, "launch", "nothere"], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "nothere" in done.stderr and str(tmp_path) in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_reports_file_line_key(tmp_path: Path) -> None:
    bad = tmp_path / "web.yaml"
    bad.write_text("image: 127.0.0.1:5000/demo/hello:1\nimgae: x\n")
    good = tmp_path / "ok.yaml"
    good.write_text("image: 127.0.0.1:5000/demo/hello:1\n")
    done = subprocess.run([HOSTCTL, "validate", str(good), str(bad)], capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert f"{good}: ok" in done.stdout
    assert f"{bad}:2" in done.stderr and "imgae" in done.stderr


def test_validate_warns_about_a_short_image_name_with_file_and_line(tmp_path: Path) -> None:
    short = tmp_path / "web.yaml"
    short.write_text("# a comment\nimage: nginx:1.27\n")
    done = subprocess.run([HOSTCTL, "validate", str(short)], capture_output=True, text=True)
    assert done.returncode == 0 and f"{short}: ok" in done.stdout
    assert f"{short}:2:image: warning: 'nginx:1.27' is a short name" in done.stderr
    full = tmp_path / "full.yaml"
    full.write_text("image: docker.io/library/nginx:1.27\n")
    done = subprocess.run([HOSTCTL, "validate", str(full)], capture_output=True, text=True)
    assert "warning" not in done.stderr


def test_every_verbs_help_renders() -> None:
    """Help texts are literal: os/arch[/variant] must not be read as markup (it was)."""
    runner = CliRunner()
    groups = {g.name: g.typer_instance for g in app.registered_groups}
    commands = [[verb] for verb in verbs()]
    for name, group in groups.items():
        assert group is not None
        commands += [[str(name), c.name or (c.callback.__name__ if c.callback else "")]
                     for c in group.registered_commands]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output, result.exception)


def test_install_hint_names_the_directory_other_users_cannot_pass(tmp_path: Path) -> None:
    from hostctl.api.setup import closed_to_others, unreachable_hint

    program = tmp_path / "bin" / "hostctl-generator"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    tmp_path.chmod(0o700)
    closed = closed_to_others(program)
    assert closed is not None
    # pytest's own base dir may already be closed; the first closed one is named.
    assert closed[0] in program.parents and closed[1] & 0o001 == 0
    hint = unreachable_hint(program)
    assert hint is not None and str(closed[0]) in hint and "Permission denied" in hint
    assert closed_to_others(Path("/usr/bin/env")) is None


def test_validate_reports_every_mistake_of_a_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "three.yaml"
    bad.write_text("image: docker.io/library/busybox:1\nrestrat: always\n"
                   "stop_timeout: soon\nenv: {'A=B': a}\nmemroy: 1G\n")
    done = subprocess.run([HOSTCTL, "validate", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [
        f"{bad}:2:restrat:", f"{bad}:3:stop_timeout:", f"{bad}:4:env.A=B:",
        f"{bad}:5:memroy:"], done.stderr
    assert all("(hint: " in line for line in lines)
    assert "did you mean 'restart'" in lines[0]


def test_validate_reports_every_mistake_of_a_quadlet_file(tmp_path: Path) -> None:
    bad = tmp_path / "three.container"
    bad.write_text("[Container]\nImag=docker.io/library/busybox:1\nStopTimeout=soon\n"
                   "[Service]\nRestart=sometimes\n")
    done = subprocess.run([HOSTCTL, "validate", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    wheres = [line.split(" ", 1)[0] for line in done.stderr.splitlines()]
    assert wheres == [f"{bad}:2:Imag:", f"{bad}:3:StopTimeout:", f"{bad}:5:Restart:",
                      f"{bad}:"], done.stderr


def test_one_mistake_is_still_one_plain_declaration_error(tmp_path: Path) -> None:
    from hostctl.declarations.yaml_reader import parse_yaml
    from hostctl.errors import DeclarationError, DeclarationErrors

    with pytest.raises(DeclarationError) as one:
        parse_yaml("image: a/b:1\nnope: 1\n", tmp_path / "x.yaml")
    assert not isinstance(one.value, DeclarationErrors)
    with pytest.raises(DeclarationErrors) as two:
        parse_yaml("image: a/b:1\nnope: 1\nnada: 2\n", tmp_path / "x.yaml")
    assert two.value.where == f"{tmp_path}/x.yaml:2:nope"  # the first, for one-error callers
    assert len(two.value.problems) == 2
def test_validate_every_kind_of_file_without_a_traceback(tmp_path: Path) -> None:
    files = {
        "web@.container": "[Container]\nImage=docker.io/library/busybox\nExec=sleep %i\n",
        "lab.network": "[Network]\nSubnet=10.91.7.0/24\n",
        "bad.network": "[Network]\nDriver=macvlan\n",
        "data.volume": "[Volume]\n",
        "app.pod": "[Pod]\n",
        "bad.pod": "[Pod]\nUserNS=auto\n",
        "app.kube": "[Kube]\n",
        "notes.txt": "hello\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([HOSTCTL, "validate", *(str(tmp_path / n) for n in files)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{tmp_path / 'web@.container'}: ok" in done.stdout
    assert f"{tmp_path / 'lab.network'}: ok" in done.stdout
    assert f"{tmp_path / 'bad.network'}:2:Driver: driver 'macvlan'" in done.stderr
    assert f"{tmp_path / 'data.volume'}: ok" in done.stdout
    assert f"{tmp_path / 'app.pod'}: ok" in done.stdout
    assert f"{tmp_path / 'bad.pod'}:2:UserNS: unsupported key 'UserNS'" in done.stderr
    assert f"{tmp_path / 'app.kube'}: no Yaml= in [Kube]" in done.stderr
    assert f"{tmp_path / 'notes.txt'}: not a declaration file" in done.stderr


def test_the_generator_reports_files_of_unsupported_types(tmp_path: Path) -> None:
    from hostctl.paths import Scope
    from hostctl.units.generator import generate

    (tmp_path / "app.artifact").write_text("[Artifact]\n")
    (tmp_path / "app.kube").write_text("[Kube]\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, None, dirs=[tmp_path], report=reported.append)
    assert reported == [
        f"{tmp_path / 'app.artifact'}: quadlet .artifact files are not supported by hostctl "
        "(hint: hostctl reads .container, .pod, .network, .volume, .image, .build and .kube "
        "files (and its own YAML); declare what the .artifact file does another way, or "
        "remove it) (file ignored)",
        f"{tmp_path / 'app.kube'}: no Yaml= in [Kube] (hint: add Yaml=FILE.yaml (the "
        "Kubernetes YAML to play))",
    ]
    assert "no Yaml= in [Kube]" in units["app.service"]  # a unit that fails saying why


def test_validate_yaml_networks_and_volumes_by_their_directory(tmp_path: Path) -> None:
    (tmp_path / "volumes").mkdir()
    (tmp_path / "networks").mkdir()
    (tmp_path / "volumes/cache.yaml").write_text("uid: 5\nlabel: x\n")
    (tmp_path / "networks/lab.yaml").write_text("subnet: 10.1.1.0/24\nmtu: 1400\n")
    done = subprocess.run([HOSTCTL, "validate", str(tmp_path / "volumes/cache.yaml"),
                           str(tmp_path / "networks/lab.yaml")], capture_output=True, text=True)
    assert done.returncode == 2
    assert f"{tmp_path / 'networks/lab.yaml'}: ok" in done.stdout
    assert f"{tmp_path / 'volumes/cache.yaml'}:2:label: unknown key 'label'" in done.stderr


def test_push_and_copy_parse_their_common_forms_without_typer_and_leave_the_rest_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from hostctl.cli.quick_ship import parse

    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal: no progress bars
    assert parse(["app:1", "docker://r/app:1", "--format=json", "--all", "--user",
                  "--platform", "linux/arm64", "--compress", "zstd"], (1, 2)) == {
        "args": ["app:1", "docker://r/app:1"], "fmt": "json", "all_platforms": True,
        "user": True, "platform": "linux/arm64", "compress": "zstd"}
    assert parse(["app:1"], (1, 2)) == {
        "args": ["app:1"], "fmt": "table", "all_platforms": False, "user": False,
        "platform": None, "compress": None}
    # typer's to parse: help, signing and policy options, unknown options, a wrong count
    # of arguments, a format it refuses (it says why)
    for argv, count in ((["--help"], (1, 2)), (["a", "--sign-by-sigstore-key", "k"], (1, 2)),
                        (["a", "b", "--signature-policy", "p"], (2, 2)), (["a"], (2, 2)),
                        (["a", "b", "c"], (1, 2)), (["a", "--format", "xml"], (1, 2)),
                        (["a", "--platform"], (1, 2)), (["a", "--", "b"], (1, 2))):
        assert parse(argv, count) is None, argv


COMPOSE_UP_FORMS = (
    ["-d"], ["--detach", "--user"], ["-d", "-p", "shop", "-f", "a.yaml", "-f", "b.yaml"],
    ["-d", "--project-name=shop", "--file=a.yaml", "--env-file", "x.env",
     "--env-file=y.env", "--profile", "debug", "--profile=ops"],
)


def test_compose_up_without_typer_calls_up_as_typer_does_and_leaves_the_rest_to_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from hostctl.api import compose as api_compose
    from hostctl.api.compose import ComposeResult
    from hostctl.cli import quick_compose

    calls: list[tuple[object, object]] = []

    def up(source: object, scope: object) -> ComposeResult:
        calls.append((source, scope))
        return ComposeResult("shop", True, ("write x", "daemon-reload"),
                             failed=("shop-db.service: failed (exit-code)",),
                             ignored=("compose.yaml:3: expose: no meaning here",))

    monkeypatch.setattr(api_compose, "up", up)
    monkeypatch.chdir(tmp_path)
    for form in COMPOSE_UP_FORMS:
        calls.clear()
        assert quick_compose.main(["compose", "up", *form]) == 1, form
        quick_err = capsys.readouterr().err
        typer_run = CliRunner().invoke(app, ["compose", "up", *form])
        assert typer_run.exit_code == 1, typer_run.output
        assert calls[0] == calls[1], form
        assert quick_err == typer_run.output
        assert "failed: shop-db.service" in quick_err and "ignored: compose.yaml:3" in quick_err
    # typer's to parse: help, a service argument, an unknown option, a missing value
    for form in (["--help"], ["-d", "web"], ["-d", "--build"], ["-d", "-p"],
                 ["-f", "-d"], ["-d", "--pull=always"]):
        assert quick_compose.parse(form) is None, form
    assert quick_compose.main(["compose", "down"]) is None
