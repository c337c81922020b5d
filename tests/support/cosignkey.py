"""Write a private key as `cosign generate-key-pair` does (go-securesystemslib's encrypted
format: PKCS#8 DER sealed with NaCl secretbox under a scrypt key, JSON in a PEM block)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any


def write_cosign_key(path: Path, key: Any, passphrase: bytes, *, n: int = 1024) -> None:
    """KEY (a cryptography private key) to PATH; N is scrypt's cost (cosign: 32768)."""
    import nacl.secret
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    secret = Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase)
    sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1},
                   "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(sealed).decode()}
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    path.write_text("\n".join(["-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", *lines,
                               "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----", ""]))
