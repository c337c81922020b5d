"""Reading podman quadlet `.image` files: an image pulled ahead by a oneshot unit.

`NAME.image` among the container declarations makes the generator write
`NAME-image.service` (Type=oneshot, RemainAfterExit=yes, after the network is online
unless `[Quadlet] DefaultDependencies=false`), which runs `hostctl image-pull NAME`: the
pull, with the file's platform, credentials file, pull policy and retries. A container's
`Image=NAME.image` (NAME.image beside the .container file) is the file's Image= reference
and platform, and its unit Requires= and comes After= the image's unit, so it starts with
the image in the store. KEY_TABLE says how each key maps (it feeds docs/declarations.md);
other keys and sections are refused with FILE:LINE:KEY.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hostctl.declarations import checks
from hostctl.declarations.checks import Invalid, suggest
from hostctl.declarations.scan import typed_files
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, unquote
from hostctl.declarations.values import parse_bool
from hostctl.errors import DeclarationError

SUFFIX = ".image"
UNIT_SUFFIX = "-image.service"
KEY_TABLE: dict[str, str] = {
    "Image": "the image reference to pull (required)",
    "Arch": "the platform's architecture (amd64, arm64, ...; default: this host's)",
    "OS": "the platform's OS (default: linux)",
    "Variant": "the platform's variant (e.g. v8)",
    "AuthFile": "the auth.json with the registry's credentials ($REGISTRY_AUTH_FILE of the "
    "pull)",
    "Policy": "always or newer: pull at every start of the unit (only what changed is "
    "fetched); missing (the default): only when the image is not in the store; never",
    "Retry": "how many times a failed pull is tried again (default 0)",
    "RetryDelay": "the wait between tries (a systemd time span; default 10s)",
}
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


@dataclass(frozen=True)
class ImageDecl:
    """A .image file: what to pull, for which platform, how."""

    name: str
    source: Path
    reference: str
    platform: str | None = None
    auth_file: str | None = None
    policy: str = "missing"
    retry: int = 0
    retry_delay: float = 10.0
    default_dependencies: bool = True

    @property
    def unit_name(self) -> str:
        return f"{self.name}{UNIT_SUFFIX}"

    def to_json(self) -> str:
        return json.dumps(self.__dict__, default=str)


def image_files(dirs: list[Path]) -> dict[str, Path]:
    """name -> its .image file: the first of DIRS holding one (a /dev/null link masks)."""
    return typed_files(dirs, SUFFIX)


def load_image(path: Path) -> ImageDecl:
    """Read and validate the .image file PATH."""
    from hostctl.declarations.quadlet_reader import _expand
    from hostctl.declarations.values import parse_duration

    name = path.name.removesuffix(SUFFIX)
    try:
        checks.check_name(name)
        if "@" in name:
            raise Invalid(f"{name!r} is a template image", "hostctl has no image templates")
        text = path.read_text(encoding="utf-8")
        entries = parse_unit_text(text)
    except Invalid as err:
        line = f":{err.line}" if isinstance(err, SyntaxProblem) else ""
        raise DeclarationError(err.message, where=f"{path}{line}", hint=err.hint) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path)) from None
    found: dict[str, object] = {}
    platform: dict[str, str] = {}
    for entry in entries:
        where = f"{path}:{entry.line}:{entry.key}"
        try:
            value = unquote(_expand(entry.value))
            if entry.section == "Quadlet" and entry.key == "DefaultDependencies":
                found["default_dependencies"] = parse_bool(value)
                continue
            if entry.section != "Image":
                raise Invalid(f"section [{entry.section}] is not supported in a .image file",
                              "only [Image] (and [Quadlet] DefaultDependencies=) is read")
            if entry.key not in KEY_TABLE:
                raise Invalid(f"unsupported key {entry.key!r}",
                              f"{suggest(entry.key, KEY_TABLE)}supported [Image] keys: "
                              f"{', '.join(KEY_TABLE)}")
            if entry.key == "Image":
                found["reference"] = checks.check_image(value)
            elif entry.key in ("Arch", "OS", "Variant"):
                if not value or "/" in value.replace("arm/", "") or value != value.strip():
                    raise Invalid(f"{value!r} is not a platform part", "e.g. Arch=arm64")
                platform[entry.key] = _ARCHES.get(value, value)
            elif entry.key == "AuthFile":
                if not value.startswith("/"):
                    value = os.path.join(os.path.dirname(os.path.abspath(path)), value)
                found["auth_file"] = value
            elif entry.key == "Policy":
                found["policy"] = checks.check_choice(value, ["always", "missing", "never",
                                                              "newer"])
            elif entry.key == "Retry":
                if not value.isdigit():
                    raise Invalid(f"{value!r} is not a count", "e.g. Retry=3")
                found["retry"] = int(value)
            elif entry.key == "RetryDelay":
                found["retry_delay"] = parse_duration(value)
        except Invalid as err:
            raise DeclarationError(err.message, where=where, hint=err.hint) from None
    if "reference" not in found:
        raise DeclarationError("no Image= in [Image]", where=str(path),
                               hint="add Image=REFERENCE (the image to pull)")
    if platform:
        arch = platform.get("Arch") or _ARCHES.get(os.uname().machine, os.uname().machine)
        variant = platform.get("Variant", "")
        if "/" in variant:  # podman's Variant=arm/v5 names the architecture too
            arch, _, variant = variant.partition("/")
        parts = [platform.get("OS", "linux"), arch, *([variant] if variant else [])]
        found["platform"] = "/".join(parts)
    if found.get("policy") == "newer":
        found["policy"] = "always"  # a pull fetches only what changed
    return ImageDecl(name, path, **found)  # type: ignore[arg-type]
