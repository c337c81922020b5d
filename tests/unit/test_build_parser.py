"""The Containerfile parser, word expansion, ARG scoping and stages, ignore rules, cache
keys and the deterministic gzip: pure logic, no root."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from hostctl.build.cache import step_key
from hostctl.build.compress import GzipWriter
from hostctl.build.ignore import parse_ignore
from hostctl.build.lexer import Lexer, LexError
from hostctl.build.parser import BuildError, parse
from hostctl.build.stages import make_plan


def test_continuations_comments_and_escape_directive() -> None:
    text = "# escape=`\nFROM scratch\nRUN echo a `\n# a comment inside\n  b\nENV X=1\n"
    parsed = parse(text, "Containerfile")
    assert parsed.escape == "`"
    run = parsed.instructions[1]
    assert (run.keyword, run.line, run.args) == ("RUN", 3, "echo a   b")
    assert parsed.instructions[2].line == 6


def test_directives_stop_at_the_first_other_line() -> None:
    parsed = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n", "F")
    assert parsed.escape == "\\" and parsed.instructions[1].args == "a  b"


def test_flags_json_form_and_heredocs() -> None:
    text = ('FROM scratch\nCOPY --from=build --chown=1:2 ["a b", "/dst/"]\n'
            'RUN <<EOF\necho one\necho two\nEOF\nCOPY <<-"END" /x\n\tliteral $X\n\tEND\n')
    copy, run, heredoc_copy = parse(text, "F").instructions[1:]
    assert copy.flag("from") == "build" and copy.flag("chown") == "1:2"
    assert copy.json_args() == ["a b", "/dst/"]
    assert run.heredocs[0].body == "echo one\necho two\n"
    doc = heredoc_copy.heredocs[0]
    assert (doc.name, doc.body, doc.expand) == ("END", "literal $X\n", False)


@pytest.mark.parametrize(("text", "message"), [
    ("FROM scratch\nFROBNICATE x\n", "F:2: unknown instruction 'FROBNICATE'"),
    ("FROM scratch\nRUN <<EOF\nnever ends\n", "F:2: heredoc <<EOF has no terminating"),
    ("# escape=x\nFROM scratch\n", "F:1: invalid escape character"),
])
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BuildError) as err:
        parse(text, "F")
    assert message in str(err.value)


def test_variable_forms() -> None:
    env = {"A": "x y", "E": ""}
    lexer = Lexer()
    assert lexer.words("$A ${A}z '$A' \"$A\"", env) == ["x", "y", "x", "yz", "$A", "x y"]
    assert lexer.word("${E:-d}|${E-d}|${U:-d}|${A:+alt}|${U:+alt}|\\$A", env) == \
        "d||d|alt||$A"
    assert lexer.word("${U:-${A}}", env) == "x y"
    with pytest.raises(LexError, match="U: required"):
        lexer.word("${U:?required}", env)
    assert lexer.referenced >= {"A", "E", "U"}


def test_global_args_from_lines_and_build_args() -> None:
    text = "ARG TAG=1\nARG BASE=img\nFROM $BASE:$TAG AS one\nFROM one\nARG TAG\n"
    plan = make_plan(parse(text, "F"), {"TAG": "2"}, None)
    assert plan.stages[0].base == "img:2"
    assert plan.stages[1].base_stage == 0
    assert [s.index for s in plan.order] == [0, 1]


def test_target_builds_only_what_it_needs_and_cycles_are_errors() -> None:
    text = "FROM a AS x\nFROM b AS y\nCOPY --from=x /f /f\nFROM c AS z\n"
    plan = make_plan(parse(text, "F"), {}, "y")
    assert [s.label for s in plan.order] == ["x", "y"]
    cycle = "FROM scratch AS a\nCOPY --from=b /x /x\nFROM a AS b\n"
    with pytest.raises(BuildError, match=r"F:2: COPY: stage cycle: b -> a -> b"):
        make_plan(parse(cycle, "F"), {}, None)
    with pytest.raises(BuildError, match="no stage named 'nope'"):
        make_plan(parse(text, "F"), {}, "nope")
    with pytest.raises(BuildError, match="F:1: RUN: only ARG may come before"):
        make_plan(parse("RUN x\nFROM scratch\n", "F"), {}, None)


def test_ignore_rules_last_match_wins() -> None:
    rules = parse_ignore("# comment\n*.log\n!keep.log\n**/tmp\n/build\ndocs/*.md\n", ".di")
    assert rules.excluded("a.log") and not rules.excluded("keep.log")
    assert rules.excluded("x/y/tmp") and rules.excluded("tmp/inner/file")
    assert rules.excluded("build/out") and not rules.excluded("src/build")
    assert rules.excluded("docs/a.md") and not rules.excluded("docs/sub/a.md")
    assert not rules.excluded("sub/a.log")  # *.log is for the top directory only


def test_cache_key_depends_on_every_input() -> None:
    base = step_key("parent", "RUN", "echo hi")
    assert base == step_key("parent", "RUN", "echo hi")
    assert base != step_key("other", "RUN", "echo hi")
    assert base != step_key("parent", "RUN", "echo ho")
    assert step_key("p", "COPY", "a", "b") != step_key("p", "COPY", "ab")


@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_gzip_is_valid_and_deterministic(threads: int) -> None:
    data = os.urandom(3 << 20) + b"z" * (5 << 20) + os.urandom(999)
    outputs = []
    for workers in (threads, 2):
        sink = io.BytesIO()
        writer = GzipWriter(sink, threads=workers)
        for offset in range(0, len(data), 700_000):
            writer.write(data[offset:offset + 700_000])
        writer.close()
        outputs.append((sink.getvalue(), writer.digest, writer.diff_id))
    assert outputs[0] == outputs[1]
    assert gzip.decompress(outputs[0][0]) == data


def test_heredoc_expansion_keeps_quotes() -> None:
    lexer = Lexer()
    assert lexer.expand('say "$A" \'${B:-b}\' \\$C\n', {"A": "x"}) == 'say "x" \'b\' $C\n'
