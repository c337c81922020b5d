"""The download spool: reads wait for bytes, seek back, and the download's verdict."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hostctl.errors import ImageError
from hostctl.images.spool import Spool


def feeder(chunks: list[bytes], gate: threading.Event, fail: bool = False) -> Any:
    def fetch(sink: Any) -> None:
        for number, chunk in enumerate(chunks):
            if number == 1:
                gate.wait(5)  # the reader is already waiting for these bytes
            sink.write(chunk)
        if fail:
            raise ImageError("blob sha256:x: digest mismatch")
    return fetch


def test_reads_wait_for_the_bytes_and_can_seek_back() -> None:
    gate = threading.Event()
    with Spool(feeder([b"abc", b"defg"], gate), name="t") as spool:
        assert spool.read(2) == b"ab"
        threading.Timer(0.05, gate.set).start()
        assert spool.read(5) == b"cdefg"  # waited for the second chunk
        assert spool.read(1) == b""
        spool.seek(1)
        assert spool.read(-1) == b"bcdefg"


def test_a_failed_download_fails_the_last_read() -> None:
    gate = threading.Event()
    gate.set()
    with Spool(feeder([b"abc", b"def"], gate, fail=True), name="t") as spool:
        assert spool.read(3) == b"abc"
        with pytest.raises(ImageError, match="digest mismatch"):
            spool.read(10)


def test_a_restarted_download_is_refused_once_bytes_went_out() -> None:
    def fetch(sink: Any) -> None:
        sink.write(b"abc")
        sink.reset()

    with Spool(fetch, name="t") as spool, pytest.raises(ImageError, match="restarted"):
        spool.read(-1)
