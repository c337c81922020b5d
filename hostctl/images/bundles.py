"""cosign v3's signatures: Sigstore bundles attached to an image as OCI 1.1 referrers.

Found through the referrers API (`GET /v2/NAME/referrers/DIGEST`) or, where the registry
has none (docker-registry 2.8 answers 404), the referrers tag scheme (an index tagged
sha256-HEX). Each referrer whose artifactType is a Sigstore bundle is a manifest whose one
layer is the bundle's JSON. An image signature is a DSSE envelope
(payloadType application/vnd.in-toto+json) around an in-toto Statement v1 with predicate
type https://sigstore.dev/cosign/sign/v1 whose subject names the image's digest; the
envelope's signatures are over DSSE's pre-authentication encoding (PAE).

Verified here against the policy's public keys (the key-based case); a bundle's Rekor
entries and certificates are not checked (Fulcio/Rekor requirements are refused by the
policy reader). The statement names no image reference, only the digest: what identity
it gives is the repository the bundle was found in, as for cosign's own old signatures.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import OCI_INDEX, Descriptor
from hostctl.images.reference import Reference, validate_digest

if TYPE_CHECKING:
    from hostctl.images.registry import RegistryClient

BUNDLE_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_EMPTY = b"{}"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
_MAX_BUNDLES = 64
_MAX_BUNDLE = 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    """One Sigstore bundle's JSON, as fetched (its blob digest verified)."""

    data: bytes


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signatures cover."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def check(bundle: Bundle, keys: list[Any], digest: str) -> None:
    """ValueError saying why BUNDLE is no signature of DIGEST by one of KEYS."""
    from hostctl.images.signing import verify_bytes

    doc = json.loads(bundle.data)
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
            BUNDLE_TYPE_PREFIX):
        raise ValueError("not a Sigstore bundle")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise ValueError("the bundle holds no DSSE envelope (not an image signature)")
    if envelope.get("payloadType") != IN_TOTO:
        raise ValueError(f"payloadType {envelope.get('payloadType')!r} is not {IN_TOTO}")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
        sigs = [base64.b64decode(str(s.get("sig", "")), validate=True)
                for s in envelope.get("signatures") or [] if isinstance(s, dict)]
    except (binascii.Error, ValueError):
        raise ValueError("the envelope's payload or signature is not base64") from None
    signed = pae(IN_TOTO, payload)
    if not any(verify_bytes(key, sig, signed) for key in keys for sig in sigs):
        raise ValueError("not signed by any of the policy's keys (or the statement was "
                         "altered)")
    statement = json.loads(payload)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_V1:
        raise ValueError("the payload is not an in-toto Statement v1")
    if statement.get("predicateType") != SIGN_PREDICATE:
        raise ValueError(f"predicate {statement.get('predicateType')!r} is not an image "
                         "signature")
    hexes = [s.get("digest", {}).get("sha256") for s in statement.get("subject") or []
             if isinstance(s, dict) and isinstance(s.get("digest"), dict)]
    if validate_digest(digest).removeprefix("sha256:") not in hexes:
        raise ValueError(f"signed for another image ({', '.join(map(str, hexes)) or 'none'})")


def fetch(client: RegistryClient, ref: Reference, digest: str) -> list[Bundle]:
    """The Sigstore bundles attached to DIGEST in REF's repository."""
    index = _referrers(client, ref, digest)
    found = []
    for entry in (index.get("manifests") or [])[:_MAX_BUNDLES]:
        if not isinstance(entry, dict) or not str(entry.get("artifactType", "")).startswith(
                BUNDLE_TYPE_PREFIX):
            continue
        target = validate_digest(str(entry.get("digest")), where=str(ref))
        data, _, _ = client.get_manifest(ref, target)  # verified against its digest
        try:
            layer = json.loads(data)["layers"][0]
            desc = Descriptor(str(layer["mediaType"]), str(layer["digest"]), int(layer["size"]))
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not a bundle manifest: nothing to verify
        validate_digest(desc.digest, where=str(ref))
        found.append(Bundle(client.fetch_bytes(ref, desc, _MAX_BUNDLE)))
    return found


def _referrers(client: RegistryClient, ref: Reference, digest: str) -> dict[str, Any]:
    """The referrers index: the API's answer, else the sha256-HEX tag's, else empty."""
    response = client.send(ref, "GET", f"referrers/{validate_digest(digest)}",
                           headers={"Accept": OCI_INDEX})
    try:
        if response.status == 200:
            body = response.read(4 * 1024 * 1024, decode_content=False)
            return _index(body, ref)
    finally:
        response.drain_conn()
        response.release_conn()
    try:
        data, _, _ = client.get_manifest(ref, digest.replace(":", "-"))
    except ImageError as exc:
        if "not found" in exc.message:
            return {}
        raise
    return _index(data, ref)


def _index(data: bytes, ref: Reference) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        raise ImageError("the referrers index is not JSON", where=str(ref)) from None
    return doc if isinstance(doc, dict) else {}


def push(client: RegistryClient, ref: Reference, digest: str, media_type: str, size: int,
         key: Any) -> str:
    """Sign DIGEST (a MEDIA_TYPE document of SIZE bytes in REF's repository) with KEY as
    cosign v3 does: a bundle attached as a referrer, listed in the referrers tag index
    (sha256-HEX) where the registry has no referrers API. The referrer's digest."""
    import datetime
    import hashlib

    from cryptography.hazmat.primitives import serialization

    from hostctl.images.manifest import OCI_MANIFEST, sha256_digest
    from hostctl.images.signing import sign_bytes
    from hostctl.images.upload import Pusher

    statement = json.dumps({"_type": STATEMENT_V1, "subject": [
        {"name": ref.name, "digest": {"sha256": validate_digest(digest)[7:]}}],
        "predicateType": SIGN_PREDICATE, "predicate": {}}, separators=(",", ":")).encode()
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    bundle = json.dumps({
        "mediaType": BUNDLE_TYPE,
        "verificationMaterial": {"publicKey": {
            "hint": base64.b64encode(hashlib.sha256(public).digest()).decode()}},
        "dsseEnvelope": {"payload": base64.b64encode(statement).decode(),
                         "payloadType": IN_TOTO,
                         "signatures": [{"sig": base64.b64encode(
                             sign_bytes(key, pae(IN_TOTO, statement))).decode(),
                             "keyid": ""}]}}, separators=(",", ":")).encode()
    pusher = Pusher(client, ref)
    for data in (bundle, _EMPTY):
        pusher.blob(Descriptor("", sha256_digest(data), len(data)), partial(_bytes, data))
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope",
                   "dev.sigstore.bundle.predicateType": SIGN_PREDICATE,
                   "org.opencontainers.image.created": datetime.datetime.now(
                       datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    bundle_digest = sha256_digest(bundle)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": sha256_digest(_EMPTY), "size": len(_EMPTY)},
        "layers": [{"mediaType": BUNDLE_TYPE, "digest": bundle_digest, "size": len(bundle),
                    "annotations": {"org.opencontainers.image.title":
                                    bundle_digest.replace(":", "-") + ".sigstore.json"}}],
        "subject": {"mediaType": media_type, "digest": digest, "size": size},
        "annotations": annotations}, separators=(",", ":")).encode()
    referrer = pusher.manifest(manifest, OCI_MANIFEST, sha256_digest(manifest))
    if not _has_referrers_api(client, ref, digest):
        _add_to_tag_index(pusher, client, ref, digest, {
            "mediaType": OCI_MANIFEST, "digest": referrer, "size": len(manifest),
            "artifactType": BUNDLE_TYPE, "annotations": annotations})
    return referrer


def _bytes(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)


def _has_referrers_api(client: RegistryClient, ref: Reference, digest: str) -> bool:
    response = client.send(ref, "GET", f"referrers/{digest}", headers={"Accept": OCI_INDEX})
    try:
        return response.status == 200
    finally:
        response.drain_conn()
        response.release_conn()


def _add_to_tag_index(pusher: Any, client: RegistryClient, ref: Reference, digest: str,
                      entry: dict[str, Any]) -> None:
    tag = digest.replace(":", "-")
    try:
        data, _, _ = client.get_manifest(ref, tag)
        index = _index(data, ref)
    except ImageError as exc:
        if "not found" not in exc.message:
            raise
        index = {}
    entries = [e for e in index.get("manifests") or []
               if isinstance(e, dict) and e.get("digest") != entry["digest"]]
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*entries, entry]}
    pusher.manifest(json.dumps(document, separators=(",", ":")).encode(), OCI_INDEX, tag)
