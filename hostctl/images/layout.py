"""Local image sources: `oci:DIR[:TAG]` (an OCI image layout) and `oci-archive:FILE[:TAG]`.

A layout is read like a registry: index.json names the manifests (the tag is the
org.opencontainers.image.ref.name annotation; without a tag the index must hold exactly
one entry), and every blob is verified against its digest and size while it is copied
into the store. Archives are tar files of a layout, read in place (no extraction).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import MAX_DOCUMENT, OCI_INDEX, Descriptor, sha256_digest
from hostctl.images.reference import Reference, validate_digest

if TYPE_CHECKING:
    from hostctl.images.registry import BlobSink

PREFIXES = ("oci:", "oci-archive:")
_REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1024 * 1024


def is_local(text: str) -> bool:
    return text.startswith(PREFIXES)


class LayoutSource:
    """Reads blobs out of an OCI layout directory or archive; the RegistryClient interface."""

    def __init__(self, text: str) -> None:
        kind, _, rest = text.partition(":")
        path, tag = _split_tag(rest)
        if not path:
            raise ImageError(f"{text!r}: no path", hint=f"write it as {kind}:PATH[:TAG]")
        self.path = Path(path).resolve()
        self.tag = tag
        self.name = f"{kind}:{self.path}" + (f":{tag}" if tag else "")
        self._archive: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if kind == "oci-archive":
            self._open_archive()
        elif not (self.path / "index.json").is_file():
            raise ImageError("not an OCI image layout (no index.json)", where=str(self.path))

    def _open_archive(self) -> None:
        try:
            self._archive = tarfile.open(self.path, "r:")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise ImageError(f"cannot read the archive: {exc}", where=str(self.path)) from None
        for member in self._archive.getmembers():
            if member.isreg():
                self._members[os.path.normpath(member.name.lstrip("/"))] = member
        if "index.json" not in self._members:
            raise ImageError("archive holds no OCI image layout (no index.json)",
                             where=str(self.path))

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()

    def _open(self, name: str) -> IO[bytes]:
        if self._archive is None:
            return (self.path / name).open("rb")
        member = self._members.get(name)
        handle = self._archive.extractfile(member) if member is not None else None
        if handle is None:
            raise FileNotFoundError(name)
        return handle

    def open_blob(self, digest: str) -> IO[bytes]:
        """The blob DIGEST's file (a seekable member when the layout is an archive)."""
        validate_digest(digest, where=self.name)
        try:
            return self._open(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        except FileNotFoundError:
            raise ImageError(f"blob {digest} missing from the layout", where=self.name) from None

    def get_manifest(self, ref: Reference | None, target: str | None = None
                     ) -> tuple[bytes, str, str]:
        if target is None:
            return self._index_target()
        with self.open_blob(target) as handle:
            data = handle.read(MAX_DOCUMENT + 1)
        if len(data) > MAX_DOCUMENT or sha256_digest(data) != target:
            raise ImageError(f"manifest {target}: digest mismatch or too large", where=self.name)
        return data, "", target

    def _index_target(self) -> tuple[bytes, str, str]:
        with self._open("index.json") as handle:
            raw = handle.read(MAX_DOCUMENT + 1)
        try:
            entries: list[dict[str, Any]] = json.loads(raw)["manifests"]
        except (ValueError, KeyError, TypeError):
            raise ImageError("index.json is not an OCI index", where=self.name) from None
        if self.tag is not None:
            chosen = [e for e in entries if (e.get("annotations") or {}).get(_REF_NAME)
                      == self.tag]
        else:
            chosen = entries
        if len(chosen) != 1:
            tags = sorted(str((e.get("annotations") or {}).get(_REF_NAME)) for e in entries)
            raise ImageError(
                f"{'tag ' + repr(self.tag) if self.tag else 'no tag given and'} "
                f"{'not found' if not chosen else 'several images'} in the layout",
                where=self.name, hint="tags in this layout: " + ", ".join(tags))
        desc = chosen[0]
        digest = validate_digest(str(desc.get("digest")), where=self.name)
        data, _, _ = self.get_manifest(None, digest)
        if desc.get("mediaType") == OCI_INDEX:
            return data, OCI_INDEX, digest
        return data, str(desc.get("mediaType", "")), digest

    def fetch_bytes(self, ref: Reference | None, desc: Descriptor,
                    limit: int = MAX_DOCUMENT) -> bytes:
        chunks: list[bytes] = []

        class _Sink:
            def write(self, data: bytes, /) -> object:
                chunks.append(data)
                return None

            def reset(self) -> None:
                chunks.clear()

        if desc.size > limit:
            raise ImageError(f"blob {desc.digest} over the {limit} byte limit", where=self.name)
        self.fetch_blob(ref, desc, _Sink())
        return b"".join(chunks)

    def fetch_blob(self, ref: Reference | None, desc: Descriptor, sink: BlobSink) -> None:
        hasher, size = hashlib.sha256(), 0
        with self.open_blob(desc.digest) as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > desc.size:
                    break
                hasher.update(chunk)
                sink.write(chunk)
        if size != desc.size or "sha256:" + hasher.hexdigest() != desc.digest:
            raise ImageError(f"blob {desc.digest}: size or digest mismatch in the layout",
                             where=self.name, hint="the layout is damaged")


def _split_tag(rest: str) -> tuple[str, str | None]:
    """PATH[:TAG]: a tag is what follows the last colon after the last slash."""
    head, colon, tail = rest.rpartition(":")
    if colon and "/" not in tail and head:
        return head, tail
    return rest, None
