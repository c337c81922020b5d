"""Finding COPY sources in the build context and hashing them (tmp_path only, no root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostctl.build.context import Context
from hostctl.build.ignore import IgnoreRules, parse_ignore
from hostctl.build.parser import BuildError, parse

COPY = parse("FROM scratch\nCOPY x /x\n", "Containerfile").instructions[1]


@pytest.fixture
def context(tmp_path: Path) -> Context:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("a\n")
    (root / "dir" / "b.log").write_text("b\n")
    (root / "dir" / "sub" / "c.txt").write_text("c\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    os.symlink("dir/a.txt", root / "inside-link")
    os.symlink("/etc/passwd", root / "absolute-link")
    os.symlink("../outside.txt", root / "relative-link")
    return Context(root, parse_ignore("*.log\n**/*.log\n", ".dockerignore"))


def _names(context: Context, text: str) -> list[str]:
    return [s.relative for s in context.sources(text, COPY)]


def test_sources_globs_and_links_inside(context: Context) -> None:
    assert _names(context, "dir/*.txt") == ["dir/a.txt"]
    assert _names(context, "/dir/sub/../a.txt") == ["dir/a.txt"]
    assert _names(context, "inside-link") == ["dir/a.txt"]
    assert _names(context, ".") == [""]


@pytest.mark.parametrize(("text", "message"), [
    ("../outside.txt", "is outside the build context"),
    ("absolute-link", "symlink absolute-link -> /etc/passwd leads outside"),
    ("relative-link", "symlink relative-link -> ../outside.txt leads outside"),
    ("missing.txt", "source 'missing.txt' not found in the build context"),
    ("dir/b.log", "not found in the build context (excluded by .dockerignore)"),
])
def test_bad_sources_are_errors_at_the_line(context: Context, text: str, message: str) -> None:
    with pytest.raises(BuildError) as err:
        context.sources(text, COPY)
    assert str(err.value).startswith("Containerfile:2: COPY: ") and message in str(err.value)


def test_walk_leaves_out_ignored_and_excluded_paths(context: Context) -> None:
    (source,) = context.sources("dir", COPY)
    assert [e.relative for e in context.walk(source)] == ["a.txt", "sub", "sub/c.txt"]
    excluding = context.excluding(["sub"], "Containerfile:2")
    assert [e.relative for e in excluding.walk(source)] == ["a.txt"]


def test_digest_follows_content_not_mtime(context: Context) -> None:
    sources = context.sources("dir", COPY)
    before = context.digest(sources)
    os.utime(context.root / "dir" / "a.txt", (1, 1))
    assert context.digest(sources) == before
    (context.root / "dir" / "b.log").write_text("ignored file changed\n")
    assert context.digest(sources) == before
    (context.root / "dir" / "a.txt").write_text("A\n")
    assert context.digest(sources) != before
    os.chmod(context.root / "dir" / "sub" / "c.txt", 0o600)
    changed = context.digest(sources)
    os.chmod(context.root / "dir" / "sub" / "c.txt", 0o644)
    assert context.digest(sources) != changed


def test_a_scoped_root_keeps_absolute_links_inside(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("/etc/passwd", root / "link")
    scoped = Context(root, IgnoreRules(), scoped=True)
    (found,) = scoped.sources("link", COPY)
    assert found.path == (root / "etc" / "passwd").resolve()
