"""Building an image from a Containerfile into the scope's store (`hostctl build`).

The build runs in this process, which first moves into a mount namespace of its own (a
user namespace too for a rootless build, as the launcher does), so that the overlays of
its steps vanish with it whatever happens. Call it from a single-threaded process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hostctl.paths import Scope, for_scope

CONTAINERFILES = ("Containerfile", "Dockerfile")


@dataclass(frozen=True)
class BuildResult:
    manifest_digest: str
    config_digest: str
    tags: tuple[str, ...]


def find_containerfile(context: Path, file: Path | None) -> Path:
    """FILE, or the context's Containerfile, else its Dockerfile."""
    from hostctl.build.parser import BuildError

    if file is not None:
        if not file.is_file():
            raise BuildError(f"{file} not found", hint="-f names the Containerfile")
        return file
    for name in CONTAINERFILES:
        if (context / name).is_file():
            return context / name
    raise BuildError(f"no Containerfile or Dockerfile in {context}",
                     hint="give one with -f FILE")


def canonical_tag(text: str) -> str:
    """A tag as stored: unqualified names go under localhost/ (as buildah does)."""
    from hostctl.images.reference import parse_reference

    first = text.split("/", 1)[0]
    qualified = "/" in text and ("." in first or ":" in first or first == "localhost")
    return str(parse_reference(text if qualified else f"localhost/{text}"))


def source_date_epoch(timestamp: int | None) -> int | None:
    """--timestamp, else $SOURCE_DATE_EPOCH, else None."""
    from hostctl.build.parser import BuildError

    if timestamp is not None:
        return timestamp
    text = os.environ.get("SOURCE_DATE_EPOCH")
    if not text:
        return None
    if not text.isdigit():
        raise BuildError(f"SOURCE_DATE_EPOCH={text} is not a number of seconds")
    return int(text)


def _enter_namespaces(scope: Scope) -> None:
    from hostctl.runtime import userns

    if scope is Scope.USER and os.geteuid() != 0:
        userns.enter(*userns.id_maps(os.getuid(), os.getgid()))
    else:
        userns.private_mount_namespace()


def build_image(
    context: Path,
    *,
    scope: Scope,
    file: Path | None = None,
    tags: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    timestamp: int | None = None,
    fmt: str = "oci",
    secrets: Mapping[str, Path] | None = None,
    explain_cache: bool = False,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build CONTEXT's Containerfile (or FILE) and tag the result with TAGS.

    Nothing is tagged unless the build succeeds; the layers of steps that succeeded stay
    in the store as the build cache. EXPLAIN_CACHE logs why each step hit or missed."""
    from hostctl.build.builder import Builder, Settings
    from hostctl.build.context import Context
    from hostctl.build.ignore import load_ignore
    from hostctl.build.image import FORMATS, commit, iso_time
    from hostctl.build.parser import BuildError, parse
    from hostctl.build.stages import make_plan
    from hostctl.images.store import Store

    if fmt not in FORMATS:
        raise BuildError(f"unknown format {fmt!r}", hint="oci or docker")
    if not context.is_dir():
        raise BuildError(f"build context {context} is not a directory")
    path = find_containerfile(context, file)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {path}: {exc}") from None
    args = dict(build_args or {})
    plan = make_plan(parse(text, str(path)), args, target)
    stored_tags = tuple(canonical_tag(t) for t in tags)
    for name, secret in (secrets or {}).items():
        if not Path(secret).is_file():
            raise BuildError(f"secret {name}: {secret} is not a file")
    epoch = source_date_epoch(timestamp)
    ctx = Context(context, load_ignore(context, path))
    rootless = scope is Scope.USER
    store = Store(for_scope(scope).store)  # paths first: inside the namespace getuid() is 0
    _enter_namespaces(scope)
    settings = Settings(args, no_cache, epoch, rootless, fmt,
                        {k: Path(v).resolve() for k, v in (secrets or {}).items()},
                        explain=explain_cache, origin=str(path.resolve()))
    with store.writing():
        builder = Builder(store, plan, ctx, settings, log)
        image = builder.build()
        created = iso_time(epoch) if epoch is not None else builder.created()
        done = commit(store, image, created=created, fmt=fmt)
        names = stored_tags or (f"localhost/build:{done.manifest_digest[7:19]}",)
        for name in names:
            store.record(name, done.manifest_digest, done.manifest_digest)
    log(f"COMMIT {' '.join(names)}")
    log(done.manifest_digest)
    return BuildResult(done.manifest_digest, done.config_digest, tuple(names))
