"""Rules for setting values, independent of the file format they were read from.

Each check returns the normalised value or raises Invalid(message, hint); the reader adds
FILE:LINE:KEY and turns it into a DeclarationError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from hostctl.declarations.settings import INSTALL_DIRECTIVES, RESERVED_DIRECTIVES

NAME_MAX = 255 - len(".service")
_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+")
_ACCOUNT = r"[A-Za-z_][A-Za-z0-9_.-]*\$?"
_USER = re.compile(rf"(?P<user>{_ACCOUNT}|[0-9]+)(?::(?P<group>{_ACCOUNT}|[0-9]+))?")
_ID_MAX = 2**32 - 2  # (uid_t)-1 is "no user"
_DIRECTIVE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_UNIT_TYPES = (
    "service|socket|target|device|mount|automount|swap|timer|path|slice|scope"
)
_UNIT_NAME = re.compile(rf"[A-Za-z0-9:_.\\@-]+\.(?:{_UNIT_TYPES})")
# Control characters a unit line cannot carry (a tab is harmless).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Invalid(ValueError):
    """A value breaks a rule; message says what, hint says what is allowed."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def suggest(word: str, allowed: Iterable[str]) -> str:
    """'did you mean X? ' for a near miss, or '' (a prefix for an 'allowed: ...' hint)."""
    import difflib  # only on errors

    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def check_name(name: str) -> str:
    """NAME if it can be a container and unit name (the declaration's file stem): a
    plain name, a template PREFIX@ or one of its instances PREFIX@INSTANCE."""
    prefix, at, instance = name.partition("@")
    if (
        not _NAME.fullmatch(prefix)
        or name.startswith(".")
        or (at and instance and not _NAME.fullmatch(instance))
    ):
        raise Invalid(
            f"{name!r} cannot be a container name",
            "a name is letters, digits and : _ . \\ - (not starting with '.'), or a "
            "template PREFIX@ and its instances PREFIX@INSTANCE; it becomes NAME.service",
        )
    if len(name) > NAME_MAX:
        raise Invalid(f"name is {len(name)} characters long", f"at most {NAME_MAX}")
    return name


# The instance a template is read with to validate and render it; in the generated
# units it becomes the specifier %i again (hostctl.units.build).
TEMPLATE_INSTANCE = "hostctl-template-instance"


def template_parts(name: str) -> tuple[str, str, bool]:
    """(prefix, instance, is_template_or_instance) of a declaration name: "app@1" is
    ("app", "1", True), the template "app@" is ("app", "", True), "web" ("web", "", False)."""
    prefix, at, instance = name.partition("@")
    return prefix, instance, bool(at)


def check_string(text: str) -> str:
    """TEXT unless it contains a NUL byte, which no process argument or file can carry."""
    if "\0" in text:
        raise Invalid("contains a NUL character", "remove the \\0")
    return text


def check_image(text: str) -> str:
    """TEXT if it parses as an image reference (kept as written; the puller normalises)."""
    from hostctl.errors import ImageError
    from hostctl.images.reference import parse_reference

    try:
        parse_reference(text)
    except ImageError as err:
        raise Invalid(
            f"bad image reference {text!r}: {err.message}",
            err.hint or "e.g. docker.io/library/busybox:1.36 or quay.io/org/app@sha256:...",
        ) from None
    return text


def short_image_warning(image: str, where: str) -> str | None:
    """A warning for an image named without its registry: which registry serves it then
    depends on each host's registries.conf (a spoofing risk podman warns about too)."""
    from hostctl.images.reference import is_short_name

    if not is_short_name(image):
        return None
    return (f"{where}: warning: {image!r} is a short name; the registry is chosen by "
            "registries.conf at each pull (hint: write it in full, e.g. "
            f"docker.io/library/{image})")


def split_argv(text: str) -> tuple[str, ...]:
    """Split TEXT into words with shell quoting rules (no expansion of any kind)."""
    import shlex

    try:
        return tuple(check_string(word) for word in shlex.split(text))
    except ValueError as err:
        raise Invalid(
            f"cannot split {text!r} into words: {err}",
            "close the quote, or write a list: [\"sh\", \"-c\", \"...\"]",
        ) from None


def check_env_name(name: str) -> str:
    """NAME if it can be an environment variable name."""
    if not name or "=" in name or _CONTROL.search(name):
        raise Invalid(
            f"{name!r} is not an environment variable name",
            "a name is not empty and has no '=' or control characters, e.g. APP_MODE",
        )
    return name


def check_abspath(text: str) -> str:
    """TEXT if it is an absolute path."""
    check_string(text)
    if not text.startswith("/"):
        raise Invalid(f"{text!r} is not an absolute path", "it must start with '/'")
    return text


def check_user(text: str) -> str:
    """TEXT if it is user, uid, user:group or uid:gid."""
    match = _USER.fullmatch(text)
    if not match:
        raise Invalid(
            f"{text!r} is not a user",
            "a user name or uid, optionally followed by :group or :gid, e.g. 1000:1000",
        )
    for part in match.group("user", "group"):
        if part is not None and part.isdigit() and int(part) > _ID_MAX:
            raise Invalid(f"id {part} is out of range", f"ids go from 0 to {_ID_MAX}")
    return text


def check_seconds(value: int) -> int:
    """VALUE if it is a positive number of seconds."""
    if value < 1:
        raise Invalid(
            f"{value} seconds is too short",
            "at least 1 (systemd reads 0 as 'no timeout')",
        )
    return value


def check_choice(text: str, choices: Sequence[str]) -> str:
    """TEXT if it is one of CHOICES."""
    if text not in choices:
        raise Invalid(
            f"{text!r} is not allowed",
            f"{suggest(text, choices)}allowed: {', '.join(choices)}",
        )
    return text


def check_directive(section: str, name: str) -> str:
    """NAME if a declaration may set it in unit section SECTION."""
    if not _DIRECTIVE.fullmatch(name):
        raise Invalid(
            f"{name!r} is not a systemd directive name",
            "letters, digits and '-', starting with a letter, e.g. MemoryMax",
        )
    if section == "Install" and name not in INSTALL_DIRECTIVES:
        raise Invalid(
            f"[Install] directive {name!r} is not supported for generated units",
            f"{suggest(name, INSTALL_DIRECTIVES)}allowed: {', '.join(INSTALL_DIRECTIVES)}",
        )
    reserved = RESERVED_DIRECTIVES.get(section, {})
    if section == "Service" and name in ONESHOT_DIRECTIVES:
        return name  # its value is checked by check_directive_value
    if name in reserved:
        raise Invalid(f"{name}= is set by hostctl and cannot be changed", reserved[name])
    return name


def check_directive_value(section: str, name: str, value: str) -> str:
    """VALUE if it fits on one unit line (and, for [Install], names units)."""
    if _CONTROL.search(value):
        raise Invalid(
            f"{name}= value contains a line break or control character",
            "a directive value is a single line; give a list for several values",
        )
    if value.endswith("\\"):
        raise Invalid(
            f"{name}= value ends with a backslash",
            "systemd would join it with the next line; remove the trailing '\\'",
        )
    if section == "Install":
        _check_install(name, value)
    if section == "Service" and name == "Type" and value not in ("notify", "oneshot"):
        raise Invalid(
            f"Type={value} is not possible for a container",
            "hostctl's unit is Type=notify; Type=oneshot runs the container to its end "
            "(for a container that exits when its work is done)",
        )
    return value


# [Service] directives a declaration may set only to run the container to its end.
ONESHOT_DIRECTIVES = ("Type", "RemainAfterExit")


def check_oneshot(service: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """A message when SERVICE has RemainAfterExit= without Type=oneshot, else None."""
    last = {name: values[-1] for name, values in service if values}
    if "RemainAfterExit" in last and last.get("Type") != "oneshot":
        return "RemainAfterExit= is only for Type=oneshot"
    return None


def _check_install(name: str, value: str) -> None:
    words = value.split()
    for word in words:
        if not _UNIT_NAME.fullmatch(word):
            raise Invalid(
                f"{word!r} is not a unit name",
                "e.g. multi-user.target or default.target (no paths, no specifiers)",
            )
        if name == "Alias" and not word.endswith(".service"):
            raise Invalid(f"alias {word!r} is not a .service name", "e.g. web.service")
