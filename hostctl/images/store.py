"""The content-addressed image store.

    ROOT/blobs/sha256/HEX        manifests, configs and compressed layers, by digest
    ROOT/images.json             canonical reference -> {digest, manifest, pulled}
    ROOT/snapshots/HEX/          one applied layer per directory, by ChainID (overlay format)
    ROOT/snapshot-records/HEX.gz what each snapshot held when applied (see snaprecord.py)
    ROOT/locks/                  flock files: one per blob or snapshot being made, and index
    ROOT/pins/NAME.json          a container's rollback record (hostctl.images.pins)

Nothing partial is ever visible under a final name: blobs are written to a temp file in
their own directory, fsynced and renamed; snapshots are applied in a temp directory and
renamed when complete. Snapshot directories are named by the bare hex of the ChainID
because overlayfs uses ":" to separate lowerdirs. shutil and tempfile are imported only
where something is written: the launcher's common path (image stored) only reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hostctl.errors import ImageError
from hostctl.images.manifest import sha256_digest
from hostctl.images.reference import validate_digest

_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class IndexEntry:
    digest: str  # what the reference resolved to (an index or a manifest)
    manifest: str  # the image manifest chosen for this host's platform
    pulled: str  # ISO 8601 UTC


class BlobWriter:
    """A temp file in blobs/sha256/ that becomes the blob on commit."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def write(self, data: bytes, /) -> object:
        return self._handle.write(data)

    def reset(self) -> None:
        self._handle.seek(0)
        self._handle.truncate()

    def flush(self) -> None:
        self._handle.flush()

    def fileno(self) -> int:
        return self._handle.fileno()


class NewBlob:
    """The temp file of Store.ingest_new(): write to `handle`, then set `digest`."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = ""


class Store:
    """A store rooted at ROOT (Paths.store: /var/lib/hostctl/storage for root)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.snapshots = self.root / "snapshots"
        self.locks = self.root / "locks"
        self.records = self.root / "snapshot-records"
        self.index_file = self.root / "images.json"
        self.pins = self.root / "pins"

    def ensure(self) -> None:
        """Create the store's directories (0700: image contents are not for other users)."""
        for path in (self.root, self.blobs, self.snapshots, self.locks):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- blobs ----------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / validate_digest(digest).removeprefix("sha256:")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str, limit: int) -> bytes:
        """A small stored blob, verified against its digest (the store is not trusted blindly)."""
        path = self.blob_path(digest)
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"stored blob {digest} larger than {limit} bytes", where=str(path))
        if sha256_digest(data) != digest:
            raise ImageError(f"stored blob {digest} is corrupt", where=str(path),
                             hint="remove it; the next pull fetches it again")
        return data

    def write_blob(self, digest: str, data: bytes) -> None:
        """Store DATA under DIGEST (verified here) unless already stored."""
        if sha256_digest(data) != digest:
            raise ImageError(f"blob {digest}: digest mismatch, not stored")
        if self.has_blob(digest):
            return
        with self.ingest(digest) as writer:
            writer.write(data)

    @contextlib.contextmanager
    def ingest(self, digest: str) -> Iterator[BlobWriter]:
        """Write a blob whose bytes the caller verifies; it appears only if no error escapes."""
        import tempfile

        final = self.blob_path(digest)
        self.ensure()
        fd, temp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield BlobWriter(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(self.blobs)

    @contextlib.contextmanager
    def ingest_new(self) -> Iterator[NewBlob]:
        """Write a blob whose digest is known only once written (a layer being made):
        the caller sets NewBlob.digest before the block ends (leaving it empty discards
        the blob); nothing appears on error."""
        import tempfile

        self.ensure()
        fd, temp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as handle:
                blob = NewBlob(handle)
                yield blob
                handle.flush()
                os.fsync(handle.fileno())
            if not blob.digest:
                os.unlink(temp)
                return
            os.chmod(temp, 0o644)
            os.replace(temp, self.blob_path(blob.digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_dir(self.blobs)

    # -- locks ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive flock on locks/NAME, shared by every process using this store."""
        self.ensure()
        fd = os.open(self.locks / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) by every pull while it writes; prune and verify hold it exclusively.

        A pull that finds nobody else writing first removes the temp files a killed pull left.
        """
        self.ensure()
        fd = os.open(self.locks / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.clean_temporaries()
            except BlockingIOError:
                pass
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """The gc lock shared, as writing() holds it, without its try for the exclusive
        lock to clean up: what a container's start holds from finding its image to
        mounting it. (Fifty starts at boot would otherwise queue behind whichever found the
        lock free and scans the store for temp files. Those a killed pull left are
        removed by the next pull outside a start, `hostctl pull`, auto-update's, or prune.)"""
        self.ensure()
        fd = os.open(self.locks / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No pull writes while this is held (garbage collection, repair)."""
        self.ensure()
        fd = os.open(self.locks / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def forget(self, reference: str) -> IndexEntry | None:
        """Remove REFERENCE from the index; the entry it had, or None."""
        with self.lock("images"):
            images = self.images()
            entry = images.pop(reference, None)
            if entry is not None:
                self._write_index(images)
        return entry

    # -- image index ----------------------------------------------------------------

    def lookup(self, reference: str) -> IndexEntry | None:
        return self.images().get(reference)

    def images(self) -> dict[str, IndexEntry]:
        """All stored references (the file is replaced atomically, so no lock is needed)."""
        try:
            raw = self.index_file.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            return {ref: IndexEntry(e["digest"], e["manifest"], e["pulled"])
                    for ref, e in doc["images"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ImageError(f"image index is corrupt: {exc}", where=str(self.index_file),
                             hint="remove it and pull the images again") from None

    def record(self, reference: str, digest: str, manifest: str) -> None:
        """Point REFERENCE at DIGEST, under the index lock."""
        validate_digest(digest)
        validate_digest(manifest)
        pulled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.lock("images"):
            images = self.images()
            images[reference] = IndexEntry(digest, manifest, pulled)
            self._write_index(images)

    def _write_index(self, images: dict[str, IndexEntry]) -> None:
        doc = {"version": 1, "images": {
            ref: {"digest": e.digest, "manifest": e.manifest, "pulled": e.pulled}
            for ref, e in sorted(images.items())}}
        atomic_write(self.index_file, json.dumps(doc, indent=1).encode() + b"\n")

    # -- snapshots ------------------------------------------------------------------

    def snapshot_path(self, chain_id: str) -> Path:
        return self.snapshots / validate_digest(chain_id).removeprefix("sha256:")

    def record_path(self, chain_id: str) -> Path:
        return self.records / (validate_digest(chain_id).removeprefix("sha256:") + ".gz")

    def has_snapshot(self, chain_id: str) -> bool:
        return self.snapshot_path(chain_id).is_dir()

    @contextlib.contextmanager
    def new_snapshot(self, chain_id: str) -> Iterator[Path]:
        """A fresh empty directory that becomes the snapshot only if no error escapes."""
        import tempfile

        final = self.snapshot_path(chain_id)
        self.ensure()
        temp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.snapshots))
        try:
            os.chmod(temp, 0o755)  # a layer without a "./" entry keeps the usual root mode
            yield temp
            os.rename(temp, final)
        except BaseException:
            remove_tree(temp)
            raise
        _fsync_dir(self.snapshots)

    def clean_temporaries(self) -> None:
        """Remove temp files left by a process that was killed mid-write (under no lock:
        call it only when no other pull can be running, e.g. from garbage collection)."""
        for parent in (self.blobs, self.snapshots, self.records, self.root):
            if parent.is_dir():
                for entry in parent.iterdir():
                    if entry.name.startswith(_TMP_PREFIX):
                        remove_tree(entry)


def remove_tree(path: Path) -> None:
    """rm -rf that also copes with directories an image made unreadable (mode 000)."""
    import shutil

    def retry(func: object, failed: str, _exc: object) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(failed)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(failed, stat.S_IRWXU)
                shutil.rmtree(failed)
            else:
                os.unlink(failed)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=retry)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace PATH with DATA (fsynced; a crash leaves the old or the new file)."""
    import tempfile

    fd, temp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
