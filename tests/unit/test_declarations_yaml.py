"""Reading YAML declarations: values as the user meant them, errors at FILE:LINE:KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.declarations.model import Container
from hostctl.declarations.settings import Restart
from hostctl.declarations.yaml_reader import load_yaml, parse_yaml
from hostctl.errors import DeclarationError

IMAGE = "image: docker.io/library/busybox:1.36\n"


def _write(tmp_path: Path, text: str | bytes, name: str = "web.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _load(tmp_path: Path, text: str) -> Container:
    return load_yaml(_write(tmp_path, text))


def _error(tmp_path: Path, text: str | bytes) -> DeclarationError:
    path = _write(tmp_path, text)
    with pytest.raises(DeclarationError) as caught:
        load_yaml(path)
    return caught.value


def test_a_full_declaration(tmp_path: Path) -> None:
    container = _load(
        tmp_path,
        IMAGE
        + "command: [sleep, 1:30]\n"
        "entrypoint: /bin/sh -c 'exec \"$@\"' --\n"
        "env: {A: 1, B: yes, C: 'x y', D: 0o17, E: ''}\n"
        "workdir: /srv/app\n"
        "user: 1:30\n"
        "stop_timeout: 30\n"
        "restart: on-failure\n"
        "unit: {After: db.service}\n"
        "service:\n  CPUWeight: 50\n  ExecStartPre: [/bin/true, /bin/echo %n]\n  Nice:\n"
        "install: {WantedBy: multi-user.target default.target}\n",
    )
    assert container == Container(
        name="web",
        source=tmp_path / "web.yaml",
        image="docker.io/library/busybox:1.36",
        command=("sleep", "1:30"),
        entrypoint=("/bin/sh", "-c", 'exec "$@"', "--"),
        env=(("A", "1"), ("B", "yes"), ("C", "x y"), ("D", "0o17"), ("E", "")),
        workdir="/srv/app",
        user="1:30",
        stop_timeout=30,
        restart=Restart.ON_FAILURE,
        unit=(("After", ("db.service",)),),
        service=(
            ("CPUWeight", ("50",)),
            ("ExecStartPre", ("/bin/true", "/bin/echo %n")),
            ("Nice", ("",)),
        ),
        install=(("WantedBy", ("multi-user.target default.target",)),),
    )
    assert container.where("workdir") == f"{tmp_path / 'web.yaml'}:5:workdir"


def test_defaults_come_from_the_settings_table(tmp_path: Path) -> None:
    container = _load(tmp_path, IMAGE)
    assert (container.command, container.entrypoint, container.env) == (None, None, ())
    assert (container.stop_timeout, container.restart) == (10, Restart.NO)
    assert (container.workdir, container.user, container.install) == (None, None, ())


def test_yaml_1_1_booleans_stay_the_words_written(tmp_path: Path) -> None:
    container = _load(tmp_path, IMAGE + "restart: no\nenv: {X: off, Y: True}\n")
    assert container.restart == Restart.NO
    assert container.env == (("X", "off"), ("Y", "True"))


def test_env_as_a_list_of_assignments(tmp_path: Path) -> None:
    container = _load(tmp_path, IMAGE + "env: [A=1, 'B=x=y', C=]\n")
    assert container.env == (("A", "1"), ("B", "x=y"), ("C", ""))


def test_empty_entrypoint_clears_the_images(tmp_path: Path) -> None:
    assert _load(tmp_path, IMAGE + "entrypoint: []\n").entrypoint == ()


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    container = _load(tmp_path, IMAGE + "unit: &c\n  A: '1'\nenv:\n  <<: *c\n  B: 2\n")
    assert container.env == (("A", "1"), ("B", "2"))
    assert container.unit == (("A", ("1",)),)


def test_own_keys_override_merged_ones(tmp_path: Path) -> None:
    container = _load(tmp_path, IMAGE + "unit: &c {A: '1', B: '2'}\nenv:\n  <<: *c\n  A: 3\n")
    assert container.env == (("A", "3"), ("B", "2"))


def test_merging_a_non_mapping_is_an_error(tmp_path: Path) -> None:
    err = _error(tmp_path, IMAGE + "env: {<<: [1]}\n")
    assert err.where == f"{tmp_path / 'web.yaml'}:2:env"
    assert "merge" in err.message


def test_name_and_yml_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path, IMAGE, "db.yml")
    assert load_yaml(path).name == "db"
    assert load_yaml(path, "other").name == "other"


def test_unknown_key_suggests_the_near_one(tmp_path: Path) -> None:
    err = _error(tmp_path, IMAGE + "imgae: busybox\n")
    assert err.where == f"{tmp_path / 'web.yaml'}:2:imgae"
    assert "unknown key 'imgae'" in err.message
    assert err.hint is not None
    assert "did you mean 'image'?" in err.hint
    assert "stop_timeout" in err.hint  # lists what is allowed


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (IMAGE + "command: {a: 1}\n", "2:command", "expected a list of strings or a string"),
        (IMAGE + "command: [ls, [x]]\n", "2:command[1]", "expected a string"),
        (IMAGE + "env: [1, 2]\n", "2:env[0]", "has no '='"),
        (IMAGE + "env: hello\n", "2:env", "expected a mapping"),
        (IMAGE + "env:\n  A:\n", "3:env.A", "got nothing"),
        (IMAGE + "env: {A: [1]}\n", "2:env.A", "got a list"),
        (IMAGE + "env: {'A=B': 1}\n", "2:env.A=B", "not an environment variable name"),
        (IMAGE + "stop_timeout: 1.5\n", "2:stop_timeout", "whole number of seconds"),
        (IMAGE + "stop_timeout: '30'\n", "2:stop_timeout", "whole number of seconds"),
        (IMAGE + "stop_timeout: true\n", "2:stop_timeout", "whole number of seconds"),
        (IMAGE + "stop_timeout: 0\n", "2:stop_timeout", "too short"),
        (IMAGE + "stop_timeout: -5\n", "2:stop_timeout", "too short"),
        (IMAGE + "workdir: srv/app\n", "2:workdir", "not an absolute path"),
        (IMAGE + "workdir: [/a]\n", "2:workdir", "expected a string"),
        (IMAGE + "user: 'a b'\n", "2:user", "is not a user"),
        (IMAGE + "user: '1000:'\n", "2:user", "is not a user"),
        (IMAGE + "user: 99999999999\n", "2:user", "out of range"),
        (IMAGE + "restart: sometimes\n", "2:restart", "'sometimes' is not allowed"),
        (IMAGE + "image: busybox\n", "2:image", "duplicate key 'image'"),
        (IMAGE + "command: 'sh -c \"x'\n", "2:command", "cannot split"),
        (IMAGE + 'command: ["a\\0b"]\n', "2:command[0]", "NUL"),
        (IMAGE + "service: [MemoryMax]\n", "2:service", "a mapping of [Service] directives"),
        (IMAGE + "service: {ExecStart: /bin/sh}\n", "2:service.ExecStart", "set by hostctl"),
        (IMAGE + "service: {Restart: always}\n", "2:service.Restart", "set by hostctl"),
        (IMAGE + "service: {'Memory Max': 1G}\n", "2:service.Memory Max", "not a systemd"),
        (IMAGE + 'service: {CPUWeight: "1\\nExecStart=/bin/sh"}\n', "2:service.CPUWeight",
         "line break"),
        (IMAGE + "service:\n  Nice: [1, '2\\']\n", "3:service.Nice", "backslash"),
        (IMAGE + "install: {Also: x.service}\n", "2:install.Also", "not supported"),
        (IMAGE + "install: {WantedBy: ../../etc/passwd}\n", "2:install.WantedBy",
         "not a unit name"),
        (IMAGE + "install: {WantedBy: multi-user}\n", "2:install.WantedBy", "not a unit name"),
        (IMAGE + "install: {Alias: web.target}\n", "2:install.Alias", "not a .service"),
        ("command: [ls]\n", "1:image", "missing required key 'image'"),
        ("? [a, b]\n: 1\n" + IMAGE, "1:?", "a key must be a string"),
    ],
)
def test_bad_values_name_file_line_and_key(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    err = _error(tmp_path, text)
    assert err.where == f"{tmp_path / 'web.yaml'}:{where}"
    assert words in err.message
    assert err.hint  # every error says what is allowed


def test_bad_restart_lists_the_choices(tmp_path: Path) -> None:
    err = _error(tmp_path, IMAGE + "restart: on-falure\n")
    assert err.hint is not None
    assert "did you mean 'on-failure'?" in err.hint
    assert "always" in err.hint


def test_bad_image_reference(tmp_path: Path) -> None:
    err = _error(tmp_path, "image: 'Bad Image!!'\n")
    assert err.where == f"{tmp_path / 'web.yaml'}:1:image"
    assert "bad image reference" in err.message


def test_bad_yaml_syntax_gives_its_line(tmp_path: Path) -> None:
    err = _error(tmp_path, IMAGE + "env:\n  A: 1\n B: [2\n")
    assert err.where is not None
    assert err.where.startswith(f"{tmp_path / 'web.yaml'}:")
    assert int(err.where.rsplit(":", 1)[1]) in (3, 4)
    assert "invalid YAML" in err.message


def test_two_documents_are_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, IMAGE + "---\n" + IMAGE)
    assert "invalid YAML" in err.message


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "~\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = _error(tmp_path, text)
    assert err.message == "the declaration is empty"
    assert err.hint is not None
    assert "image" in err.hint


@pytest.mark.parametrize("text", ["- image: x\n", "busybox\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    err = _error(tmp_path, text)
    assert err.where == f"{tmp_path / 'web.yaml'}:1"
    assert "mapping" in err.message


def test_not_utf8(tmp_path: Path) -> None:
    err = _error(tmp_path, b"image: \xff\n")
    assert "UTF-8" in err.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="cannot read") as caught:
        load_yaml(tmp_path / "missing.yaml")
    assert caught.value.where == str(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", [".hidden", "a b", "a@b@c", "@b", "a/b", "x" * 300, ""])
def test_names_that_cannot_be_units(name: str) -> None:
    with pytest.raises(DeclarationError, match="name") as caught:
        parse_yaml(IMAGE, Path("/etc/hostctl/containers/x.yaml"), name)
    assert caught.value.where == "/etc/hostctl/containers/x.yaml"
