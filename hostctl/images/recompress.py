"""`--compress gzip|zstd`: a layer decompressed and compressed again into a temp file.

The only place a copy changes a blob: the new layer has a new digest (its DiffID, the
digest of the uncompressed tar, stays), and the manifests naming it are rewritten.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from hostctl.errors import ImageError
from hostctl.images.manifest import Descriptor
from hostctl.images.streams import decompressed

if TYPE_CHECKING:
    from hostctl.images.transports import Reader

_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
          "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
_DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def recompress(reader: Reader, desc: Descriptor, kind: str
               ) -> tuple[Descriptor, Callable[[], IO[bytes]], Callable[[], None]]:
    """DESC's layer compressed with KIND: its descriptor, an opener of its bytes and what
    removes them once written (the caller calls it)."""
    out = tempfile.TemporaryFile(dir="/var/tmp")  # noqa: SIM115 (closed by the 3rd value)
    hasher = hashlib.sha256()

    class _Hashed:
        def write(self, data: bytes, /) -> int:
            hasher.update(data)
            return out.write(data)

        def flush(self) -> None:
            out.flush()

    try:
        with reader.open_blob(desc) as raw, decompressed(cast(BinaryIO, raw)) as plain, \
                _compressor(kind, _Hashed()) as sink:
            while chunk := plain.read(1024 * 1024):
                sink.write(chunk)
    except (OSError, EOFError, ValueError) as exc:
        out.close()
        raise ImageError(f"layer {desc.digest}: cannot recompress it: {exc}",
                         where=reader.name) from None
    size = out.tell()
    docker = ".docker." in desc.media_type
    media_type = _DOCKER_GZIP if docker and kind == "gzip" else _TYPES[kind]
    new = Descriptor(media_type, "sha256:" + hasher.hexdigest(), size)

    def opener() -> IO[bytes]:
        out.seek(0)
        return _Unclosed(out)  # type: ignore[return-value]

    return new, opener, out.close


class _Unclosed:
    """The temp file for one reader at a time; closing it only rewinds."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def read(self, size: int = -1, /) -> bytes:
        return self._inner.read(size)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._inner.seek(offset, whence)

    def __enter__(self) -> _Unclosed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.seek(0)


def _compressor(kind: str, sink: Any) -> IO[bytes]:
    if kind == "zstd":
        import zstandard

        return cast(IO[bytes], zstandard.ZstdCompressor(level=3).stream_writer(
            sink, closefd=False))
    import gzip

    return cast(IO[bytes], gzip.GzipFile(fileobj=sink, mode="wb", mtime=0))
