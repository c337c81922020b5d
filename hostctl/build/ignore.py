""".containerignore / .dockerignore: which context paths COPY and ADD never see.

Docker's rules (moby/patternmatcher): one pattern a line, `#` lines are comments, a
leading `!` makes an exception, patterns are cleaned and taken relative to the context
root (a leading `/` is dropped); `*` matches within one path component, `?` one
character, `**` any number of components; a pattern that matches a directory matches
everything below it; the last pattern that matches a path decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from hostctl.build.parser import BuildError

IGNORE_FILES = (".containerignore", ".dockerignore")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclude: bool  # False for a `!` exception
    regex: re.Pattern[str]
    depth: int  # path components in the pattern


@dataclass(frozen=True)
class IgnoreRules:
    patterns: tuple[Pattern, ...] = ()
    source: str | None = None  # the file they came from

    def excluded(self, relative: str) -> bool:
        """True when context path RELATIVE (no leading ./ or /) is ignored."""
        result = False
        parts = relative.split("/")
        for pattern in self.patterns:
            if _matches(pattern, relative, parts):
                result = pattern.exclude
        return result

    def has_exceptions(self) -> bool:
        return any(not p.exclude for p in self.patterns)


def _matches(pattern: Pattern, relative: str, parts: list[str]) -> bool:
    if pattern.regex.fullmatch(relative):
        return True
    # A pattern matching a parent directory matches everything below it.
    return any(pattern.regex.fullmatch("/".join(parts[:depth]))
               for depth in range(1, len(parts)))


def parse_ignore(text: str, source: str) -> IgnoreRules:
    """Rules from an ignore file's TEXT (SOURCE names it in errors)."""
    patterns = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        if not exclude:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        try:
            regex = re.compile(_translate(cleaned))
        except re.error as exc:
            raise BuildError(f"bad pattern {raw.strip()!r}: {exc}",
                             where=f"{source}:{number}") from None
        patterns.append(Pattern(cleaned, exclude, regex, cleaned.count("/") + 1))
    return IgnoreRules(tuple(patterns), source)


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i:i + 2] == "**":
                i += 2
                if pattern[i:i + 1] == "/":
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise re.error("unterminated character class")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def load_ignore(context: Path, containerfile: Path | None = None) -> IgnoreRules:
    """The rules for CONTEXT: FILE.containerignore / FILE.dockerignore next to the
    Containerfile first (BuildKit's per-file ignore), then the context's own files."""
    candidates = []
    if containerfile is not None:
        candidates += [containerfile.parent / f"{containerfile.name}{suffix}"
                       for suffix in IGNORE_FILES]
    candidates += [context / name for name in IGNORE_FILES]
    for path in candidates:
        if path.is_file():
            return parse_ignore(path.read_text(errors="replace"), str(path))
    return IgnoreRules()
