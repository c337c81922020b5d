"""Kubernetes resource quantities: memory as bytes, cpu as a number of CPUs."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal | int] = {
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
    "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "E": 1000**6,
    "m": Decimal("0.001"), "": 1,
}
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)([KMGTPE]i|[kMGTPEm]?)$")


def quantity(text: str) -> Decimal:
    """The value of a quantity such as 128Mi, 1G, 500m or 1e3; ValueError if it is not one."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(text)
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        raise ValueError(text) from None
    return number * _SUFFIXES[match.group(2)]


def memory_bytes(text: str) -> int:
    """resources.limits.memory as whole bytes (rounded up, as Kubernetes does)."""
    value = quantity(text)
    whole = int(value.to_integral_value(rounding="ROUND_CEILING"))
    if whole < 1:
        raise ValueError(text)
    return whole


def cpus(text: str) -> float:
    """resources.limits.cpu as a number of CPUs (500m: 0.5)."""
    value = quantity(text)
    if value <= 0:
        raise ValueError(text)
    return float(value)
