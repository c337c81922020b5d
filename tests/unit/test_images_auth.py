"""Credentials from auth.json files and WWW-Authenticate parsing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.auth import Credentials, find_credentials, parse_challenge
from hostctl.images.reference import parse_reference


def auth_file(path: Path, auths: dict[str, str]) -> Path:
    path.write_text(json.dumps({"auths": {
        key: {"auth": base64.b64encode(value.encode()).decode()} for key, value in auths.items()
    }}))
    return path


def test_most_specific_key_wins(tmp_path: Path) -> None:
    path = auth_file(tmp_path / "auth.json", {
        "quay.io": "host:1", "quay.io/org": "org:2", "quay.io/org/app": "app:3",
    })
    files = (path,)
    assert find_credentials(parse_reference("quay.io/org/app:1"), files) == Credentials("app", "3")
    assert find_credentials(parse_reference("quay.io/org/other"), files) == Credentials("org", "2")
    assert find_credentials(parse_reference("quay.io/x/y"), files) == Credentials("host", "1")
    assert find_credentials(parse_reference("ghcr.io/org/app"), files) is None


def test_docker_hub_aliases_and_first_file_wins(tmp_path: Path) -> None:
    first = auth_file(tmp_path / "a.json", {"https://index.docker.io/v1/": "hub:pw"})
    second = auth_file(tmp_path / "b.json", {"docker.io": "other:pw",
                                             "localhost:5000": "local:pw"})
    files = (tmp_path / "missing.json", first, second)
    assert find_credentials(parse_reference("busybox"), files) == Credentials("hub", "pw")
    assert find_credentials(parse_reference("localhost:5000/x"), files) == Credentials(
        "local", "pw")


def test_default_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / ".docker").mkdir()
    auth_file(tmp_path / ".docker/config.json", {"example.com": "docker:1"})
    ref = parse_reference("example.com/app")
    assert find_credentials(ref) == Credentials("docker", "1")
    (tmp_path / "run/containers").mkdir(parents=True)
    auth_file(tmp_path / "run/containers/auth.json", {"example.com": "podman:2"})
    assert find_credentials(ref) == Credentials("podman", "2")


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text("{nope")
    with pytest.raises(ImageError, match="invalid JSON") as err:
        find_credentials(parse_reference("example.com/x"), (bad,))
    assert str(bad) in str(err.value)
    bad.write_text(json.dumps({"auths": {"example.com": {"auth": "!!!"}}}))
    with pytest.raises(ImageError, match="user:password"):
        find_credentials(parse_reference("example.com/x"), (bad,))


def test_parse_challenge() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push",error="insufficient_scope"')
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull,push", "error": "insufficient_scope"}
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert basic.params == {"realm": "Registry Realm"}
    assert parse_challenge("Negotiate abc") is None
