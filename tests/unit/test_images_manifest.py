"""Manifest and index validation, platform selection, ChainIDs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from hostctl.errors import ImageError
from hostctl.images import manifest as m

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def desc(media_type: str, digest: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image_manifest(**overrides: Any) -> dict[str, Any]:
    doc = {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST,
           "config": desc(m.CONFIG_TYPES[0], D1),
           "layers": [desc(m.LAYER_TYPES[1], D2)]}
    doc.update(overrides)
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def entry(arch: str, digest: str, variant: str | None = None, os_: str = "linux",
          media_type: str = m.OCI_MANIFEST) -> dict[str, Any]:
    platform = {"os": os_, "architecture": arch, **({"variant": variant} if variant else {})}
    return desc(media_type, digest, platform=platform)


def test_manifest_parses() -> None:
    doc = m.parse_document(encode(image_manifest()), m.OCI_MANIFEST + "; charset=utf-8",
                           where="img")
    assert isinstance(doc, m.Manifest)
    assert doc.config.digest == D1 and [layer.digest for layer in doc.layers] == [D2]


def test_docker_schema2_without_content_type() -> None:
    doc = m.parse_document(encode(image_manifest(mediaType=m.DOCKER_MANIFEST)), None, where="i")
    assert isinstance(doc, m.Manifest) and doc.media_type == m.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("doc", "content_type", "message"),
    [
        (image_manifest(), m.OCI_INDEX, "served as"),
        (image_manifest(manifests=[]), None, "CVE-2021-41190"),
        ({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": [], "config": {}}, None,
         "CVE-2021-41190"),
        (image_manifest(schemaVersion=1), None, "schemaVersion"),
        (image_manifest(layers=[desc(m.LAYER_TYPES[0], "sha256:../x")]), None, "invalid digest"),
        (image_manifest(layers=[desc(m.LAYER_TYPES[0], D2, size=-1)]), None, "invalid size"),
        (image_manifest(layers=[desc("text/plain", D2)]), None, "unsupported media type"),
        (image_manifest(layers="x"), None, "no layers"),
        (image_manifest(mediaType="application/x-unknown"), None, "unsupported manifest"),
    ],
)
def test_bad_documents(doc: dict[str, Any], content_type: str | None, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        m.parse_document(encode(doc), content_type, where="img")


def test_not_json_and_too_big() -> None:
    with pytest.raises(ImageError, match="not valid JSON"):
        m.parse_document(b"\xff{", None, where="i")
    with pytest.raises(ImageError, match="larger than"):
        m.parse_document(b" " * (m.MAX_DOCUMENT + 1), None, where="i")


def test_verify_bytes() -> None:
    data = b"hello"
    m.verify_bytes(data, "sha256:" + hashlib.sha256(data).hexdigest(), where="i", what="blob")
    with pytest.raises(ImageError, match=r"blob .*digest mismatch"):
        m.verify_bytes(data + b"!", "sha256:" + hashlib.sha256(data).hexdigest(),
                       where="i", what="blob")


def index(*entries: dict[str, Any]) -> m.Index:
    doc = m.parse_document(encode({"schemaVersion": 2, "mediaType": m.OCI_INDEX,
                                   "manifests": list(entries)}), m.OCI_INDEX, where="i")
    assert isinstance(doc, m.Index)
    return doc


def test_platform_selection() -> None:
    idx = index(
        entry("unknown", D3, os_="unknown"), entry("amd64", D1), entry("arm64", D2, "v8"),
        entry("arm", "sha256:" + "6" * 64, "v6"), entry("arm", "sha256:" + "7" * 64, "v7"),
    )

    def pick(text: str) -> str:
        return m.select_platform(idx, m.parse_platform(text), where="i").digest

    assert pick("linux/amd64") == D1
    assert pick("linux/arm64") == D2
    assert pick("linux/arm/v7") == "sha256:" + "7" * 64
    assert pick("linux/arm/v8") == "sha256:" + "7" * 64  # best older variant
    assert pick("linux/arm/v6") == "sha256:" + "6" * 64
    with pytest.raises(ImageError, match="no image for platform linux/s390x") as err:
        pick("linux/s390x")
    assert "linux/amd64" in str(err.value) and "unknown" not in str(err.value)


def test_platform_selection_skips_attestations_and_unknown_types() -> None:
    idx = index(entry("amd64", D1, media_type="application/vnd.in-toto+json"),
                entry("amd64", D2))
    assert m.select_platform(idx, m.Platform("linux", "amd64"), where="i").digest == D2


def test_bad_platform_text() -> None:
    with pytest.raises(ImageError, match="invalid platform"):
        m.parse_platform("amd64")


def test_host_platform_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for machine, expected in [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64/v8"),
                              ("armv7l", "linux/arm/v7")]:
        monkeypatch.setattr(m, "_machine", lambda machine=machine: machine)
        assert str(m.host_platform()) == expected


def test_chain_ids_follow_the_spec() -> None:
    diff = ("sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64)
    chains = m.chain_ids(diff)
    second = "sha256:" + hashlib.sha256(f"{diff[0]} {diff[1]}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {diff[2]}".encode()).hexdigest()
    assert chains == (diff[0], second, third)


def test_config_diff_ids_must_match_layers() -> None:
    config = {"rootfs": {"type": "layers", "diff_ids": [D1]}}
    assert m.parse_config(encode(config), 1, where="i")["rootfs"]["diff_ids"] == [D1]
    with pytest.raises(ImageError, match="1 diff_ids for 2 layers"):
        m.parse_config(encode(config), 2, where="i")
    with pytest.raises(ImageError, match="invalid digest"):
        m.parse_config(encode({"rootfs": {"type": "layers", "diff_ids": ["x"]}}), 1, where="i")
