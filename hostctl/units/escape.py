"""Writing values into unit files so systemd reads back exactly what was meant.

systemd.syntax(7) and systemd.service(5) "Command lines": a line ending in an odd number
of backslashes continues on the next line; a line break would start a new directive;
"%" starts a specifier everywhere; in command lines and Environment= words are split on
whitespace, quotes group them and C escapes (\\n, \\", \\\\, \\xNN) are decoded, and in
command lines "$" starts a variable and an unquoted ";" separates commands.

A word this module writes in a command line or Environment= is left bare only when it
consists of plainly safe characters; anything else is double-quoted with backslash,
quote and control characters escaped, so no value can end a word, a line or a directive
early; "%" is doubled, and "$" too where variables expand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hostctl.errors import DeclarationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_QUOTED = re.compile(r'[\\"\x00-\x1f\x7f]')
_BARE = re.compile(r"[A-Za-z0-9_./:@+=,-]+")
_EXEC_PREFIXES = "@-:+!|"  # systemd reads these at the start of the executable, quoted
# or not


def _refuse(what: str, text: str, problem: str) -> DeclarationError:
    return DeclarationError(f"{what} {text!r} cannot be written into a unit: {problem}")


def _check_unicode(what: str, text: str) -> None:
    if _SURROGATE.search(text):
        raise _refuse(what, text, "it is not valid UTF-8")


def escape_specifiers(text: str) -> str:
    """TEXT with "%" doubled, so systemd does not expand specifiers in it."""
    return text.replace("%", "%%")


def check_line(what: str, text: str) -> str:
    """TEXT if it can be the value of a directive as is: one line, no trailing backslash."""
    _check_unicode(what, text)
    if _CONTROL.search(text.replace("\t", " ")):
        raise _refuse(what, text, "it contains a line break or control character")
    if text.endswith("\\"):
        raise _refuse(what, text, "a trailing backslash would continue the line")
    return text


def directive_line(name: str, value: str) -> str:
    """NAME=VALUE for a raw directive whose VALUE is already systemd syntax (specifiers
    expand): only checked to stay one directive on one line."""
    if not _DIRECTIVE.fullmatch(name):
        raise _refuse("directive name", name, "use letters, digits and '-'")
    return f"{name}={check_line(f'{name}= value', value)}"


def escape_value(what: str, text: str) -> str:
    """TEXT as the value of a directive that takes it verbatim (Description=, SourcePath=).

    systemd strips surrounding whitespace and cannot decode escapes in such values, so
    whitespace at either end and control characters are refused, not escaped.
    """
    check_line(what, text)
    if text != text.strip():
        raise _refuse(what, text, "systemd would strip the whitespace at its ends")
    return escape_specifiers(text)


def _quote(what: str, text: str) -> str:
    _check_unicode(what, text)
    if "\0" in text:
        raise _refuse(what, text, "it contains a NUL character")

    def one(match: re.Match[str]) -> str:
        char = match.group()
        return _C_ESCAPES.get(char) or f"\\x{ord(char):02x}"

    return '"' + _QUOTED.sub(one, text) + '"'


def exec_word(word: str, *, executable: bool = False) -> str:
    """One word of a command line (ExecStart= and friends), quoted and escaped.

    The executable is not subject to $VARIABLE expansion in systemd, so "$" is doubled
    only in the arguments.
    """
    if _BARE.fullmatch(word):
        return word
    text = escape_specifiers(word)
    if not executable:
        text = text.replace("$", "$$")
    return _quote("command-line word", text)


def exec_line(argv: Sequence[str]) -> str:
    """ARGV as a command-line value whose words systemd passes to exec unchanged."""
    if not argv:
        raise ValueError("a command line needs at least the executable")
    executable, *args = argv
    if executable[:1] in _EXEC_PREFIXES or (
        not executable.startswith("/") and "/" in executable
    ):
        raise _refuse("executable", executable, "it must be an absolute path or a bare name")
    return " ".join([exec_word(executable, executable=True), *map(exec_word, args)])


def environment_assignment(name: str, value: str) -> str:
    """One Environment= word setting NAME to exactly VALUE."""
    if not _ENV_NAME.fullmatch(name):
        raise _refuse("environment variable name", name, "use letters, digits and _")
    if _BARE.fullmatch(value) or not value:
        return f"{name}={value}"
    return _quote("environment value", f"{name}={escape_specifiers(value)}")


def comment(text: str) -> str:
    """TEXT as unit-file comment lines; control characters are shown as C escapes."""
    lines = []
    for line in text.splitlines() or [""]:
        shown = line.replace("\\", "\\\\")  # even backslashes never continue a line
        shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", shown)
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        lines.append(f"# {shown}".rstrip())
    return "\n".join(lines)
