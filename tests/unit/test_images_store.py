"""The content-addressed store: atomic blobs, the index, snapshots, locks."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.store import Store


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def leftovers(store: Store) -> list[str]:
    return [p.name for d in (store.blobs, store.snapshots) if d.exists()
            for p in d.iterdir() if p.name.startswith(".tmp-")]


def test_blob_roundtrip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_blob(digest(b"data"), b"data")
    assert store.has_blob(digest(b"data"))
    assert store.read_blob(digest(b"data"), 100) == b"data"
    assert store.blob_path(digest(b"data")).parent == tmp_path / "blobs/sha256"


def test_wrong_digest_is_not_stored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ImageError, match="digest mismatch"):
        store.write_blob(digest(b"other"), b"data")
    assert not store.has_blob(digest(b"other"))


def test_failed_ingest_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.ingest(digest(b"x")) as writer:
        writer.write(b"partial")
        raise RuntimeError("network broke")
    assert not store.has_blob(digest(b"x")) and leftovers(store) == []


def test_invalid_digest_never_becomes_a_path(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ImageError, match="invalid digest"):
        store.blob_path("sha256:../../etc/passwd")
    with pytest.raises(ImageError, match="invalid digest"):
        store.snapshot_path("sha256:" + "A" * 64)


def test_corrupt_stored_blob_is_detected(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_blob(digest(b"data"), b"data")
    store.blob_path(digest(b"data")).write_bytes(b"evil")
    with pytest.raises(ImageError, match="corrupt"):
        store.read_blob(digest(b"data"), 100)


def test_index_record_and_lookup(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.lookup("docker.io/library/x:1") is None
    store.record("docker.io/library/x:1", digest(b"a"), digest(b"b"))
    store.record("docker.io/library/y:1", digest(b"c"), digest(b"c"))
    entry = store.lookup("docker.io/library/x:1")
    assert entry is not None and (entry.digest, entry.manifest) == (digest(b"a"), digest(b"b"))
    assert sorted(store.images()) == ["docker.io/library/x:1", "docker.io/library/y:1"]
    store.index_file.write_text("{broken")
    with pytest.raises(ImageError, match="image index is corrupt"):
        store.images()


def test_snapshot_appears_only_when_complete(tmp_path: Path) -> None:
    store = Store(tmp_path)
    chain = digest(b"chain")
    with pytest.raises(ImageError), store.new_snapshot(chain) as temp:
        (temp / "sub").mkdir()
        (temp / "sub").chmod(0)
        raise ImageError("bad layer")
    assert not store.has_snapshot(chain) and leftovers(store) == []
    with store.new_snapshot(chain) as temp:
        (temp / "file").write_text("x")
    assert (store.snapshot_path(chain) / "file").read_text() == "x"
    assert ":" not in store.snapshot_path(chain).name  # overlay lowerdir separator


def test_lock_serialises_fetches(tmp_path: Path) -> None:
    store = Store(tmp_path)
    blob = b"layer" * 1000
    fetches: list[int] = []

    def fetch_once() -> None:
        with store.lock("blob-x"):
            if store.has_blob(digest(blob)):
                return
            fetches.append(1)
            time.sleep(0.1)
            store.write_blob(digest(blob), blob)

    threads = [threading.Thread(target=fetch_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetches) == 1 and store.has_blob(digest(blob))
