"""The effective health check of one start: the declaration's, else the image's.

The declaration's health_cmd wins; ("NONE",) disables any check. Without one, the image
config's Healthcheck (Test, and Interval, Timeout, StartPeriod, Retries as nanoseconds)
is used. Timings: a declaration value other than the setting's default is the
declaration's choice and wins; otherwise the image's value, when it gives one, else the
default. The interval is always the declaration's: the timer that runs the checks is
generated from the declaration (the generator does not read the image store), so the
interval checks actually run at is the one written here.

Every start writes the result as Paths.containers/NAME/healthcheck.json (see
hostctl.health.status.spec_path), or no file when the container has no check. The check
(hostctl.health.run) reads only that file: seconds as floats, commands as argv-like
lists in the Healthcheck.Test form.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hostctl.declarations.settings import DEFAULTS

if TYPE_CHECKING:
    from hostctl.declarations.model import Container

NANOSECONDS = 1_000_000_000
NONE = "NONE"
SOURCE_DECLARATION = "declaration"
SOURCE_IMAGE = "image"


def disabled(test: tuple[str, ...] | list[str] | None) -> bool:
    """Whether TEST (Healthcheck.Test form) says no check: NONE, or empty."""
    return test is not None and (not test or test[0] == NONE)


def _image_check(image_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The image config's Healthcheck when it has a usable Test, else None."""
    config = (image_config or {}).get("config") or {}
    check = config.get("Healthcheck") or config.get("healthcheck")
    if not isinstance(check, dict):
        return None
    test = check.get("Test")
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None
    return check


def _image_seconds(check: dict[str, Any] | None, key: str) -> float | None:
    value = (check or {}).get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value / NANOSECONDS
    return None


def _choose(declared: Any, default: Any, image_value: Any) -> Any:
    """The declaration's value when it is not the default, else the image's, else it."""
    if declared != default or image_value is None:
        return declared
    return image_value


def effective(container: Container, image_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """CONTAINER's check for a start from an image with IMAGE_CONFIG (the OCI image
    config document): the healthcheck.json content, or None when there is no check."""
    if disabled(container.health_cmd):
        return None
    image_check = None if container.health_cmd else _image_check(image_config)
    if container.health_cmd:
        test, source = list(container.health_cmd), SOURCE_DECLARATION
    elif image_check is not None:
        test, source = list(image_check["Test"]), SOURCE_IMAGE
    else:
        return None
    retries = image_check.get("Retries") if image_check else None
    spec: dict[str, Any] = {
        "test": test,
        "source": source,
        "interval": container.health_interval,
        "timeout": _choose(container.health_timeout, DEFAULTS["health_timeout"],
                           _image_seconds(image_check, "Timeout")),
        "start_period": _choose(container.health_start_period,
                                DEFAULTS["health_start_period"],
                                _image_seconds(image_check, "StartPeriod")),
        "retries": _choose(container.health_retries, DEFAULTS["health_retries"],
                           retries if isinstance(retries, int) and retries > 0 else None),
        "on_failure": str(container.health_on_failure),
        "startup": None,
    }
    startup = container.health_startup_cmd
    if startup and not disabled(startup):
        spec["startup"] = {
            "test": list(startup),
            "interval": container.health_startup_interval,
            "timeout": container.health_startup_timeout,
            "retries": container.health_startup_retries,
            "success": container.health_startup_success,
        }
    return spec


def has_units(container: Container) -> bool:
    """Whether the generator writes NAME-healthcheck.timer/.service for CONTAINER: it may
    have a check (its own, or the image's, which the generator cannot see) that runs on
    a timer."""
    return not disabled(container.health_cmd) and container.health_interval > 0


def timer_wanted(container: Container) -> bool:
    """Whether CONTAINER's unit wants its health timer: it declares a check, so every
    start has one. Otherwise only the image can give it one (which the generator cannot
    see), and the launcher starts the timer when it does (launcher_starts_timer): a
    Wants= with a condition would log a "skipped" line at every start of every
    container without a check."""
    return has_units(container) and container.health_cmd is not None


def launcher_starts_timer(container: Container, check: dict[str, Any] | None) -> bool:
    """Whether the launcher starts the health timer of CONTAINER, whose start has CHECK:
    the image's HEALTHCHECK, on a timer the unit does not want by itself."""
    return check is not None and has_units(container) and not timer_wanted(container)


def dumps(spec: dict[str, Any]) -> str:
    """healthcheck.json's text for SPEC."""
    return json.dumps(spec, indent=1) + "\n"
