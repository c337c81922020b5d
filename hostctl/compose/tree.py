"""A compose file read into plain values that remember where each key came from.

`Map` and `Seq` are a dict and a list that also hold, per key or item, the (file, line)
it was written at; merges, `extends` and anchors carry those along so an error or
`where()` names the file a value came from, not the file it ended up in. Scalars follow
YAML 1.2's core schema as compose's Go loader does: `yes`, `on`, `1:30`, `2024-01-01` are
strings; only true/false are booleans. Values (never keys) are interpolated while
reading, so an interpolation error names FILE:LINE:KEY. `!reset` and `!override` become
`Reset` and `Override` markers for the merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.compose import reads
from hostctl.compose.interpolate import InterpolationError
from hostctl.errors import DeclarationError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_PLAIN = "!plain"  # a plain scalar: its type is decided here, by YAML 1.2's rules


class _Composer(_Loader):
    """Tags nodes without PyYAML's YAML 1.1 resolver (a regex match per scalar): plain
    scalars are resolved by resolve_plain, quoted ones are strings."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                return "tag:yaml.org,2002:merge" if value == "<<" else _PLAIN
            return "tag:yaml.org,2002:str"
        return "tag:yaml.org,2002:map" if kind is MappingNode else "tag:yaml.org,2002:seq"


Loc = tuple[str, int]
NOWHERE: Loc = ("", 0)
_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_OCTAL = re.compile(r"0[0-7]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = {
    ".inf": float("inf"),
    "+.inf": float("inf"),
    "-.inf": float("-inf"),
    ".nan": float("nan"),
    ".Inf": float("inf"),
    ".NaN": float("nan"),
}


TYPE_CHECKING = False  # typing and dataclasses are not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    _Dict = dict[str, Any]
    _List = list[Any]
else:
    _Dict, _List = dict, list


class Map(_Dict):
    """A mapping with the location of the mapping (`at`) and of each key (`locs`)."""

    __slots__ = ("at", "locs")

    def __init__(self, at: Loc = NOWHERE) -> None:
        super().__init__()
        self.at = at
        self.locs: dict[str, Loc] = {}

    def put(self, key: str, value: Any, loc: Loc) -> None:
        self[key] = value
        self.locs[key] = loc

    def loc(self, key: str) -> Loc:
        return self.locs.get(key, self.at)

    def copy_shallow(self) -> Map:
        out = Map(self.at)
        out.update(self)
        out.locs.update(self.locs)
        return out


class Seq(_List):
    """A sequence with the location of the sequence (`at`) and of each item (`locs`)."""

    __slots__ = ("at", "locs")

    def __init__(self, at: Loc = NOWHERE) -> None:
        super().__init__()
        self.at = at
        self.locs: list[Loc] = []

    def add(self, value: Any, loc: Loc) -> None:
        self.append(value)
        self.locs.append(loc)

    def loc(self, index: int) -> Loc:
        return self.locs[index] if 0 <= index < len(self.locs) else self.at


class Dropped:
    """A key with no meaning on one host: kept through merges so it is reported (with the
    path it ends up at) and then removed from the model."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Reset:
    """`!reset`: the key is removed from what it is merged over."""

    __slots__ = ()


class Override:
    """`!override VALUE`: VALUE replaces what it is merged over instead of merging."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def loc_of(container: Any, key: str | int) -> Loc:
    """The location of KEY in CONTAINER (a Map or Seq), or NOWHERE."""
    if isinstance(container, Map) and isinstance(key, str):
        return container.loc(key)
    if isinstance(container, Seq) and isinstance(key, int):
        return container.loc(key)
    return NOWHERE


def at(loc: Loc, key: str) -> str:
    """`FILE:LINE:KEY` for an error's where."""
    return f"{loc[0]}:{loc[1]}:{key}" if loc[1] else f"{loc[0]}:{key}" if loc[0] else key


def child(path: str, key: str | int) -> str:
    """The dotted path of KEY under PATH: `services.web`, `ports[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


Interpolate = Callable[[str], str]


class Reader:
    """Turns one file's YAML nodes into Map/Seq/scalars, interpolating string values."""

    def __init__(self, path: Path, interpolate: Interpolate | None) -> None:
        self.file = str(path)
        self.interpolate = interpolate
        self._open: set[int] = set()  # the collections being read: an alias into one loops
        self.markers = False  # a `!reset` or `!override` was read

    def loc(self, node: Node) -> Loc:
        return (self.file, node.start_mark.line + 1)

    def value(self, node: Node, path: str) -> Any:
        if node.tag == "!reset":
            self.markers = True
            return Reset()
        if node.tag == "!override":
            self.markers = True
            return Override(self.untagged(node, path))
        return self.untagged(node, path)

    def untagged(self, node: Node, path: str) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            self._enter(node, path)
            out = Seq(self.loc(node))
            for index, item in enumerate(node.value):
                out.add(self.value(item, child(path, index)), self.loc(item))
            self._open.discard(id(node))
            return out
        return self.scalar(node, path, plain_tags=node.tag == "!override")

    def _enter(self, node: Node, path: str) -> None:
        if id(node) in self._open:
            raise DeclarationError(
                "an alias refers to a mapping or list it is inside of",
                where=at(self.loc(node), path),
                hint="an anchor cannot contain an alias to itself",
            )
        self._open.add(id(node))

    def mapping(self, node: MappingNode, path: str) -> Map:
        self._enter(node, path)
        out = Map(self.loc(node))
        merged: list[Map] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = self.key(key_node, path)
            if key in out:
                raise DeclarationError(
                    f"duplicate key {key!r}",
                    where=at(self.loc(key_node), child(path, key)),
                    hint=f"first given on line {out.locs[key][1]}",
                )
            out.put(key, self.value(value_node, child(path, key)), self.loc(key_node))
        for source in merged:  # `<<`: the mapping's own keys win, then earlier sources
            for key, value in source.items():
                if key not in out:
                    out.put(key, value, source.loc(key))
        self._open.discard(id(node))
        return out

    def _merge_sources(self, node: Node, path: str) -> Iterable[Map]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        for item in nodes:
            if not isinstance(item, MappingNode):
                raise DeclarationError(
                    "a merge key `<<` takes a mapping or a list of mappings",
                    where=at(self.loc(item), child(path, "<<")),
                    hint="merge an anchored mapping: `<<: *defaults`",
                )
            yield self.mapping(item, path)

    def key(self, node: Node, path: str) -> str:
        if not isinstance(node, ScalarNode) or (node.tag == _PLAIN and _NULL.fullmatch(node.value)):
            raise DeclarationError(
                "a key must be a string",
                where=at(self.loc(node), path or "?"),
                hint="write `key: value`",
            )
        return str(node.value)

    def scalar(self, node: Node, path: str, plain_tags: bool = False) -> Any:
        """A scalar's value; PLAIN_TAGS: its tag (`!override`) was dealt with."""
        text = str(node.value)
        if node.tag == _PLAIN:
            resolved = resolve_plain(text)
            if not isinstance(resolved, str):
                return resolved
        elif node.tag.startswith("!") and node.tag != "!" and not plain_tags:
            raise DeclarationError(
                f"unknown tag {node.tag}",
                where=at(self.loc(node), path),
                hint="compose files know `!reset` and `!override`",
            )
        if self.interpolate is None:
            return text
        try:
            return self.interpolate(text)
        except InterpolationError as err:
            raise DeclarationError(
                err.message, where=at(self.loc(node), path), hint=err.hint
            ) from None


def resolve_plain(text: str) -> Any:
    """A plain scalar's value under YAML 1.2's core schema."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):  # a leading 0 is octal, as compose's YAML reader takes it
        if text[:2] in ("0o", "0x"):
            return int(text, 0)
        return int(text, 8) if _OCTAL.fullmatch(text) else int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _SPECIAL_FLOAT.get(text, text)


def compose_file(path: Path) -> Node | None:
    """The YAML node tree of PATH (None when the file is empty)."""
    reads.note(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DeclarationError(
            f"not UTF-8 text (byte {err.start})", where=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as err:
        raise DeclarationError(f"cannot read: {err.strerror}", where=str(path)) from None
    try:
        return yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DeclarationError(
            f"not valid YAML: {err.problem or err.context}",
            where=f"{path}{line}",
            hint="check the indentation and quoting on that line",
        ) from None
    except yaml.YAMLError as err:
        raise DeclarationError(f"not valid YAML: {err}", where=str(path)) from None


def read_file(path: Path, interpolate: Interpolate | None) -> tuple[Map, bool]:
    """PATH read into a Map, string values interpolated with INTERPOLATE, and whether it
    holds `!reset`/`!override` markers (without, there is nothing to strip after merges)."""
    node = compose_file(path)
    if node is None:
        return Map((str(path), 1)), False
    if not isinstance(node, MappingNode):
        raise DeclarationError(
            "a compose file is a mapping",
            where=f"{path}:{node.start_mark.line + 1}",
            hint="start with `services:`",
        )
    reader = Reader(path, interpolate)
    return reader.mapping(node, ""), reader.markers
