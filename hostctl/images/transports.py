"""Image locations for push and copy, and reading images out of them.

    docker://REF                    a registry
    oci:DIR[:TAG]                   an OCI image layout directory
    oci-archive:FILE[:TAG]          a tar of an OCI image layout
    docker-archive:FILE[:REF|@N]    `docker save` / `docker load` format (several images)
    dir:DIR                         skopeo's dir: layout (manifest.json, blobs by hex)
    store:REF, or a bare REF        hostctl's own image store

Every reader gives the top document (an index or a manifest) as the exact bytes, the
documents below it by digest, and each blob as a readable file of its exact bytes:
nothing is decoded and encoded again, so digests survive a copy.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from hostctl.errors import ImageError
from hostctl.images.manifest import MAX_DOCUMENT, Descriptor, sha256_digest
from hostctl.images.reference import Reference, parse_reference, validate_digest

if TYPE_CHECKING:
    from hostctl.images.registry import RegistryClient
    from hostctl.images.store import Store

KINDS = ("docker", "oci", "oci-archive", "docker-archive", "dir", "store")


@dataclass(frozen=True)
class Location:
    """A parsed SRC or DST: the transport KIND, a PATH (file kinds) or a REFERENCE."""

    kind: str
    path: Path | None = None
    tag: str | None = None  # oci tag, docker-archive REF (or @N)
    reference: Reference | None = None
    stored: str | None = None  # a store entry's name that is no reference (oci:...)

    def __str__(self) -> str:
        if self.stored is not None:
            return f"store:{self.stored}"
        if self.reference is not None:
            return f"{self.kind}://{self.reference}" if self.kind == "docker" \
                else f"store:{self.reference}"
        return f"{self.kind}:{self.path}" + (f":{self.tag}" if self.tag else "")


def parse_location(text: str) -> Location:
    """SRC/DST text -> Location; a bare reference means the local store."""
    if text.startswith("docker://"):
        return Location("docker", reference=parse_reference(text.removeprefix("docker://")))
    kind, colon, rest = text.partition(":")
    if colon and kind == "store":
        if rest.startswith(("oci:", "oci-archive:", "docker-archive:", "dir:")):
            # what `hostctl pull oci:...` (or another local location) stored
            return Location("store", stored=rest)
        return Location("store", reference=parse_reference(rest))
    if colon and kind in ("oci", "oci-archive", "docker-archive", "dir"):
        if kind == "dir":
            path, tag = rest, None
        elif kind == "docker-archive":  # FILE:REF: the reference has colons of its own
            path, _, tail = rest.partition(":")
            tag = tail or None
        else:
            path, tag = split_path_tag(rest)
        if not path:
            raise ImageError(f"{text!r}: no path", hint=f"write it as {kind}:PATH")
        if kind == "docker-archive" and tag and not tag.startswith("@"):
            tag = str(parse_reference(tag))
        return Location(kind, path=Path(path).resolve(), tag=tag)
    if colon and kind in ("docker", "containers-storage", "docker-daemon"):
        raise ImageError(f"{text!r}: unsupported transport {kind}:",
                         hint="use docker://REF, oci:, oci-archive:, docker-archive:, dir: "
                         "or store:REF")
    return Location("store", reference=parse_reference(text))


def split_path_tag(rest: str) -> tuple[str, str | None]:
    """PATH[:TAG]: a tag is what follows the last colon after the last slash."""
    head, colon, tail = rest.rpartition(":")
    if colon and "/" not in tail and head:
        return head, tail
    return rest, None


class Reader(Protocol):
    """Where a copy reads an image from."""

    name: str

    def top(self) -> tuple[bytes, str, str]:
        """(exact bytes, media type or "", digest) of what the location names."""
        ...

    def document(self, digest: str) -> bytes:
        """A manifest below the top one, verified against DIGEST."""
        ...

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        """A readable, seekable file of the blob's bytes (writers verify them)."""
        ...

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        """Repositories of REGISTRY known to hold this image's blobs (cross-repo mount)."""
        ...

    def close(self) -> None: ...


class RegistryReader:
    """An image in a registry; blobs are fetched (verified) into temp files."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client = client
        self.ref = ref
        self.name = f"docker://{ref}"
        self.parallel = 6

    def top(self) -> tuple[bytes, str, str]:
        return self.client.get_manifest(self.ref)

    def document(self, digest: str) -> bytes:
        return self.client.get_manifest(self.ref, digest)[0]

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        """The blob as it downloads (into an unlinked temp file in /var/tmp, verified as it
        arrives): a copy to a registry uploads it while it downloads, and its last bytes
        go out only once its digest is verified (growing.GrowingFile)."""
        from hostctl.images.growing import GrowingFile

        def fetch(sink: Any) -> None:
            self.client.fetch_blob(self.ref, desc, sink)

        return cast(IO[bytes], GrowingFile(desc.digest, desc.size, fetch, where=str(self.ref)))

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        return (self.ref.repository,) if registry == self.ref.registry else ()

    def close(self) -> None:
        return None


class StoreReader:
    """A stored image: its platform's manifest, or with ALL the whole stored index."""

    def __init__(self, store: Store, reference: str, *, all_platforms: bool) -> None:
        from hostctl.images.manage import find

        found = find(store, reference)
        if len(found) != 1:
            raise ImageError("no such image in the store" if not found else
                             f"ambiguous: matches {', '.join(found)}", where=reference,
                             hint="`hostctl images` lists the stored images")
        self.store = store
        self.parallel = 6
        self.name = found[0]
        self.entry = store.images()[self.name]
        self._top = self.entry.digest if all_platforms else self.entry.manifest

    def top(self) -> tuple[bytes, str, str]:
        return self.document(self._top), "", self._top

    def document(self, digest: str) -> bytes:
        if not self.store.has_blob(digest):
            raise ImageError(f"manifest {digest} is not in the store (only the host's "
                             "platform of a multi-platform image is stored)", where=self.name,
                             hint="copy from the registry to copy every platform")
        return self.store.read_blob(digest, MAX_DOCUMENT)

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        try:
            return self.store.blob_path(desc.digest).open("rb")
        except FileNotFoundError:
            raise ImageError(f"blob {desc.digest} is not in the store", where=self.name,
                             hint=f"pull it again: hostctl pull {self.name}") from None

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        found = []
        for name, entry in self.store.images().items():
            if entry.manifest == self.entry.manifest:
                with contextlib.suppress(ImageError):
                    ref = parse_reference(name)
                    if ref.registry == registry:
                        found.append(ref.repository)
        return tuple(found)

    def close(self) -> None:
        return None


class LayoutReader:
    """oci: and oci-archive: locations (through layout.LayoutSource)."""

    def __init__(self, location: Location) -> None:
        from hostctl.images.layout import LayoutSource

        tag = f":{location.tag}" if location.tag else ""
        self._source = LayoutSource(f"{location.kind}:{location.path}{tag}")
        self.name = self._source.name
        self.parallel = 1 if location.kind == "oci-archive" else 6  # one tar file position

    def top(self) -> tuple[bytes, str, str]:
        return self._source.get_manifest(None)

    def document(self, digest: str) -> bytes:
        return self._source.get_manifest(None, digest)[0]

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return self._source.open_blob(desc.digest)

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        return ()

    def close(self) -> None:
        self._source.close()


class DirReader:
    """skopeo's dir: layout: manifest.json, blobs named by their hex digest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"dir:{path}"
        self.parallel = 6
        if not (path / "manifest.json").is_file():
            raise ImageError("not a dir: image (no manifest.json)", where=str(path))

    def top(self) -> tuple[bytes, str, str]:
        data = (self.path / "manifest.json").read_bytes()
        if len(data) > MAX_DOCUMENT:
            raise ImageError("manifest.json too large", where=self.name)
        return data, "", sha256_digest(data)

    def document(self, digest: str) -> bytes:
        hexdigest = validate_digest(digest, where=self.name).removeprefix("sha256:")
        try:
            data = (self.path / f"{hexdigest}.manifest.json").read_bytes()
        except FileNotFoundError:
            raise ImageError(f"manifest {digest} missing", where=self.name) from None
        if sha256_digest(data) != digest:
            raise ImageError(f"manifest {digest}: digest mismatch", where=self.name)
        return data

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        hexdigest = validate_digest(desc.digest, where=self.name).removeprefix("sha256:")
        try:
            return (self.path / hexdigest).open("rb")
        except FileNotFoundError:
            raise ImageError(f"blob {desc.digest} missing", where=self.name) from None

    def mount_sources(self, registry: str) -> tuple[str, ...]:
        return ()

    def close(self) -> None:
        return None


def open_reader(location: Location, *, store: Store | None = None,
                client: RegistryClient | None = None, all_platforms: bool = False) -> Reader:
    """The reader for LOCATION (STORE and CLIENT for the store and registries)."""
    if location.kind == "docker":
        assert client is not None and location.reference is not None
        return RegistryReader(client, location.reference)
    if location.kind == "store":
        assert store is not None
        return StoreReader(store, location.stored or str(location.reference),
                           all_platforms=all_platforms)
    assert location.path is not None
    if location.kind in ("oci", "oci-archive"):
        return LayoutReader(location)
    if location.kind == "dir":
        return DirReader(location.path)
    from hostctl.images.dockerarchive import ArchiveReader

    return ArchiveReader(location.path, location.tag)


class ReaderSource:
    """A Reader seen as pull's Source (get_manifest / fetch_bytes / fetch_blob), so any
    location can be pulled into the store with the pull code's checks."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def get_manifest(self, ref: object, target: str | None = None) -> tuple[bytes, str, str]:
        if target is None:
            return self.reader.top()
        return self.reader.document(target), "", target

    def fetch_bytes(self, ref: object, desc: Descriptor, limit: int = MAX_DOCUMENT) -> bytes:
        if desc.size > limit:
            raise ImageError(f"blob {desc.digest} over the {limit} byte limit",
                             where=self.reader.name)
        with self.reader.open_blob(desc) as handle:
            data = handle.read(desc.size + 1)
        if len(data) != desc.size or sha256_digest(data) != desc.digest:
            raise ImageError(f"blob {desc.digest}: size or digest mismatch",
                             where=self.reader.name)
        return data

    def fetch_blob(self, ref: object, desc: Descriptor, sink: _Writable) -> None:
        import hashlib

        hasher, size = hashlib.sha256(), 0
        with self.reader.open_blob(desc) as handle:
            while chunk := handle.read(1024 * 1024):
                size += len(chunk)
                if size > desc.size:
                    break
                hasher.update(chunk)
                sink.write(chunk)
        if size != desc.size or "sha256:" + hasher.hexdigest() != desc.digest:
            raise ImageError(f"blob {desc.digest}: size or digest mismatch",
                             where=self.reader.name, hint="the source is damaged")


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def load_json(data: bytes, *, where: str) -> dict[str, object]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"not valid JSON: {exc}", where=where) from None
    if not isinstance(doc, dict):
        raise ImageError("not a JSON object", where=where)
    return doc
