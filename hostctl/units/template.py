"""The unit templates (hostctl/unit_templates/*.j2) compiled to Python functions.

jinja2 cost the generator's render a third of its time in imports (about 35 ms of a
cold daemon-reload) for ten small templates. They use a small part of its language,
which this module compiles, once per template and process, into one Python function:

- `{{ EXPR }}`: the value as str(); EXPR is a Python expression over the context's
  names and the loop variables (`A if B else C`, `N + 30`, `not X`, string literals),
  optionally with the one filter `| join(SEP)`;
- `{% if EXPR %}`, `{% else %}`, `{% endif %}`; `{% for NAME in EXPR %}`, `{% endfor %}`
  (the loop variable is the loop's own, as in jinja2: a context name it shadows is back
  after the loop).

The whitespace rules are jinja2's with the options hostctl rendered with (trim_blocks,
lstrip_blocks, keep_trailing_newline): a block tag's line is taken out when the tag is
alone on it. A name the context lacks raises (jinja2's StrictUndefined), and anything
outside this language is a HostctlError naming the template and tag.
tests/unit/test_unit_template.py renders every template with jinja2 and with this
module, over contexts that take each branch, and compares the texts.
"""

from __future__ import annotations

import os
import re

from hostctl.errors import HostctlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Render = Callable[[Mapping[str, object]], str]

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "unit_templates")
_TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}|\{#.*?#\}", re.S)
_TOKEN = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_]\w*)|(\S)|\s+""")
_KEEP = {"if", "else", "not", "and", "or", "in", "is", "True", "False", "None"}
_JINJA_CONSTANTS = {"true": "True", "false": "False", "none": "None"}
_FOR = re.compile(r"for\s+([A-Za-z_]\w*)\s+in\s+(.+)", re.S)
_JOIN = re.compile(r"(.+?)\|\s*join(?:\((.*)\))?\s*", re.S)
_compiled: dict[str, Render] = {}


def get_template(name: str) -> Render:
    """Template NAME of hostctl/unit_templates, compiled (once per process)."""
    found = _compiled.get(name)
    if found is None:
        with open(os.path.join(TEMPLATE_DIR, name), encoding="utf-8") as file:
            found = _compiled[name] = compile_template(file.read(), name)
    return found


def render(name: str, context: Mapping[str, object]) -> str:
    """Template NAME rendered with CONTEXT."""
    return get_template(name)(context)


class _Compiler:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lines = ["def _render(_c):", " _o = []", " _a = _o.append"]
        self.blocks: list[tuple[str, str | None]] = []  # (kind, loop variable)
        self.scopes: list[dict[str, str]] = [{}]
        self.empty = [False]  # per open block: has it no statement yet

    def error(self, tag: str, why: str) -> HostctlError:
        return HostctlError(f"unit template {self.name}: {{% {tag.strip()} %}}: {why}",
                            hint="hostctl.units.template compiles a small part of jinja2")

    def emit(self, line: str) -> None:
        self.lines.append(" " * (len(self.blocks) + 1) + line)
        self.empty[-1] = False

    def open(self, line: str, kind: str, variable: str | None = None) -> None:
        self.emit(line)
        self.blocks.append((kind, variable))
        self.empty.append(True)

    def close(self, tag: str, kind: str) -> None:
        if not self.blocks or self.blocks[-1][0] != kind:
            raise self.error(tag, "no open block it closes")
        self.fill()
        self.blocks.pop()
        self.empty.pop()

    def fill(self) -> None:
        if self.empty[-1]:
            self.emit("pass")  # a block the template leaves empty

    def expression(self, text: str, tag: str) -> str:
        joined = _JOIN.fullmatch(text)
        if joined:
            separator = self.expression(joined.group(2) or "''", tag)
            return f"({separator}).join(map(str, {self.expression(joined.group(1), tag)}))"
        out: list[str] = []
        for token in _TOKEN.finditer(text):
            literal, name, other = token.groups()
            if name is not None and not (out and out[-1] == "."):
                out.append(self.name_of(name))
            elif other == "|":
                raise self.error(tag, "the only filter is join")
            else:
                out.append(literal or name or other or " ")
        return "".join(out).strip()

    def name_of(self, name: str) -> str:
        if name in _KEEP:
            return f" {name} "
        if name in _JINJA_CONSTANTS:
            return _JINJA_CONSTANTS[name]
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return f"_c[{name!r}]"

    def statement(self, tag: str) -> None:
        words = tag.split(None, 1)
        keyword, rest = (words[0], words[1] if len(words) > 1 else "") if words else ("", "")
        if keyword == "if":
            self.open(f"if {self.expression(rest, tag)}:", "if")
        elif keyword == "else" and not rest and self.blocks and self.blocks[-1][0] == "if":
            self.fill()
            self.lines.append(" " * len(self.blocks) + "else:")
            self.empty[-1] = True
        elif keyword == "for" and _FOR.fullmatch(tag):
            loop = _FOR.fullmatch(tag)
            assert loop is not None
            variable = f"_v{len(self.lines)}"
            self.open(f"for {variable} in {self.expression(loop.group(2), tag)}:", "for")
            self.scopes.append({loop.group(1): variable})
        elif keyword == "endif" and not rest:
            self.close(tag, "if")
        elif keyword == "endfor" and not rest:
            self.close(tag, "for")
            self.scopes.pop()
        else:
            raise self.error(tag, "not a tag this compiler knows")

    def source(self) -> str:
        if self.blocks:
            raise HostctlError(f"unit template {self.name}: {{% {self.blocks[-1][0]} %}} "
                               "is not closed", hint="close it with {% end"
                               f"{self.blocks[-1][0]} %}}")
        return "\n".join([*self.lines, " return ''.join(_o)", ""])


def compile_template(text: str, name: str = "<template>") -> Render:
    """TEXT (jinja2's syntax, the part this module knows) as a function of the context."""
    compiler = _Compiler(name)
    pos = 0
    for tag in _TAG.finditer(text):
        literal = text[pos:tag.start()]
        expression, block = tag.group(1), tag.group(2)
        if expression is None:  # a block tag or a comment: lstrip_blocks, trim_blocks
            line_start = text.rfind("\n", 0, tag.start()) + 1
            if line_start >= pos and not text[line_start:tag.start()].strip(" \t"):
                literal = literal[:line_start - pos]
        if literal:
            compiler.emit(f"_a({literal!r})")
        pos = tag.end()
        if expression is not None:
            compiler.emit(f"_a(str({compiler.expression(expression, expression)}))")
            continue
        if text.startswith("\n", pos):
            pos += 1
        if block is not None:
            compiler.statement(block.strip())
    if text[pos:]:
        compiler.emit(f"_a({text[pos:]!r})")
    namespace: dict[str, object] = {}
    exec(compile(compiler.source(), f"<unit template {name}>", "exec"), namespace)
    function: Render = namespace["_render"]  # type: ignore[assignment]
    return function
