"""Reading a declaration from YAML, with FILE:LINE:KEY on every error.

The file is composed into nodes (not loaded into dicts) so each value keeps its line, and
scalars meant as strings keep their text as written: `restart: no` is "no", not False,
and `user: 1:30` is "1:30", not YAML 1.1's sexagesimal 90.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hostctl.declarations import checks, values
from hostctl.declarations.checks import Invalid
from hostctl.declarations.model import Container, Directives
from hostctl.declarations.settings import BY_KEY, SETTINGS, Kind, Setting
from hostctl.declarations.yaml_kinds import READERS
from hostctl.declarations.yaml_nodes import (
    CONSTRUCTOR,
    INT,
    NULL,
    Context,
    checked,
    is_null,
    pairs,
    scalar_text,
    type_error,
)
from hostctl.errors import DeclarationError, raise_all

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_ALLOWED = ", ".join(BY_KEY)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DeclarationError(
            f"not UTF-8 text (byte {err.start})", where=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as err:
        raise DeclarationError(f"cannot read: {err.strerror}", where=str(path)) from None


def load_yaml(path: Path, name: str | None = None, dropins: Sequence[Path] = ()) -> Container:
    """Read and validate the declaration in PATH, with the DROPINS deep-merged over it in
    order (mappings merge key by key, any other value replaces); NAME defaults to the
    file stem. Errors in a drop-in's values name the drop-in file."""
    return parse_yaml(_read(path), path, name, [(d, _read(d)) for d in dropins])


def parse_yaml(
    text: str,
    source: Path,
    name: str | None = None,
    dropins: Sequence[tuple[Path, str]] = (),
) -> Container:
    """Validate the declaration TEXT, which came from SOURCE (used in errors)."""
    name = name if name is not None else _stem(source)
    try:
        checks.check_name(name)
    except Invalid as err:
        raise DeclarationError(err.message, where=str(source), hint=err.hint) from None
    context = Context(source)
    top = _compose(text, source)
    for dropin, dropin_text in dropins:
        layer = _compose(dropin_text, dropin)
        _remember_origin(layer, dropin, context)
        _merge(top, layer, context)
    try:
        found, locations = _settings(top, context)
    except RecursionError:
        raise DeclarationError(
            "nested too deeply", where=str(source), hint="check for recursive anchors"
        ) from None
    return Container(name=name, source=source, locations=locations, **found)


def _remember_origin(node: Node, path: Path, context: Context) -> None:
    context.origin[id(node)] = path
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            _remember_origin(key_node, path, context)
            _remember_origin(value_node, path, context)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _remember_origin(item, path, context)


def _merge(base: MappingNode, layer: MappingNode, context: Context) -> None:
    """Deep-merge LAYER into BASE: mappings key by key, other values replaced."""
    index = {
        key: i for i, (key_node, _) in enumerate(base.value)
        if isinstance(key_node, ScalarNode) and (key := str(key_node.value))
    }
    for key, key_node, value_node in pairs(layer, context, ""):
        if key not in index:
            base.value.append((key_node, value_node))
            continue
        _, old_value = base.value[index[key]]
        if isinstance(old_value, MappingNode) and isinstance(value_node, MappingNode):
            _merge(old_value, value_node, context)
        else:
            base.value[index[key]] = (key_node, value_node)


def _stem(path: Path) -> str:
    return path.name.removesuffix(".yaml").removesuffix(".yml")


def _compose(text: str, source: Path, *, empty_ok: bool = False) -> MappingNode:
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
    if node is None or (isinstance(node, ScalarNode) and node.tag == NULL):
        if empty_ok:
            return MappingNode("tag:yaml.org,2002:map", [])
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


def read_table(text: str, source: Path, table: Sequence[Setting],
               combination: Callable[[dict[str, Any]], None]
               ) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]]:
    """The settings of TABLE in the YAML TEXT (from SOURCE) and their lines, checked one by
    one and then together by COMBINATION (which raises values.Conflict); for the other
    kinds of declaration (pods) that have a settings table of their own."""
    top = _compose(text, source, empty_ok=True)
    return _settings(top, Context(source), table, combination)


def _settings(top: MappingNode, context: Context, table: Sequence[Setting] = SETTINGS,
              combination: Callable[[dict[str, Any]], None] = values.check_combination,
              ) -> tuple[dict[str, Any], tuple[Any, ...]]:
    by_key = BY_KEY if table is SETTINGS else {s.key: s for s in table}
    allowed = _ALLOWED if table is SETTINGS else ", ".join(by_key)
    found: dict[str, Any] = {}
    lines: dict[str, Node] = {}
    problems: list[DeclarationError] = []  # every key's first problem, in file order
    try:
        for key, key_node, value_node in pairs(top, context, ""):
            setting = by_key.get(key)
            lines[key] = key_node
            if setting is None:
                problems.append(context.error(
                    key_node,
                    key,
                    f"unknown key {key!r}",
                    f"{checks.suggest(key, by_key)}allowed keys: {allowed}",
                ))
                continue
            try:
                found[key] = _READERS[setting.kind](value_node, context, setting)
            except DeclarationError as err:
                problems.append(err)
    except DeclarationError as err:  # a key that is not a string or is repeated
        problems.append(err)
    for setting in table:
        if setting.required and setting.key not in found and setting.key not in lines:
            problems.append(context.error(
                top,
                setting.key,
                f"missing required key {setting.key!r}",
                f"{setting.help} e.g. `{setting.key}: {setting.example}`",
            ))
    raise_all(problems)
    try:
        combination(found)
    except values.Conflict as err:
        raise context.invalid(lines[err.key], err.key, err) from None
    locations = tuple((key, node.start_mark.line + 1) for key, node in lines.items())
    return found, locations


def _read_image(node: Node, context: Context, setting: Setting) -> str:
    return str(checked(node, context, setting.key, checks.check_image))


def _read_argv(node: Node, context: Context, setting: Setting) -> tuple[str, ...]:
    key = setting.key
    if isinstance(node, SequenceNode):
        return tuple(
            scalar_text(item, context, f"{key}[{i}]") for i, item in enumerate(node.value)
        )
    if isinstance(node, ScalarNode) and node.tag != NULL:
        return tuple(checked(node, context, key, checks.split_argv))
    raise type_error(node, context, key, "a list of strings or a string")


def _read_env(node: Node, context: Context, setting: Setting) -> tuple[tuple[str, str], ...]:
    key = setting.key
    if isinstance(node, MappingNode):
        result = []
        for name, name_node, value_node in pairs(node, context, key):
            label = f"{key}.{name}"
            try:
                checks.check_env_name(name)
            except Invalid as err:
                raise context.invalid(name_node, label, err) from None
            result.append((name, scalar_text(value_node, context, label, "a string or number")))
        return tuple(result)
    if isinstance(node, SequenceNode):
        return _read_env_list(node, context, key)
    raise type_error(node, context, key, "a mapping of NAME: value")


def _read_env_list(node: SequenceNode, context: Context, key: str) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for i, item in enumerate(node.value):
        text = scalar_text(item, context, f"{key}[{i}]", "NAME=VALUE")
        name, equals, value = text.partition("=")
        try:
            if not equals:
                raise Invalid(f"{text!r} has no '='", "write NAME=VALUE, or use a mapping")
            checks.check_env_name(name)
            if name in seen:
                raise Invalid(f"{name} is set twice", "keep one of them")
        except Invalid as err:
            raise context.invalid(item, f"{key}[{i}]", err) from None
        seen[name] = value
    return tuple(seen.items())


def _read_abspath(node: Node, context: Context, setting: Setting) -> str:
    return str(checked(node, context, setting.key, checks.check_abspath))


def _read_user(node: Node, context: Context, setting: Setting) -> str:
    return str(checked(node, context, setting.key, checks.check_user))


def _read_seconds(node: Node, context: Context, setting: Setting) -> int:
    if not isinstance(node, ScalarNode) or node.tag != INT:
        raise type_error(node, context, setting.key, "a whole number of seconds")
    value = CONSTRUCTOR.construct_yaml_int(node)
    try:
        return checks.check_seconds(value)
    except Invalid as err:
        raise context.invalid(node, setting.key, err) from None


def _read_choice(node: Node, context: Context, setting: Setting) -> StrEnum:
    assert setting.choices is not None, f"{setting.key}: a CHOICE setting needs choices"
    allowed = [str(choice) for choice in setting.choices]
    text = checked(node, context, setting.key, lambda t: checks.check_choice(t, allowed))
    return setting.choices(text)


def _read_directives(node: Node, context: Context, setting: Setting) -> Directives:
    key, section = setting.key, setting.section or ""
    if not isinstance(node, MappingNode):
        raise type_error(node, context, key, f"a mapping of [{section}] directives")
    result = []
    for name, name_node, value_node in pairs(node, context, key):
        label = f"{key}.{name}"
        try:
            checks.check_directive(section, name)
        except Invalid as err:
            raise context.invalid(name_node, label, err) from None
        items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        values = []
        for item in items:
            text = "" if is_null(item) else scalar_text(item, context, label, "a string or a list")
            try:
                values.append(checks.check_directive_value(section, name, text))
            except Invalid as err:
                raise context.invalid(item, label, err) from None
        result.append((name, tuple(values)))
    return tuple(result)


_READERS: dict[Kind, Callable[[Node, Context, Setting], Any]] = {
    Kind.IMAGE: _read_image,
    Kind.ARGV: _read_argv,
    Kind.ENV: _read_env,
    Kind.ABSPATH: _read_abspath,
    Kind.USER: _read_user,
    Kind.SECONDS: _read_seconds,
    Kind.CHOICE: _read_choice,
    Kind.DIRECTIVES: _read_directives,
    **READERS,
}
