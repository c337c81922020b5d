"""Reading podman quadlet `.build` files: a container's `Image=NAME.build` through
`hostctl build`.

podman runs a oneshot NAME-build.service that builds the image ahead. hostctl's
declarations already say how to build a missing image (the `build:` setting, run by the
launcher with `hostctl build` when the image is not in the store), so `Image=NAME.build`
becomes that: the container's `image` is the file's ImageTag= and its `build` the rest.
NAME.build is looked for beside the .container file. KEY_TABLE says how each key maps
(it feeds docs/declarations.md); other keys and sections are refused with FILE:LINE:KEY.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostctl.declarations import checks, values
from hostctl.declarations.checks import Invalid, suggest
from hostctl.declarations.model import Build
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, split_words, unquote
from hostctl.errors import DeclarationError

SUFFIX = ".build"
KEY_TABLE: dict[str, str] = {
    "ImageTag": "the image (`image`), built when it is not in the store; one tag",
    "File": "the Containerfile (`build.file`): absolute, or relative to the context",
    "SetWorkingDirectory": "the context (`build.context`): a directory, `unit` (the .build "
    "file's) or `file` (File='s); default: File='s directory when it is absolute, else the "
    ".build file's",
    "BuildArg": "build arguments (`build.args`), NAME=VALUE",
    "Target": "the stage to build (`build.target`)",
}


def load_build(path: Path) -> tuple[str, Build]:
    """(the image tag, how to build it) from the .build file PATH."""
    from hostctl.declarations.quadlet_reader import _expand

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path)) from None
    try:
        entries = parse_unit_text(text)
    except SyntaxProblem as err:
        raise DeclarationError(err.message, where=f"{path}:{err.line}", hint=err.hint) from None
    found: dict[str, str] = {}
    args: dict[str, str] = {}
    lines: dict[str, str] = {}
    for entry in entries:
        where = f"{path}:{entry.line}:{entry.key}"
        try:
            if entry.section != "Build":
                raise Invalid(f"section [{entry.section}] is not supported in a .build file",
                              "hostctl builds the image when the container starts; only "
                              "[Build] is read")
            if entry.key not in KEY_TABLE:
                raise Invalid(f"unsupported key {entry.key!r}",
                              f"{suggest(entry.key, KEY_TABLE)}supported [Build] keys: "
                              f"{', '.join(KEY_TABLE)}")
            value = _expand(entry.value)
            if entry.key == "BuildArg":
                for word in split_words(value):
                    name, equals, item = word.partition("=")
                    if not equals:
                        raise Invalid(f"{word!r} has no '='", "write NAME=VALUE")
                    args[checks.check_env_name(name)] = values.single_line(item, "value")
            elif entry.key == "ImageTag" and "ImageTag" in found:
                raise Invalid("a second ImageTag=", "hostctl tags the built image once")
            else:
                value = values.single_line(unquote(value), entry.key)
                if "://" in value or value.startswith("git@"):
                    raise Invalid(f"{value!r} is not a local path",
                                  "hostctl builds from a directory and file on this host")
                if entry.key == "ImageTag":
                    checks.check_image(value)
                found[entry.key] = value
        except Invalid as err:
            raise DeclarationError(err.message, where=where, hint=err.hint) from None
        lines[entry.key] = where
    if "ImageTag" not in found:
        raise DeclarationError("no ImageTag= in [Build]", where=str(path),
                               hint="add ImageTag=localhost/NAME:TAG (the image it builds)")
    unit_dir = os.path.dirname(os.path.abspath(path))
    file = found.get("File")
    workdir = found.get("SetWorkingDirectory")
    if workdir == "unit":
        context = unit_dir
    elif workdir == "file":
        if file is None or not file.startswith("/"):
            raise DeclarationError("SetWorkingDirectory=file needs an absolute File=",
                                   where=lines["SetWorkingDirectory"],
                                   hint="give File=/path/to/Containerfile")
        context = os.path.dirname(file)
    elif workdir:
        context = os.path.normpath(os.path.join(unit_dir, workdir))
    else:
        context = os.path.dirname(file) if file and file.startswith("/") else unit_dir
    if file is not None and file.startswith("/"):
        file = os.path.relpath(file, context)
    return found["ImageTag"], Build(context, file, tuple(args.items()), found.get("Target"))
