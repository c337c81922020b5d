"""Escaping for unit files: hostile values come back exactly, and never add a directive."""

from __future__ import annotations

import pytest

from hostctl.errors import DeclarationError
from hostctl.units.escape import (
    comment,
    directive_line,
    environment_assignment,
    escape_value,
    exec_line,
)
from tests.unit.test_units_syntax import environment, exec_argv, parse_unit

HOSTILE = [
    "plain",
    "",
    "two words",
    "a\nExecStartPre=/bin/rm -rf /",
    "a\r\nType=simple",
    "%n",
    "%%n",
    "100%",
    '"',
    "'",
    "it's \"quoted\"",
    "\\",
    "ends with backslash\\",
    "back\\slash\\nnot-a-newline",
    "$VAR",
    "${VAR}",
    "$$",
    ";",
    "a ; b",
    " leading and trailing ",
    "tab\there",
    "\x1b[31mred",
    "ünïcödé ✓",
    "-flag",
    "@at",
    "a\\\nb",
]


def _service(line: str) -> list[tuple[str, str, str]]:
    return parse_unit(f"[Service]\nExecStart={line}\nType=notify\n")


@pytest.mark.parametrize("value", HOSTILE)
def test_command_line_words_come_back_exactly(value: str) -> None:
    line = exec_line(["/usr/bin/hostctl", "launch", value, "tail"])
    parsed = _service(line)
    assert [key for _, key, _ in parsed] == ["ExecStart", "Type"]
    assert exec_argv(parsed[0][2]) == ["/usr/bin/hostctl", "launch", value, "tail"]


@pytest.mark.parametrize(
    "executable", ["/opt/my venv/bin/hostctl", "/opt/100%/hostctl", "/opt/$x/hostctl", "hostctl"]
)
def test_executable_paths_come_back_exactly(executable: str) -> None:
    parsed = _service(exec_line([executable, "launch", "web"]))
    assert exec_argv(parsed[0][2]) == [executable, "launch", "web"]


def test_safe_words_stay_readable() -> None:
    assert exec_line(["/usr/bin/hostctl", "launch", "--user", "web-1"]) == (
        "/usr/bin/hostctl launch --user web-1"
    )


@pytest.mark.parametrize("executable", ["-/bin/x", "@/bin/x", "bin/x", "", "+x"])
def test_executables_systemd_would_misread_are_refused(executable: str) -> None:
    with pytest.raises(DeclarationError):
        exec_line([executable, "launch"])


@pytest.mark.parametrize("value", ["nul\0byte", "bad \udcff utf-8"])
def test_unwritable_words_are_refused(value: str) -> None:
    with pytest.raises(DeclarationError, match="cannot be written"):
        exec_line(["/usr/bin/hostctl", value])


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\0" not in v])
def test_environment_assignments_come_back_exactly(value: str) -> None:
    parsed = parse_unit(f"[Service]\nEnvironment={environment_assignment('APP', value)}\nX=1\n")
    assert [key for _, key, _ in parsed] == ["Environment", "X"]
    assert environment(parsed[0][2]) == {"APP": value}


@pytest.mark.parametrize("name", ["", "A=B", "A B", "1X", "A\nB"])
def test_bad_environment_names_are_refused(name: str) -> None:
    with pytest.raises(DeclarationError):
        environment_assignment(name, "x")


def test_verbatim_values_double_percent() -> None:
    assert escape_value("description", "app at 100% %n") == "app at 100%% %%n"


@pytest.mark.parametrize(
    "value", ["a\nExecStart=/bin/sh", "a\rb", "ends\\", " padded", "padded ", "nul\0"]
)
def test_verbatim_values_that_cannot_be_written_are_refused(value: str) -> None:
    with pytest.raises(DeclarationError, match="cannot be written"):
        escape_value("description", value)


def test_raw_directives_keep_specifiers() -> None:
    assert directive_line("ExecStartPre", "/bin/echo %n") == "ExecStartPre=/bin/echo %n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MemoryMax", "1G\nExecStart=/bin/sh"),
        ("MemoryMax", "1G\\"),
        ("Memory Max", "1G"),
        ("A=B", "1G"),
        ("\nExecStart", "/bin/sh"),
    ],
)
def test_raw_directives_cannot_add_a_directive(name: str, value: str) -> None:
    with pytest.raises(DeclarationError):
        directive_line(name, value)


@pytest.mark.parametrize("text", [*HOSTILE, "line one\nline two\\", "x\\\\\\"])
def test_comments_neither_add_nor_swallow_directives(text: str) -> None:
    unit = f"[Unit]\n{comment(text)}\nDescription=kept\n"
    assert all(line.startswith("#") for line in comment(text).splitlines())
    assert parse_unit(unit) == [("Unit", "Description", "kept")]
