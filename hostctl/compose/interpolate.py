"""Variable interpolation as the compose spec defines it, and `.env` files as docker
compose reads them.

Forms: `$$` (a literal `$`), `$NAME`, `${NAME}`, `${NAME:-default}` (unset or empty),
`${NAME-default}` (unset), `${NAME:+replacement}` (set and not empty), `${NAME+replacement}`
(set), `${NAME:?error}` (unset or empty is an error), `${NAME?error}` (unset is an
error). Defaults, replacements and error texts may themselves hold `${...}`. A `$` that
starts none of these forms is kept as written (`$1`, a trailing `$`); a `${` that does
not close on a valid form is an error. An unset variable with no default is an empty
string and a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from hostctl.compose import reads
from hostctl.errors import DeclarationError

Lookup = Callable[[str], "str | None"]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":+", ":?", "-", "+", "?")


class InterpolationError(ValueError):
    """A template that cannot be substituted: the message names the variable."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def substitute(text: str, lookup: Lookup) -> str:
    """TEXT with every variable form replaced using LOOKUP (None: unset)."""
    if "$" not in text:
        return text
    out: list[str] = []
    start = 0
    while (dollar := text.find("$", start)) >= 0:
        out.append(text[start:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            start = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_braced(text[dollar + 2 : end], text, lookup))
            start = end + 1
        elif named := _NAME.match(text, dollar + 1):
            out.append(_value(named.group(), lookup))
            start = named.end()
        else:
            out.append("$")
            start = dollar + 1
    out.append(text[start:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` whose body starts at START (nested `${}` skipped)."""
    depth = 1
    index = start
    while index < len(text):
        char = text[index]
        if char == "$" and text[index + 1 : index + 2] in ("{", "$"):
            depth += text[index + 1] == "{"
            index += 2
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise InterpolationError(
        f"invalid interpolation {text!r}: `${{` is not closed",
        "close it with `}`, or write `$$` for a literal `$`",
    )


def _braced(body: str, text: str, lookup: Lookup) -> str:
    named = _NAME.match(body)
    if named is None:
        raise InterpolationError(
            f"invalid interpolation {text!r}: `${{{body}}}` names no variable",
            "a name is letters, digits and `_`; write `$$` for a literal `$`",
        )
    name, rest = named.group(), body[named.end() :]
    if not rest:
        return _value(name, lookup)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(
            f"invalid interpolation {text!r}: unexpected {rest!r} after {name}",
            "forms: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, "
            "${VAR:+replacement}, ${VAR+replacement}",
        )
    return _apply(name, operator, rest[len(operator) :], lookup)


def _apply(name: str, operator: str, argument: str, lookup: Lookup) -> str:
    value = lookup(name)
    present = value is not None and (value != "" or not operator.startswith(":"))
    kind = operator[-1]
    if kind == "-":
        return value if present and value is not None else substitute(argument, lookup)
    if kind == "+":
        return substitute(argument, lookup) if present else ""
    if not present or value is None:
        reason = substitute(argument, lookup)
        message = f"required variable {name} is missing a value"
        raise InterpolationError(
            f"{message}: {reason}" if reason else message,
            f"set {name} in the environment or in the project's .env file",
        )
    return value


def _value(name: str, lookup: Lookup) -> str:
    value = lookup(name)
    if value is None:
        _warn(name)
        return ""
    return value


def _warn(name: str) -> None:
    import logging  # only when there is something to say: start-up time counts

    logging.getLogger(__name__).warning(
        "the %s variable is not set: defaulting to a blank string", name
    )


# --- .env files ------------------------------------------------------------------------

_KEY_CHARS = re.compile(r"[\w.\-\[\]]+")
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "$": "$$",
}


def read_env_file(
    path: Path, lookup: Lookup, lines: dict[str, int] | None = None, *, raw: bool = False
) -> dict[str, str]:
    """The variables of the env file PATH, in order. Values are interpolated (single
    quotes excepted) from LOOKUP first, then the file's earlier variables, as docker
    compose does. Errors name PATH:LINE."""
    reads.note(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise DeclarationError(f"cannot read env file: {err.strerror}", where=str(path)) from None
    except UnicodeDecodeError as err:
        raise DeclarationError(
            f"env file is not UTF-8 (byte {err.start})", where=str(path), hint="save it as UTF-8"
        ) from None
    if raw:
        return parse_raw_env(text, lines)
    return parse_env(text, str(path), lookup, lines)


def parse_raw_env(text: str, lines: dict[str, int] | None = None) -> dict[str, str]:
    """An env file in `format: raw`: each `KEY=VALUE` line taken as written (no quotes,
    escapes, comments after values or interpolation); blank and `#` lines skipped."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value
        if lines is not None:
            lines[key.strip()] = number
    return out


def parse_env(
    text: str, source: str, lookup: Lookup, lines: dict[str, int] | None = None
) -> dict[str, str]:
    """The variables of env-file TEXT (SOURCE names it in errors); LINES, when given,
    gets the line each variable was set on."""
    numbers = {} if lines is None else lines
    out: dict[str, str] = {}

    def inner(name: str) -> str | None:
        found = lookup(name)
        return found if found is not None else out.get(name)

    rows = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(rows):
        line_no, line = index + 1, rows[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, separator, rest = _split_key(line)
        if not _KEY_CHARS.fullmatch(key):
            raise DeclarationError(
                f"invalid variable name {key!r}",
                where=f"{source}:{line_no}",
                hint="write NAME=value (letters, digits, _ . - [ ])",
            )
        if not separator:
            inherited = lookup(key)
            if inherited is not None:
                out[key] = inherited
                numbers[key] = line_no
            continue
        rest = rest.lstrip()
        try:
            if rest[:1] in ("'", '"'):
                value, index = _quoted(rest, rows, index, source, line_no)
                if rest[0] == '"':
                    value = substitute(_unescape(value), inner)
            else:
                value = substitute(rest.split(" #", 1)[0].rstrip(), inner)
        except InterpolationError as err:
            raise DeclarationError(
                err.message, where=f"{source}:{line_no}:{key}", hint=err.hint
            ) from None
        out[key] = value
        numbers[key] = line_no
    return out


def _split_key(line: str) -> tuple[str, str, str]:
    cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
    if cut < 0:
        return line, "", ""
    return line[:cut].rstrip(), line[cut], line[cut + 1 :]


def _quoted(rest: str, lines: list[str], index: int, source: str, line_no: int) -> tuple[str, int]:
    """The raw text between REST's opening quote and its closing one, which may be on a
    later line; backslash-escaped quotes do not close. Returns it and the next line."""
    quote, body, position = rest[0], rest, 1
    chars: list[str] = []
    while True:
        escaped = False
        while position < len(body):
            char = body[position]
            position += 1
            if escaped:
                escaped = False
                chars.append(char if char == quote else "\\" + char)
            elif char == "\\":
                escaped = True
            elif char == quote:
                return "".join(chars), index
            else:
                chars.append(char)
        if index >= len(lines):
            raise DeclarationError(
                f"unterminated quoted value {rest!r}",
                where=f"{source}:{line_no}",
                hint=f"close it with {quote}",
            )
        chars.append("\n")
        body, position = lines[index], 0
        index += 1


def _unescape(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPES:
            out.append(_ESCAPES[text[index + 1]])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def chained(*layers: Mapping[str, str]) -> Lookup:
    """A lookup reading LAYERS in order: the first that has the name wins."""

    def lookup(name: str) -> str | None:
        for layer in layers:
            if name in layer:
                return layer[name]
        return None

    return lookup
