"""Reading a Containerfile into instructions: directives, continuations, heredocs, flags.

Glossary: a *physical line* is a line of the file; a *logical line* is an instruction
with its continuation lines joined (a line ending in the escape character continues);
*flags* are the leading `--name[=value]` words of FROM, RUN, COPY, ADD and HEALTHCHECK;
the *JSON form* is an argument list written as a JSON array (`CMD ["a", "b"]`), the
*shell form* anything else; a *heredoc* is `<<WORD` (or `<<-WORD`, `<<"WORD"`) in a RUN,
COPY or ADD line, whose body is the following lines up to one that is WORD alone.

Parser directives (`# escape=`` ` ``, `# syntax=...`) are read from the comment lines at
the very top, before any blank line or instruction, as BuildKit does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hostctl.errors import HostctlError

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
    "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
    "HEALTHCHECK", "SHELL",
})
FLAGGED = frozenset({"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"})
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(?:\"([^\"\s]+)\"|'([^'\s]+)'|([A-Za-z_][A-Za-z0-9_]*))")


class BuildError(HostctlError):
    """A Containerfile, context or build problem: where is FILE:LINE when it has one."""


@dataclass(frozen=True)
class Heredoc:
    name: str
    body: str
    expand: bool  # an unquoted WORD: COPY/ADD expand variables in the body
    chomp: bool  # `<<-`: leading tabs were stripped


@dataclass(frozen=True)
class Instruction:
    """One instruction as written: KEYWORD, its flags, and its arguments (raw text)."""

    keyword: str
    args: str  # the arguments after the flags, raw (quotes and variables untouched)
    line: int
    file: str
    original: str  # the whole logical line, as the history and cache see it
    flags: tuple[tuple[str, str | None], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, message: str, hint: str | None = None) -> BuildError:
        """A BuildError at this instruction, naming it."""
        return BuildError(f"{self.keyword}: {message}", where=self.where, hint=hint)

    def json_args(self) -> list[str] | None:
        """The arguments as a JSON array of strings, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None
        return value

    def flag_values(self, name: str) -> list[str]:
        return [v or "" for n, v in self.flags if n == name]

    def flag(self, name: str) -> str | None:
        values = self.flag_values(name)
        if len(values) > 1:
            raise self.error(f"--{name} given more than once")
        return values[0] if values else None


@dataclass
class Containerfile:
    """A parsed file: its directives and instructions in order."""

    path: str
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str, path: str) -> Containerfile:
    """Parse Containerfile TEXT (read from PATH, used in error locations)."""
    lines = text.splitlines()
    result = Containerfile(path)
    start = _directives(lines, result)
    escape = result.escape
    i = start
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        logical, i = _join(lines, i, escape)
        keyword, _, rest = logical.strip().partition(" ")
        if not rest and "\t" in keyword:
            keyword, _, rest = keyword.partition("\t")
        keyword_upper = keyword.upper()
        where = f"{path}:{first + 1}"
        if keyword_upper not in INSTRUCTIONS:
            raise BuildError(f"unknown instruction {keyword!r}", where=where,
                             hint="instructions are " + ", ".join(sorted(INSTRUCTIONS)))
        flags: tuple[tuple[str, str | None], ...] = ()
        rest = rest.strip()
        if keyword_upper in FLAGGED:
            flags, rest = _flags(rest, where, keyword_upper)
        heredocs: tuple[Heredoc, ...] = ()
        if keyword_upper in HEREDOC_INSTRUCTIONS and not rest.startswith("["):
            heredocs, i = _heredocs(rest, lines, i, where)
        result.instructions.append(Instruction(
            keyword_upper, rest, first + 1, path, logical.strip(), flags, heredocs))
    return result


def _directives(lines: list[str], result: Containerfile) -> int:
    """Read the top comment lines that are directives; the index of the first other line."""
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip()) if line.strip() else None
        if match is None:
            return i
        name, value = match.group(1).lower(), match.group(2)
        if name in result.directives:
            raise BuildError(f"parser directive {name} given twice", where=f"{result.path}:{i + 1}")
        result.directives[name] = value
        if name == "escape":
            if value not in ("\\", "`"):
                raise BuildError(f"invalid escape character {value!r}",
                                 where=f"{result.path}:{i + 1}", hint="use \\ or `")
            result.escape = value
    return len(lines)


def _join(lines: list[str], i: int, escape: str) -> tuple[str, int]:
    """The logical line starting at I (continuations joined); the index after it.

    Comment lines and blank lines inside a continued instruction are dropped."""
    parts: list[str] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if parts and (not line.strip() or line.lstrip().startswith("#")):
            continue
        trimmed = line.rstrip()
        if trimmed.endswith(escape):
            parts.append(trimmed[:-1])
            continue
        parts.append(line)
        return "".join(parts), i
    return "".join(parts), i


def _flags(rest: str, where: str, keyword: str) -> tuple[tuple[tuple[str, str | None], ...], str]:
    flags: list[tuple[str, str | None]] = []
    while rest.startswith("--"):
        end = _word_end(rest)
        word = rest[:end]
        rest = rest[end:].lstrip()
        if word == "--":
            raise BuildError(f"{keyword}: empty flag", where=where)
        name, sep, value = word[2:].partition("=")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise BuildError(f"{keyword}: malformed flag {word!r}", where=where)
        flags.append((name, _unquote(value) if sep else None))
    return tuple(flags), rest


def _word_end(text: str) -> int:
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char.isspace():
            return index
    return len(text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _heredocs(rest: str, lines: list[str], i: int, where: str
              ) -> tuple[tuple[Heredoc, ...], int]:
    found = []
    for match in _HEREDOC.finditer(rest):
        chomp = match.group(1) == "-"
        name = match.group(2) or match.group(3) or match.group(4)
        expand = match.group(4) is not None
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise BuildError(f"heredoc <<{name} has no terminating {name} line",
                                 where=where)
            line = lines[i]
            i += 1
            if chomp:
                line = line.lstrip("\t")
            if line == name:
                break
            body.append(line + "\n")
        found.append(Heredoc(name, "".join(body), expand, chomp))
    return tuple(found), i
