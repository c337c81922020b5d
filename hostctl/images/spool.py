"""A blob read while it downloads: the copy from one registry to another overlaps the
download and the upload instead of doing one after the other.

A thread fetches the blob (verified by the fetch) into an unlinked temp file in /var/tmp;
readers wait for the bytes they ask for, may seek back (an upload resumed after a cut
connection reads again), and get the download's error if it failed: an upload that has
sent unverified bytes is then abandoned before its digest is committed.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType

from hostctl.errors import ImageError


class Spool:
    def __init__(self, fetch: Callable[[Spool._Sink], None], *, name: str) -> None:
        self._fd = tempfile.TemporaryFile(dir="/var/tmp")  # noqa: SIM115 (closed by close())
        self._name = name
        self._cond = threading.Condition()
        self._written = 0
        self._done = False
        self._error: BaseException | None = None
        self._closed = False
        self._pos = 0
        self._thread = threading.Thread(target=self._run, args=(fetch,), daemon=True,
                                        name="hostctl-spool")
        self._thread.start()

    class _Sink:
        def __init__(self, spool: Spool) -> None:
            self._spool = spool

        def write(self, data: bytes, /) -> object:
            self._spool._append(data)
            return None

        def reset(self) -> None:
            self._spool._restart()

    def _run(self, fetch: Callable[[Spool._Sink], None]) -> None:
        try:
            fetch(Spool._Sink(self))
        except BaseException as exc:  # handed to the reader, which raises it
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            return
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _append(self, data: bytes) -> None:
        if self._closed:
            raise ImageError("download abandoned", where=self._name)
        os.pwrite(self._fd.fileno(), data, self._written)
        with self._cond:
            self._written += len(data)
            self._cond.notify_all()

    def _restart(self) -> None:
        with self._cond:
            if self._pos or self._written:  # bytes may already have been sent on
                raise ImageError("the registry restarted the download from byte 0",
                                 where=self._name, hint="try the copy again")

    def read(self, size: int = -1, /) -> bytes:
        """SIZE bytes (all the rest if negative), fewer only at the end of the blob; the
        end is given only once the download has verified the blob."""
        with self._cond:
            while not self._done and self._error is None and (
                    size is None or size < 0 or self._written - self._pos < size):
                self._cond.wait()
            if self._error is not None and (size is None or size < 0 or
                                            self._written - self._pos < size):
                error = self._error
                if isinstance(error, ImageError):
                    raise error
                raise ImageError(f"download failed: {error}", where=self._name) from error
            available = self._written - self._pos
        count = available if size is None or size < 0 else min(size, available)
        if count <= 0:
            return b""
        data = os.pread(self._fd.fileno(), count, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence != 0:
            raise OSError("a spool seeks from its start only")
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._closed = True
        self._thread.join()
        self._fd.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
