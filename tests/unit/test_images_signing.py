"""cosign payloads: the format written, strict parsing, signing and verifying."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hostctl.images import signing

DIGEST = "sha256:" + "ab" * 32


def test_payload_has_cosigns_layout() -> None:
    payload = signing.make_payload("q.io/team/app:1", DIGEST)
    assert payload.startswith(b'{"critical":{"identity":{"docker-reference":"q.io/team/app:1"},'
                              b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
                              b'"type":"cosign container image signature"},"optional":')
    claims = signing.parse_payload(payload)
    assert claims == signing.Claims(DIGEST, "q.io/team/app:1")


def test_signature_tag() -> None:
    assert signing.signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(extra=1), "unexpected"),
    (lambda d: d.pop("critical"), "missing"),
    (lambda d: d["critical"].update(type="other"), "critical.type"),
    (lambda d: d["critical"]["image"].update(more=1), "critical.image"),
    (lambda d: d["critical"]["identity"].pop("docker-reference"), "critical.identity"),
    (lambda d: d.update(optional=[]), "optional"),
])
def test_strict_parsing(change: object, message: str) -> None:
    doc = json.loads(signing.make_payload("q.io/a", DIGEST))
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        signing.parse_payload(json.dumps(doc).encode())


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ed25519.Ed25519PrivateKey.generate(),
])
def test_sign_then_check(make: object) -> None:
    key = make()  # type: ignore[operator]
    payload = signing.make_payload("q.io/a:1", DIGEST)
    sig = signing.Signature(payload, base64.b64encode(signing.sign_bytes(key, payload)).decode())
    assert signing.check(sig, [key.public_key()], DIGEST).docker_reference == "q.io/a:1"
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not signed by any"):
        signing.check(sig, [other], DIGEST)
    with pytest.raises(ValueError, match="another image"):
        signing.check(sig, [key.public_key()], "sha256:" + "cd" * 32)
    altered = signing.Signature(payload.replace(b"q.io/a:1", b"q.io/b:1"), sig.signature)
    with pytest.raises(ValueError, match="altered"):
        signing.check(altered, [key.public_key()], DIGEST)


def test_signature_must_be_base64() -> None:
    sig = signing.Signature(signing.make_payload("q.io/a", DIGEST), "***")
    with pytest.raises(ValueError, match="base64"):
        signing.check(sig, [], DIGEST)


def test_identity_keeps_what_the_payload_wrote() -> None:
    assert signing.identity_of("q.io/a").tag is None
    assert signing.identity_of("q.io/a:1").tag == "1"
    assert signing.identity_of("localhost:5000/a").tag is None
    assert signing.identity_of("localhost:5000/a:2").tag == "2"


def test_cosign_key_files(tmp_path: object) -> None:
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from hostctl.errors import ImageError
    from tests.support.cosignkey import write_cosign_key

    path = Path(str(tmp_path)) / "cosign.key"
    made = ec.generate_private_key(ec.SECP256R1())
    write_cosign_key(path, made, b"hunter2")
    public = made.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    key = signing.load_private_key(path, b"hunter2")
    payload = signing.make_payload("q.io/a:1", DIGEST)
    sig = signing.Signature(payload, base64.b64encode(signing.sign_bytes(key, payload)).decode())
    verifier = signing.load_public_key(public, where="t")
    assert signing.check(sig, [verifier], DIGEST).docker_reference == "q.io/a:1"
    with pytest.raises(ImageError, match="wrong passphrase"):
        signing.load_private_key(path, b"wrong")


def test_dsse_pae() -> None:
    from hostctl.images.bundles import pae

    assert pae("application/vnd.in-toto+json", b"{}") == \
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}"


def test_bundle_checks() -> None:
    from hostctl.images.bundles import Bundle, check
    from tests.support.sigstorebundle import bundle_json

    key = ec.generate_private_key(ec.SECP256R1())
    good = Bundle(bundle_json(key, DIGEST))
    check(good, [key.public_key()], DIGEST)
    with pytest.raises(ValueError, match="another image"):
        check(good, [key.public_key()], "sha256:" + "cd" * 32)
    with pytest.raises(ValueError, match="not signed by any"):
        check(good, [ec.generate_private_key(ec.SECP256R1()).public_key()], DIGEST)
    with pytest.raises(ValueError, match="altered"):
        check(Bundle(bundle_json(key, DIGEST, tamper=True)), [key.public_key()], DIGEST)
    blob_signature = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                                 "messageSignature": {}}).encode()
    with pytest.raises(ValueError, match="no DSSE envelope"):
        check(Bundle(blob_signature), [key.public_key()], DIGEST)
