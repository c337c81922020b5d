"""Containerfile words: quotes, the escape character and variable substitution.

The rules are BuildKit's shell lexer's: single quotes are literal; double quotes keep
whitespace and allow `$` expansion and escaping of `"`, `$` and the escape character;
outside quotes the escape character takes the next character literally. Variables are
`$NAME`, `${NAME}`, `${NAME:-word}` / `${NAME-word}` (default when unset or empty / unset),
`${NAME:+word}` / `${NAME+word}` (alternative when set and non-empty / set) and
`${NAME:?message}` / `${NAME?message}` (an error). An unquoted variable's value is split
into words where word splitting applies (COPY sources, EXPOSE ports...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class LexError(ValueError):
    """A malformed word (unterminated quote or ${...}, ${X:?} of an unset X)."""


@dataclass
class Lexer:
    """Expands words against an environment; records every variable name referenced."""

    escape: str = "\\"
    referenced: set[str] = field(default_factory=set)

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """TEXT split into words (quotes removed, variables expanded and split)."""
        return _Scan(self, text, env, split=True).run()

    def word(self, text: str, env: Mapping[str, str]) -> str:
        """TEXT as one word: quotes removed, variables expanded, whitespace kept."""
        return "".join(_Scan(self, text, env, split=False).run())

    def expand(self, text: str, env: Mapping[str, str]) -> str:
        """TEXT with its variables expanded and nothing else changed (quotes are kept;
        the escape character only escapes `$`): a heredoc's body."""
        out: list[str] = []
        i = 0
        scan = _Scan(self, text, env, split=False)
        while i < len(text):
            char = text[i]
            if char == self.escape and text[i + 1:i + 2] == "$":
                out.append("$")
                i += 2
            elif char == "$":
                value, i = scan._dollar(i + 1)
                out.append(value)
            else:
                out.append(char)
                i += 1
        return "".join(out)


class _Scan:
    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str], *, split: bool) -> None:
        self.lexer, self.text, self.env, self.split = lexer, text, env, split
        self.words: list[str] = []
        self.current: list[str] = []
        self.started = False  # a quote or character began a word (so "" is a word)

    def run(self) -> list[str]:
        text, esc, i = self.text, self.lexer.escape, 0
        while i < len(text):
            char = text[i]
            if char == esc:
                if i + 1 < len(text):
                    self._add(text[i + 1])
                    i += 2
                else:
                    self._add(char)
                    i += 1
            elif char == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise LexError(f"unterminated single quote in {text!r}")
                self.current.append(text[i + 1:end])
                self.started = True
                i = end + 1
            elif char == '"':
                i = self._double(i + 1)
            elif char == "$":
                value, i = self._dollar(i + 1)
                self._expanded(value)
            elif self.split and char.isspace():
                self._end()
                i += 1
            else:
                self._add(char)
                i += 1
        self._end()
        return self.words if self.split else (self.words or [""])

    def _add(self, char: str) -> None:
        self.current.append(char)
        self.started = True

    def _end(self) -> None:
        if self.current or self.started:
            self.words.append("".join(self.current))
        self.current, self.started = [], False

    def _expanded(self, value: str) -> None:
        if not self.split:
            self.current.append(value)
            return
        for char in value:
            if char.isspace():
                self._end()
            else:
                self._add(char)

    def _double(self, i: int) -> int:
        text, esc = self.text, self.lexer.escape
        self.started = True
        while i < len(text):
            char = text[i]
            if char == '"':
                return i + 1
            if char == esc and i + 1 < len(text) and text[i + 1] in ('"', "$", esc):
                self.current.append(text[i + 1])
                i += 2
            elif char == "$":
                value, i = self._dollar(i + 1)
                self.current.append(value)
            else:
                self.current.append(char)
                i += 1
        raise LexError(f"unterminated double quote in {text!r}")

    def _dollar(self, i: int) -> tuple[str, int]:
        """Expand the variable after a `$` at I-1; (value, index after it)."""
        text = self.text
        if i < len(text) and text[i] == "{":
            return self._braced(i + 1)
        end = i
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        if end == i:
            return "$", i
        name = text[i:end]
        self.lexer.referenced.add(name)
        return self.env.get(name, ""), end

    def _braced(self, i: int) -> tuple[str, int]:
        text = self.text
        end = i
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        name = text[i:end]
        if not name:
            raise LexError(f"bad substitution in {text!r}: ${{}} needs a variable name")
        self.lexer.referenced.add(name)
        close = _closing_brace(text, end, self.lexer.escape)
        if close < 0:
            raise LexError(f"unterminated ${{{name} in {text!r}")
        rest = text[end:close]
        value = self.env.get(name)
        if not rest:
            return value or "", close + 1
        colon = rest.startswith(":")
        op = rest[1:2] if colon else rest[:1]
        word_text = rest[2:] if colon else rest[1:]
        if op not in ("-", "+", "?"):
            raise LexError(f"unsupported substitution ${{{name}{rest}}} in {text!r}",)
        unset = value is None or (colon and value == "")
        if op == "-":
            return (self._inner(word_text) if unset else value or ""), close + 1
        if op == "+":
            return ("" if unset else self._inner(word_text)), close + 1
        if unset:
            message = self._inner(word_text) or "is not set"
            raise LexError(f"{name}: {message}")
        return value or "", close + 1

    def _inner(self, text: str) -> str:
        return self.lexer.word(text, self.env)


def _closing_brace(text: str, i: int, escape: str) -> int:
    depth = 0
    while i < len(text):
        char = text[i]
        if char == escape:
            i += 2
            continue
        if char == "$" and text[i + 1:i + 2] == "{":
            depth += 1
            i += 2
            continue
        if char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def split_key_values(words: list[str]) -> list[tuple[str, str]] | None:
    """KEY=VALUE words as pairs; None when a word has no `=`."""
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            return None
        pairs.append((key, value))
    return pairs
