"""Decompressing a stored layer blob into a bounded, hashed tar stream.

The compression is recognised by its magic bytes (registries mislabel media types):
gzip through ISA-L (isal.igzip_threaded, which decompresses in a thread without the GIL;
or isal.igzip) with the stdlib's zlib-based gzip as fallback, all multi-member safe;
zstd through zstandard, across frames; anything else is read as a plain tar.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import BinaryIO, Protocol, cast

from hostctl.errors import ImageError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DEFAULT_MAX_SIZE = 64 * 1024**3  # uncompressed bytes per layer


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@contextlib.contextmanager
def decompressed(raw: BinaryIO | Readable) -> Iterator[Readable]:
    """The uncompressed bytes of RAW (a blob file, or a blob as it downloads: see
    growing.py), whatever its compression."""
    magic = _read_exactly(raw, 4)
    if getattr(raw, "seekable", lambda: False)():
        raw.seek(0)  # type: ignore[union-attr]
    else:
        raw = _Prefixed(magic, raw)
    if magic[:2] == GZIP_MAGIC:
        with _gunzip(raw) as stream:
            yield stream
    elif magic == ZSTD_MAGIC:
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, raw), read_across_frames=True, closefd=False
        ) as stream:
            yield stream
    else:
        yield raw


def _read_exactly(raw: BinaryIO | Readable, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = raw.read(size - len(data))
        if not more:
            break
        data += more
    return data


class _Prefixed:
    """PREFIX (bytes already read to sniff the compression), then the rest of INNER."""

    def __init__(self, prefix: bytes, inner: Readable) -> None:
        self._prefix = prefix
        self._inner = inner

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            if size is None or size < 0 or size >= len(self._prefix):
                data, self._prefix = self._prefix, b""
            else:
                data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._inner.read(size)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def _gunzip(raw: BinaryIO | Readable) -> contextlib.AbstractContextManager[Readable]:
    try:
        from isal import igzip_threaded

        reader: Readable = igzip_threaded.open(raw, "rb", threads=1)  # type: ignore[no-untyped-call]
    except ImportError:
        try:
            from isal import igzip

            reader = igzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        except ImportError:
            import gzip

            reader = gzip.GzipFile(fileobj=cast(BinaryIO, raw), mode="rb")
    return contextlib.closing(reader)  # type: ignore[type-var]


class HashingReader:
    """Reads through INNER, hashing everything and refusing more than LIMIT bytes.

    Decompression errors (bad gzip, truncated stream, zstd errors) become ImageError.
    """

    def __init__(self, inner: Readable, limit: int, *, where: str) -> None:
        self._inner = inner
        self._limit = limit
        self._where = where
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            size = 1024 * 1024
        try:
            data = self._inner.read(size)
        except ImageError:
            raise
        except Exception as exc:  # zlib.error, EOFError, BadGzipFile, ZstdError ...
            raise ImageError(
                f"corrupt compressed data: {exc or type(exc).__name__}", where=self._where,
                hint="the stored blob is damaged; remove the image and pull it again",
            ) from None
        self.size += len(data)
        if self.size > self._limit:
            raise ImageError(
                f"layer expands to more than {self._limit} bytes; refusing it",
                where=self._where, hint="a decompression bomb, or raise the layer size limit",
            )
        self._hash.update(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever follows the tar's end-of-archive marker."""
        while self.read(1024 * 1024):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
