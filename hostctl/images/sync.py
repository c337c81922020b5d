"""`hostctl image sync FILE DEST`: mirror a YAML list of images to a registry or directory.

The file is skopeo sync's YAML, with the additions its users ask for most:

    registry.example.com:                 # a source registry
      images:                             # repository: tags (or digests); [] = every tag
        team/app: ["1.4", "1.5"]
        team/db: []
      images-by-tag-regex:                # repository: regular expression (full match)
        team/web: '^v1\\.'
      images-by-semver:                   # repository: range (tags X.Y.Z, optional v)
        team/api: ">=1.2.0, <2"           # also ^1.2 and ~1.2
      rename:                             # repository: destination repository
        team/app: mirror/app
      credentials: {username: u, password: p}
      tls-verify: false                   # or cert-dir: DIR (CA files *.crt)

DEST is docker://HOST[/NAMESPACE] (images go to HOST/NAMESPACE/REPO:TAG), or dir:DIR /
oci:DIR (DIR/REPO:TAG as dir: layouts, or one OCI layout per repository, tagged). Only
what changed is copied: a destination that already names the source's digest under that
tag is left alone, so a second sync copies nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.reference import Reference, parse_reference

if TYPE_CHECKING:
    from hostctl.images.copy import CopyOptions
    from hostctl.images.registry import RegistryClient
    from hostctl.images.store import Store

_KEYS = ("images", "images-by-tag-regex", "images-by-semver", "rename", "credentials",
         "tls-verify", "cert-dir")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@dataclass(frozen=True)
class Source:
    registry: str
    repository: str
    tags: tuple[str, ...] = ()  # explicit tags or digests
    regex: str | None = None
    semver: str | None = None
    destination: str | None = None  # renamed repository
    where: str = ""


@dataclass(frozen=True)
class SyncFile:
    sources: tuple[Source, ...]
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()
    cert_dirs: dict[str, Path] = field(default_factory=dict)


def load(path: Path) -> SyncFile:
    """Parse the sync file; errors name FILE:LINE: KEY."""
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ImageError(f"cannot read the sync file: {exc.strerror}", where=str(path)) \
            from None
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ImageError(f"invalid YAML: {getattr(exc, 'problem', exc)}",
                         where=f"{path}{line}") from None
    lines = _lines(node)
    if not isinstance(doc, dict) or not doc:
        raise ImageError("a sync file maps source registries to their images", where=str(path))
    sources: list[Source] = []
    credentials: dict[str, tuple[str, str]] = {}
    insecure: set[str] = set()
    cert_dirs: dict[str, Path] = {}
    for registry, settings in doc.items():
        here = f"{path}:{lines.get((str(registry),), 1)}: {registry}"
        if not isinstance(settings, dict):
            raise ImageError("not a mapping", where=here, hint="keys: " + ", ".join(_KEYS))
        for key in settings:
            if key not in _KEYS:
                raise ImageError(f"unknown key {key!r}",
                                 where=f"{path}:{lines.get((str(registry), key), 1)}: "
                                 f"{registry}.{key}", hint="keys: " + ", ".join(_KEYS))
        sources += _sources(str(registry), settings, path, lines)
        creds = settings.get("credentials")
        if creds is not None:
            if not isinstance(creds, dict) or not all(
                    isinstance(creds.get(k), str) for k in ("username", "password")):
                raise ImageError("credentials need username and password",
                                 where=f"{path}:{lines.get((str(registry), 'credentials'), 1)}"
                                 f": {registry}.credentials")
            credentials[str(registry)] = (creds["username"], creds["password"])
        if settings.get("tls-verify") is False:
            insecure.add(str(registry))
        if "cert-dir" in settings:
            cert_dir = settings["cert-dir"]
            where = f"{path}:{lines.get((str(registry), 'cert-dir'), 1)}: {registry}.cert-dir"
            if not isinstance(cert_dir, str) or not Path(cert_dir).is_dir():
                raise ImageError(f"not a directory: {cert_dir!r}", where=where,
                                 hint="a directory of CA files (*.crt) for this registry")
            cert_dirs[str(registry)] = Path(cert_dir)
    return SyncFile(tuple(sources), credentials, frozenset(insecure), cert_dirs)


def _sources(registry: str, settings: dict[str, Any], path: Path,
             lines: dict[tuple[str, ...], int]) -> list[Source]:
    rename = settings.get("rename") or {}
    if not isinstance(rename, dict):
        raise ImageError("not a mapping of repository: new repository",
                         where=f"{path}:{lines.get((registry, 'rename'), 1)}: {registry}.rename")
    for old, new in rename.items():
        where = f"{path}:{lines.get((registry, 'rename', str(old)), 1)}: {registry}.rename.{old}"
        try:
            parse_reference(f"example.invalid/{new}")
        except ImageError as exc:
            raise ImageError(f"invalid destination repository: {exc.message}",
                             where=where) from None
    found = []
    for key, field_name in (("images", "tags"), ("images-by-tag-regex", "regex"),
                            ("images-by-semver", "semver")):
        entries = settings.get(key) or {}
        if not isinstance(entries, dict):
            raise ImageError("not a mapping of repositories",
                             where=f"{path}:{lines.get((registry, key), 1)}: {registry}.{key}")
        for repository, value in entries.items():
            where = f"{path}:{lines.get((registry, key, str(repository)), 1)}: " \
                f"{registry}.{key}.{repository}"
            try:
                parse_reference(f"{registry}/{repository}")
            except ImageError as exc:
                raise ImageError(exc.message, where=where, hint=exc.hint) from None
            if field_name == "tags":
                if value is not None and not (isinstance(value, list) and
                                              all(isinstance(t, str) for t in value)):
                    raise ImageError("a list of tags or digests", where=where)
                extra: dict[str, Any] = {"tags": tuple(value or ())}
            else:
                if not isinstance(value, str) or not value:
                    raise ImageError("a non-empty string", where=where)
                if field_name == "regex":
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise ImageError(f"invalid regular expression: {exc}",
                                         where=where) from None
                else:
                    parse_range(value, where=where)
                extra = {field_name: value}
            found.append(Source(registry, str(repository), destination=rename.get(repository),
                                where=where, **extra))
    return found


def _lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """(key path) -> line number, from the YAML node tree."""
    import yaml

    found: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            found[path] = key.start_mark.line + 1
            found.update(_lines(value, path))
    return found


# -- semver ------------------------------------------------------------------------------


def parse_version(tag: str) -> tuple[int, int, int] | None:
    match = _VERSION.fullmatch(tag)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)


def parse_range(text: str, *, where: str = "") -> list[tuple[str, tuple[int, int, int]]]:
    """">=1.2, <2", "^1.2", "~1.2.3", "1.4.2" -> [(op, version)], all must hold."""
    constraints: list[tuple[str, tuple[int, int, int]]] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        match = re.fullmatch(r"(>=|<=|>|<|=|\^|~)?(.+)", part)
        version = parse_version(match.group(2)) if match else None
        if match is None or version is None:
            raise ImageError(f"invalid version constraint {part!r}", where=where,
                             hint='e.g. ">=1.2.0, <2", "^1.2" or "~1.4"')
        op = match.group(1) or "="
        major, minor, _patch = version
        if op == "^":
            upper = (major + 1, 0, 0) if major else (0, minor + 1, 0)
            constraints += [(">=", version), ("<", upper)]
        elif op == "~":
            constraints += [(">=", version), ("<", (major, minor + 1, 0))]
        else:
            constraints.append((op, version))
    return constraints


def in_range(version: tuple[int, int, int], constraints: list[tuple[str, tuple[int, int, int]]]
             ) -> bool:
    checks: dict[str, Callable[[tuple[int, int, int], tuple[int, int, int]], bool]] = {
        ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, "=": lambda a, b: a == b}
    return all(checks[op](version, bound) for op, bound in constraints)


def select_tags(source: Source, available: list[str]) -> list[str]:
    """The tags SOURCE names among AVAILABLE (explicit tags are taken as they are)."""
    if source.tags:
        return list(source.tags)
    if source.regex is not None:
        pattern = re.compile(source.regex)
        return [t for t in available if pattern.search(t)]
    if source.semver is not None:
        constraints = parse_range(source.semver, where=source.where)
        return [t for t in available
                if (v := parse_version(t)) is not None and in_range(v, constraints)]
    return list(available)


# -- running ------------------------------------------------------------------------------


@dataclass
class SyncResult:
    copied: list[dict[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def sync(spec: SyncFile, destination: str, *, store: Store, client: RegistryClient,
         options: CopyOptions, dry_run: bool = False, log: Callable[[str], None],
         trust: Callable[..., None] | None = None) -> SyncResult:
    """Copy what SPEC names to DESTINATION, skipping images already there."""
    from hostctl.images.auth import Credentials
    from hostctl.images.copy import copy_image
    from hostctl.images.upload import list_tags

    for registry, (user, password) in spec.credentials.items():
        client.use_credentials(registry, Credentials(user, password))
    for registry, directory in spec.cert_dirs.items():
        client.use_cert_dir(registry, directory)
    result = SyncResult()
    if spec.sources:
        _destination(destination, spec.sources[0], "latest")  # a bad DEST fails first
    for source in spec.sources:
        repo = parse_reference(f"{source.registry}/{source.repository}")
        needs_list = not source.tags
        tags = select_tags(source, list_tags(client, repo) if needs_list else [])
        for tag in tags:
            if not _TAG.fullmatch(tag) and not _DIGEST.fullmatch(tag):
                raise ImageError(f"invalid tag {tag!r}", where=f"{repo.name} "
                                 f"({source.where})", hint="a tag is [A-Za-z0-9_][A-Za-z0-9_.-]"
                                 "{0,127}; a digest sha256:HEX")
            src_ref = _with_target(repo, tag)
            dst = _destination(destination, source, tag)
            digest = _expected_digest(client, src_ref, options)
            if _already(dst, digest, client):
                result.unchanged.append(f"{src_ref} -> {dst}")
                log(f"unchanged: {src_ref} -> {dst}")
                continue
            if dry_run:
                log(f"would copy {src_ref} -> {dst}")
                continue
            _prepare_dir(dst)
            copied = copy_image(f"docker://{src_ref}", dst, store=store, client=client,
                                options=options, log=log, trust=trust)
            result.copied.append({"source": str(src_ref), "destination": dst,
                                  "digest": copied.digest})
            log(f"copied {src_ref} -> {dst} ({copied.digest})")
    return result


def _expected_digest(client: RegistryClient, ref: Reference, options: CopyOptions) -> str:
    """The digest the destination will name: the source's, or under an index without
    --all, the chosen platform's manifest."""
    from hostctl.images.manifest import (
        Index,
        host_platform,
        parse_document,
        parse_platform,
        select_platform,
    )

    data, content_type, digest = client.get_manifest(ref)
    if options.all_platforms:
        return digest
    doc = parse_document(data, content_type, where=str(ref))
    if not isinstance(doc, Index):
        return digest
    wanted = parse_platform(options.platform) if options.platform else host_platform()
    return select_platform(doc, wanted, where=str(ref)).digest


def _with_target(repo: Reference, tag: str) -> Reference:
    if tag.startswith("sha256:"):
        return Reference(repo.registry, repo.repository, None, tag)
    return Reference(repo.registry, repo.repository, tag, None)


def _destination(destination: str, source: Source, tag: str) -> str:
    repository = source.destination or source.repository
    at = "@" if tag.startswith("sha256:") else ":"
    if destination.startswith("docker://"):
        base = destination.removeprefix("docker://").rstrip("/")
        if at == "@":
            raise ImageError(f"{source.repository}@{tag}: a digest cannot be pushed by digest "
                             "alone to a registry in a sync", where=source.where,
                             hint="name tags in the sync file")
        return f"docker://{base}/{repository}{at}{tag}"
    kind, _, directory = destination.partition(":")
    if kind == "dir":
        return f"dir:{Path(directory) / (repository + at + tag)}"
    if kind == "oci":
        return f"oci:{Path(directory) / repository}:{tag.replace(':', '-')}"
    raise ImageError(f"unsupported sync destination {destination!r}",
                     hint="docker://HOST[/NAMESPACE], dir:DIR or oci:DIR")


def _already(dst: str, digest: str, client: RegistryClient) -> bool:
    """Whether DST already names DIGEST (nothing to copy)."""
    from hostctl.images.manifest import sha256_digest

    if dst.startswith("docker://"):
        try:
            return client.manifest_digest(parse_reference(dst.removeprefix("docker://"))) \
                == digest
        except ImageError:
            return False
    kind, _, rest = dst.partition(":")
    if kind == "dir":
        manifest = Path(rest) / "manifest.json"
        return manifest.is_file() and sha256_digest(manifest.read_bytes()) == digest
    import json

    directory, _, tag = rest.rpartition(":")
    try:
        index = json.loads((Path(directory) / "index.json").read_text())
    except (OSError, ValueError):
        return False
    return any(m.get("digest") == digest and (m.get("annotations") or {}).get(
        "org.opencontainers.image.ref.name") == tag for m in index.get("manifests") or [])


def _prepare_dir(dst: str) -> None:
    kind, _, rest = dst.partition(":")
    if kind in ("dir", "oci"):
        path = Path(rest if kind == "dir" else rest.rpartition(":")[0])
        path.mkdir(parents=True, exist_ok=True)
