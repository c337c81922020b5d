"""Reference parsing and normalisation, digest validation, loopback detection."""

from __future__ import annotations

import pytest

from hostctl.errors import ImageError
from hostctl.images.reference import is_loopback, parse_reference, validate_digest

HEX = "a" * 64
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "canonical", "api_host"),
    [
        ("busybox", "docker.io/library/busybox:latest", "registry-1.docker.io"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "registry-1.docker.io"),
        ("library/busybox", "docker.io/library/busybox:latest", "registry-1.docker.io"),
        ("grafana/grafana:10.0.1", "docker.io/grafana/grafana:10.0.1", "registry-1.docker.io"),
        ("docker.io/nginx", "docker.io/library/nginx:latest", "registry-1.docker.io"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx:latest",
         "registry-1.docker.io"),
        ("quay.io/podman/hello", "quay.io/podman/hello:latest", "quay.io"),
        ("ghcr.io/org/team/app:v1.2.3-rc_1", "ghcr.io/org/team/app:v1.2.3-rc_1", "ghcr.io"),
        ("localhost/app", "localhost/app:latest", "localhost"),
        ("localhost:5000/demo/hello:1", "localhost:5000/demo/hello:1", "localhost:5000"),
        ("127.0.0.1:5000/demo/hello:1", "127.0.0.1:5000/demo/hello:1", "127.0.0.1:5000"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000"),
        ("Registry/x", "Registry/x:latest", "Registry"),
        (f"alpine@{DIGEST}", f"docker.io/library/alpine@{DIGEST}", "registry-1.docker.io"),
        (f"alpine:3.20@{DIGEST}", f"docker.io/library/alpine:3.20@{DIGEST}",
         "registry-1.docker.io"),
        ("my-registry.example.com:443/a__b/c-d/e.f:tag",
         "my-registry.example.com:443/a__b/c-d/e.f:tag", "my-registry.example.com:443"),
    ],
)
def test_parse_and_normalise(text: str, canonical: str, api_host: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == canonical
    assert ref.api_host == api_host
    assert parse_reference(str(ref)) == ref  # canonical form is a fixed point


def test_fields_and_target() -> None:
    ref = parse_reference(f"localhost:5000/demo/hello:1@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "localhost:5000", "demo/hello", "1", DIGEST)
    assert ref.target == DIGEST  # the digest pins
    assert parse_reference("x:7").target == "7"


@pytest.mark.parametrize(
    "text",
    [
        "", " busybox", "Busybox", "busybox:", "busybox:-tag", "busybox:.tag",
        "busybox:" + "t" * 129, "a//b", "a/b/", "/a", "a__-b", "a..b", "a-", "_a",
        "busybox@sha256:abc", f"busybox@sha256:{'A' * 64}", f"busybox@sha512:{HEX}",
        "busybox@sha256:../x", "example.com:port/x", "-bad.com/x", HEX, "a b",
        "docker.io/" + "a" * 250,
    ],
)
def test_bad_references(text: str) -> None:
    with pytest.raises(ImageError, match="invalid image reference"):
        parse_reference(text)


@pytest.mark.parametrize(
    "digest",
    ["sha256:../x", f"sha256:{'A' * 64}", f"sha256:{'a' * 63}", f"sha256:{'a' * 65}",
     f"sha512:{HEX}", HEX, f"sha256:{HEX}\n", f"sha256:{'g' * 64}", ""],
)
def test_validate_digest_refuses(digest: str) -> None:
    with pytest.raises(ImageError, match="invalid digest"):
        validate_digest(digest)


def test_validate_digest_accepts() -> None:
    assert validate_digest(DIGEST) == DIGEST


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [("localhost", True), ("localhost:5000", True), ("127.0.0.1", True),
     ("127.1.2.3:80", True), ("[::1]", True), ("[::1]:5000", True), ("docker.io", False),
     ("10.0.0.1:5000", False), ("localhost.example.com", False), ("[::2]:5000", False)],
)
def test_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
    assert parse_reference(f"{registry}/x").scheme == ("http" if loopback else "https")
