"""A layer blob read while it downloads: what lets a pull apply a layer as it streams.

The downloader writes the blob into the store's temp file (Store.ingest) and says how far
it got; the applier reads the same file through a descriptor of its own (pread, so the
bytes come from the page cache and memory stays bounded), waiting for bytes that have not
arrived yet. The reader reaches its end only once the download is complete and its
digest verified; settle() returns once the blob is also committed under its final name,
and a snapshot applied from a growing blob is committed only after that (see
pull.apply_snapshot): never before the blob it came from.

A download that fails (digest mismatch, connection lost for good, disk full) makes the
reader raise that same error; a download restarted from byte 0 (a server that ignores
Range) only rewinds the writer: the reader waits until the new bytes pass where it was
(they are the same blob, and the layer's DiffID, checked by the applier on the bytes it
actually read, would catch anything else).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol

from hostctl.errors import ImageError


class SourceFailed(ImageError):
    """The download a reader follows failed (its error, for the reader's caller): not a
    failure of whatever the reader feeds, so not one to retry there."""


class GrowingBlob:
    """One layer blob: the download side calls attach/grew/reset/stored/failed; the apply
    side reads through reader() and calls settle() to learn how the download ended."""

    def __init__(self, digest: str, where: str) -> None:
        self.digest = digest
        self._where = where
        self._cond = threading.Condition()
        self._fd = -1
        self._size = 0  # bytes of the blob on disk so far
        self._complete = False  # every byte is there, verified: readers reach the end
        self._durable = False  # and the blob is committed in the store (or wherever)
        self._error: ImageError | None = None
        self._abandoned = False

    # -- the download's side ---------------------------------------------------------

    def attach(self, fd: int) -> None:
        """The temp file the download writes, FD open for reading too (it is duplicated,
        so it stays readable after the download closes and renames the file)."""
        with self._cond:
            self._fd = os.dup(fd)
            self._size = 0

    def grew(self, size: int) -> None:
        with self._cond:
            self._size = size
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._size = 0

    def complete(self, *, durable: bool = True) -> None:
        """The attached file holds the whole blob, verified; DURABLE: and it is committed
        where it goes (else stored() follows)."""
        with self._cond:
            self._complete = True
            self._durable = durable
            self._cond.notify_all()

    def stored(self, path: Path) -> None:
        """The blob is in the store under PATH, verified (by this download or another)."""
        with self._cond:
            if self._fd < 0:
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self._size = os.fstat(self._fd).st_size
            self._complete = self._durable = True
            self._cond.notify_all()

    def failed(self, error: ImageError) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    # -- the applier's side ----------------------------------------------------------

    def reader(self) -> GrowingReader:
        return GrowingReader(self)

    def settle(self) -> None:
        """Wait until the download has ended and its blob is committed; raise its error
        if it failed."""
        with self._cond:
            while not (self._durable or self._error):
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _read(self, position: int, size: int) -> bytes:
        while True:
            with self._cond:
                while True:
                    if self._abandoned:
                        raise ImageError(f"blob {self.digest}: reading abandoned",
                                         where=self._where)
                    if self._error is not None:
                        raise self._error
                    if position < self._size or self._complete:
                        break
                    self._cond.wait()
                available = self._size - position
                if available <= 0:
                    return b""  # complete
                fd = self._fd
            # Outside the lock: a read that waits for the disk does not hold up the writer
            # (the descriptor is closed only once every reader is done).
            data = os.pread(fd, min(size, available), position)
            if data:
                return data
            # The writer rewound (a restarted download) between our look and the read.

    def _abandon(self) -> None:
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()

    @property
    def abandoned(self) -> bool:
        return self._abandoned


class GrowingReader:
    """A file-like read() over a GrowingBlob from its first byte."""

    def __init__(self, blob: GrowingBlob) -> None:
        self._blob = blob
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            size = 1024 * 1024
        data = self._blob._read(self._position, size)
        self._position += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def abandon(self) -> None:
        """Wake and fail a read blocked in another thread (the decompressor's), so that
        an apply that failed can close its decompressor without waiting for the download."""
        self._blob._abandon()


class _Fetch(Protocol):
    def __call__(self, sink: _Sink, /) -> None: ...


class _Sink:
    """What a download writes into: the temp file, flushed for the reader as it grows."""

    def __init__(self, handle: BinaryHandle, blob: GrowingBlob) -> None:
        self._handle = handle
        self._blob = blob
        self._written = 0

    def write(self, data: bytes, /) -> object:
        if self._blob.abandoned:
            raise ImageError(f"blob {self._blob.digest}: nobody reads it any more")
        self._handle.write(data)
        self._handle.flush()
        self._written += len(data)
        self._blob.grew(self._written)
        return None

    def reset(self) -> None:
        self._blob.reset()
        self._handle.seek(0)
        self._handle.truncate()
        self._written = 0


class BinaryHandle(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def truncate(self, size: int | None = None, /) -> int: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class GrowingFile:
    """A blob being downloaded (FETCH(sink) on a thread of its own, into an unlinked
    temp file) read like a file while it arrives: read(N) returns N bytes unless the blob
    ends first, and the blob's last bytes are handed out only once the download has
    verified its digest (a failed download raises SourceFailed instead). seek() lets an
    upload resume from where its registry says it is.
    """

    def __init__(self, digest: str, size: int, fetch: Callable[[_Sink], None], *,
                 where: str, directory: str = "/var/tmp") -> None:
        import tempfile

        self._size = size
        self._position = 0
        self._blob = GrowingBlob(digest, where)
        self._where = where
        handle = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (the thread closes it)
        self._blob.attach(handle.fileno())
        self._thread = threading.Thread(target=self._download, args=(handle, fetch),
                                        name="hostctl-stream", daemon=True)
        self._thread.start()

    def _download(self, handle: BinaryHandle, fetch: Callable[[_Sink], None]) -> None:
        try:
            fetch(_Sink(handle, self._blob))
            self._blob.complete()
        except ImageError as exc:
            self._blob.failed(exc)
        except BaseException as exc:
            self._blob.failed(ImageError(f"blob {self._blob.digest}: download failed: {exc}",
                                         where=self._where))
        finally:
            handle.close()

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._size + 1 - self._position if size is None or size < 0 else size
        parts: list[bytes] = []
        while wanted > 0:
            if self._position + wanted >= self._size:
                self._settled()  # the last bytes: only from a verified blob
            try:
                data = self._blob._read(self._position, wanted)
            except ImageError as exc:
                raise SourceFailed(exc.message, where=exc.where, hint=exc.hint) from None
            if not data:
                break
            parts.append(data)
            self._position += len(data)
            wanted -= len(data)
        return b"".join(parts)

    def _settled(self) -> None:
        try:
            self._blob.settle()
        except ImageError as exc:
            raise SourceFailed(exc.message, where=exc.where, hint=exc.hint) from None

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence != 0 or offset < 0:
            raise ValueError("a growing blob seeks only to an absolute position")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._blob.close()

    def __enter__(self) -> GrowingFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
