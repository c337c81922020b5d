"""Pulling from a real registry (Debian's docker-registry on a free 127.0.0.1 port).

Images are pushed through the registry API (blob uploads, manifest PUT) with a
busybox-static payload; the registry's storage lives in a temp dir and the server is
stopped by its PID whatever happens.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3

from hostctl.errors import ImageError
from hostctl.images.manage import list_images
from hostctl.images.manifest import OCI_INDEX, OCI_MANIFEST, chain_ids, host_platform
from hostctl.images.pull import pull
from hostctl.images.store import Store
from tests.support.faultproxy import FaultProxy

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="needs docker-registry"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static"),
    pytest.mark.skipif(os.geteuid() != 0, reason="rootful layer application needs root"),
]

HTTP = urllib3.PoolManager(retries=False)


@dataclass(frozen=True)
class Registry:
    address: str  # 127.0.0.1:PORT
    storage: Path

    def blob_data(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {base / 'storage'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )
    with (base / "registry.log").open("wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if HTTP.request("GET", f"http://{address}/v2/").status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("registry did not start: "
                                   + (base / "registry.log").read_text()[-2000:])
            time.sleep(0.1)
        yield Registry(address, base / "storage")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(registry: Registry, repo: str, data: bytes) -> str:
    digest = sha(data)
    started = HTTP.request("POST", f"http://{registry.address}/v2/{repo}/blobs/uploads/")
    assert started.status == 202, started.data
    location = started.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry.address}{location}"
    separator = "&" if "?" in location else "?"
    done = HTTP.request("PUT", f"{location}{separator}digest={digest}", body=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert done.status == 201, done.data
    return digest


def push_manifest(registry: Registry, repo: str, tag: str, doc: dict[str, Any]) -> str:
    body = json.dumps(doc).encode()
    response = HTTP.request("PUT", f"http://{registry.address}/v2/{repo}/manifests/{tag}",
                            body=body, headers={"Content-Type": doc["mediaType"]})
    assert response.status == 201, response.data
    return sha(body)


def layer_tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
          mode: int = 0o644, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, 1_700_000_000
    info.size = len(data) if data is not None else 0
    return info, data


BUSYBOX = Path("/bin/busybox").read_bytes() if os.path.exists("/bin/busybox") else b""


def busybox_layers(name: str) -> list[bytes]:
    """Two uncompressed layer tars: busybox + /etc/motd, then a whiteout and a new file.

    NAME goes into both layers so that each test's blobs are its own in the registry.
    """
    first = layer_tar([
        entry("image-name", data=name.encode()),
        entry("bin", tarfile.DIRTYPE, mode=0o755),
        entry("bin/busybox", data=BUSYBOX, mode=0o755),
        entry("bin/sh", tarfile.LNKTYPE, link="bin/busybox"),
        entry("bin/ls", tarfile.SYMTYPE, link="busybox"),
        entry("etc", tarfile.DIRTYPE, mode=0o755),
        entry("etc/motd", data=b"hello\n"),
    ])
    second = layer_tar([entry("etc", tarfile.DIRTYPE, mode=0o755), entry("etc/.wh.motd", data=b""),
                        entry("etc/hello", data=b"world\n"),
                        entry("image-name", data=name.encode())])
    return [first, second]


def push_image(registry: Registry, repo: str, tag: str, *, arch: str | None = None,
               tars: list[bytes] | None = None) -> dict[str, Any]:
    """Push a busybox image; returns its manifest document (with its digest under _digest)."""
    tars = tars if tars is not None else busybox_layers(f"{repo}:{tag}")
    blobs = [gzip.compress(t) for t in tars]
    config = {
        "architecture": arch or host_platform().architecture, "os": "linux",
        "created": "2024-01-02T03:04:05Z", "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
    }
    config_bytes = json.dumps(config).encode()
    doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(registry, repo, config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": push_blob(registry, repo, blob), "size": len(blob)}
                   for blob in blobs],
    }
    return {**doc, "_digest": push_manifest(registry, repo, tag, doc)}


def store_leftovers(store: Store) -> list[str]:
    return [str(p) for p in store.root.rglob(".tmp-*")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "storage")


def test_pull_applies_layers_and_reuses_everything(registry: Registry, store: Store) -> None:
    doc = push_image(registry, "demo/hello", "1")
    ref = f"{registry.address}/demo/hello:1"
    logs: list[str] = []
    image = pull(store, ref, log=logs.append)

    assert image.reference == ref and image.manifest_digest == doc["_digest"]
    assert image.config["config"]["Cmd"] == ["/bin/sh"]
    assert image.layers == tuple(layer["digest"] for layer in doc["layers"])
    bottom, top = image.snapshots
    assert (bottom / "bin/busybox").read_bytes() == BUSYBOX
    assert os.stat(bottom / "bin/sh").st_ino == os.stat(bottom / "bin/busybox").st_ino
    assert os.readlink(bottom / "bin/ls") == "busybox"
    whiteout = os.lstat(top / "etc/motd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert (top / "etc/hello").read_text() == "world\n"
    assert sum("fetching layer" in line for line in logs) == 2

    [summary] = list_images(store)
    assert summary.reference == ref and summary.manifest_digest == doc["_digest"]
    assert summary.created == "2024-01-02T03:04:05Z"
    assert summary.size == doc["config"]["size"] + sum(x["size"] for x in doc["layers"])

    # The registry loses the layer data: a re-pull must not need it.
    for layer in doc["layers"]:
        registry.blob_data(layer["digest"]).write_bytes(b"gone")
    logs.clear()
    again = pull(store, ref, policy="always", log=logs.append)
    assert again == image and not any("fetching" in line for line in logs)
    assert pull(store, ref, policy="never") == image


def test_stored_image_path_needs_no_network_and_no_urllib3(
    registry: Registry, store: Store
) -> None:
    push_image(registry, "demo/offline", "1")
    ref = f"{registry.address}/demo/offline:1"
    image = pull(store, ref)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from hostctl.images.pull import pull\n"
        "from hostctl.images.store import Store\n"
        f"image = pull(Store(Path({str(store.root)!r})), {ref!r})\n"
        "print(image.snapshots[-1])\n"
        "print('urllib3' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == [str(image.snapshots[-1]), "False"]


def test_never_policy_and_missing_tag(registry: Registry, store: Store) -> None:
    with pytest.raises(ImageError, match="not stored and the pull policy is never"):
        pull(store, f"{registry.address}/demo/none:1", policy="never")
    with pytest.raises(ImageError, match="manifest 404 not found") as err:
        pull(store, f"{registry.address}/demo/none:404")
    assert f"{registry.address}/demo/none:404" in str(err.value)


def test_index_selects_the_host_platform(registry: Registry, store: Store) -> None:
    host = push_image(registry, "demo/multi", "host-only")
    other = push_image(registry, "demo/multi", "other", arch="s390x" if
                       host_platform().architecture != "s390x" else "amd64",
                       tars=[layer_tar([entry("wrong", data=b"x")])])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": other["_digest"], "size": 1,
         "platform": {"os": "linux", "architecture": other_arch(host)}},
        {"mediaType": OCI_MANIFEST, "digest": host["_digest"], "size": 1,
         "platform": {"os": "linux", "architecture": host_platform().architecture}},
        {"mediaType": OCI_MANIFEST, "digest": other["_digest"], "size": 1,
         "platform": {"os": "unknown", "architecture": "unknown"}},
    ]}
    index_digest = push_manifest(registry, "demo/multi", "2", index)
    image = pull(store, f"{registry.address}/demo/multi:2")
    assert image.manifest_digest == index_digest
    assert image.layers == tuple(layer["digest"] for layer in host["layers"])
    with pytest.raises(ImageError, match="no image for platform linux/mips64"):
        pull(store, f"{registry.address}/demo/multi:2", platform="linux/mips64",
             policy="always")


def other_arch(host: dict[str, Any]) -> str:
    return "s390x" if host_platform().architecture != "s390x" else "amd64"


def test_corrupt_blob_is_refused_and_nothing_partial_stays(
    registry: Registry, store: Store
) -> None:
    doc = push_image(registry, "demo/corrupt", "1")
    layer = doc["layers"][0]["digest"]
    data = registry.blob_data(layer)
    data.write_bytes(bytes(len(data.read_bytes())))  # same size, different bytes
    ref = f"{registry.address}/demo/corrupt:1"
    with pytest.raises(ImageError, match="digest mismatch") as err:
        pull(store, ref)
    assert str(err.value).startswith(f"{ref}: blob {layer}: digest mismatch")
    assert not store.has_blob(layer)
    assert store_leftovers(store) == []
    assert list(store.snapshots.iterdir()) == []
    assert store.lookup(ref) is None


def test_a_layer_applied_as_it_streams_is_dropped_on_a_bad_digest_and_resumed_after_a_cut(
    registry: Registry, store: Store
) -> None:
    data = [os.urandom(100_000) for _ in range(40)]
    tars = [busybox_layers("demo/stream:1")[0],
            layer_tar([entry("data", tarfile.DIRTYPE, mode=0o755),
                       *(entry(f"data/{i}", data=d) for i, d in enumerate(data))])]
    doc = push_image(registry, "demo/stream", "1", tars=tars)
    big = doc["layers"][1]["digest"]
    top_chain = chain_ids([sha(t) for t in tars])[1]
    with FaultProxy(registry.address) as proxy:
        ref = f"{proxy.host}/demo/stream:1"
        proxy.fault(f"/blobs/{big}", "wrong-late")
        logs: list[str] = []
        with pytest.raises(ImageError, match=f"blob {big}: digest mismatch"):
            pull(store, ref, log=logs.append)
        # The layer was being applied while it downloaded; nothing of it stays.
        assert f"applying layer {big}" in logs and not any(
            line.startswith(f"fetched layer {big}") for line in logs)
        assert not store.has_blob(big) and not store.has_snapshot(top_chain)
        assert store_leftovers(store) == [] and store.lookup(ref) is None

        # Cut mid-layer and resumed with Range; then cut again, and a server that ignores
        # Range sends it all again: the applier follows both, and the pull succeeds.
        proxy.fault(f"/blobs/{big}", "cut", times=2)
        proxy.fault(f"/blobs/{big}", "norange")
        image = pull(store, ref)
        assert [kind for path, kind in proxy.seen if big in path] == [
            "wrong-late", "cut", "cut", "norange"]
    assert [(image.snapshots[1] / f"data/{i}").read_bytes() for i in range(40)] == data
    assert store.has_blob(big) and store_leftovers(store) == []
    assert store.lookup(ref) is not None


def test_registry_down_is_a_clear_error(store: Store) -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ImageError) as err:
        pull(store, f"{address}/demo/hello:1")
    text = str(err.value)
    assert f"registry {address} unreachable: connection refused" in text
    assert "hint: check that the registry is running" in text
    assert time.monotonic() - started < 15
    assert store.lookup(f"{address}/demo/hello:1") is None


def test_concurrent_pulls_fetch_each_blob_once(registry: Registry, store: Store) -> None:
    doc = push_image(registry, "demo/race", "1")
    ref = f"{registry.address}/demo/race:1"
    logs: list[str] = []
    results: list[object] = []

    def worker() -> None:
        try:
            results.append(pull(store, ref, log=logs.append))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 3 and all(r == results[0] for r in results), results
    for layer in doc["layers"]:
        assert sum(layer["digest"] in line and "fetching" in line for line in logs) == 1
        assert sum(layer["digest"] in line and "applying" in line for line in logs) == 1


def test_snapshots_stack_as_an_overlay(registry: Registry, store: Store, tmp_path: Path) -> None:
    push_image(registry, "demo/overlay", "1")
    image = pull(store, f"{registry.address}/demo/overlay:1")
    target = tmp_path / "merged"
    target.mkdir()
    lowerdir = ":".join(str(p) for p in reversed(image.snapshots))  # top first
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowerdir}",
                    str(target)], check=True)
    try:
        assert sorted(os.listdir(target / "etc")) == ["hello"]  # motd whited out
        assert (target / "image-name").read_text() == "demo/overlay:1"
        result = subprocess.run(["chroot", str(target), "/bin/sh", "-c", "echo ok; ls /etc"],
                                capture_output=True, text=True, check=True)
        assert result.stdout.split() == ["ok", "hello"]
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_always_policy_picks_up_a_moved_tag(registry: Registry, store: Store) -> None:
    ref = f"{registry.address}/demo/moving:1"
    first = push_image(registry, "demo/moving", "1")
    assert pull(store, ref).manifest_digest == first["_digest"]
    second = push_image(registry, "demo/moving", "1",
                        tars=[layer_tar([entry("v2", data=b"2")])])
    assert pull(store, ref).manifest_digest == first["_digest"]  # "missing": stored wins
    moved = pull(store, ref, policy="always")
    assert moved.manifest_digest == second["_digest"]
    assert (moved.snapshots[0] / "v2").read_bytes() == b"2"
    assert [s.manifest_digest for s in list_images(store)] == [second["_digest"]]
