"""YAML node helpers shared by the readers of each kind: errors at FILE:LINE:KEY, texts
as written, mappings with unique keys and merges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.declarations import checks
from hostctl.declarations.checks import Invalid
from hostctl.declarations.settings import BY_KEY
from hostctl.errors import DeclarationError

NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
CONSTRUCTOR = SafeConstructor()


class Context:
    """Where errors point: the file, and a node's line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.origin: dict[int, Path] = {}  # id(node) -> the drop-in file it came from

    def error(self, node: Node, key: str, message: str, hint: str | None) -> DeclarationError:
        path = self.origin.get(id(node), self.path)
        where = f"{path}:{node.start_mark.line + 1}:{key}"
        return DeclarationError(message, where=where, hint=hint)

    def invalid(self, node: Node, key: str, err: Invalid) -> DeclarationError:
        return self.error(node, key, err.message, err.hint)


def pairs(node: MappingNode, context: Context, parent: str) -> Iterator[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping. Keys must be unique strings; keys
    brought in by a `<<:` merge are overridden by the mapping's own, as YAML specifies."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE:
            continue
        key = key_text(key_node, context, parent)
        if key in seen:
            label = f"{parent}.{key}" if parent else key
            raise context.error(
                key_node, label, f"duplicate key {key!r}", f"first given on line {seen[key]}"
            )
        seen[key] = key_node.start_mark.line + 1
    try:
        CONSTRUCTOR.flatten_mapping(node)
    except yaml.MarkedYAMLError as err:
        raise context.error(
            node, parent or "<<", f"bad merge key: {err.problem}", "merge a mapping: `<<: *anchor`"
        ) from None
    merged = {
        key_text(key_node, context, parent): (key_node, value) for key_node, value in node.value
    }
    for key, (key_node, value_node) in merged.items():
        yield key, key_node, value_node


def key_text(node: Node, context: Context, parent: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag == NULL:
        raise context.error(node, parent or "?", "a key must be a string", "write `key: value`")
    return str(node.value)


def example(key: str) -> str | None:
    """An example of the top-level setting that KEY (e.g. env.A, command[2]) is part of."""
    setting = BY_KEY.get(key.split(".")[0].split("[")[0])
    if setting is None or setting.example is None:
        return None
    return f"e.g. `{setting.key}: {setting.example}`"


def type_error(node: Node, context: Context, key: str, wanted: str) -> DeclarationError:
    hint = example(key)
    if isinstance(node, MappingNode):
        got = "a mapping"
    elif isinstance(node, SequenceNode):
        got = "a list"
    elif node.tag == NULL:
        got, hint = "nothing", 'write "" for an empty string'
    else:
        got = repr(node.value)
    return context.error(node, key, f"expected {wanted}, got {got}", hint)


def scalar_text(node: Node, context: Context, key: str, wanted: str = "a string") -> str:
    """A scalar's text as written (numbers and booleans included); null is an error."""
    if not isinstance(node, ScalarNode) or node.tag == NULL:
        raise type_error(node, context, key, wanted)
    try:
        return checks.check_string(node.value)
    except Invalid as err:
        raise context.invalid(node, key, err) from None


def checked(node: Node, context: Context, key: str, check: Callable[[str], Any]) -> Any:
    text = scalar_text(node, context, key)
    try:
        return check(text)
    except Invalid as err:
        raise context.invalid(node, key, err) from None


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL
