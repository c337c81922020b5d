"""Interpolation forms and .env files, as the compose spec and docker compose read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.compose.interpolate import InterpolationError, chained, parse_env, substitute
from hostctl.errors import DeclarationError

ENV = {"SET": "value", "EMPTY": "", "PORT": "8080", "INNER": "in"}
lookup = chained(ENV)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a${SET}b$SET-c", "avaluebvalue-c"),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${SET-d}", "value"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${SET:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${UNSET:+r}", ""),
        ("${SET+r}", "r"),
        ("${EMPTY+r}", "r"),
        ("${UNSET+r}", ""),
        ("${SET:?e}", "value"),
        ("${EMPTY?e}", ""),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: 5$", "cost: 5$"),
        ("$1 and $-", "$1 and $-"),
        ("${UNSET:-${PORT}}", "8080"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a ${INNER} b}:80", "a in b:80"),
        ("${SET:+${INNER}${INNER}}", "inin"),
        ("${UNSET:-$$literal}", "$literal"),
        ("${UNSET:-}x", "x"),
        ("${UNSET:-a:b}", "a:b"),
    ],
)
def test_forms(template: str, expected: str) -> None:
    assert substitute(template, lookup) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?needs a value}", "required variable UNSET is missing a value: needs a value"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("${UNSET:?${INNER} here}", "missing a value: in here"),
        ("${SET", "is not closed"),
        ("${}", "names no variable"),
        ("${1X}", "names no variable"),
        ("${SET!x}", "unexpected '!x' after SET"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        substitute(template, lookup)
    assert message in caught.value.message


def test_unset_variable_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert substitute("x${NOPE}y", lookup) == "xy"
    assert "NOPE" in caplog.text


ENV_FILE = r"""
# comments and blank lines are skipped

PLAIN=hello world   # a comment after a space
export EXPORTED=yes
COLON: also
SINGLE='no $SET interpolation \n kept'
DOUBLE="line\nbreak ${SET} \"quoted\""
MULTI="first
second"
REF=${PLAIN}-${SET}
DEFAULTED=${NOT_HERE:-fallback}
INHERITED
NOT_INHERITED
EMPTY=
HASH=a#b
"""


def test_env_file_syntax() -> None:
    values = parse_env(ENV_FILE, "x.env", chained({"SET": "v", "INHERITED": "from-env"}))
    assert values == {
        "PLAIN": "hello world",
        "EXPORTED": "yes",
        "COLON": "also",
        "SINGLE": r"no $SET interpolation \n kept",
        "DOUBLE": 'line\nbreak v "quoted"',
        "MULTI": "first\nsecond",
        "REF": "hello world-v",
        "DEFAULTED": "fallback",
        "INHERITED": "from-env",
        "EMPTY": "",
        "HASH": "a#b",
    }


def test_env_file_environment_wins_inside_interpolation() -> None:
    values = parse_env("A=file\nB=${A}\n", "x.env", chained({"A": "process"}))
    assert values["B"] == "process"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("GOOD=1\nBAD KEY=2\n", "x.env:2", "invalid variable name"),
        ('A=1\nB="open\n', "x.env:2", "unterminated quoted value"),
        ("A=${B:?B is needed}\n", "x.env:1:A", "required variable B"),
    ],
)
def test_env_file_errors(text: str, where: str, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        parse_env(text, "x.env", chained({}))
    assert caught.value.where == where
    assert message in caught.value.message


def test_env_file_bom_and_crlf(tmp_path: Path) -> None:
    from hostctl.compose.interpolate import read_env_file

    path = tmp_path / "w.env"
    path.write_bytes(b"\xef\xbb\xbfA=1\r\nB=2\r\n")
    assert read_env_file(path, chained({})) == {"A": "1", "B": "2"}
