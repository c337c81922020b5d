"""Reading systemd unit-file syntax (quadlet .container files and their .conf drop-ins).

systemd.syntax(7) as quadlet reads it: [Section] headers, KEY=VALUE lines, comments
starting with # or ;, a trailing backslash continuing a line. Continuations are joined
the way podman's quadlet joins them (the meaning the files were written for): the
backslash is dropped and the next line, stripped, follows directly; comment lines and
empty lines inside a continuation are skipped (so an empty line does not end it).
Word splitting for Exec=, Environment= and friends follows systemd's: whitespace
separates words, single or double quotes group them, and C escapes are decoded; an
escape systemd does not know (such as \\.) is kept as written, backslash included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hostctl.declarations.checks import Invalid

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One KEY=VALUE line: its section, key, value and 1-based line number."""

    section: str
    key: str
    value: str
    line: int


class SyntaxProblem(Invalid):
    """A line that is not unit-file syntax; line says where."""

    def __init__(self, line: int, message: str, hint: str) -> None:
        super().__init__(message, hint)
        self.line = line


def parse_unit_text(text: str) -> list[Entry]:
    """The entries of a unit file, in order (a key may repeat)."""
    entries: list[Entry] = []
    section = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line[0] in "#;":
            continue
        while line.endswith("\\") and index < len(lines):
            following = lines[index].strip()
            index += 1
            if not following or following[:1] in ("#", ";"):
                continue
            line = line[:-1] + following
        if line.endswith("\\"):  # the file ended inside a continuation
            line = line[:-1].rstrip()
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise SyntaxProblem(number, f"bad section header {line!r}", "e.g. [Container]")
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not _KEY.fullmatch(key):
            raise SyntaxProblem(number, f"{line!r} is not KEY=VALUE", "e.g. Image=busybox")
        if not section:
            raise SyntaxProblem(
                number, f"{key}= is outside any section", "put it under [Container]"
            )
        entries.append(Entry(section, key, value.strip(), number))
    return entries


def split_words(text: str) -> list[str]:
    """TEXT split into words as systemd splits command lines (quotes, C escapes)."""
    words: list[str] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return words
        word, index = _word(text, index)
        words.append(word)


def _word(text: str, index: int) -> tuple[str, int]:
    out: list[str] = []
    quote = ""
    while index < len(text):
        char = text[index]
        if not quote and char.isspace():
            break
        if char in "\"'" and (not quote or quote == char):
            quote = "" if quote else char
            index += 1
        elif char == "\\":
            decoded, index = _escape(text, index + 1)
            out.append(decoded)
        else:
            out.append(char)
            index += 1
    if quote:
        raise Invalid(f"unclosed {quote} in {text!r}", "close the quote")
    return "".join(out), index


def _escape(text: str, index: int) -> tuple[str, int]:
    """The character of the C escape starting at TEXT[INDEX] (after the backslash)."""
    if index >= len(text):
        raise Invalid(f"{text!r} ends with a backslash", "remove it or write \\\\")
    char = text[index]
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char], index + 1
    for prefix, size, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if char == prefix:
            digits = text[index + 1 : index + 1 + size]
            return _code(text, digits, size, base), index + 1 + size
    if char in "01234567":
        return _code(text, text[index : index + 3], 3, 8), index + 3
    return "\\" + char, index + 1  # unknown to systemd: kept as written


def _code(text: str, digits: str, size: int, base: int) -> str:
    try:
        if len(digits) != size:
            raise ValueError
        value = int(digits, base)
        if value == 0:
            raise ValueError
        return chr(value)
    except ValueError:
        raise Invalid(f"bad escape \\{digits} in {text!r}", "e.g. \\x41 or \\101") from None


def unquote(text: str) -> str:
    """A single value, without the quotes around it if the whole value is quoted."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        words = split_words(text)
        if len(words) == 1:
            return words[0]
    return text
