"""Reading Kubernetes manifests: documents as plain values, each field's line kept.

A document is composed into YAML nodes (so each value keeps its line) and turned into
plain Python values; `Doc` remembers the line of every field path, so a refusal names
FILE:LINE, the document's index and the field's path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.errors import DeclarationError

_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Doc:
    """One document of a manifest: its plain value and the line of each field path."""

    source: Path
    index: int  # 1-based, as `kubectl` counts documents
    body: Mapping[str, Any]
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    def where(self, path: str) -> str:
        """FILE:LINE of PATH (its nearest parent's line when PATH is not written)."""
        probe = path
        while probe:
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}"
            probe = _parent(probe)
        return str(self.source)

    def error(self, path: str, message: str, hint: str | None = None) -> DeclarationError:
        """The refusal of the field at PATH."""
        return DeclarationError(f"document {self.index}: {path}: {message}",
                                where=self.where(path), hint=hint)


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def load_documents(path: Path) -> list[Doc]:
    """Every non-empty document of the manifest PATH."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path),
                               hint="give a readable Kubernetes YAML file") from None
    return parse_documents(text, path)


def parse_documents(text: str, source: Path) -> list[Doc]:
    """The documents of TEXT (read from SOURCE)."""
    docs = []
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=yaml.SafeLoader), 1):
            if node is None or (isinstance(node, ScalarNode) and node.value == ""):
                continue
            lines: dict[str, int] = {}
            body = _plain(node, "", lines, source, index)
            if not isinstance(body, dict):
                raise DeclarationError(f"document {index}: not a mapping",
                                       where=f"{source}:{node.start_mark.line + 1}",
                                       hint="each document is one Kubernetes object")
            docs.append(Doc(source, index, body, lines))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise DeclarationError(f"invalid YAML: {err.problem}", where=f"{source}{line}",
                               hint="check the YAML syntax") from None
    return docs


def _plain(node: Node, path: str, lines: dict[str, int], source: Path, index: int) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in result:
                raise DeclarationError(f"document {index}: {child}: duplicate key",
                                       where=f"{source}:{key_node.start_mark.line + 1}",
                                       hint="give each field once")
            lines[child] = key_node.start_mark.line + 1
            result[key] = _plain(value_node, child, lines, source, index)
        return result
    if isinstance(node, SequenceNode):
        return [_plain(item, f"{path}[{i}]", lines, source, index)
                for i, item in enumerate(node.value)]
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    except ConstructorError as err:
        raise DeclarationError(f"document {index}: {path}: {err.problem}",
                               where=f"{source}:{node.start_mark.line + 1}",
                               hint="check the value") from None


class Fields:
    """The fields of one mapping at PATH of DOC, checked against what is supported."""

    def __init__(self, doc: Doc, path: str, value: Any) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise doc.error(path, "expected a mapping", "see the Kubernetes API reference")
        self.doc = doc
        self.path = path
        self.value: dict[str, Any] = value

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def only(self, supported: Iterable[str], ignored: Iterable[str] = ()) -> None:
        """Refuse every field but SUPPORTED and IGNORED (accepted, meaningless here)."""
        allowed = set(supported) | set(ignored)
        for key in self.value:
            if key not in allowed:
                raise self.doc.error(self.at(key), "not supported",
                                     "hostctl reads: " + ", ".join(sorted(supported)))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.value.get(key)
        return default if value is None else value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.value.get(key)
        if value is None:
            return default
        if isinstance(value, (dict, list)):
            raise self.doc.error(self.at(key), "expected a single value")
        return str(value)

    def required(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise self.doc.error(self.at(key), "missing", f"give {self.at(key)}")
        return value

    def integer(self, key: str, minimum: int = 0) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.doc.error(self.at(key), f"expected an integer >= {minimum}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.value.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.doc.error(self.at(key), "expected true or false")
        return value

    def sub(self, key: str) -> Fields:
        return Fields(self.doc, self.at(key), self.value.get(key))

    def items(self, key: str) -> Iterator[Fields]:
        """Each mapping of the list at KEY."""
        value = self.value.get(key) or []
        if not isinstance(value, list):
            raise self.doc.error(self.at(key), "expected a list")
        for i, item in enumerate(value):
            yield Fields(self.doc, f"{self.at(key)}[{i}]", item)

    def strings(self, key: str) -> list[str] | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
            raise self.doc.error(self.at(key), "expected a list of strings")
        return [str(v) for v in value]

    def error(self, key: str, message: str, hint: str | None = None) -> DeclarationError:
        return self.doc.error(self.at(key) if key else self.path, message, hint)
