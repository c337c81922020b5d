"""Signature policy at pull time, against docker-registry, with keys made here.

cosign itself is not packaged for Debian 12, so cosign's side is a fixture written in its
format (payload with the repository-only identity cosign writes, the annotation, the
sha256-HEX.sig tag); hostctl's own signing goes through `hostctl image copy
--sign-by-sigstore-key`. The policy and registries.d are the per-user files under HOME,
found as the containers tools find them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hostctl.errors import ImageError
from hostctl.images import signing
from hostctl.images.pull import pull
from hostctl.images.store import Store
from hostctl.images.trust import TrustConfig
from tests.support import imagebuild as ib
from tests.support.cosignkey import write_cosign_key
from tests.support.registry import Registry

pytestmark = pytest.mark.integration
HOSTCTL = str(Path(sys.executable).parent / "hostctl")


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with Registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Path:
    """HOME with ~/.config/containers/{policy.json,registries.d} and keys A and B."""
    home = tmp_path_factory.mktemp("home")
    config = home / ".config" / "containers"
    (config / "registries.d").mkdir(parents=True)
    (config / "registries.d" / "default.yaml").write_text(
        "default-docker:\n  use-sigstore-attachments: true\n")
    for name in ("a", "b"):
        key = ec.generate_private_key(ec.SECP256R1())
        (home / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (home / f"{name}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        write_cosign_key(home / f"{name}.cosign.key", key, b"pass phrase")
    (home / "passphrase").write_text("pass phrase\n")
    host = registry.host
    signed = [{"type": "sigstoreSigned", "keyPath": str(home / "a.pub")}]
    policy = {"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {
        f"{host}/signed": signed,
        f"{host}/cosign": [{**signed[0], "signedIdentity": {"type": "matchRepository"}}],
        f"{host}/rejected": [{"type": "reject"}],
        f"{host}/gpg": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/dev/null"}],
    }}}
    (config / "policy.json").write_text(json.dumps(policy))
    return home


def _env(home: Path, tmp: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "HOSTCTL_STATE_DIR": str(tmp / "state"), "HOSTCTL_CONFIG_DIR": str(tmp / "conf"),
            "HOSTCTL_RUN_DIR": str(tmp / "run")}


def hostctl(home: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOSTCTL, *args], capture_output=True, text=True,
                          env=_env(home, tmp), timeout=120)


def trust(home: Path) -> TrustConfig:
    config = home / ".config" / "containers"
    return TrustConfig(policy=(config / "policy.json",), registries_d=(config / "registries.d",))


def publish(registry: Registry, tmp: Path, repo: str, image: ib.BuiltImage,
            key: Path | None, home: Path) -> None:
    """Copy IMAGE to REPO:1 with hostctl, signed with KEY if given."""
    ib.write_oci_layout(tmp / "layout", "x", image)
    sign = ["--sign-by-sigstore-key", str(key)] if key else []
    if key is not None and key.name.endswith(".cosign.key"):
        sign += ["--sign-passphrase-file", str(home / "passphrase")]
    done = hostctl(home, tmp, "image", "copy", *sign, f"oci:{tmp / 'layout'}:x",
                   f"docker://{registry.host}/{repo}:1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image.digest


def _blob(host: str, repo: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"http://{host}/v2/{repo}/blobs/{digest}") as response:
        data: bytes = response.read()
        return data


def put_signature(host: str, repo: str, digest: str, layers: list[tuple[bytes, str]]) -> None:
    """Write a cosign signature image (payload, base64 signature)... for DIGEST in REPO."""
    descriptors = []
    for payload, sig in layers:
        ib.push_blob(host, repo, payload)
        descriptors.append({"mediaType": signing.PAYLOAD_TYPE, "size": len(payload),
                            "digest": ib.sha256_digest(payload),
                            "annotations": {signing.SIGNATURE_ANNOTATION: sig}})
    config = json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {
        "type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}).encode()
    ib.push_blob(host, repo, config)
    manifest = {"schemaVersion": 2, "mediaType": ib.MediaType.OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "size": len(config), "digest": ib.sha256_digest(config)},
                "layers": descriptors}
    ib.push_manifest(host, repo, signing.signature_tag(digest), json.dumps(manifest).encode(),
                     ib.MediaType.OCI)


def signatures_of(host: str, repo: str, digest: str) -> list[tuple[bytes, str]]:
    _, _, data = ib.fetch_manifest(host, repo, signing.signature_tag(digest))
    return [(_blob(host, repo, layer["digest"]),
             layer["annotations"][signing.SIGNATURE_ANNOTATION])
            for layer in json.loads(data)["layers"]]


def cosign_style(key: Path, identity: str, digest: str) -> tuple[bytes, str]:
    """A signature as `cosign sign --key` writes it: the repository as identity."""
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    payload = json.dumps({"critical": {"identity": {"docker-reference": identity},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"},
                          "optional": None}, separators=(",", ":")).encode()
    return payload, base64.b64encode(signing.sign_bytes(private, payload)).decode()


def refused(home: Path, store: Store, ref: str, match: str) -> None:
    with pytest.raises(ImageError, match=match) as caught:
        pull(store, ref, trust=trust(home))
    assert store.images() == {}
    assert not store.blobs.exists() or not any(store.blobs.iterdir())  # nothing stored
    assert "policy.json" in str(caught.value)  # names the requirement's place


def test_signed_by_the_key_is_accepted_and_unsigned_refused(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    image = ib.busybox_image(Cmd=["signed"]).build()
    publish(registry, tmp_path, "signed/app", image, home / "a.key", home)
    done = hostctl(home, tmp_path, "pull", f"{registry.host}/signed/app:1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image.digest
    by_cosign_key = ib.busybox_image(Cmd=["cosign key"]).build()
    publish(registry, tmp_path, "signed/cosign-key", by_cosign_key, home / "a.cosign.key", home)
    assert pull(Store(tmp_path / "ck"), f"{registry.host}/signed/cosign-key:1",
                trust=trust(home)).manifest_digest == by_cosign_key.digest
    unsigned = ib.busybox_image(Cmd=["unsigned"]).build()
    publish(registry, tmp_path, "signed/plain", unsigned, None, home)
    refused(home, Store(tmp_path / "s1"), f"{registry.host}/signed/plain:1",
            "no signature for " + unsigned.digest)
    cli = hostctl(home, tmp_path / "cli", "pull", f"{registry.host}/signed/plain:1")
    assert cli.returncode != 0 and "sigstoreSigned" in cli.stderr
    # the default policy of the same file still accepts what no scope names
    publish(registry, tmp_path, "free/plain", unsigned, None, home)
    assert pull(Store(tmp_path / "s2"), f"{registry.host}/free/plain:1",
                trust=trust(home)).manifest_digest == unsigned.digest


def test_another_key_another_digest_another_repository_tampered(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    host = registry.host
    first = ib.busybox_image(Cmd=["first"]).build()
    second = ib.busybox_image(Cmd=["second"]).build()
    publish(registry, tmp_path, "signed/other-key", first, home / "b.key", home)
    refused(home, Store(tmp_path / "k"), f"{host}/signed/other-key:1", "not signed by any")

    publish(registry, tmp_path, "signed/first", first, home / "a.key", home)
    publish(registry, tmp_path, "signed/second", second, None, home)
    put_signature(host, "signed/second", second.digest,
                  signatures_of(host, "signed/first", first.digest))
    refused(home, Store(tmp_path / "d"), f"{host}/signed/second:1",
            "signed for another image")

    publish(registry, tmp_path, "signed/moved", first, None, home)
    put_signature(host, "signed/moved", first.digest,
                  signatures_of(host, "signed/first", first.digest))
    refused(home, Store(tmp_path / "r"), f"{host}/signed/moved:1",
            f"signed for {host}/signed/first:1")

    payload, sig = signatures_of(host, "signed/first", first.digest)[0]
    tampered = payload.replace(b'"hostctl"', b'"mallory"')
    assert tampered != payload
    publish(registry, tmp_path, "signed/tampered", first, None, home)
    put_signature(host, "signed/tampered", first.digest, [(tampered, sig)])
    refused(home, Store(tmp_path / "t"), f"{host}/signed/tampered:1", "payload was altered")


def test_cosign_signatures_name_the_repository(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    host = registry.host
    image = ib.busybox_image(Cmd=["cosign"]).build()
    for repo in ("cosign/app", "signed/by-cosign"):
        publish(registry, tmp_path, repo, image, None, home)
        put_signature(host, repo, image.digest,
                      [cosign_style(home / "a.key", f"{host}/{repo}", image.digest)])
    assert pull(Store(tmp_path / "m"), f"{host}/cosign/app:1",
                trust=trust(home)).manifest_digest == image.digest
    # matchRepoDigestOrExact: a tag needs the tag signed; a digest, the repository
    refused(home, Store(tmp_path / "e"), f"{host}/signed/by-cosign:1",
            "matchRepoDigestOrExact does not accept")
    assert pull(Store(tmp_path / "p"), f"{host}/signed/by-cosign@{image.digest}",
                trust=trust(home)).manifest_digest == image.digest


def test_reject_and_gpg_requirements_say_why(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    image = ib.busybox_image(Cmd=["x"]).build()
    publish(registry, tmp_path, "rejected/app", image, None, home)
    publish(registry, tmp_path, "gpg/app", image, None, home)
    refused(home, Store(tmp_path / "r"), f"{registry.host}/rejected/app:1", "reject")
    refused(home, Store(tmp_path / "g"), f"{registry.host}/gpg/app:1",
            "signedBy .GPG simple signing., which hostctl does not support")
    copied = hostctl(home, tmp_path, "image", "copy", f"docker://{registry.host}/rejected/app:1",
                     f"oci:{tmp_path / 'out'}")
    assert copied.returncode != 0 and "reject" in copied.stderr
    assert not (tmp_path / "out").exists()


def test_a_stored_image_starts_without_loading_the_policy_code(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    image = ib.busybox_image(Cmd=["lean"]).build()
    publish(registry, tmp_path, "signed/lean", image, home / "a.key", home)
    store = Store(tmp_path / "s")
    ref = f"{registry.host}/signed/lean:1"
    pull(store, ref, trust=trust(home))
    script = ("import sys\nfrom pathlib import Path\nfrom hostctl.images.pull import pull\n"
              "from hostctl.images.store import Store\n"
              f"pull(Store(Path({str(store.root)!r})), {ref!r})\n"
              "print(sorted(m for m in ('hostctl.images.trust', 'hostctl.images.signing', "
              "'cryptography', 'yaml', 'urllib3') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(home)}, check=True)
    assert done.stdout.strip() == "[]"


def test_a_unit_whose_image_is_refused_fails_its_start_with_that_line(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    image = ib.busybox_image(Cmd=["x"]).build()
    publish(registry, tmp_path, "rejected/unit", image, None, home)
    declarations = tmp_path / "declarations"
    declarations.mkdir()
    (declarations / "web.yaml").write_text(f"image: {registry.host}/rejected/unit:1\n")
    env = {**_env(home, tmp_path), "HOSTCTL_DECLARATION_PATH": str(declarations)}
    done = subprocess.run([HOSTCTL, "launch", "web"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hostctl launch web: {registry.host}/rejected/unit:1 (")
    assert "refused by policy: reject" in last
    store = Store(tmp_path / "state" / "storage")
    assert store.images() == {}
    assert not store.blobs.exists() or not any(store.blobs.iterdir())


def test_cosign_v3_bundles_attached_as_referrers(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    """docker-registry 2.8 has no referrers API: cosign v3 uses the sha256-HEX tag."""
    from tests.support.sigstorebundle import attach, bundle_json

    host = registry.host
    key_a = serialization.load_pem_private_key((home / "a.key").read_bytes(), None)
    key_b = serialization.load_pem_private_key((home / "b.key").read_bytes(), None)
    cases = {"good": (key_a, {}), "other-key": (key_b, {}),
             "tampered": (key_a, {"tamper": True}),
             "attestation": (key_a, {"predicate": "https://slsa.dev/provenance/v1"})}
    for name, (key, options) in cases.items():
        image = ib.busybox_image(Cmd=["v3", name]).build()
        publish(registry, tmp_path, f"cosign/v3-{name}", image, None, home)
        attach(host, f"cosign/v3-{name}", image.digest,
               bundle_json(key, image.digest, **options))  # type: ignore[arg-type]
    good = ib.busybox_image(Cmd=["v3", "good"]).build()
    assert pull(Store(tmp_path / "ok"), f"{host}/cosign/v3-good:1",
                trust=trust(home)).manifest_digest == good.digest
    refused(home, Store(tmp_path / "b"), f"{host}/cosign/v3-other-key:1", "not signed by any")
    refused(home, Store(tmp_path / "t"), f"{host}/cosign/v3-tampered:1", "statement was altered")
    refused(home, Store(tmp_path / "s"), f"{host}/cosign/v3-attestation:1",
            "is not an image signature")
    other = ib.busybox_image(Cmd=["v3", "moved"]).build()
    publish(registry, tmp_path, "cosign/v3-moved", other, None, home)
    attach(host, "cosign/v3-moved", other.digest, bundle_json(key_a, good.digest))
    refused(home, Store(tmp_path / "m"), f"{host}/cosign/v3-moved:1", "signed for another")
    # a bundle names only the digest: matchRepoDigestOrExact accepts it by digest, not by tag
    publish(registry, tmp_path, "signed/v3", good, None, home)
    attach(host, "signed/v3", good.digest, bundle_json(key_a, good.digest))
    refused(home, Store(tmp_path / "d"), f"{host}/signed/v3:1", "names no reference")
    assert pull(Store(tmp_path / "p"), f"{host}/signed/v3@{good.digest}",
                trust=trust(home)).manifest_digest == good.digest


def test_hostctl_writes_cosign_v3_bundles_that_it_verifies(
        tmp_path: Path, registry: Registry, home: Path) -> None:
    host = registry.host
    image = ib.busybox_image(Cmd=["bundle"]).build()
    ib.write_oci_layout(tmp_path / "layout", "x", image)
    for key in ("a.key", "b.key"):  # two signatures: the referrers index keeps both
        done = hostctl(home, tmp_path, "image", "copy", "--sign-format", "bundle",
                       "--sign-by-sigstore-key", str(home / key), f"oci:{tmp_path / 'layout'}:x",
                       f"docker://{host}/cosign/bundled:1")
        assert done.returncode == 0, done.stderr
    _, media_type, data = ib.fetch_manifest(host, "cosign/bundled",
                                            image.digest.replace(":", "-"))
    index = json.loads(data)
    assert media_type == ib.OCI_INDEX and len(index["manifests"]) == 2
    assert {m["artifactType"] for m in index["manifests"]} == {
        "application/vnd.dev.sigstore.bundle.v0.3+json"}
    _, _, referrer = ib.fetch_manifest(host, "cosign/bundled", index["manifests"][0]["digest"])
    assert json.loads(referrer)["subject"] == {"mediaType": ib.MediaType.OCI,
                                               "digest": image.digest,
                                               "size": len(image.manifest)}
    assert pull(Store(tmp_path / "ok"), f"{host}/cosign/bundled:1",
                trust=trust(home)).manifest_digest == image.digest
    # only key b's bundle: refused by a policy that trusts key a
    publish(registry, tmp_path, "cosign/bundled-b", image, None, home)
    done = hostctl(home, tmp_path, "image", "copy", "--sign-format", "bundle",
                   "--sign-by-sigstore-key", str(home / "b.key"), f"oci:{tmp_path / 'layout'}:x",
                   f"docker://{host}/cosign/bundled-b:1")
    assert done.returncode == 0, done.stderr
    refused(home, Store(tmp_path / "b"), f"{host}/cosign/bundled-b:1", "not signed by any")
