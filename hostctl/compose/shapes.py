"""Checks and conversions of compose values into their canonical shapes.

Each function takes the value, the container it sits in and its key (for the location)
and the dotted key path, and returns the canonical value or raises a DeclarationError
naming FILE:LINE:KEY and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hostctl.compose.tree import Map, Seq, at, child, loc_of
from hostctl.errors import DeclarationError

TYPE_CHECKING = False  # typing is not imported at run time: the generator loads this
if TYPE_CHECKING:
    from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_BYTES = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def fail(
    container: Any, key: str | int, path: str, message: str, hint: str | None = None
) -> DeclarationError:
    """The error for the value at KEY of CONTAINER (dotted PATH)."""
    return DeclarationError(message, where=at(loc_of(container, key), path), hint=hint)


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def wrong(
    container: Any, key: str | int, path: str, wanted: str, hint: str | None = None
) -> DeclarationError:
    value = container[key]
    return fail(container, key, path, f"expected {wanted}, got {describe(value)}", hint)


def unknown_key(container: Map, key: str, path: str, allowed: Iterable[str]) -> DeclarationError:
    import difflib  # errors only: start-up time counts

    names = sorted(allowed)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(names)
    return fail(container, key, path, f"unknown key {key!r}", hint)


def text(container: Any, key: str | int, path: str) -> str:
    """A string; numbers are taken as written (`user: 1000`)."""
    value = container[key]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
    raise wrong(container, key, path, "a string")


def number_text(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def scalar_text(container: Any, key: str | int, path: str) -> str:
    """A string, number or boolean as text (environment values, labels)."""
    value = container[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list) or value is None:
        raise wrong(container, key, path, "a string, number or boolean")
    return value if isinstance(value, str) else number_text(value)


def integer(container: Any, key: str | int, path: str) -> int:
    value = container[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
        return int(value)
    raise wrong(container, key, path, "an integer")


def number(container: Any, key: str | int, path: str) -> float | int:
    value = container[key]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    parsed = _float(value) if isinstance(value, str) else None
    if parsed is None:
        raise wrong(container, key, path, "a number")
    return int(parsed) if re.fullmatch(r"[-+]?\d+", value.strip()) else parsed


def _float(text: str) -> float | None:
    """TEXT as Python reads a float (None: not a number)."""
    try:
        return float(text)
    except ValueError:
        return None


def boolean(container: Any, key: str | int, path: str) -> bool:
    value = container[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "true",
        "false",
        "yes",
        "no",
        "y",
        "n",
        "on",
        "off",
        "1",
        "0",
    ):
        return value.lower() in ("true", "yes", "y", "on", "1")
    raise wrong(container, key, path, "true or false")


def choice(container: Any, key: str | int, path: str, allowed: Iterable[str]) -> str:
    value = text(container, key, path)
    names = list(allowed)
    if value not in names:
        raise fail(
            container, key, path, f"{value!r} is not allowed", "allowed: " + ", ".join(names)
        )
    return value


def duration(container: Any, key: str | int, path: str) -> str:
    """A duration (`1m30s`, `500ms`, `10`: seconds) in Go's canonical form."""
    value = container[key]
    raw = (
        number_text(value) + "s"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else value
    )
    if not isinstance(raw, str):
        raise wrong(container, key, path, "a duration like 30s or 1m30s")
    nanos = parse_duration(raw)
    if nanos is None:
        raise fail(
            container,
            key,
            path,
            f"{raw!r} is not a duration",
            "write a number with a unit: 500ms, 30s, 1m30s, 2h",
        )
    return format_duration(nanos)


def parse_duration(raw: str) -> int | None:
    """Nanoseconds of a Go duration string, None when malformed."""
    body = raw.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body == "0":
        return 0
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        position = match.end()
    if position != len(body) or not body:
        return None
    return sign * round(total)


def format_duration(nanos: int) -> str:
    """NANOS written as Go's time.Duration.String() writes it (`1m30s`, `500ms`, `0s`)."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _fraction(nanos, size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, size: int) -> str:
    whole, rest = divmod(value, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def byte_size(container: Any, key: str | int, path: str) -> int:
    """A size (`512m`, `1g`, `1024`) in bytes, as docker's units read it (1k = 1024)."""
    value = container[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _BYTES.fullmatch(value.strip())
        if match:
            return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])
    raise wrong(container, key, path, "a size like 512m, 1g or a number of bytes")


def string_list(container: Any, key: str | int, path: str, single: bool = False) -> list[str]:
    """A list of strings; with SINGLE, one string is a list of one."""
    value = container[key]
    if single and isinstance(value, str | int) and not isinstance(value, bool):
        return [text(container, key, path)]
    if not isinstance(value, list):
        raise wrong(container, key, path, "a list of strings" + (" or a string" if single else ""))
    return [text(value, index, child(path, index)) for index in range(len(value))]


def command(container: Any, key: str | int, path: str) -> list[str] | None:
    """command/entrypoint: a list kept as is, a string split as a shell would (no shell
    runs it), null kept as null."""
    value = container[key]
    if value is None:
        return None
    if isinstance(value, str):
        import shlex

        try:
            return shlex.split(value)
        except ValueError as err:
            raise fail(
                container,
                key,
                path,
                f"cannot split {value!r}: {err}",
                "balance the quotes, or write a list",
            ) from None
    return string_list(container, key, path)


def mapping(container: Any, key: str | int, path: str) -> Map:
    value = container[key]
    if not isinstance(value, Map):
        raise wrong(container, key, path, "a mapping")
    return value


def key_values(container: Any, key: str | int, path: str, *, allow_none: bool) -> Map:
    """`environment`-like values: a mapping, or a list of `KEY=VALUE` (or `KEY`) items.
    Values become strings; with ALLOW_NONE a `KEY` without a value is None (filled from
    the environment later), else the empty string."""
    value = container[key]
    out = Map(value.at if isinstance(value, Map | Seq) else loc_of(container, key))
    if isinstance(value, Map):
        for name in value:
            item = value[name]
            if not name:
                raise fail(value, name, child(path, name), "an empty name", "write KEY: VALUE")
            if item is None:
                out.put(name, None if allow_none else "", value.loc(name))
            else:
                out.put(name, scalar_text(value, name, child(path, name)), value.loc(name))
        return out
    if isinstance(value, Seq):
        for index in range(len(value)):
            entry = text(value, index, child(path, index))
            name, equals, rest = entry.partition("=")
            if not name:
                raise fail(
                    value,
                    index,
                    child(path, index),
                    f"{entry!r} names no variable",
                    "write KEY=VALUE",
                )
            out.put(name, rest if equals else (None if allow_none else ""), value.loc(index))
        return out
    raise wrong(container, key, path, "a mapping or a list of KEY=VALUE")


def plain_map(container: Any, key: str | int, path: str) -> Map:
    """A mapping of names to text (driver_opts, logging options)."""
    value = mapping(container, key, path)
    out = Map(value.at)
    for name in value:
        out.put(name, scalar_text(value, name, child(path, name)), value.loc(name))
    return out
