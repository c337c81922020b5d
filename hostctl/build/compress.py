"""Deterministic parallel gzip, the way pigz does it.

The input is cut into fixed-size blocks; each block is deflated on its own (in a thread:
ISA-L and zlib release the GIL) with the previous block's last 32 KiB as its dictionary
and ends with a sync flush, so the outputs concatenate into one deflate stream. The
header is fixed (no name, mtime 0, OS unknown), so the same bytes in always give the same
bytes out, whatever the number of threads. ISA-L (isal) is used when installed, else
zlib; the two give different (equally valid) bytes.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

BLOCK = 1 << 21
WINDOW = 32768
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

LEVEL = 1
_zlib: Any
try:
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _zlib = zlib


def _deflate(block: bytes, dictionary: bytes, final: bool) -> bytes:
    if dictionary:
        comp: Any = _zlib.compressobj(LEVEL, _zlib.DEFLATED, -15, 9, 0, dictionary)
    else:
        comp = _zlib.compressobj(LEVEL, _zlib.DEFLATED, -15)
    data = bytes(comp.compress(block))
    return data + bytes(comp.flush(_zlib.Z_FINISH if final else _zlib.Z_SYNC_FLUSH))


class GzipWriter:
    """A file-like sink: write() uncompressed bytes, close() to finish the gzip member.

    OUT receives the compressed bytes; `digest` (compressed) and `diff_id`
    (uncompressed) are set by close(), and `size` is the compressed size. Blocks are
    deflated in a pool of threads; one more thread hashes each block and writes its
    compressed bytes out, in order, so reading the input overlaps all of that."""

    def __init__(self, out: BinaryIO, threads: int | None = None) -> None:
        self._out = out
        self._pool = ThreadPoolExecutor(max_workers=threads or min(4, os.cpu_count() or 1))
        self._sink = ThreadPoolExecutor(max_workers=1)
        self._limit = 2 * (threads or min(4, os.cpu_count() or 1)) + 2
        self._pending: deque[Future[None]] = deque()
        self._buffer = bytearray()
        self._previous = b""
        self._crc = 0
        self._length = 0
        self._raw_hash = hashlib.sha256()
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""
        self.diff_id = ""
        self._emit(HEADER)

    def tell(self) -> int:
        """Uncompressed bytes written so far (tarfile asks when it opens)."""
        return self._length + len(self._buffer)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > BLOCK:
            block = bytes(self._buffer[:BLOCK])
            del self._buffer[:BLOCK]
            self._submit(block, final=False)
        return len(data)

    def _submit(self, block: bytes, *, final: bool) -> None:
        self._length += len(block)
        deflated = self._pool.submit(_deflate, block, self._previous[-WINDOW:], final)
        self._previous = block
        self._pending.append(self._sink.submit(self._finish_block, block, deflated))
        while len(self._pending) > self._limit:
            self._pending.popleft().result()

    def _finish_block(self, block: bytes, deflated: Future[bytes]) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._raw_hash.update(block)
        self._emit(deflated.result())

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        """Flush the last block and the trailer; sets digest, diff_id and size."""
        self._submit(bytes(self._buffer), final=True)
        self._buffer.clear()
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown()
        self._sink.shutdown()
        self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._length & 0xFFFFFFFF))
        self.digest = "sha256:" + self._hash.hexdigest()
        self.diff_id = "sha256:" + self._raw_hash.hexdigest()

    def abort(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(cancel_futures=True)
        self._sink.shutdown(cancel_futures=True)
