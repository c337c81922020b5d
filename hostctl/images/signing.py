"""cosign's key-based signatures (the pre-v3 layout), read and written with `cryptography`.

The signatures of manifest sha256:HEX are the layers of the image tagged sha256-HEX.sig
in the same repository. Each layer's blob (application/vnd.dev.cosign.simplesigning.v1
+json) is the payload

    {"critical": {"identity": {"docker-reference": REF},
                  "image": {"docker-manifest-digest": DIGEST},
                  "type": "cosign container image signature"},
     "optional": {...}}

and its annotation dev.cosignproject.cosign/signature the base64 signature of the payload
bytes (ECDSA P-256 with SHA-256 for cosign's keys; RSA PKCS#1 v1.5 and Ed25519 too).
Verification: the blob's digest, the signature with one of the policy's public keys, then
the payload parsed strictly (only these keys; the digest equal to the image's); what
identity it names is judged by the policy (trust.py). cosign v3's Sigstore bundles
(OCI 1.1 referrers) are read by bundles.py.
cosign is not packaged for Debian 12 and Debian's skopeo/podman are built with sigstore
disabled ("Debian-local change"), so the format is checked against fixtures written here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import OCI_MANIFEST, Descriptor, sha256_digest
from hostctl.images.reference import Reference, parse_reference, validate_digest

if TYPE_CHECKING:
    from hostctl.images.registry import RegistryClient

PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_KIND = "cosign container image signature"
_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
_MAX_SIGNATURES = 64


@dataclass(frozen=True)
class Signature:
    payload: bytes
    signature: str  # base64, as in the annotation


@dataclass(frozen=True)
class Claims:
    """What a payload that passed strict parsing says."""

    manifest_digest: str
    docker_reference: str


def signature_tag(digest: str) -> str:
    return validate_digest(digest).replace(":", "-") + ".sig"


def make_payload(reference: str, digest: str, creator: str = "hostctl") -> bytes:
    """The payload bytes for REFERENCE at DIGEST (cosign's field order, compact JSON)."""
    doc = {"critical": {"identity": {"docker-reference": reference},
                        "image": {"docker-manifest-digest": validate_digest(digest)},
                        "type": SIGNATURE_KIND},
           "optional": {"creator": creator}}
    return json.dumps(doc, separators=(",", ":")).encode()


def parse_payload(payload: bytes) -> Claims:
    """Strict: exactly the keys cosign writes; ValueError naming what is wrong."""
    doc = json.loads(payload)
    _only(doc, {"critical", "optional"}, {"critical"}, "payload")
    critical = doc["critical"]
    _only(critical, {"identity", "image", "type"}, {"identity", "image", "type"}, "critical")
    if critical["type"] != SIGNATURE_KIND:
        raise ValueError(f"critical.type is {critical['type']!r}, not {SIGNATURE_KIND!r}")
    _only(critical["image"], {"docker-manifest-digest"}, {"docker-manifest-digest"},
          "critical.image")
    _only(critical["identity"], {"docker-reference"}, {"docker-reference"}, "critical.identity")
    digest, reference = critical["image"]["docker-manifest-digest"], \
        critical["identity"]["docker-reference"]
    if not isinstance(digest, str) or not isinstance(reference, str):
        raise ValueError("digest or reference is not a string")
    optional = doc.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise ValueError("optional is not an object")
    return Claims(digest, reference)


def _only(value: Any, allowed: set[str], required: set[str], what: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    extra, missing = set(value) - allowed, required - set(value)
    if extra or missing:
        raise ValueError(f"{what}: unexpected {sorted(extra)} / missing {sorted(missing)}")


def load_public_key(pem: bytes, *, where: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem)
    except ValueError as exc:
        raise ImageError(f"not a PEM public key: {exc}", where=where) from None


def verify_bytes(key: Any, signature: bytes, payload: bytes) -> bool:
    """True if SIGNATURE over PAYLOAD verifies with KEY (EC, RSA or Ed25519)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def check(signature: Signature, keys: list[Any], digest: str) -> Claims:
    """The payload's claims if SIGNATURE is by one of KEYS and for DIGEST; ValueError
    saying why not."""
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signature annotation is not base64") from None
    if not any(verify_bytes(key, raw, signature.payload) for key in keys):
        raise ValueError("not signed by any of the policy's keys (or the payload was "
                         "altered)")
    try:
        claims = parse_payload(signature.payload)
    except ValueError as exc:
        raise ValueError(f"invalid payload: {exc}") from None
    if claims.manifest_digest != digest:
        raise ValueError(f"signed for another image ({claims.manifest_digest})")
    return claims


def fetch_signatures(client: RegistryClient, ref: Reference, digest: str) -> list[Signature]:
    """The cosign signatures stored for DIGEST in REF's repository (none: empty)."""
    tag = signature_tag(digest)
    try:
        data, _, _ = client.get_manifest(ref, tag)
    except ImageError as exc:
        if "not found" in exc.message:
            return []
        raise
    try:
        layers = json.loads(data).get("layers") or []
    except (ValueError, AttributeError):
        raise ImageError(f"signature manifest {tag} is not JSON", where=str(ref)) from None
    found = []
    for layer in layers[:_MAX_SIGNATURES]:
        annotations = layer.get("annotations") or {}
        if layer.get("mediaType") != PAYLOAD_TYPE or SIGNATURE_ANNOTATION not in annotations:
            continue
        desc = Descriptor(PAYLOAD_TYPE, validate_digest(str(layer.get("digest")),
                                                        where=str(ref)), int(layer["size"]))
        payload = client.fetch_bytes(ref, desc, 1024 * 1024)  # digest verified
        found.append(Signature(payload, str(annotations[SIGNATURE_ANNOTATION])))
    return found


def load_private_key(path: Path, passphrase: bytes | None) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the signing key: {exc.strerror}", where=str(path)) \
            from None
    if b"ENCRYPTED SIGSTORE PRIVATE KEY" in pem or b"ENCRYPTED COSIGN PRIVATE KEY" in pem:
        return _cosign_key(pem, passphrase, where=str(path))
    try:
        return load_pem_private_key(pem, passphrase)
    except (ValueError, TypeError) as exc:
        raise ImageError(f"cannot load the signing key: {exc}", where=str(path),
                         hint="a PEM private key; give its passphrase with "
                         "--sign-passphrase-file") from None


def _cosign_key(pem: bytes, passphrase: bytes | None, *, where: str) -> Any:
    """A key from `cosign generate-key-pair`: PKCS#8 DER sealed with NaCl secretbox under
    a scrypt-derived key (go-securesystemslib's encrypted format, JSON in a PEM block)."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        import nacl.exceptions
        import nacl.secret
    except ImportError:
        raise ImageError("cosign key files need PyNaCl", where=where,
                         hint="install python3-nacl, or use a PKCS#8 PEM key") from None
    try:
        body = b"".join(line for line in pem.strip().splitlines()[1:-1])
        doc = json.loads(base64.b64decode(body))
        kdf, cipher = doc["kdf"], doc["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise ValueError(f"unsupported {kdf['name']} / {cipher['name']}")
        params = kdf["params"]
        secret = Scrypt(salt=base64.b64decode(kdf["salt"]), length=32, n=int(params["N"]),
                        r=int(params["r"]), p=int(params["p"])).derive(passphrase or b"")
        der = nacl.secret.SecretBox(secret).decrypt(base64.b64decode(doc["ciphertext"]),
                                                    base64.b64decode(cipher["nonce"]))
    except nacl.exceptions.CryptoError:
        raise ImageError("wrong passphrase for the cosign key", where=where,
                         hint="give it with --sign-passphrase-file") from None
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ImageError(f"not a cosign private key: {exc}", where=where) from None
    return load_der_private_key(der, None)


def sign_bytes(key: Any, payload: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(payload)
    raise ImageError("unsupported signing key type", hint="use an EC P-256, RSA or Ed25519 key")


def push_signature(client: RegistryClient, ref: Reference, digest: str, key_path: Path,
                   passphrase: bytes | None, *, registries_d: tuple[Path, ...] | None = None,
                   bundle: tuple[str, int] | None = None) -> str:
    """Sign DIGEST as REF with the key at KEY_PATH and add the signature to the
    sha256-HEX.sig image (kept signatures stay); the tag written. With BUNDLE (the signed
    document's media type and size), as cosign v3 does instead: a Sigstore bundle
    attached as a referrer (bundles.push); the referrer's digest."""
    from hostctl.images.trust import uses_sigstore_attachments
    from hostctl.images.upload import Pusher

    if not uses_sigstore_attachments(ref, registries_d):
        raise ImageError("writing sigstore signatures is disabled by configuration",
                         where=str(ref), hint="set `use-sigstore-attachments: true` for this "
                         "registry in /etc/containers/registries.d/*.yaml")
    key = load_private_key(key_path, passphrase)
    if bundle is not None:
        from hostctl.images import bundles

        return bundles.push(client, ref, digest, bundle[0], bundle[1], key)
    identity = str(Reference(ref.registry, ref.repository, ref.tag, None)) if ref.tag \
        else ref.name
    payload = make_payload(identity, digest)
    signature = base64.b64encode(sign_bytes(key, payload)).decode()
    layers = _kept_layers(client, ref, digest)
    new = {"mediaType": PAYLOAD_TYPE, "digest": sha256_digest(payload), "size": len(payload),
           "annotations": {SIGNATURE_ANNOTATION: signature}}
    layers = [layer for layer in layers if layer.get("digest") != new["digest"]] + [new]
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                         "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                         "rootfs": {"type": "layers",
                                    "diff_ids": [layer["digest"] for layer in layers]},
                         "config": {}}, separators=(",", ":")).encode()
    pusher = Pusher(client, ref)
    _push_bytes(pusher, Descriptor(PAYLOAD_TYPE, str(new["digest"]), len(payload)), payload)
    _push_bytes(pusher, Descriptor(_CONFIG_TYPE, sha256_digest(config), len(config)), config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": _CONFIG_TYPE, "size": len(config),
                                      "digest": sha256_digest(config)},
                           "layers": layers}, separators=(",", ":")).encode()
    tag = signature_tag(digest)
    pusher.manifest(manifest, OCI_MANIFEST, tag)
    return tag


def _kept_layers(client: RegistryClient, ref: Reference, digest: str) -> list[dict[str, Any]]:
    try:
        data, _, _ = client.get_manifest(ref, signature_tag(digest))
    except ImageError as exc:
        if "not found" in exc.message:
            return []
        raise
    layers = json.loads(data).get("layers") or []
    return [layer for layer in layers if isinstance(layer, dict)]


def _push_bytes(pusher: Any, desc: Descriptor, data: bytes) -> None:
    import io

    pusher.blob(desc, lambda: io.BytesIO(data))


def identity_of(text: str) -> Reference:
    """A payload's docker-reference as a Reference (tag/digest kept, none added)."""
    ref = parse_reference(text)
    bare = "@" not in text and ":" not in text.rsplit("/", 1)[-1]
    return Reference(ref.registry, ref.repository, None if bare else ref.tag, ref.digest)
