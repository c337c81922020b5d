"""Build OCI / Docker schema2 images from Python values and push them with the stdlib.

Glossary: an *entry* is one tar member of a layer (file, dir, symlink, hardlink, whiteout,
opaque marker); a *layer* is an ordered tuple of entries, serialised as a deterministic
tar (mtime, owner names and gzip header fixed) so the same spec always has the same digest;
an *ImageSpec* is layers plus the runtime config; *push* uploads blobs monolithically and
PUTs the manifest, returning its digest.

Entry names are used verbatim: write them relative, as real layers do ("bin/sh"). Because
nothing is normalised, tests can also build hostile layers ("../escape", "/abs").
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

LAYER_MTIME = 1_700_000_000  # fixed so that layer digests are reproducible


class MediaType(StrEnum):
    """Manifest flavour of a built image."""

    OCI = "application/vnd.oci.image.manifest.v1+json"
    DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


class Compression(StrEnum):
    """How a layer tar is stored as a blob."""

    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG_TYPES = {
    MediaType.OCI: "application/vnd.oci.image.config.v1+json",
    MediaType.DOCKER: "application/vnd.docker.container.image.v1+json",
}
LAYER_TYPES = {
    (MediaType.OCI, Compression.GZIP): "application/vnd.oci.image.layer.v1.tar+gzip",
    (MediaType.OCI, Compression.ZSTD): "application/vnd.oci.image.layer.v1.tar+zstd",
    (MediaType.OCI, Compression.NONE): "application/vnd.oci.image.layer.v1.tar",
    (MediaType.DOCKER, Compression.GZIP): "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
MANIFEST_ACCEPT = ", ".join([MediaType.OCI, MediaType.DOCKER, OCI_INDEX, DOCKER_LIST])


def sha256_digest(data: bytes) -> str:
    """The OCI digest string of DATA: 'sha256:<hex>'."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class File:
    """A regular file; content may be str (UTF-8) or bytes."""

    path: str
    content: bytes | str = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        data = self.content.encode() if isinstance(self.content, str) else self.content
        info = _info(self.path, tarfile.REGTYPE, self.mode, self.uid, self.gid)
        info.size = len(data)
        return info, data


@dataclass(frozen=True)
class Dir:
    """A directory (mode 1777 for a sticky /tmp, for instance)."""

    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        return _info(self.path, tarfile.DIRTYPE, self.mode, self.uid, self.gid), None


@dataclass(frozen=True)
class Symlink:
    """A symbolic link PATH -> TARGET (TARGET verbatim, relative or absolute)."""

    path: str
    target: str
    uid: int = 0
    gid: int = 0

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = _info(self.path, tarfile.SYMTYPE, 0o777, self.uid, self.gid)
        info.linkname = self.target
        return info, None


@dataclass(frozen=True)
class Hardlink:
    """A hard link PATH to TARGET, an earlier member name of the same or a lower layer."""

    path: str
    target: str

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = _info(self.path, tarfile.LNKTYPE, 0o644, 0, 0)
        info.linkname = self.target
        return info, None


@dataclass(frozen=True)
class Whiteout:
    """Deletes PATH from the layers below: a '.wh.<name>' member next to it."""

    path: str

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        name = PurePosixPath(self.path)
        return File(str(name.parent / f".wh.{name.name}")).tarinfo()


@dataclass(frozen=True)
class Opaque:
    """Hides everything the layers below have in directory PATH: '.wh..wh..opq'."""

    path: str

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        return File(str(PurePosixPath(self.path) / ".wh..wh..opq")).tarinfo()


Entry = File | Dir | Symlink | Hardlink | Whiteout | Opaque


def _info(name: str, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = LAYER_MTIME
    return info


@dataclass(frozen=True)
class Layer:
    """An ordered set of tar entries, stored with COMPRESSION."""

    entries: tuple[Entry, ...]
    compression: Compression = Compression.GZIP

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))

    def tar(self) -> bytes:
        """The uncompressed tar; its digest is the layer's diff_id."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for entry in self.entries:
                info, data = entry.tarinfo()
                archive.addfile(info, io.BytesIO(data) if data is not None else None)
        return buffer.getvalue()

    def blob(self) -> bytes:
        """The tar as stored in the registry (compressed unless Compression.NONE)."""
        raw = self.tar()
        if self.compression is Compression.GZIP:
            return gzip.compress(raw, compresslevel=6, mtime=0)
        if self.compression is Compression.ZSTD:
            import zstandard  # only the zstd tests need it

            return zstandard.ZstdCompressor().compress(raw)
        return raw


@dataclass(frozen=True)
class ImageSpec:
    """Layers (bottom first) and the runtime config (Entrypoint, Cmd, Env, User, ...)."""

    layers: tuple[Layer, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    media_type: MediaType = MediaType.OCI
    architecture: str = "amd64"
    os: str = "linux"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        for layer in self.layers:
            if (self.media_type, layer.compression) not in LAYER_TYPES:
                raise ValueError(
                    f"{self.media_type.name} images cannot carry {layer.compression} layers"
                )

    def build(self) -> BuiltImage:
        """Serialise config, layers and manifest into blobs with their digests."""
        blobs = [layer.blob() for layer in self.layers]
        config = json.dumps(self._config_document(), sort_keys=True).encode()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": str(self.media_type),
            "config": _descriptor(CONFIG_TYPES[self.media_type], config),
            "layers": [
                _descriptor(LAYER_TYPES[(self.media_type, layer.compression)], blob)
                for layer, blob in zip(self.layers, blobs, strict=True)
            ],
        }
        return BuiltImage(
            manifest=json.dumps(manifest, indent=2).encode(),
            media_type=str(self.media_type),
            config=config,
            layers=tuple(blobs),
            platform={"architecture": self.architecture, "os": self.os},
        )

    def _config_document(self) -> dict[str, Any]:
        diff_ids = [sha256_digest(layer.tar()) for layer in self.layers]
        return {
            "created": "2023-11-14T22:13:20Z",
            "architecture": self.architecture,
            "os": self.os,
            "config": dict(self.config),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "tests.support.imagebuild"} for _ in self.layers],
        }


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


@dataclass(frozen=True)
class BuiltImage:
    """The bytes of one image: manifest, config blob and layer blobs."""

    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[bytes, ...]
    platform: Mapping[str, str]

    @property
    def digest(self) -> str:
        """The manifest digest (what `image@sha256:...` pins)."""
        return sha256_digest(self.manifest)

    def blobs(self) -> list[bytes]:
        """Config and layer blobs, in upload order."""
        return [self.config, *self.layers]


def build_index(images: Sequence[BuiltImage], *, docker: bool = False) -> tuple[bytes, str]:
    """A multi-platform index (or Docker manifest list) over IMAGES: (bytes, media type)."""
    media_type = DOCKER_LIST if docker else OCI_INDEX
    manifests = [
        {**_descriptor(image.media_type, image.manifest), "platform": dict(image.platform)}
        for image in images
    ]
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return json.dumps(document, indent=2).encode(), media_type


# ---- registry HTTP API ----------------------------------------------------------------


class PushError(RuntimeError):
    """The registry refused an upload; the message carries its status and body."""


def _request(
    url: str, method: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, Message[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        if method == "HEAD" and error.code == 404:
            return 404, error.headers, b""
        body = error.read().decode(errors="replace")
        raise PushError(f"{method} {url}: HTTP {error.code}: {body}") from None


def push_blob(registry_host: str, name: str, data: bytes) -> str:
    """Upload DATA as a blob of repository NAME (skipped if present); returns its digest."""
    digest = sha256_digest(data)
    base = f"http://{registry_host}/v2/{name}/blobs/"
    if _request(base + digest, "HEAD")[0] == 200:
        return digest
    _, headers, _ = _request(base + "uploads/", "POST", b"")
    location = urllib.parse.urljoin(base, headers["Location"])
    separator = "&" if "?" in location else "?"
    upload_headers = {"Content-Type": "application/octet-stream"}
    _request(f"{location}{separator}digest={digest}", "PUT", data, upload_headers)
    return digest


def push_manifest(
    registry_host: str, name: str, reference: str, data: bytes, media_type: str
) -> str:
    """PUT a manifest (or index) under REFERENCE (tag or digest); returns its digest."""
    url = f"http://{registry_host}/v2/{name}/manifests/{reference}"
    _, headers, _ = _request(url, "PUT", data, {"Content-Type": media_type})
    digest = headers.get("Docker-Content-Digest") or sha256_digest(data)
    if digest != sha256_digest(data):
        raise PushError(f"registry stored {name}:{reference} as {digest}, expected another")
    return digest


def push(registry_host: str, name: str, tag: str, image: ImageSpec | BuiltImage) -> str:
    """Push IMAGE as NAME:TAG to the registry at REGISTRY_HOST; returns the manifest digest."""
    built = image.build() if isinstance(image, ImageSpec) else image
    for blob in built.blobs():
        push_blob(registry_host, name, blob)
    return push_manifest(registry_host, name, tag, built.manifest, built.media_type)


def push_index(
    registry_host: str, name: str, tag: str, images: Iterable[ImageSpec], *, docker: bool = False
) -> str:
    """Push one image per platform plus an index over them as NAME:TAG; returns its digest."""
    built = [image.build() for image in images]
    for image in built:
        push(registry_host, name, image.digest, image)
    index, media_type = build_index(built, docker=docker)
    return push_manifest(registry_host, name, tag, index, media_type)


def fetch_manifest(registry_host: str, name: str, reference: str) -> tuple[str, str, bytes]:
    """GET a manifest by tag or digest: (digest the registry reports, media type, bytes)."""
    url = f"http://{registry_host}/v2/{name}/manifests/{reference}"
    _, headers, body = _request(url, "GET", headers={"Accept": MANIFEST_ACCEPT})
    return headers["Docker-Content-Digest"], headers["Content-Type"], body


# ---- OCI image layout (a local `oci:` source) -----------------------------------------


def write_oci_layout(directory: Path, tag: str, image: ImageSpec | BuiltImage) -> str:
    """Add IMAGE to the OCI layout at DIRECTORY under TAG; returns the manifest digest."""
    built = image.build() if isinstance(image, ImageSpec) else image
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in [*built.blobs(), built.manifest]:
        (blobs / sha256_digest(data).removeprefix("sha256:")).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index_path = directory / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    ref_key = "org.opencontainers.image.ref.name"
    index["manifests"] = [
        m for m in index["manifests"] if m.get("annotations", {}).get(ref_key) != tag
    ]
    descriptor = _descriptor(built.media_type, built.manifest)
    index["manifests"].append({**descriptor, "annotations": {ref_key: tag}})
    index_path.write_text(json.dumps(index, indent=2))
    return built.digest


# ---- busybox: the payload of most test images -----------------------------------------

BUSYBOX = Path("/bin/busybox")
# fmt: off
APPLETS = (
    "sh", "ash", "echo", "sleep", "cat", "id", "env", "ls", "pwd", "true", "false", "mkdir",
    "rm", "rmdir", "touch", "cp", "mv", "ln", "chmod", "chown", "stat", "ps", "kill", "grep",
    "sed", "head", "tail", "wc", "date", "hostname", "uname", "whoami", "printf", "test",
    "[", "mount", "umount", "df", "find", "readlink", "nc", "wget", "httpd", "tee", "xargs",
    "seq", "sort", "uniq", "md5sum", "sha256sum", "top", "dd", "nproc", "sync", "timeout",
)
# fmt: on
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def busybox_layer(compression: Compression = Compression.GZIP) -> Layer:
    """A minimal root filesystem: static busybox, its applet links, passwd/group (root, app)."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} not found (install the busybox-static package)")
    dirs = [Dir(name) for name in ("bin", "etc", "proc", "sys", "dev", "run", "var", "home")]
    entries: list[Entry] = [
        *dirs,
        Dir("tmp", mode=0o1777),
        Dir("root", mode=0o700),
        Dir("home/app", uid=1000, gid=1000),
        File("bin/busybox", BUSYBOX.read_bytes(), mode=0o755),
        *(Symlink(f"bin/{applet}", "busybox") for applet in APPLETS),
        File("etc/passwd", PASSWD),
        File("etc/group", GROUP),
    ]
    return Layer(tuple(entries), compression)


def busybox_image(
    *,
    media_type: MediaType = MediaType.OCI,
    extra_layers: Sequence[Layer] = (),
    **config: Any,
) -> ImageSpec:
    """busybox_layer() plus EXTRA_LAYERS, config keys as keyword arguments (Cmd=[...])."""
    settings: dict[str, Any] = {"Env": [DEFAULT_PATH], "Cmd": ["sh"]}
    settings.update(config)
    return ImageSpec((busybox_layer(), *extra_layers), settings, media_type)
