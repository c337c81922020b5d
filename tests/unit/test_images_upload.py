"""Pure parts of the push protocol: Location queries, upload ranges, request bodies."""

from __future__ import annotations

import io

import pytest

from hostctl.errors import ImageError
from hostctl.images.upload import _RANGE, _Window, _with_query


def test_digest_added_to_an_upload_location_keeping_its_state() -> None:
    location = "http://r:5000/v2/a/blobs/uploads/u1?_state=abc%3D%3D"
    assert _with_query(location, {"digest": "sha256:" + "0" * 64}) == (
        "http://r:5000/v2/a/blobs/uploads/u1?_state=abc%3D%3D&digest=sha256%3A" + "0" * 64)
    assert _with_query("/v2/a/blobs/uploads/u2", {"digest": "d"}) == \
        "/v2/a/blobs/uploads/u2?digest=d"


@pytest.mark.parametrize(("header", "end"), [("0-1023", 1023), ("bytes=0-99", 99),
                                             ("0-0", 0)])
def test_upload_range(header: str, end: int) -> None:
    match = _RANGE.match(header)
    assert match is not None and int(match.group(1)) == end


def test_window_sends_its_slice_and_stops_a_short_source() -> None:
    window = _Window(io.BytesIO(b"0123456789"), 3, 4)
    assert window.read(3) + window.read(3) + window.read(3) == b"3456"
    short = _Window(io.BytesIO(b"0123"), 2, 5)
    assert short.read(10) == b"23"
    with pytest.raises(ImageError, match="ended 3 bytes early"):
        short.read(10)
