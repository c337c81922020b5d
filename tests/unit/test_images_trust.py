"""policy.json parsing, scope choice and signedIdentity matching (pure logic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.reference import Reference, parse_reference
from hostctl.images.signing import identity_of
from hostctl.images.trust import (
    Identity,
    docker_scopes,
    identity_matches,
    load_policy,
    parse_policy,
    uses_sigstore_attachments,
)

PEM = b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"


def policy(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    (tmp_path / "key.pub").write_bytes(PEM)
    return path


def test_no_policy_file_means_no_policy(tmp_path: Path) -> None:
    assert load_policy((tmp_path / "absent.json",)) is None


def test_first_existing_file_wins(tmp_path: Path) -> None:
    user = policy(tmp_path, {"default": [{"type": "reject"}]})
    loaded = load_policy((tmp_path / "absent.json", user, Path("/etc/containers/policy.json")))
    assert loaded is not None and loaded.default[0].kind == "reject"


@pytest.mark.parametrize(("doc", "message", "where"), [
    ({}, "no \"default\"", "policy.json"),
    ({"default": []}, "non-empty list", "default"),
    ({"default": [{"type": "trustMe"}]}, "unknown requirement type 'trustMe'", "default[0]"),
    ({"default": [{"type": "reject"}], "transport": {}}, "unknown key 'transport'", ""),
    ({"default": [{"type": "reject"}], "transports": {"docker": {"q.io": [
        {"type": "sigstoreSigned"}]}}}, "exactly one of keyPath", 'docker."q.io"[0]'),
    ({"default": [{"type": "reject"}], "transports": {"docker": {"q.io": [
        {"type": "sigstoreSigned", "keyPath": "key.pub", "keyData": "eA=="}]}}},
     "exactly one of", 'docker."q.io"[0]'),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "missing.pub"}]},
     "cannot read the public key", "default[0].keyPath"),
    ({"default": [{"type": "sigstoreSigned", "keyData": "not base64!"}]}, "not base64",
     "default[0].keyData"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "key.pub",
                   "signedIdentity": {"type": "matchSomething"}}]},
     "unknown signedIdentity type", "default[0].signedIdentity"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "key.pub",
                   "signedIdentity": {"type": "exactReference"}}]},
     "dockerReference is missing", "signedIdentity.dockerReference"),
])
def test_bad_policies_name_the_key(tmp_path: Path, doc: object, message: str,
                                   where: str) -> None:
    with pytest.raises(ImageError, match=message) as caught:
        load_policy((policy(tmp_path, doc),))
    assert str(tmp_path / "policy.json") in str(caught.value)
    assert where in str(caught.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{\n "default": [\n')
    with pytest.raises(ImageError, match="invalid JSON") as caught:
        load_policy((path,))
    assert f"{path}:3" in str(caught.value)


def test_key_paths_are_relative_to_the_policy_and_key_data_decoded(tmp_path: Path) -> None:
    import base64

    path = policy(tmp_path, {"default": [{"type": "sigstoreSigned", "keyPaths": ["key.pub"]},
                                         {"type": "sigstoreSigned",
                                          "keyData": base64.b64encode(PEM).decode()}]})
    loaded = parse_policy(path.read_bytes(), path)
    assert loaded.default[0].keys == (PEM,) and loaded.default[1].keys == (PEM,)
    assert loaded.default[0].identity == Identity("matchRepoDigestOrExact")


def test_keyless_and_gpg_parse_but_are_kinds_of_their_own(tmp_path: Path) -> None:
    path = policy(tmp_path, {"default": [
        {"type": "sigstoreSigned", "fulcio": {"caPath": "x"}, "rekorPublicKeyPath": "y"},
        {"type": "sigstoreSigned", "keyPath": "key.pub", "rekorPublicKeyPath": "y"},
        {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "k"}]})
    loaded = parse_policy(path.read_bytes(), path)
    assert [r.kind for r in loaded.default] == ["keyless", "rekor", "signedBy"]


def test_most_specific_scope_wins(tmp_path: Path) -> None:
    scopes = {s: [{"type": "reject"}] for s in (
        "reg.example.com/ns/app:1", "reg.example.com/ns", "reg.example.com",
        "*.example.com", "")}
    path = policy(tmp_path, {"default": [{"type": "insecureAcceptAnything"}],
                             "transports": {"docker": scopes}})
    loaded = parse_policy(path.read_bytes(), path)
    chosen = {text: loaded.for_docker(parse_reference(text))[0] for text in (
        "reg.example.com/ns/app:1", "reg.example.com/ns/app:2", "reg.example.com/other:1",
        "other.example.com/x:1", "elsewhere.org/x:1")}
    assert chosen == {"reg.example.com/ns/app:1": "reg.example.com/ns/app:1",
                      "reg.example.com/ns/app:2": "reg.example.com/ns",
                      "reg.example.com/other:1": "reg.example.com",
                      "other.example.com/x:1": "*.example.com",
                      "elsewhere.org/x:1": ""}


def test_scopes_of_a_digest_reference() -> None:
    ref = parse_reference("q.io/a/b@sha256:" + "1" * 64)
    assert docker_scopes(ref)[:4] == ["q.io/a/b@sha256:" + "1" * 64, "q.io/a/b", "q.io/a",
                                      "q.io"]


def test_path_scopes_for_local_transports(tmp_path: Path) -> None:
    path = policy(tmp_path, {"default": [{"type": "reject"}], "transports": {
        "oci": {"/srv/images": [{"type": "insecureAcceptAnything"}]}}})
    loaded = parse_policy(path.read_bytes(), path)
    assert loaded.for_path("oci", "/srv/images/app")[0] == "/srv/images"
    assert loaded.for_path("oci", "/srv/other")[0] == "default"


TAGGED = parse_reference("q.io/team/app:1")
PINNED = parse_reference("q.io/team/app@sha256:" + "a" * 64)


@pytest.mark.parametrize(("kind", "image", "signed", "accepted"), [
    ("matchRepoDigestOrExact", TAGGED, "q.io/team/app:1", True),
    ("matchRepoDigestOrExact", TAGGED, "q.io/team/app:2", False),
    ("matchRepoDigestOrExact", TAGGED, "q.io/team/app", False),
    ("matchRepoDigestOrExact", PINNED, "q.io/team/app", True),
    ("matchRepoDigestOrExact", PINNED, "q.io/team/other:1", False),
    ("matchRepository", TAGGED, "q.io/team/app", True),
    ("matchRepository", TAGGED, "q.io/team/app:9", True),
    ("matchRepository", TAGGED, "q.io/team/other", False),
    ("matchExact", TAGGED, "q.io/team/app:1", True),
    ("matchExact", TAGGED, "q.io/team/app", False),
])
def test_signed_identity_forms(kind: str, image: Reference, signed: str,
                               accepted: bool) -> None:
    assert identity_matches(Identity(kind), image, identity_of(signed)) is accepted


def test_exact_reference_repository_and_remap() -> None:
    signed = identity_of("q.io/team/app:1")
    assert identity_matches(Identity("exactReference", value="q.io/team/app:1"),
                            parse_reference("mirror.io/x:5"), signed)
    assert not identity_matches(Identity("exactReference", value="q.io/team/app:2"),
                                TAGGED, signed)
    assert identity_matches(Identity("exactRepository", value="q.io/team/app"),
                            parse_reference("mirror.io/x:5"), identity_of("q.io/team/app"))
    remap = Identity("remapIdentity", prefix="mirror.io/copies", signed_prefix="q.io/team")
    assert identity_matches(remap, parse_reference("mirror.io/copies/app:1"), signed)
    assert not identity_matches(remap, parse_reference("mirror.io/copies/app:2"), signed)
    assert not identity_matches(remap, parse_reference("mirror.io/copiesx/app:1"), signed)


def test_registries_d_most_specific_scope(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("default-docker:\n  use-sigstore-attachments: false\n")
    (tmp_path / "b.yaml").write_text("docker:\n  q.io/team:\n    use-sigstore-attachments: true\n")
    assert uses_sigstore_attachments(TAGGED, (tmp_path,))
    assert not uses_sigstore_attachments(parse_reference("q.io/x:1"), (tmp_path,))
    assert not uses_sigstore_attachments(TAGGED, (tmp_path / "absent",))
