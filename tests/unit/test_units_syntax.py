"""A reader of unit files following systemd's rules, to check what systemd would see.

systemd 252's conf-parser.c and extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE):
comment lines are skipped (even inside a continuation), a line ending in an odd number of
backslashes continues on the next, keys and values are stripped; command lines and
Environment= are split into words where quotes group and C escapes are decoded, then
specifiers are resolved per word ("%%" -> "%"), then at exec time "$$" -> "$".

Other test modules import parse_unit, exec_argv and environment from here; the tests at
the bottom check the reader itself against known systemd behaviour.
"""

from __future__ import annotations

import re

import pytest

Directive = tuple[str, str, str]  # section, key, value

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}


class UnitSyntaxError(Exception):
    pass


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    continuation: str | None = None
    for raw in text.split("\n"):
        if raw.lstrip()[:1] in ("#", ";"):
            continue
        line = raw if continuation is None else continuation + raw
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            continuation = line[:-1] + " "
            continue
        continuation = None
        lines.append(line)
    if continuation is not None:
        lines.append(continuation)
    return lines


def parse_unit(text: str) -> list[Directive]:
    """(section, key, value) for every assignment, in order."""
    section = None
    result: list[Directive] = []
    for line in _logical_lines(text):
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise UnitSyntaxError(f"bad section header {line!r}")
            section = line[1:-1]
            continue
        if section is None or "=" not in line:
            raise UnitSyntaxError(f"bad line {line!r}")
        key, _, value = line.partition("=")
        result.append((section, key.strip(), value.strip()))
    return result


def values(directives: list[Directive], section: str, key: str) -> list[str]:
    return [v for s, k, v in directives if s == section and k == key]


def _unescape_one(text: str, i: int) -> tuple[str, int]:
    """The character escaped at TEXT[i] (just after a backslash), and the next index."""
    char = text[i]
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char], i + 1
    if char == "x":
        return chr(int(text[i + 1 : i + 3], 16)), i + 3
    if char in "01234567":
        return chr(int(text[i : i + 3], 8)), i + 3
    raise UnitSyntaxError(f"unknown escape \\{char}")


def split_words(value: str) -> list[str]:
    """Words as extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) yields them; a bare
    ';' (the old command separator) is an error here, since nothing should write one."""
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            return words
        if value[i] == ";" and (i + 1 == n or value[i + 1] in " \t"):
            raise UnitSyntaxError("unquoted ';' separates commands")
        word, quote = "", None
        while i < n and (quote or value[i] not in " \t"):
            char = value[i]
            if char == "\\":
                decoded, i = _unescape_one(value, i + 1)
                word += decoded
            elif quote and char == quote:
                quote, i = None, i + 1
            elif not quote and char in "'\"":
                quote, i = char, i + 1
            else:
                word, i = word + char, i + 1
        if quote:
            raise UnitSyntaxError("unbalanced quotes")
        words.append(word)


def resolve_specifiers(word: str) -> str:
    """'%%' -> '%'; any other specifier is an error (hostctl writes none by accident)."""
    def one(match: re.Match[str]) -> str:
        if match.group() != "%%":
            raise UnitSyntaxError(f"specifier {match.group()} in {word!r}")
        return "%"

    return re.sub(r"%.?", one, word, flags=re.S)


def resolve_dollars(word: str) -> str:
    """'$$' -> '$'; a variable reference is an error."""
    def one(match: re.Match[str]) -> str:
        if match.group() != "$$":
            raise UnitSyntaxError(f"variable {match.group()} in {word!r}")
        return "$"

    return re.sub(r"\$.?", one, word, flags=re.S)


def exec_argv(value: str) -> list[str]:
    """The argv systemd execs for a command line written by hostctl."""
    words = split_words(value)
    if not words or words[0][:1] in "@-:+!|":
        raise UnitSyntaxError(f"executable with a prefix or missing in {value!r}")
    argv = [resolve_specifiers(w) for w in words]
    return [argv[0], *(resolve_dollars(w) for w in argv[1:])]


def environment(value: str) -> dict[str, str]:
    """NAME -> value for one Environment= line written by hostctl."""
    result = {}
    for word in split_words(value):
        name, equals, text = resolve_specifiers(word).partition("=")
        if not equals:
            raise UnitSyntaxError(f"no '=' in {word!r}")
        result[name] = text
    return result


# The reader itself, on cases whose systemd meaning is documented.


def test_continuation_swallows_the_next_line() -> None:
    parsed = parse_unit("[Unit]\nDescription=a \\\nAfter=x\n")
    assert parsed == [("Unit", "Description", "a  After=x")]


def test_even_backslashes_do_not_continue() -> None:
    parsed = parse_unit("[Unit]\nDescription=a\\\\\nAfter=x\n")
    assert parsed == [("Unit", "Description", "a\\\\"), ("Unit", "After", "x")]


def test_comments_are_skipped_inside_a_continuation() -> None:
    parsed = parse_unit("[Unit]\nDescription=a \\\n# note\nb\n")
    assert parsed == [("Unit", "Description", "a  b")]


def test_words_quotes_and_escapes() -> None:
    assert split_words('/bin/x "a b" \'c d\' e\\x41 "q\\"q" ""') == [
        "/bin/x", "a b", "c d", "eA", 'q"q', "",
    ]


def test_bare_semicolon_is_refused() -> None:
    with pytest.raises(UnitSyntaxError):
        split_words("/bin/x ; /bin/y")
    assert split_words('/bin/x ";"') == ["/bin/x", ";"]


def test_specifiers_and_variables_are_resolved_or_refused() -> None:
    assert exec_argv('/bin/x "100%%" "$$HOME"') == ["/bin/x", "100%", "$HOME"]
    with pytest.raises(UnitSyntaxError):
        exec_argv("/bin/x %n")
    with pytest.raises(UnitSyntaxError):
        exec_argv("/bin/x $HOME")
