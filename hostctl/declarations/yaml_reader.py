"""Reading a declaration from YAML, with FILE:LINE:KEY on every error.

The file is composed into nodes (not loaded into dicts) so each value keeps its line, and
scalars meant as strings keep their text as written: `restart: no` is "no", not False,
and `user: 1:30` is "1:30", not YAML 1.1's sexagesimal 90.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.declarations import checks
from hostctl.declarations.checks import Invalid
from hostctl.declarations.model import Container, Directives
from hostctl.declarations.settings import BY_KEY, SETTINGS, Kind, Setting
from hostctl.errors import DeclarationError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"
_CONSTRUCTOR = SafeConstructor()
_ALLOWED = ", ".join(BY_KEY)


class _Context:
    """Where errors point: the file, and a node's line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: Node, key: str, message: str, hint: str | None) -> DeclarationError:
        where = f"{self.path}:{node.start_mark.line + 1}:{key}"
        return DeclarationError(message, where=where, hint=hint)

    def invalid(self, node: Node, key: str, err: Invalid) -> DeclarationError:
        return self.error(node, key, err.message, err.hint)


def load_yaml(path: Path, name: str | None = None) -> Container:
    """Read and validate the declaration in PATH; NAME defaults to the file stem."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DeclarationError(
            f"not UTF-8 text (byte {err.start})", where=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as err:
        raise DeclarationError(f"cannot read: {err.strerror}", where=str(path)) from None
    return parse_yaml(text, path, name)


def parse_yaml(text: str, source: Path, name: str | None = None) -> Container:
    """Validate the declaration TEXT, which came from SOURCE (used in errors)."""
    name = name if name is not None else _stem(source)
    try:
        checks.check_name(name)
    except Invalid as err:
        raise DeclarationError(err.message, where=str(source), hint=err.hint) from None
    context = _Context(source)
    top = _compose(text, source)
    try:
        values, locations = _settings(top, context)
    except RecursionError:
        raise DeclarationError(
            "nested too deeply", where=str(source), hint="check for recursive anchors"
        ) from None
    return Container(name=name, source=source, locations=locations, **values)


def _stem(path: Path) -> str:
    return path.name.removesuffix(".yaml").removesuffix(".yml")


def _compose(text: str, source: Path) -> MappingNode:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise DeclarationError(
            f"invalid YAML: {problem}", where=f"{source}{line}", hint="check the YAML syntax"
        ) from None
    except yaml.YAMLError as err:
        raise DeclarationError(f"invalid YAML: {err}", where=str(source)) from None
    finally:
        loader.dispose()
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
        raise DeclarationError(
            "the declaration is empty", where=str(source), hint="at least `image:` is required"
        )
    if not isinstance(node, MappingNode):
        raise DeclarationError(
            "the top level must be a mapping of settings",
            where=f"{source}:{node.start_mark.line + 1}",
            hint=f"write `key: value` lines; allowed keys: {_ALLOWED}",
        )
    return node


def _pairs(node: MappingNode, context: _Context, parent: str) -> Iterator[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping. Keys must be unique strings; keys
    brought in by a `<<:` merge are overridden by the mapping's own, as YAML specifies."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        key = _key(key_node, context, parent)
        if key in seen:
            label = f"{parent}.{key}" if parent else key
            raise context.error(
                key_node, label, f"duplicate key {key!r}", f"first given on line {seen[key]}"
            )
        seen[key] = key_node.start_mark.line + 1
    try:
        _CONSTRUCTOR.flatten_mapping(node)
    except yaml.MarkedYAMLError as err:
        raise context.error(
            node, parent or "<<", f"bad merge key: {err.problem}", "merge a mapping: `<<: *anchor`"
        ) from None
    merged = {_key(key_node, context, parent): (key_node, value) for key_node, value in node.value}
    for key, (key_node, value_node) in merged.items():
        yield key, key_node, value_node


def _key(node: Node, context: _Context, parent: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        raise context.error(node, parent or "?", "a key must be a string", "write `key: value`")
    return str(node.value)


def _settings(top: MappingNode, context: _Context) -> tuple[dict[str, Any], tuple[Any, ...]]:
    values: dict[str, Any] = {}
    locations: list[tuple[str, int]] = []
    for key, key_node, value_node in _pairs(top, context, ""):
        setting = BY_KEY.get(key)
        if setting is None:
            raise context.error(
                key_node,
                key,
                f"unknown key {key!r}",
                f"{checks.suggest(key, BY_KEY)}allowed keys: {_ALLOWED}",
            )
        values[key] = _READERS[setting.kind](value_node, context, setting)
        locations.append((key, key_node.start_mark.line + 1))
    for setting in SETTINGS:
        if setting.required and setting.key not in values:
            raise context.error(
                top,
                setting.key,
                f"missing required key {setting.key!r}",
                f"{setting.help} e.g. `{setting.key}: {setting.example}`",
            )
    return values, tuple(locations)


def _example(key: str) -> str | None:
    """An example of the top-level setting that KEY (e.g. env.A, command[2]) is part of."""
    setting = BY_KEY.get(key.split(".")[0].split("[")[0])
    if setting is None or setting.example is None:
        return None
    return f"e.g. `{setting.key}: {setting.example}`"


def _type_error(node: Node, context: _Context, key: str, wanted: str) -> DeclarationError:
    hint = _example(key)
    if isinstance(node, MappingNode):
        got = "a mapping"
    elif isinstance(node, SequenceNode):
        got = "a list"
    elif node.tag == _NULL:
        got, hint = "nothing", 'write "" for an empty string'
    else:
        got = repr(node.value)
    return context.error(node, key, f"expected {wanted}, got {got}", hint)


def _text(node: Node, context: _Context, key: str, wanted: str = "a string") -> str:
    """A scalar's text as written (numbers and booleans included); null is an error."""
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        raise _type_error(node, context, key, wanted)
    try:
        return checks.check_string(node.value)
    except Invalid as err:
        raise context.invalid(node, key, err) from None


def _checked(node: Node, context: _Context, key: str, check: Callable[[str], Any]) -> Any:
    text = _text(node, context, key)
    try:
        return check(text)
    except Invalid as err:
        raise context.invalid(node, key, err) from None


def _read_image(node: Node, context: _Context, setting: Setting) -> str:
    return str(_checked(node, context, setting.key, checks.check_image))


def _read_argv(node: Node, context: _Context, setting: Setting) -> tuple[str, ...]:
    key = setting.key
    if isinstance(node, SequenceNode):
        return tuple(
            _text(item, context, f"{key}[{i}]") for i, item in enumerate(node.value)
        )
    if isinstance(node, ScalarNode) and node.tag != _NULL:
        return tuple(_checked(node, context, key, checks.split_argv))
    raise _type_error(node, context, key, "a list of strings or a string")


def _read_env(node: Node, context: _Context, setting: Setting) -> tuple[tuple[str, str], ...]:
    key = setting.key
    if isinstance(node, MappingNode):
        pairs = []
        for name, name_node, value_node in _pairs(node, context, key):
            label = f"{key}.{name}"
            try:
                checks.check_env_name(name)
            except Invalid as err:
                raise context.invalid(name_node, label, err) from None
            pairs.append((name, _text(value_node, context, label, "a string or number")))
        return tuple(pairs)
    if isinstance(node, SequenceNode):
        return _read_env_list(node, context, key)
    raise _type_error(node, context, key, "a mapping of NAME: value")


def _read_env_list(node: SequenceNode, context: _Context, key: str) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for i, item in enumerate(node.value):
        text = _text(item, context, f"{key}[{i}]", "NAME=VALUE")
        name, equals, value = text.partition("=")
        try:
            if not equals:
                raise Invalid(f"{text!r} has no '='", "write NAME=VALUE, or use a mapping")
            checks.check_env_name(name)
            if name in pairs:
                raise Invalid(f"{name} is set twice", "keep one of them")
        except Invalid as err:
            raise context.invalid(item, f"{key}[{i}]", err) from None
        pairs[name] = value
    return tuple(pairs.items())


def _read_abspath(node: Node, context: _Context, setting: Setting) -> str:
    return str(_checked(node, context, setting.key, checks.check_abspath))


def _read_user(node: Node, context: _Context, setting: Setting) -> str:
    return str(_checked(node, context, setting.key, checks.check_user))


def _read_seconds(node: Node, context: _Context, setting: Setting) -> int:
    if not isinstance(node, ScalarNode) or node.tag != _INT:
        raise _type_error(node, context, setting.key, "a whole number of seconds")
    value = _CONSTRUCTOR.construct_yaml_int(node)
    try:
        return checks.check_seconds(value)
    except Invalid as err:
        raise context.invalid(node, setting.key, err) from None


def _read_choice(node: Node, context: _Context, setting: Setting) -> StrEnum:
    assert setting.choices is not None, f"{setting.key}: a CHOICE setting needs choices"
    allowed = [str(choice) for choice in setting.choices]
    text = _checked(node, context, setting.key, lambda t: checks.check_choice(t, allowed))
    return setting.choices(text)


def _read_directives(node: Node, context: _Context, setting: Setting) -> Directives:
    key, section = setting.key, setting.section or ""
    if not isinstance(node, MappingNode):
        raise _type_error(node, context, key, f"a mapping of [{section}] directives")
    result = []
    for name, name_node, value_node in _pairs(node, context, key):
        label = f"{key}.{name}"
        try:
            checks.check_directive(section, name)
        except Invalid as err:
            raise context.invalid(name_node, label, err) from None
        items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        values = []
        for item in items:
            text = "" if _is_null(item) else _text(item, context, label, "a string or a list")
            try:
                values.append(checks.check_directive_value(section, name, text))
            except Invalid as err:
                raise context.invalid(item, label, err) from None
        result.append((name, tuple(values)))
    return tuple(result)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


_READERS: dict[Kind, Callable[[Node, _Context, Setting], Any]] = {
    Kind.IMAGE: _read_image,
    Kind.ARGV: _read_argv,
    Kind.ENV: _read_env,
    Kind.ABSPATH: _read_abspath,
    Kind.USER: _read_user,
    Kind.SECONDS: _read_seconds,
    Kind.CHOICE: _read_choice,
    Kind.DIRECTIVES: _read_directives,
}
