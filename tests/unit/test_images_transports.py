"""Locations, archive formats and local copies (files only: no registry)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import tarfile
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.copy import CopyOptions, copy_image
from hostctl.images.registry import RegistryClient
from hostctl.images.store import Store
from hostctl.images.transports import parse_location
from tests.support import imagebuild as ib


def test_parse_locations() -> None:
    assert parse_location("docker://q.io/a:1").reference.tag == "1"  # type: ignore[union-attr]
    oci = parse_location("oci:/srv/layout:v2")
    assert (oci.kind, str(oci.path), oci.tag) == ("oci", "/srv/layout", "v2")
    archive = parse_location("docker-archive:/tmp/x.tar:q.io/a/b:3")
    assert (str(archive.path), archive.tag) == ("/tmp/x.tar", "q.io/a/b:3")
    assert parse_location("docker-archive:/tmp/x.tar:@1").tag == "@1"
    assert parse_location("dir:/tmp/d:x").path == Path("/tmp/d:x")
    bare = parse_location("q.io/a")
    assert bare.kind == "store" and str(bare) == "store:q.io/a:latest"
    assert parse_location("store:oci:/srv/l:v1").stored == "oci:/srv/l:v1"
    with pytest.raises(ImageError, match="unsupported transport"):
        parse_location("containers-storage:q.io/a")
    with pytest.raises(ImageError, match="no path"):
        parse_location("oci-archive:")


def _tiny(cmd: str) -> ib.BuiltImage:
    layer = ib.Layer((ib.File("hello", f"{cmd}\n".encode()),))
    return ib.ImageSpec((layer,), {"Cmd": [cmd]}).build()


def _copy(tmp: Path, src: str, dst: str, **options: object) -> str:
    return copy_image(src, dst, store=Store(tmp / "store"), client=RegistryClient(),
                      options=CopyOptions(**options)).digest  # type: ignore[arg-type]


def test_local_round_trip_keeps_every_digest(tmp_path: Path) -> None:
    image = _tiny("one")
    ib.write_oci_layout(tmp_path / "src", "t", image)
    steps = [f"oci:{tmp_path / 'src'}:t", f"docker-archive:{tmp_path / 'a.tar'}:q.io/x/one:1",
             f"dir:{tmp_path / 'dir'}", f"oci-archive:{tmp_path / 'o.tar'}:u",
             f"oci:{tmp_path / 'back'}:w"]
    for src, dst in itertools.pairwise(steps):
        assert _copy(tmp_path, src, dst) == image.digest, dst
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "w"
    assert (tmp_path / "dir" / "version").read_bytes().startswith(b"Directory Transport")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_docker_archive_holds_several_images_and_moves_tags(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    for cmd in ("one", "two", "three"):
        ib.write_oci_layout(tmp_path / cmd, "t", _tiny(cmd))
    _copy(tmp_path, f"oci:{tmp_path / 'one'}:t", f"docker-archive:{archive}:q.io/x/app:1")
    _copy(tmp_path, f"oci:{tmp_path / 'two'}:t", f"docker-archive:{archive}:q.io/x/app:2")
    _copy(tmp_path, f"oci:{tmp_path / 'three'}:t", f"docker-archive:{archive}:q.io/x/app:1")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        entries = json.loads(handle.read())
    assert len(names) == len(set(names))  # no member twice
    assert [e["RepoTags"] for e in entries] == [[], ["q.io/x/app:2"], ["q.io/x/app:1"]]
    assert _copy(tmp_path, f"docker-archive:{archive}:q.io/x/app:1",
                 f"oci:{tmp_path / 'out'}") == _tiny("three").digest
    assert _copy(tmp_path, f"docker-archive:{archive}:@0",
                 f"oci:{tmp_path / 'out0'}") == _tiny("one").digest
    with pytest.raises(ImageError, match=r"no image tagged q\.io/x/app:9"):
        _copy(tmp_path, f"docker-archive:{archive}:q.io/x/app:9", f"oci:{tmp_path / 'x'}")


def test_reads_a_classic_docker_save_archive(tmp_path: Path) -> None:
    """docker save before 25: ID/layer.tar (uncompressed), no index.json."""
    layer = ib.Layer((ib.File("hello", b"hi\n"),), ib.Compression.NONE).tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    members = {config_name: config, "abc/layer.tar": layer, "manifest.json": json.dumps(
        [{"Config": config_name, "RepoTags": ["busybox:latest"],
          "Layers": ["abc/layer.tar"]}]).encode()}
    archive = tmp_path / "saved.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _copy(tmp_path, f"docker-archive:{archive}:docker.io/library/busybox:latest",
          f"oci:{tmp_path / 'out'}:b")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((tmp_path / "out" / "blobs" / "sha256" / manifest_hex).read_bytes())
    assert manifest["layers"] == [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                   "digest": diff_id, "size": len(layer)}]


def test_compress_rewrites_layers_and_keeps_diff_ids(tmp_path: Path) -> None:
    image = _tiny("z")
    ib.write_oci_layout(tmp_path / "src", "t", image)
    digest = _copy(tmp_path, f"oci:{tmp_path / 'src'}:t", f"oci:{tmp_path / 'z'}:t",
                   compress="zstd")
    assert digest != image.digest
    blob = (tmp_path / "z" / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    manifest = json.loads(blob)
    assert manifest["layers"][0]["mediaType"].endswith("+zstd")
    assert manifest["config"]["digest"] == json.loads(image.manifest)["config"]["digest"]


def test_a_damaged_layout_leaves_the_destination_untouched(tmp_path: Path) -> None:
    ib.write_oci_layout(tmp_path / "good", "t", _tiny("good"))
    archive = tmp_path / "a.tar"
    _copy(tmp_path, f"oci:{tmp_path / 'good'}:t", f"docker-archive:{archive}:q.io/d:1")
    before = archive.read_bytes()
    image = _tiny("damaged")
    ib.write_oci_layout(tmp_path / "src", "t", image)
    layer = json.loads(image.manifest)["layers"][0]["digest"].removeprefix("sha256:")
    path = tmp_path / "src" / "blobs" / "sha256" / layer
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="do not match"):
        _copy(tmp_path, f"oci:{tmp_path / 'src'}:t", f"docker-archive:{archive}:q.io/e:1")
    assert archive.read_bytes() == before
    with pytest.raises(ImageError, match="do not match"):
        _copy(tmp_path, f"oci:{tmp_path / 'src'}:t", f"oci:{tmp_path / 'good'}:t")
    index = json.loads((tmp_path / "good" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [_tiny("good").digest]
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_concurrent_copies_into_one_layout_keep_both_tags(tmp_path: Path) -> None:
    import threading

    images = {tag: _tiny(tag) for tag in ("a", "b", "c", "d")}
    for tag, built in images.items():
        ib.write_oci_layout(tmp_path / f"src-{tag}", "t", built)
    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            _copy(tmp_path, f"oci:{tmp_path / f'src-{tag}'}:t", f"oci:{tmp_path / 'shared'}:{tag}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(tag,)) for tag in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    index = json.loads((tmp_path / "shared" / "index.json").read_text())
    named = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
             for m in index["manifests"]}
    assert named == {tag: built.digest for tag, built in images.items()}


def test_all_from_the_store_needs_every_platform_stored(tmp_path: Path) -> None:
    from hostctl.images.pull import pull

    amd = ib.ImageSpec((ib.Layer((ib.File("x", b"x"),)),), {"Cmd": ["x"]})
    arm = ib.ImageSpec(amd.layers, {"Cmd": ["y"]}, architecture="arm64")
    built = [amd.build(), arm.build()]
    index, media_type = ib.build_index(built)
    layout = tmp_path / "multi"
    for image in built:
        ib.write_oci_layout(layout, image.digest[7:19], image)
    (layout / "blobs" / "sha256" / ib.sha256_digest(index)[7:]).write_bytes(index)
    doc = json.loads((layout / "index.json").read_text())
    doc["manifests"] = [{"mediaType": media_type, "digest": ib.sha256_digest(index),
                         "size": len(index),
                         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
    (layout / "index.json").write_text(json.dumps(doc))
    store = Store(tmp_path / "store")
    stored = pull(store, f"oci:{layout}:multi")
    name = "store:" + stored.reference  # bare, "oci:..." is the layout itself
    with pytest.raises(ImageError, match="only the host's platform"):
        copy_image(name, f"oci:{tmp_path / 'out'}:x", store=store, client=RegistryClient(),
                   options=CopyOptions(all_platforms=True))
    assert copy_image(name, f"oci:{tmp_path / 'one'}:x", store=store,
                      client=RegistryClient()).digest == built[0].digest
