"""The file tree and config of an image, flattened from its layers, for comparisons.

tree() applies each layer's tar in order to a dict (whiteouts and opaque markers
honoured): path -> (type, mode, uid, gid, size, sha256 of content or link target).
Images are read from hostctl's store (store_image) or an OCI layout directory (the
form `buildah push IMAGE oci:DIR:TAG` writes).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Node = tuple[str, int, int, int, int, str]


@dataclass(frozen=True)
class FlatImage:
    tree: dict[str, Node]
    config: dict[str, Any]
    manifest_digest: str


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isreg():
        return "file"
    return "other"


def apply(tree: dict[str, Node], blob: bytes) -> None:
    """Apply one (compressed or plain) layer to TREE."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for member in tar:
            name = member.name.lstrip("./").rstrip("/") if member.name not in (".", "./") \
                else ""
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                prefix = parent + "/"
                for key in [k for k in tree if k.startswith(prefix)]:
                    del tree[key]
                continue
            if base.startswith(".wh."):
                gone = f"{parent}/{base[4:]}" if parent else base[4:]
                for key in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                    del tree[key]
                continue
            if not name:
                continue
            if member.islnk():
                target = member.linkname.lstrip("./")
                tree[name] = tree[target]
                continue
            data = ""
            if member.isreg():
                handle = tar.extractfile(member)
                data = hashlib.sha256(handle.read() if handle else b"").hexdigest()
            elif member.issym():
                data = member.linkname
            if not member.isdir():
                for key in [k for k in tree if k.startswith(name + "/")]:
                    del tree[key]
            tree[name] = (_kind(member), member.mode & 0o7777, member.uid, member.gid,
                          member.size if member.isreg() else 0, data)


def _flatten(read: Any, manifest_digest: str) -> FlatImage:
    manifest = json.loads(read(manifest_digest))
    config = json.loads(read(manifest["config"]["digest"]))
    tree: dict[str, Node] = {}
    for layer in manifest["layers"]:
        apply(tree, read(layer["digest"]))
    return FlatImage(tree, config, manifest_digest)


def store_image(store_root: Path, reference: str) -> FlatImage:
    """REFERENCE (as stored, e.g. localhost/name:tag) from a hostctl store."""
    index = json.loads((store_root / "images.json").read_text())["images"]
    digest = index[reference]["manifest"]

    def read(d: str) -> bytes:
        return (store_root / "blobs" / "sha256" / d.removeprefix("sha256:")).read_bytes()

    return _flatten(read, digest)


def layout_image(directory: Path) -> FlatImage:
    """The single image of an OCI layout directory."""
    index = json.loads((directory / "index.json").read_text())
    digest = index["manifests"][0]["digest"]

    def read(d: str) -> bytes:
        return (directory / "blobs" / "sha256" / d.removeprefix("sha256:")).read_bytes()

    return _flatten(read, digest)
