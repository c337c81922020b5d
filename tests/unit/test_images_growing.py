"""A blob read while it downloads (hostctl.images.growing), with a scripted download."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from hostctl.errors import ImageError
from hostctl.images.growing import GrowingBlob, GrowingFile, SourceFailed
from hostctl.images.layers import apply_layer

DIGEST = "sha256:" + "0" * 64


class Script:
    """A download that writes what the test releases, chunk by chunk."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, bytes]] = []
        self.go = threading.Semaphore(0)

    def then(self, kind: str, data: bytes = b"") -> None:
        self.steps.append((kind, data))
        self.go.release()

    def __call__(self, sink: Any) -> None:
        while True:
            self.go.acquire()
            kind, data = self.steps.pop(0)
            if kind == "write":
                sink.write(data)
            elif kind == "reset":
                sink.reset()
            elif kind == "fail":
                raise ImageError(f"blob {DIGEST}: digest mismatch")
            else:
                return


def test_a_growing_file_hands_out_its_last_bytes_only_once_verified() -> None:
    script = Script()
    growing = GrowingFile(DIGEST, 8, script, where="test")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(growing.read(8)))
    script.then("write", b"abcd")
    assert growing.read(3) == b"abc"  # bytes that are there come at once
    growing.seek(0)
    reader.start()
    script.then("write", b"efgh")
    reader.join(timeout=0.3)
    assert reader.is_alive()  # every byte is there, but not verified yet
    script.then("done")
    reader.join(timeout=5)
    assert got == [b"abcdefgh"]
    assert growing.read(4) == b""
    growing.close()


def test_a_restarted_download_is_followed_and_a_failed_one_raises_its_error() -> None:
    script = Script()
    growing = GrowingFile(DIGEST, 6, script, where="test")
    script.then("write", b"abc")
    assert growing.read(2) == b"ab"
    script.then("reset")  # a server that ignored Range: from byte 0 again
    script.then("write", b"abcdef")
    script.then("done")
    assert growing.read(10) == b"cdef"
    growing.close()

    script = Script()
    growing = GrowingFile(DIGEST, 6, script, where="test")
    script.then("write", b"abc")
    script.then("fail")
    with pytest.raises(SourceFailed, match="digest mismatch"):
        growing.read(6)
    growing.close()


def _layer(files: int, *, size: int = 50_000, random: bool = True) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for number in range(files):
            data = os.urandom(size) if random else bytes([number]) * size
            info = tarfile.TarInfo(f"f{number}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain), "sha256:" + hashlib.sha256(plain).hexdigest()


def test_a_layer_is_applied_from_a_blob_as_it_grows(tmp_path: Path) -> None:
    blob, diff_id = _layer(20)
    temp = tmp_path / "blob"
    growing = GrowingBlob(DIGEST, "test")
    with temp.open("w+b") as handle:
        growing.attach(handle.fileno())

        def download() -> None:
            for start in range(0, len(blob), 65536):
                handle.write(blob[start:start + 65536])
                handle.flush()
                growing.grew(min(len(blob), start + 65536))
            growing.complete()

        writer = threading.Thread(target=download)
        writer.start()
        (tmp_path / "dest").mkdir()
        apply_layer(growing.reader(), tmp_path / "dest", diff_id=diff_id)
        writer.join()
    growing.settle()
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(
        f"f{n}" for n in range(20))
    growing.close()


def test_an_apply_that_fails_does_not_wait_for_the_rest_of_the_download(
    tmp_path: Path
) -> None:
    blob, _ = _layer(40, size=500_000, random=False)  # 20 MB in a few kB
    temp = tmp_path / "blob"
    growing = GrowingBlob(DIGEST, "test")
    with temp.open("w+b") as handle:
        growing.attach(handle.fileno())
        handle.write(blob[: len(blob) // 2])
        handle.flush()
        growing.grew(len(blob) // 2)  # and nothing more arrives
        (tmp_path / "dest").mkdir()
        failures: list[Exception] = []

        def apply() -> None:
            try:  # refused after 100 kB, while the decompressor's thread waits for bytes
                apply_layer(growing.reader(), tmp_path / "dest", diff_id=DIGEST,
                            max_size=100_000)
            except ImageError as exc:
                failures.append(exc)

        applier = threading.Thread(target=apply)
        applier.start()
        applier.join(timeout=10)
        assert not applier.is_alive(), "the failed apply waited for the download"
        assert [str(e) for e in failures] == [
            "layer: layer expands to more than 100000 bytes; refusing it (hint: a "
            "decompression bomb, or raise the layer size limit)"]
    growing.failed(ImageError("the download was given up"))
    with pytest.raises(ImageError, match="given up"):
        growing.settle()
    growing.close()
