"""The registry's other direction: pushing blobs and manifests, listing tags, deleting.

Per blob (OCI distribution-spec v1.1): HEAD first (200: already there); a cross-repository
mount (`POST uploads/?mount=D&from=REPO`) when the blob is known in another repository of
the same registry (201 mounted; 202 is an ordinary upload session instead); otherwise a
monolithic `POST` + `PUT ?digest=` for blobs up to one chunk, and chunked `PATCH`es with
`Content-Range` for larger ones. A PATCH whose connection breaks is not sent again
blindly: the upload's state (GET on its Location: `Range: 0-N`) says where to go on, and
an upload the registry has dropped (docker distribution cancels one whose state it cannot
trust) starts again from byte 0. The manifest goes last, with its exact media type.
Every request goes through RegistryClient (credentials, token scope `pull,push`, retries
with Retry-After). Imported only by pushes and copies (it imports urllib3).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, cast

from hostctl.errors import ImageError
from hostctl.images.growing import SourceFailed
from hostctl.images.manifest import ACCEPT, Descriptor, sha256_digest
from hostctl.images.reference import Reference, validate_digest

if TYPE_CHECKING:
    import urllib3

    from hostctl.images.progress import Progress
    from hostctl.images.registry import RegistryClient

MONOLITHIC = 32 * 1024 * 1024  # blobs up to this size go in one PUT, from memory
CHUNK = 1024 * 1024 * 1024  # larger ones in PATCHes of this size, streamed from the file
Opener = Callable[[], IO[bytes]]
_RANGE = re.compile(r"(?:bytes=)?0-(\d+)$")


class Pusher:
    """Pushes blobs and manifests into one destination repository."""

    def __init__(self, client: RegistryClient, ref: Reference, *, chunk: int = CHUNK,
                 mount_from: tuple[str, ...] = (), progress: Progress | None = None,
                 attempts: int = 4) -> None:
        self.client = client
        self.ref = ref
        self._chunk = max(1, chunk)
        self._monolithic = min(self._chunk, MONOLITHIC)
        self._mount_from = tuple(r for r in mount_from if r != ref.repository)
        self._progress = progress
        self._attempts = attempts
        self._scope = f"repository:{ref.repository}:pull,push"

    # -- blobs ------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        response = self._send("HEAD", f"blobs/{validate_digest(digest, where=str(self.ref))}")
        try:
            if response.status in (200, 404):
                return response.status == 200
            self.client.check_status(self.ref, response, f"blob {digest}")
            return False
        finally:
            _discard(response)

    def blob(self, desc: Descriptor, opener: Opener) -> str:
        """Make DESC's blob present; "exists", "mounted" or "uploaded"."""
        if self.has_blob(desc.digest):
            return "exists"
        location = None
        for source in self._mount_from:
            location = self._mount(desc.digest, source)
            if location is None:
                return "mounted"
            break  # the registry opened a session instead: upload into it
        if self._progress is not None:
            self._progress.start(desc.digest, desc.size)
        self._upload(desc, opener, location or self._start())
        if self._progress is not None:
            self._progress.finish(desc.digest)
        return "uploaded"

    def _mount(self, digest: str, source: str) -> str | None:
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        scope = f"{self._scope} repository:{source}:pull"
        response = self.client.send(self.ref, "POST", f"blobs/uploads/?{query}", scope=scope,
                                    headers={"Content-Length": "0"})
        try:
            if response.status == 201:
                return None
            if response.status == 202 and response.headers.get("Location"):
                return self._location(response)
        finally:
            _discard(response)
        return self._start()  # a registry refusing mounts (or this one) gets an upload

    def _start(self) -> str:
        response = self._send("POST", "blobs/uploads/", headers={"Content-Length": "0"})
        try:
            self.client.check_status(self.ref, response, "starting an upload", ok=(202,))
            return self._location(response)
        finally:
            _discard(response)

    def _upload(self, desc: Descriptor, opener: Opener, location: str) -> None:
        with opener() as handle:
            if desc.size > self._monolithic:
                self._close(self._chunked(desc, handle, location), desc, b"")
                return
            data = handle.read(desc.size + 1)
        _verify(self.ref, desc, data)
        for attempt in range(self._attempts):
            try:
                self._close(location, desc, data)
                return
            except ImageError:
                # A PUT cut mid-body leaves an upload the registry no longer trusts: the
                # bytes are in memory, so a new session takes them again.
                if attempt + 1 == self._attempts:
                    raise
                location = self._start()

    def _chunked(self, desc: Descriptor, handle: IO[bytes], location: str) -> str:
        """PATCH the blob in chunks; the Location to close the upload with."""
        offset, failures = 0, 0  # the registry checks the digest when the upload closes
        while offset < desc.size:
            length = min(self._chunk, desc.size - offset)
            try:
                location = self._patch(location, offset, _Window(handle, offset, length))
            except _SourceEnded as exc:
                raise ImageError(f"blob {desc.digest}: {exc.message}", where=str(self.ref),
                                 hint="the source is damaged; the tag was not written") \
                    from None
            except SourceFailed:
                raise  # the download feeding this upload failed: its own error
            except ImageError as exc:
                failures += 1
                if failures >= self._attempts:
                    raise ImageError(f"blob {desc.digest}: upload failed at byte {offset}: "
                                     f"{exc.message}", where=str(self.ref)) from None
                offset, location = self._resume(location)
                continue
            offset += length
            if self._progress is not None:
                self._progress.advance(desc.digest, length)
        return location

    def _patch(self, location: str, offset: int, data: _Window) -> str:
        end = offset + data.length - 1
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Range": f"{offset}-{end}", "Content-Length": str(data.length)}
        response = self._send("PATCH", location, headers=headers, body=cast(IO[bytes], data))
        try:
            if response.status in (429, 503):  # the PATCH is not retried blindly: wait
                self.client.pause(response.headers.get("Retry-After"))
            self.client.check_status(self.ref, response, f"chunk {offset}-{end}", ok=(202,))
            return self._location(response)
        finally:
            _discard(response)

    def _resume(self, location: str) -> tuple[int, str]:
        """Where the registry's copy of the upload ends (and its new Location); (0, a new
        session) when the registry no longer has the upload."""
        response = self._send("GET", location)
        try:
            if response.status == 204:
                match = _RANGE.match(response.headers.get("Range", "").strip())
                if match is not None and int(match.group(1)) > 0:
                    return int(match.group(1)) + 1, self._location(response, location)
                if match is not None:  # "0-0": nothing yet (or one byte): go from 0
                    return 0, self._location(response, location)
        finally:
            _discard(response)
        return 0, self._start()

    def _close(self, location: str, desc: Descriptor, data: bytes) -> None:
        url = _with_query(location, {"digest": desc.digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        response = self._send("PUT", url, headers=headers, body=data)
        try:
            self.client.check_status(self.ref, response, f"blob {desc.digest}", ok=(201,))
        finally:
            _discard(response)

    # -- manifests --------------------------------------------------------------------

    def manifest(self, data: bytes, media_type: str, target: str) -> str:
        """PUT DATA as manifest TARGET (a tag or its digest) with its exact media type."""
        digest = sha256_digest(data)
        headers = {"Content-Type": media_type, "Content-Length": str(len(data))}
        response = self._send("PUT", f"manifests/{target}", headers=headers, body=data)
        try:
            self.client.check_status(self.ref, response, f"manifest {digest}", ok=(201,))
            answered = response.headers.get("Docker-Content-Digest", "")
        finally:
            _discard(response)
        if answered and answered != digest:
            raise ImageError(f"manifest {digest}: the registry stored it as {answered}",
                             where=str(self.ref), hint="the registry rewrote the manifest")
        return digest

    def _send(self, method: str, path: str, *, headers: dict[str, str] | None = None,
              body: bytes | IO[bytes] | None = None) -> urllib3.BaseHTTPResponse:
        return self.client.send(self.ref, method, path, headers=headers, body=body,
                                scope=self._scope)

    def _location(self, response: urllib3.BaseHTTPResponse, default: str | None = None) -> str:
        location = response.headers.get("Location") or default
        if not location:
            raise ImageError("the registry answered an upload without a Location",
                             where=str(self.ref))
        return location


class _Window:
    """LENGTH bytes of HANDLE from OFFSET, read as the request body goes out."""

    def __init__(self, handle: IO[bytes], offset: int, length: int) -> None:
        handle.seek(offset)
        self._handle = handle
        self.length = length
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        data = self._handle.read(self._left if size < 0 else min(size, self._left))
        if not data:  # the registry would wait for the promised bytes: stop here
            raise _SourceEnded(f"the source ended {self._left} bytes early")
        self._left -= len(data)
        return data


class _SourceEnded(ImageError):
    """A blob's source is shorter than its descriptor: not a network failure."""


def list_tags(client: RegistryClient, ref: Reference) -> list[str]:
    """Every tag of REF's repository, following the registry's pagination (Link)."""
    tags: list[str] = []
    path: str | None = "tags/list?n=1000"
    while path:
        response = client.send(ref, "GET", path)
        try:
            client.check_status(ref, response, "tag list")
            body = response.read(16 * 1024 * 1024, decode_content=False)
            link = response.headers.get("Link", "")
        finally:
            _discard(response)
        try:
            found = json.loads(body).get("tags") or []
        except (ValueError, AttributeError):
            raise ImageError("the registry's tag list is not JSON", where=str(ref)) from None
        tags.extend(str(tag) for tag in found)
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
        path = match.group(1) if match else None
    return tags


def delete(client: RegistryClient, ref: Reference) -> str:
    """Delete REF: its tag alone where the registry allows that (distribution-spec 1.1),
    or, for REPO@DIGEST, the manifest (and so every tag naming it). What was deleted."""
    scope = f"repository:{ref.repository}:pull,push,delete"
    if ref.digest is None:
        tag = ref.tag or "latest"
        response = client.send(ref, "DELETE", f"manifests/{tag}", scope=scope)
        try:
            status = response.status
            if status not in (202, 400, 404, 405):
                client.check_status(ref, response, f"tag {tag}", ok=(202,))
        finally:
            _discard(response)
        if status == 202:
            return f"tag {tag}"
        digest = client.manifest_digest(ref)  # names a missing tag as "not found"
        raise ImageError(
            f"the registry does not delete single tags (HTTP {status})", where=str(ref),
            hint=f"`hostctl image rm docker://{ref.name}@{digest}` deletes the manifest "
            "and every tag that points at it")
    response = client.send(ref, "DELETE", f"manifests/{ref.digest}", scope=scope,
                           headers={"Accept": ACCEPT})
    try:
        client.check_status(ref, response, f"manifest {ref.digest}", ok=(202,))
    finally:
        _discard(response)
    return f"manifest {ref.digest}"


def _verify(ref: Reference, desc: Descriptor, data: bytes) -> None:
    if len(data) != desc.size or sha256_digest(data) != desc.digest:
        raise ImageError(f"blob {desc.digest}: the source's bytes do not match the digest "
                         f"and size ({len(data)} bytes)", where=str(ref),
                         hint="the source is damaged; nothing was pushed for this blob")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    try:
        response.drain_conn()
    finally:
        response.release_conn()
