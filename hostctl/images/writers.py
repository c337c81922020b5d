"""Where a copy writes an image: a registry, oci:, oci-archive:, dir: (docker-archive: is in
dockerarchive.py, the store goes through pull).

A writer takes blobs (put_blob: "exists", "mounted", "uploaded" or "written"; it opens
the source only when it needs the bytes), then the manifests, the top one last, and
commit() makes the result visible at once: index.json, manifest.json or the archive is
replaced atomically, so a failed copy leaves what was there before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from hostctl.errors import ImageError
from hostctl.images.manifest import INDEX_TYPES, OCI_INDEX, Descriptor
from hostctl.images.reference import Reference, validate_digest
from hostctl.images.store import atomic_write

if TYPE_CHECKING:
    from hostctl.images.upload import Pusher

Opener = Callable[[], IO[bytes]]
_REF_NAME = "org.opencontainers.image.ref.name"
DIR_VERSION = b"Directory Transport Version: 1.1\n"


class Writer(Protocol):
    name: str
    parallel: int

    def put_blob(self, desc: Descriptor, opener: Opener) -> str: ...

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class RegistryWriter:
    """Pushes into a registry (see upload.Pusher); the top manifest under the tag."""

    parallel = 6  # as containers/image

    def __init__(self, pusher: Pusher) -> None:
        self.pusher = pusher
        self.ref: Reference = pusher.ref
        self.name = f"docker://{pusher.ref}"
        self.pushed: str | None = None

    def put_blob(self, desc: Descriptor, opener: Opener) -> str:
        return self.pusher.blob(desc, opener)

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None:
        target = (self.ref.tag or digest) if top else digest
        if self.ref.digest is not None and self.ref.digest != digest and top:
            raise ImageError(f"the destination names digest {self.ref.digest} but the image "
                             f"is {digest}", where=self.name, hint="push by tag instead")
        self.pusher.manifest(data, media_type, target)
        if top:
            self.pushed = digest

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None


class _BlobFiles:
    """Blob files by digest under DIRECTORY, written through temp files and renames."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name

    def path(self, digest: str) -> Path:
        hexdigest = validate_digest(digest, where=self.name).removeprefix("sha256:")
        return self.directory / hexdigest

    def put(self, desc: Descriptor, opener: Opener) -> str:
        final = self.path(desc.digest)
        if final.is_file() and final.stat().st_size == desc.size:
            return "exists"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            hasher, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, opener() as source:
                while size <= desc.size and (chunk := source.read(1024 * 1024)):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if size != desc.size or "sha256:" + hasher.hexdigest() != desc.digest:
                raise ImageError(f"blob {desc.digest}: the source's bytes do not match the "
                                 "digest", where=self.name, hint="the source is damaged")
            os.chmod(temp, 0o644)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return "written"

    def put_bytes(self, digest: str, data: bytes) -> None:
        import io

        self.put(Descriptor("", digest, len(data)), lambda: io.BytesIO(data))


class OciWriter:
    """An OCI image layout directory; index.json names the image by TAG (if any)."""

    parallel = 4

    def __init__(self, path: Path, tag: str | None, *, name: str | None = None) -> None:
        self.path = path
        self.tag = tag
        self.name = name or f"oci:{path}" + (f":{tag}" if tag else "")
        self._blobs = _BlobFiles(path / "blobs" / "sha256", self.name)
        self._top: tuple[str, str, int] | None = None

    def put_blob(self, desc: Descriptor, opener: Opener) -> str:
        return self._blobs.put(desc, opener)

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None:
        self._blobs.put_bytes(digest, data)
        if top:
            self._top = (media_type or _media_type_of(data), digest, len(data))

    def commit(self) -> None:
        assert self._top is not None
        media_type, digest, size = self._top
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
        if self.tag:
            desc["annotations"] = {_REF_NAME: self.tag}
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # concurrent copies into one layout (skopeo#1018)
            entries = self._entries()
            entries = [e for e in entries if not _same_slot(e, desc)]
            entries.append(desc)
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
            atomic_write(self.path / "index.json", json.dumps(index, indent=1).encode())
        finally:
            os.close(fd)

    def _entries(self) -> list[dict[str, Any]]:
        try:
            doc = json.loads((self.path / "index.json").read_bytes())
            return [e for e in doc["manifests"] if isinstance(e, dict)]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError):
            raise ImageError("index.json is not an OCI index", where=self.name,
                             hint="remove the directory to write a new layout") from None

    def abort(self) -> None:
        return None  # blobs written are harmless; index.json was not touched


def _same_slot(entry: dict[str, Any], new: dict[str, Any]) -> bool:
    name = (new.get("annotations") or {}).get(_REF_NAME)
    old = (entry.get("annotations") or {}).get(_REF_NAME)
    if name is not None:
        return bool(old == name)
    return old is None and entry.get("digest") == new["digest"]


class OciArchiveWriter:
    """A tar of an OCI layout, written in a temp directory and renamed over FILE."""

    parallel = 4

    def __init__(self, path: Path, tag: str | None) -> None:
        self.path = path
        self.name = f"oci-archive:{path}" + (f":{tag}" if tag else "")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
        self._layout = OciWriter(self._dir, tag, name=self.name)

    def put_blob(self, desc: Descriptor, opener: Opener) -> str:
        return self._layout.put_blob(desc, opener)

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None:
        self._layout.put_manifest(data, media_type, digest, top=top)

    def commit(self) -> None:
        import tarfile

        self._layout.commit()
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
                    for name in ("oci-layout", "index.json"):
                        tar.add(self._dir / name, name, recursive=False)
                    for blob in sorted((self._dir / "blobs" / "sha256").iterdir()):
                        tar.add(blob, f"blobs/sha256/{blob.name}", recursive=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        finally:
            self.abort()

    def abort(self) -> None:
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)


class DirWriter:
    """skopeo's dir: layout: manifest.json (the top), HEX.manifest.json below it, version."""

    parallel = 4

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"dir:{path}"
        self._blobs = _BlobFiles(path, self.name)
        self._top: bytes | None = None

    def put_blob(self, desc: Descriptor, opener: Opener) -> str:
        return self._blobs.put(desc, opener)

    def put_manifest(self, data: bytes, media_type: str, digest: str, *, top: bool) -> None:
        if top:
            self._top = data
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            hexdigest = digest.removeprefix("sha256:")
            atomic_write(self.path / f"{hexdigest}.manifest.json", data)

    def commit(self) -> None:
        assert self._top is not None
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / "version", DIR_VERSION)
        atomic_write(self.path / "manifest.json", self._top)

    def abort(self) -> None:
        return None


def _media_type_of(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {}
    declared = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    return INDEX_TYPES[0] if isinstance(doc, dict) and "manifests" in doc else \
        "application/vnd.oci.image.manifest.v1+json"
