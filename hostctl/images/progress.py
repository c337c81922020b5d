"""Parallel layer downloads and the progress they report.

Layers are fetched by up to DOWNLOADERS threads at once (containerd uses 3, podman 6)
into the store's temp files, and the puller applies them in order, each as its bytes
arrive (growing.py): a layer is decompressed and unpacked while it downloads, and the
downloads of the layers above it go on meanwhile. Within one layer decompression runs on
its own thread (isal's igzip_threaded) beside the tar writer. Each blob is fetched under
its store lock, so concurrent pulls of one image download each blob once.

Progress goes to a Progress object: LineProgress writes one line per layer to the log
(what a unit's journal or a pipe wants); the CLI draws bars on a terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from hostctl.errors import ImageError
from hostctl.images.growing import GrowingBlob
from hostctl.images.manifest import MAX_DOCUMENT, Descriptor

if TYPE_CHECKING:
    from hostctl.images.reference import Reference
    from hostctl.images.registry import BlobSink
    from hostctl.images.store import BlobWriter, Store

DOWNLOADERS = 3


class Source(Protocol):
    """A registry client or a local layout: where manifests and blobs come from."""

    def get_manifest(self, ref: Any, target: str | None = None) -> tuple[bytes, str, str]: ...

    def fetch_bytes(self, ref: Any, desc: Descriptor, limit: int = MAX_DOCUMENT) -> bytes: ...

    def fetch_blob(self, ref: Any, desc: Descriptor, sink: BlobSink) -> None: ...


class Progress(Protocol):
    def start(self, digest: str, total: int) -> None: ...

    def advance(self, digest: str, amount: int) -> None: ...

    def finish(self, digest: str) -> None: ...


class LineProgress:
    """One line per layer when it starts and when it is done (size, time, speed)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._started: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def start(self, digest: str, total: int) -> None:
        with self._lock:
            self._started[digest] = (time.monotonic(), total)
        self._log(f"fetching layer {digest} ({human(total)})")

    def advance(self, digest: str, amount: int) -> None:
        return None

    def finish(self, digest: str) -> None:
        with self._lock:
            began, total = self._started.pop(digest, (time.monotonic(), 0))
        took = max(time.monotonic() - began, 1e-6)
        self._log(f"fetched layer {digest}: {human(total)} in {took:.1f}s "
                  f"({human(int(total / took))}/s)")


class _Sink:
    """Writes into the store's temp file, reports progress, stops when the pull aborts."""

    def __init__(self, inner: BlobWriter, progress: Progress, digest: str,
                 abort: threading.Event, blob: GrowingBlob) -> None:
        self._inner = inner
        self._blob = blob
        self._progress = progress
        self._digest = digest
        self._abort = abort
        self._written = 0

    def write(self, data: bytes, /) -> object:
        if self._abort.is_set():
            raise ImageError(f"blob {self._digest}: download abandoned (another layer failed)")
        self._inner.write(data)
        self._inner.flush()  # the applier reads the file as it grows
        self._written += len(data)
        self._blob.grew(self._written)
        self._progress.advance(self._digest, len(data))
        return None

    def reset(self) -> None:
        self._blob.reset()
        self._inner.reset()
        self._progress.advance(self._digest, -self._written)
        self._written = 0


class Downloads:
    """`with Downloads(...) as d:` fetches LAYERS in the background; d.stream(digest) is
    a layer's blob as it arrives."""

    def __init__(self, store: Store, source: Source, ref: Reference | None,
                 layers: list[Descriptor], progress: Progress, where: str) -> None:
        self._store = store
        self._source = source
        self._ref = ref
        self._progress = progress
        self._where = where
        self._abort = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=DOWNLOADERS,
                                        thread_name_prefix="hostctl-fetch")
        self._futures: dict[str, Future[None]] = {}
        self._blobs: dict[str, GrowingBlob] = {}
        for layer in layers:
            if layer.digest not in self._futures:
                self._blobs[layer.digest] = GrowingBlob(layer.digest, where)
                self._futures[layer.digest] = self._pool.submit(self._fetch, layer)

    def __enter__(self) -> Downloads:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self._abort.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for blob in self._blobs.values():
            blob.close()
        if exc is None:
            for future in self._futures.values():
                future.result()  # a download nobody waited for still reports its error

    def stream(self, digest: str) -> GrowingBlob | None:
        """The blob DIGEST as this pull fetches it; None if it was stored already."""
        return self._blobs.get(digest)

    def _fetch(self, layer: Descriptor) -> None:
        blob = self._blobs[layer.digest]
        try:
            self._fetch_into(layer, blob)
        except ImageError as exc:
            blob.failed(exc)
            raise
        except BaseException as exc:
            blob.failed(ImageError(f"blob {layer.digest}: download failed: {exc}",
                                   where=self._where))
            raise

    def _fetch_into(self, layer: Descriptor, blob: GrowingBlob) -> None:
        store, digest = self._store, layer.digest
        if store.has_blob(digest):
            blob.stored(store.blob_path(digest))
            return
        with store.lock("blob-" + digest.removeprefix("sha256:")):
            if store.has_blob(digest):
                blob.stored(store.blob_path(digest))
                return
            if self._abort.is_set():
                raise ImageError(f"blob {digest}: download abandoned", where=self._where)
            self._progress.start(digest, layer.size)
            try:
                with store.ingest(digest) as writer:
                    blob.attach(writer.fileno())
                    sink = _Sink(writer, self._progress, digest, self._abort, blob)
                    self._source.fetch_blob(self._ref, layer, sink)
                    blob.complete(durable=False)  # verified: the applier may finish
            except OSError as exc:
                raise ImageError(f"blob {digest}: cannot store it: {exc.strerror or exc}",
                                 where=str(store.blobs),
                                 hint="free some space in the store's file system"
                                 if exc.errno == 28 else None) from None
            blob.stored(store.blob_path(digest))
            self._progress.finish(digest)


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
