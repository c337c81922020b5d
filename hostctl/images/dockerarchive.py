"""docker-archive: the `docker save` / `docker load` tar, several images per file.

    manifest.json   [{"Config": PATH, "RepoTags": [REF...], "Layers": [PATH...]}, ...]
    PATH...         the config and the layer tars

hostctl writes the layout Docker 25 writes: every file is blobs/sha256/HEX, beside an
OCI index.json naming the exact manifests, so one archive is both a docker-archive
(`docker load`, `podman load`) and an OCI layout. Layers are stored as they came
(compressed): docker and podman load decompress them, and a copy out of the archive finds
the original manifest in index.json, so the image keeps its digests. An archive written
by docker without index.json is read through a manifest made from manifest.json: layers
are then described as they are in the file (an uncompressed tar's digest is its DiffID).
Adding an image to an existing archive writes a new file (old members first) and renames
it over the old one; a tag moves from the image that had it to the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    parse_document,
    sha256_digest,
)
from hostctl.images.reference import parse_reference, validate_digest
from hostctl.images.streams import GZIP_MAGIC, ZSTD_MAGIC

_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar"
_NAME = "io.containerd.image.name"
_REF_NAME = "org.opencontainers.image.ref.name"
_META = ("manifest.json", "index.json", "oci-layout", "repositories")


class ArchiveReader:
    """One image of a docker-archive, chosen by REF (a RepoTag) or @N (its position)."""

    def __init__(self, path: Path, choice: str | None) -> None:
        self.path = path
        self.name = f"docker-archive:{path}" + (f":{choice}" if choice else "")
        self.parallel = 1  # one tar file position
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise ImageError(f"cannot read the archive: {exc}", where=str(path)) from None
        self._paths: dict[str, str] = {}
        try:
            self._members = {os.path.normpath(m.name.lstrip("/")): m
                             for m in self._tar.getmembers() if m.isreg()}
            entries = self._json("manifest.json")
            if not isinstance(entries, list) or not entries:
                raise ImageError("manifest.json lists no images", where=self.name)
            self._entry = _choose(entries, choice, self.name)
            self._top = self._from_index() or self._synthesised()
        except BaseException:  # the archive stays open only for a reader that exists
            self._tar.close()
            raise

    def _json(self, name: str) -> Any:
        try:
            with self._open(name) as handle:
                return json.loads(handle.read(16 * 1024 * 1024))
        except ValueError as exc:
            raise ImageError(f"{name} is not valid JSON: {exc}", where=self.name) from None

    def _open(self, name: str) -> IO[bytes]:
        member = self._members.get(os.path.normpath(name))
        handle = self._tar.extractfile(member) if member is not None else None
        if handle is None:
            raise ImageError(f"{name} missing from the archive", where=self.name,
                             hint="is this a docker save archive?")
        return handle

    def _from_index(self) -> tuple[bytes, str, str] | None:
        """The exact manifest from index.json whose files are this entry's (hostctl's and
        Docker 25's archives), or None."""
        if "index.json" not in self._members:
            return None
        config, layers = self._entry["Config"], self._entry["Layers"]
        index = self._json("index.json")
        entries = index.get("manifests") if isinstance(index, dict) else None
        for desc in entries if isinstance(entries, list) else []:
            if not isinstance(desc, dict):
                continue
            digest = str(desc.get("digest", ""))
            path = "blobs/sha256/" + digest.removeprefix("sha256:")
            if not digest.startswith("sha256:") or path not in self._members:
                continue
            with self._open(path) as handle:
                data = handle.read()
            if sha256_digest(data) != digest:
                continue
            with_type = str(desc.get("mediaType") or "")
            try:
                doc = parse_document(data, with_type, where=self.name)
            except ImageError:
                continue
            if isinstance(doc, Manifest) and _blob_path(doc.config.digest) == config and \
                    [_blob_path(layer.digest) for layer in doc.layers] == layers:
                for blob in (doc.config, *doc.layers):
                    self._paths[blob.digest] = _blob_path(blob.digest)
                return data, doc.media_type, digest
        return None

    def _synthesised(self) -> tuple[bytes, str, str]:
        """An OCI manifest describing the entry's files as they are."""
        config_path = self._entry["Config"]
        with self._open(config_path) as handle:
            config = handle.read()
        config_digest = sha256_digest(config)
        self._paths[config_digest] = config_path
        layers = []
        for path in self._entry["Layers"]:
            digest, size, magic = self._hash(path)
            self._paths[digest] = path
            kind = _LAYER + ("+gzip" if magic[:2] == GZIP_MAGIC else
                             "+zstd" if magic == ZSTD_MAGIC else "")
            layers.append({"mediaType": kind, "digest": digest, "size": size})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": _CONFIG, "digest": config_digest,
                               "size": len(config)}, "layers": layers}
        data = json.dumps(manifest, separators=(",", ":")).encode()
        return data, OCI_MANIFEST, sha256_digest(data)

    def _hash(self, path: str) -> tuple[str, int, bytes]:
        hasher, size = hashlib.sha256(), 0
        with self._open(path) as handle:
            magic = handle.read(4)
            handle.seek(0)
            while chunk := handle.read(1024 * 1024):
                hasher.update(chunk)
                size += len(chunk)
        return "sha256:" + hasher.hexdigest(), size, magic

    def top(self) -> tuple[bytes, str, str]:
        return self._top

    def document(self, digest: str) -> bytes:
        raise ImageError(f"manifest {digest}: a docker-archive holds no index",
                         where=self.name)

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageError(f"blob {desc.digest} missing from the archive", where=self.name)
        return self._open(path)

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        return ()

    def close(self) -> None:
        self._tar.close()


def _choose(entries: list[Any], choice: str | None, where: str) -> dict[str, Any]:
    def tags(entry: dict[str, Any]) -> list[str]:
        found = []
        for tag in entry.get("RepoTags") or []:
            try:
                found.append(str(parse_reference(str(tag))))
            except ImageError:
                found.append(str(tag))
        return found

    if choice is None:
        if len(entries) != 1:
            raise ImageError(f"the archive holds {len(entries)} images", where=where,
                             hint="name one: docker-archive:FILE:REF or :@N; tags: "
                             + ", ".join(t for e in entries for t in tags(e)))
        chosen = entries[0]
    elif choice.startswith("@"):
        number = int(choice[1:]) if choice[1:].isdigit() else -1
        if not 0 <= number < len(entries):
            raise ImageError(f"no image {choice} (the archive holds {len(entries)})",
                             where=where)
        chosen = entries[number]
    else:
        matching = [e for e in entries if choice in tags(e)]
        if not matching:
            raise ImageError(f"no image tagged {choice} in the archive", where=where,
                             hint="tags: " + ", ".join(t for e in entries for t in tags(e)))
        chosen = matching[0]
    if not isinstance(chosen, dict) or not isinstance(chosen.get("Config"), str) or \
            not isinstance(chosen.get("Layers"), list):
        raise ImageError("manifest.json entry lacks Config or Layers", where=where)
    return chosen


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + validate_digest(digest).removeprefix("sha256:")


class ArchiveWriter:
    """Writes one image (REF, may be None) into a docker-archive, keeping what it held."""

    parallel = 1  # one tar stream

    def __init__(self, path: Path, ref: str | None) -> None:
        import tempfile

        self.path = path
        self.ref = ref
        self.name = f"docker-archive:{path}"
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._index: list[dict[str, Any]] = []
        self._names: set[str] = set()
        self._top: tuple[bytes, str, str] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        self._temp = Path(temp)
        self._out = os.fdopen(fd, "wb")
        self._tar = tarfile.open(fileobj=self._out, mode="w:",  # noqa: SIM115 (commit/abort)
                                 format=tarfile.PAX_FORMAT)
        try:
            if path.exists():
                self._keep_old()
        except (OSError, tarfile.TarError, ValueError, AttributeError) as exc:
            self.abort()
            raise ImageError(f"cannot add to the existing archive: {exc}", where=self.name,
                             hint="is it a docker-archive? remove it to write a new one"
                             ) from None
        except BaseException:
            self.abort()
            raise

    def _keep_old(self) -> None:
        with tarfile.open(self.path, "r:") as old:
            for member in old.getmembers():
                name = os.path.normpath(member.name.lstrip("/"))
                handle = old.extractfile(member) if member.isreg() else None
                if name == "manifest.json" and handle is not None:
                    self._entries = list(json.loads(handle.read()))
                elif name == "index.json" and handle is not None:
                    self._index = list(json.loads(handle.read()).get("manifests") or [])
                elif name not in _META and name not in self._names:
                    self._tar.addfile(member, handle)
                    self._names.add(name)

    def has_blob(self, desc: Descriptor) -> bool:
        return _blob_path(desc.digest) in self._names

    def put_blob(self, desc: Descriptor, opener: Callable[[], IO[bytes]]) -> str:
        name = _blob_path(desc.digest)
        with self._lock:
            if name in self._names:
                return "exists"
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = desc.size, 0o644, 0
            try:
                with opener() as handle:
                    reader = _Hashing(handle)
                    self._tar.addfile(info, reader)
            except OSError as exc:
                raise ImageError(f"blob {desc.digest}: {exc.strerror or exc}",
                                 where=self.name) from None
            if reader.size != desc.size or reader.digest() != desc.digest:
                raise ImageError(f"blob {desc.digest}: the source's bytes do not match",
                                 where=self.name, hint="the source is damaged")
            self._names.add(name)
        return "written"

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None:
        if media_type in INDEX_TYPES:
            raise ImageError("a docker-archive holds one platform per image", where=self.name,
                             hint="copy without --all")
        self._add_bytes(_blob_path(digest), data)
        if top:
            self._top = (data, media_type, digest)

    def _add_bytes(self, name: str, data: bytes) -> None:
        import io

        with self._lock:
            if name in self._names and name not in _META:
                return
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            self._tar.addfile(info, io.BytesIO(data))
            self._names.add(name)

    def commit(self) -> None:
        assert self._top is not None
        data, media_type, digest = self._top
        doc = parse_document(data, media_type, where=self.name)
        assert isinstance(doc, Manifest)
        tags = [self.ref] if self.ref else []
        for entry in self._entries:
            entry["RepoTags"] = [t for t in entry.get("RepoTags") or [] if t not in tags]
        self._entries.append({"Config": _blob_path(doc.config.digest), "RepoTags": tags,
                              "Layers": [_blob_path(layer.digest) for layer in doc.layers]})
        desc: dict[str, Any] = {"mediaType": doc.media_type, "digest": digest,
                                "size": len(data)}
        if self.ref:
            tag = parse_reference(self.ref).tag or "latest"
            desc["annotations"] = {_NAME: self.ref, _REF_NAME: tag}
            for old in self._index:  # the tag moves; the image stays, untagged
                if (old.get("annotations") or {}).get(_NAME) == self.ref:
                    old.pop("annotations")
        self._index.append(desc)
        self._add_bytes("manifest.json", json.dumps(self._entries).encode())
        self._add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                  "manifests": self._index}).encode())
        self._add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        self._tar.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._temp, self.path)

    def abort(self) -> None:
        self._tar.close()
        self._out.close()
        self._temp.unlink(missing_ok=True)


class _Hashing:
    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
