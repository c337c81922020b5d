"""The build context: finding COPY/ADD sources in it, never outside, and hashing them.

A source path is taken relative to the context root (a leading `/` too); `..` that
climbs out of the context is refused, and so is a symlink whose target lies outside it
(symlinks inside the context are followed when they are named or lead to a named path;
symlinks met while walking a copied directory are copied as symlinks). Ignored paths
(.containerignore/.dockerignore) are invisible. The content digest of what a step reads
covers paths, types, permission bits, sizes, contents and link targets, never mtimes,
so touching or moving the context keeps the cache.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hostctl.build.ignore import IgnoreRules
from hostctl.build.parser import BuildError, Instruction

_GLOB_CHARS = frozenset("*?[")
_MAX_HOPS = 40
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A named source: RELATIVE to the context (symlinks resolved), at PATH on the host."""

    relative: str
    path: Path
    is_dir: bool


@dataclass(frozen=True)
class Entry:
    """One file, directory or symlink under a source; RELATIVE to that source."""

    relative: str
    path: Path
    st: os.stat_result


class Context:
    """The context directory ROOT with its ignore rules."""

    def __init__(self, root: Path, ignore: IgnoreRules, *, scoped: bool = False,
                 exclude: IgnoreRules | None = None) -> None:
        self.root = root.resolve()
        self.ignore = ignore
        # COPY --exclude patterns: matched against paths relative to the context and to
        # the source being copied.
        self.exclude = exclude or IgnoreRules()
        # scoped: a root filesystem (COPY --from), where an absolute symlink means a path
        # inside it and ".." stops at its root, as in the container.
        self.scoped = scoped

    def sources(self, text: str, instruction: Instruction) -> list[Source]:
        """The sources TEXT (a path or glob) names, or a BuildError saying why none."""
        norm = posixpath.normpath(text.lstrip("/") or ".")
        if norm == ".." or norm.startswith("../"):
            raise instruction.error(f"source {text!r} is outside the build context",
                                    hint="sources are paths inside the context directory")
        parts = [] if norm == "." else norm.split("/")
        resolved = [self._resolve(c, text, instruction) for c in self._expand(parts)]
        found = [s for s in resolved if s is not None]
        if not found:
            excluded = " (excluded by " + str(self.ignore.source) + ")" if (
                self.ignore.source and parts and self.ignore.excluded("/".join(parts))) else ""
            raise instruction.error(f"source {text!r} not found in the build context"
                                    f"{excluded}", hint=f"the context is {self.root}")
        return found

    def _expand(self, parts: list[str]) -> list[list[str]]:
        """Glob components expanded against the directory listing (sorted)."""
        results: list[list[str]] = [[]]
        for part in parts:
            if not _GLOB_CHARS & set(part):
                results = [[*r, part] for r in results]
                continue
            grown = []
            for prefix in results:
                directory = self.root.joinpath(*prefix)
                try:
                    names = sorted(os.listdir(directory))
                except OSError:
                    continue
                grown += [[*prefix, n] for n in names if fnmatch.fnmatchcase(n, part)]
            results = grown
        return results

    def _resolve(self, parts: list[str], text: str, instruction: Instruction) -> Source | None:
        done: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if not done and not self.scoped:
                    raise instruction.error(f"source {text!r} leads outside the build context")
                if done:
                    done.pop()
                continue
            path = self.root.joinpath(*done, name)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_HOPS:
                    raise instruction.error(f"source {text!r}: too many symlinks")
                target = os.readlink(path)
                if self.scoped:
                    if target.startswith("/"):
                        done = []
                    todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                    continue
                if target.startswith("/"):
                    inside = os.path.relpath(os.path.normpath(target), self.root)
                    if inside == ".." or inside.startswith("../"):
                        raise self._escape(text, path, target, instruction)
                    done, target = [], inside
                combined = posixpath.normpath(posixpath.join(*done, target) if done
                                              else target)
                if combined == ".." or combined.startswith("../"):
                    raise self._escape(text, path, target, instruction)
                todo = [p for p in combined.split("/") if p not in ("", ".")] + todo
                done = []
                continue
            done.append(name)
        relative = "/".join(done)
        if relative and (self.ignore.excluded(relative) or (
                self.exclude.patterns and self.exclude.excluded(relative))):
            return None
        path = self.root.joinpath(*done)
        return Source(relative, path, path.is_dir())

    def excluding(self, patterns: list[str], where: str) -> Context:
        """This context with COPY --exclude PATTERNS applied too."""
        from hostctl.build.ignore import parse_ignore

        if not patterns:
            return self
        found = Context(self.root, self.ignore, scoped=self.scoped,
                        exclude=parse_ignore("\n".join(patterns), where))
        return found

    def _escape(self, text: str, link: Path, target: str,
                instruction: Instruction) -> BuildError:
        return instruction.error(
            f"source {text!r}: symlink {link.relative_to(self.root)} -> {target} leads "
            "outside the build context", hint="copy the file into the context instead")

    def walk(self, source: Source) -> Iterator[Entry]:
        """SOURCE's contents, parents first, sorted, ignored paths left out (for a file:
        the file itself, with RELATIVE "")."""
        if not source.is_dir:
            yield Entry("", source.path, os.stat(source.path))
            return
        yield from self._walk_dir(source.path, source.relative, "")

    def _walk_dir(self, directory: Path, context_rel: str, rel: str) -> Iterator[Entry]:
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise BuildError(f"cannot read {directory}: {exc.strerror}") from None
        for name in names:
            path = directory / name
            child_context = f"{context_rel}/{name}" if context_rel else name
            child = f"{rel}/{name}" if rel else name
            st = os.lstat(path)
            excluded = self.ignore.excluded(child_context) or (
                bool(self.exclude.patterns) and (self.exclude.excluded(child_context)
                                                 or self.exclude.excluded(child)))
            if stat.S_ISDIR(st.st_mode):
                if not excluded:
                    yield Entry(child, path, st)
                if not excluded or self.ignore.has_exceptions() or \
                        self.exclude.has_exceptions():
                    yield from self._walk_dir(path, child_context, child)
            elif not excluded:
                yield Entry(child, path, st)

    def digest(self, sources: list[Source]) -> str:
        """A content digest of SOURCES as COPY would read them (mtimes not included)."""
        digest = hashlib.sha256()
        for source in sources:
            digest.update(f"source {source.relative}\0".encode())
            for entry in self.walk(source):
                digest.update(entry_fingerprint(entry))
        return "sha256:" + digest.hexdigest()


def entry_fingerprint(entry: Entry) -> bytes:
    """Path, type, permission bits, size, content or link target of ENTRY."""
    st = entry.st
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        return f"f {entry.relative} {mode:o} {st.st_size} {file_sha256(entry.path)}\0".encode()
    if stat.S_ISLNK(st.st_mode):
        return f"l {entry.relative} {os.readlink(entry.path)}\0".encode()
    if stat.S_ISDIR(st.st_mode):
        return f"d {entry.relative} {mode:o}\0".encode()
    return f"o {entry.relative} {stat.S_IFMT(st.st_mode):o} {mode:o}\0".encode()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
