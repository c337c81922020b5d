"""Where declarations are found, per scope, and which file wins for a name.

Directories are listed highest priority first; the first directory holding NAME.yaml,
NAME.yml or NAME.container (a quadlet file) decides NAME, lower ones are shadowed
(quadlet's rule); two of them in one directory are an error. Drop-ins NAME.yaml.d/*.yaml
(deep-merged) and NAME.container.d/*.conf (appended) are collected from every directory
of the search path; a drop-in file name in a higher directory shadows the same name in
lower ones, and they apply in alphabetical order of file name. A file that is a
symlink to /dev/null masks the name, as in systemd. $HOSTCTL_DECLARATION_PATH
(colon-separated) replaces the whole list.

Templates, as quadlet and systemd have them: PREFIX@.container declares the template
unit PREFIX@.service; an instance PREFIX@INSTANCE is declared by its own file (often a
symlink to the template), or else read from the template when the unit is started (a
DefaultInstance= or an instance systemd was asked for). Drop-in directories are looked
for from the most specific to the broadest, quadlet's order: NAME.container.d, the
template's PREFIX@.container.d, then the truncations at each '-' (for web-app-1:
web-app-.container.d, web-.container.d, and for a template web-@.container.d too), and
the type-wide container.d (YAML: the same names with .yaml.d, no type-wide directory).
A drop-in file name found in a more specific or a higher-priority place shadows the same
name in the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hostctl.declarations.checks import Invalid, check_name, template_parts
from hostctl.declarations.dirs import ENV_PATH as ENV_PATH  # re-exported
from hostctl.declarations.dirs import SHARE_DIR as SHARE_DIR
from hostctl.declarations.dirs import USERS_DIR as USERS_DIR
from hostctl.declarations.dirs import declaration_dirs as declaration_dirs
from hostctl.declarations.model import Container
from hostctl.errors import DeclarationError
from hostctl.paths import Scope

SUFFIXES = (".yaml", ".yml", ".container")
# Quadlet unit types hostctl does not read (yet): reported, never silently skipped.
# (.network, .volume, .pod, .kube and .build files are read from here too:
# hostctl.network.defs, hostctl.declarations.volume_file, hostctl.declarations.pod_file,
# hostctl.declarations.kube_file and, for a container's Image=NAME.build,
# hostctl.declarations.build_file.)
UNSUPPORTED = (".artifact",)


def unsupported_type(path: Path) -> DeclarationError:
    """The error for a quadlet file of a type hostctl does not support."""
    kind = path.suffix
    return DeclarationError(
        f"quadlet {kind} files are not supported by hostctl",
        where=str(path),
        hint="hostctl reads .container, .pod, .network, .volume, .image, .build and .kube "
        "files (and its own YAML); "
        f"declare what the {kind} file does another way, or remove it",
    )
# A declaration file's suffix -> (drop-in directory suffixes, drop-in file suffixes).
DROPINS = {
    ".yaml": ((".yaml.d", ".yml.d"), (".yaml", ".yml")),
    ".yml": ((".yaml.d", ".yml.d"), (".yaml", ".yml")),
    ".container": ((".container.d",), (".conf",)),
}
_MASK = "/dev/null"


@dataclass(frozen=True)
class Scan:
    """What the search path holds."""

    found: dict[str, Path] = field(default_factory=dict)  # name -> winning file
    broken: dict[str, DeclarationError] = field(default_factory=dict)  # name -> why
    masked: dict[str, Path] = field(default_factory=dict)  # name -> the /dev/null link
    skipped: list[DeclarationError] = field(default_factory=list)  # not declarations


def scan_declarations(scope: Scope, dirs: list[Path] | None = None) -> Scan:
    """Every declaration name in the search path, with the problems found on the way."""
    scan = Scan()
    for directory in dirs if dirs is not None else declaration_dirs(scope):
        for name, files in _candidates(directory, scan.skipped).items():
            if name in scan.found or name in scan.masked:
                continue  # shadowed by a higher-priority directory
            if _is_mask(files[0]):
                scan.masked[name] = files[0]
                continue
            scan.found[name] = files[0]
            if len(files) > 1:
                scan.broken[name] = _conflict(name, files)
    return Scan(
        found=dict(sorted(scan.found.items())),
        broken=scan.broken,
        masked=scan.masked,
        skipped=scan.skipped,
    )


def find_declarations(scope: Scope, dirs: list[Path] | None = None) -> dict[str, Path]:
    """name -> declaration file, sorted by name (files that cannot be a name are left out:
    scan_declarations reports them)."""
    return scan_declarations(scope, dirs).found


def load_declaration(name: str, scope: Scope, dirs: list[Path] | None = None) -> Container:
    """The validated declaration NAME of SCOPE, or DeclarationError saying why not."""
    try:
        check_name(name)
    except Invalid as err:
        raise DeclarationError(err.message, hint=err.hint) from None
    searched = dirs if dirs is not None else declaration_dirs(scope)
    for directory in searched:
        files = [
            directory / f"{name}{suffix}"
            for suffix in SUFFIXES
            if _is_candidate(directory / f"{name}{suffix}")
        ]
        if len(files) > 1:
            raise _conflict(name, files)
        if files and _is_mask(files[0]):
            raise DeclarationError(
                f"declaration {name!r} is masked",
                where=str(files[0]),
                hint=f"it is a link to {_MASK}; remove it to unmask",
            )
        if files:
            return load_file(files[0], name, searched)
    prefix, instance, templated = template_parts(name)
    if templated and instance:
        template = template_file(f"{prefix}@", searched)
        if template is not None:
            return load_file(template, name, searched)
    if dirs is None:  # a container of an installed compose project
        from hostctl.compose.installed import find_container

        found = find_container(name, scope)
        if found is not None:
            return found
    raise DeclarationError(
        f"no declaration named {name!r}",
        hint=f"looked for {name}.yaml and {name}.yml in "
        + (", ".join(str(d) for d in searched) or "no directories"),
    )


def template_file(template: str, dirs: list[Path]) -> Path | None:
    """The file declaring TEMPLATE (PREFIX@) in the first of DIRS holding one, or None."""
    for directory in dirs:
        for suffix in SUFFIXES:
            candidate = directory / f"{template}{suffix}"
            if _is_candidate(candidate) and not _is_mask(candidate):
                return candidate
    return None


def dropin_dir_names(name: str, suffix: str) -> list[str]:
    """The drop-in directory names of declaration NAME with file SUFFIX, most specific
    first (quadlet's order; see the module's docstring)."""
    dir_suffixes = DROPINS[suffix][0]
    prefix, instance, templated = template_parts(name)
    stems = [name]
    if templated and instance:
        stems.append(f"{prefix}@")
    parts = prefix.split("-")
    for end in range(len(parts) - 1, 0, -1):
        truncated = "-".join(parts[:end]) + "-"
        if templated:
            stems.append(f"{truncated}@")
        stems.append(truncated)
    names = [f"{stem}{dir_suffix}" for stem in stems for dir_suffix in dir_suffixes]
    if suffix == ".container":
        names.append("container.d")
    return names


def declaration_inputs(name: str, scope: Scope, dirs: list[Path] | None = None) -> list[Path]:
    """Every path whose presence or content decides what load_declaration(NAME) returns:
    each candidate file (and a template's) and drop-in directory in every searched
    directory (present or not), and the files in the drop-in directories that exist."""
    inputs: list[Path] = []
    prefix, instance, templated = template_parts(name)
    stems = [name, f"{prefix}@"] if templated and instance else [name]
    dropin_dirs = list(dict.fromkeys(
        dropin for suffix in SUFFIXES for dropin in dropin_dir_names(name, suffix)))
    for directory in dirs if dirs is not None else declaration_dirs(scope):
        inputs += [directory / f"{stem}{suffix}" for stem in stems for suffix in SUFFIXES]
        for dropin in dropin_dirs:
            dropin_dir = directory / dropin
            inputs.append(dropin_dir)
            try:
                inputs += [dropin_dir / entry for entry in sorted(os.listdir(dropin_dir))]
            except (FileNotFoundError, NotADirectoryError):
                continue
    return inputs


def dropins_for(path: Path, name: str, dirs: list[Path]) -> list[Path]:
    """The drop-ins of declaration file PATH (named NAME) across DIRS, in applying order."""
    suffix = next(s for s in SUFFIXES if path.name.endswith(s))
    file_suffixes = DROPINS[suffix][1]
    dropin_dirs = dropin_dir_names(name, suffix)
    found: dict[str, Path] = {}
    for directory in dirs:
        for dropin in dropin_dirs:
            dropin_dir = directory / dropin
            try:
                entries = sorted(os.listdir(dropin_dir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.endswith(file_suffixes) and not entry.startswith("."):
                    found.setdefault(entry, dropin_dir / entry)
    return [found[entry] for entry in sorted(found)]


def load_file(path: Path, name: str, dirs: list[Path] | None = None) -> Container:
    """Load declaration file PATH (YAML or quadlet, by suffix) with its drop-ins from DIRS
    (default: PATH's own directory)."""
    searched = dirs if dirs is not None else [path.parent]
    dropins = dropins_for(path, name, searched)
    if path.name.endswith(".container"):
        from hostctl.declarations.quadlet_reader import load_quadlet

        return load_quadlet(path, name, dropins)
    from hostctl.declarations.yaml_reader import load_yaml  # not on the generator's fast path

    return load_yaml(path, name, dropins)


def _candidates(directory: Path, skipped: list[DeclarationError]) -> dict[str, list[Path]]:
    """name -> its files in DIRECTORY (.yaml first); files with bad names go to SKIPPED."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(
                (entry.name for entry in listing if entry.is_symlink() or not entry.is_dir()),
            )
    except FileNotFoundError:
        return {}
    except OSError as err:
        skipped.append(DeclarationError(f"cannot list: {err.strerror}", where=str(directory)))
        return {}
    result: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.endswith(UNSUPPORTED) and not entry.startswith("."):
            skipped.append(unsupported_type(directory / entry))
    for suffix in SUFFIXES:
        for entry in entries:
            if entry.startswith(".") or not entry.endswith(suffix):
                continue  # hidden files are editor droppings, not declarations
            path = directory / entry
            name = entry.removesuffix(suffix)
            try:
                check_name(name)
            except Invalid as err:
                skipped.append(DeclarationError(err.message, where=str(path), hint=err.hint))
                continue
            result.setdefault(name, []).append(path)
    return result


def _is_candidate(path: Path) -> bool:
    """A file or a symlink (even a broken one, which then fails to load), not a directory."""
    return path.is_symlink() or (path.exists() and not path.is_dir())


def _is_mask(path: Path) -> bool:
    return path.is_symlink() and os.path.realpath(path) == _MASK


def _conflict(name: str, files: list[Path]) -> DeclarationError:
    return DeclarationError(
        f"declaration {name!r} is given twice in the same directory",
        where=str(files[0]),
        hint=f"keep one of {' and '.join(str(f) for f in files)}",
    )
