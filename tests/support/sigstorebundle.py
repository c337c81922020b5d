"""cosign v3 image signatures for tests: a Sigstore bundle (DSSE envelope around an in-toto
statement) attached as an OCI 1.1 referrer, through the referrers tag scheme (an index
tagged sha256-HEX), which is what cosign writes to a registry without the referrers API."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.support import imagebuild as ib

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = b"{}"


def bundle_json(key: Any, digest: str, *, predicate: str = "https://sigstore.dev/cosign/sign/v1",
                tamper: bool = False) -> bytes:
    """A bundle signing DIGEST with KEY (a cryptography EC private key)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                            "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
                            "predicateType": predicate, "predicate": {}}).encode()
    kind = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(statement), statement)
    sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    if tamper:
        statement = statement.replace(b'"predicate": {}', b'"predicate": {"x": 1}')
    return json.dumps({"mediaType": BUNDLE_TYPE,
                       "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
                       "dsseEnvelope": {"payload": base64.b64encode(statement).decode(),
                                        "payloadType": kind.decode(),
                                        "signatures": [{"sig": base64.b64encode(sig).decode(),
                                                        "keyid": ""}]}}).encode()


def attach(host: str, repo: str, digest: str, bundle: bytes) -> None:
    """Attach BUNDLE to DIGEST in REPO as cosign does without a referrers API."""
    ib.push_blob(host, repo, bundle)
    ib.push_blob(host, repo, EMPTY)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": ib.MediaType.OCI, "artifactType": BUNDLE_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                   "digest": ib.sha256_digest(EMPTY)},
        "layers": [{"mediaType": BUNDLE_TYPE, "size": len(bundle),
                    "digest": ib.sha256_digest(bundle)}],
        "subject": {"mediaType": ib.MediaType.OCI, "digest": digest, "size": 1}}).encode()
    manifest_digest = ib.push_manifest(host, repo, ib.sha256_digest(manifest), manifest,
                                       ib.MediaType.OCI)
    index = json.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [
        {"mediaType": ib.MediaType.OCI, "digest": manifest_digest, "size": len(manifest),
         "artifactType": BUNDLE_TYPE}]}).encode()
    ib.push_manifest(host, repo, digest.replace(":", "-"), index, ib.OCI_INDEX)
