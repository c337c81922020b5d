"""registries.conf v2: short names, aliases, mirrors, rewrites, blocked; credential files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.auth import Credentials, find_credentials, remove_login, save_login
from hostctl.images.reference import parse_reference
from hostctl.images.regconf import load


def conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registries.conf"
    path.write_text(text)
    return path


def test_ambiguous_short_name_lists_candidates(tmp_path: Path) -> None:
    path = conf(tmp_path, 'unqualified-search-registries = ["quay.io", "docker.io"]\n')
    with pytest.raises(ImageError) as err:
        load([path]).resolve_short("busybox:1")
    assert "quay.io/busybox:1" in str(err.value)
    assert "docker.io/library/busybox:1" in str(err.value)
    assert str(path) in str(err.value)


def test_permissive_mode_tries_in_order_and_alias_wins(tmp_path: Path) -> None:
    path = conf(tmp_path, 'unqualified-search-registries = ["quay.io", "docker.io"]\n'
                'short-name-mode = "permissive"\n[aliases]\n"tool" = "ghcr.io/acme/tool"\n')
    loaded = load([path])
    assert [str(r) for r in loaded.resolve_short("x")] == [
        "quay.io/x:latest", "docker.io/library/x:latest"]
    assert [str(r) for r in loaded.resolve_short("tool:2")] == ["ghcr.io/acme/tool:2"]
    assert [str(r) for r in loaded.resolve_short("quay.io/a/b")] == ["quay.io/a/b:latest"]


def test_mirrors_rewrite_and_digest_only(tmp_path: Path) -> None:
    path = conf(tmp_path, '[[registry]]\nprefix = "example.com/team"\n'
                'location = "internal.example.com/mirror/team"\nmirror-by-digest-only = true\n'
                '[[registry.mirror]]\nlocation = "cache.local:5000/team"\ninsecure = true\n')
    loaded = load([path])
    tagged = loaded.endpoints(parse_reference("example.com/team/app:1"))
    assert [str(e.reference) for e in tagged] == ["internal.example.com/mirror/team/app:1"]
    pinned = loaded.endpoints(parse_reference("example.com/team/app@sha256:" + "a" * 64))
    assert [e.reference.registry for e in pinned] == ["cache.local:5000",
                                                      "internal.example.com"]
    assert pinned[0].mirror and loaded.insecure("cache.local:5000")
    assert [str(e.reference) for e in loaded.endpoints(parse_reference("example.com/other"))
            ] == ["example.com/other:latest"]


def test_blocked_and_bad_files_name_the_place(tmp_path: Path) -> None:
    loaded = load([conf(tmp_path, '[[registry]]\nlocation = "evil.example"\nblocked = true\n')])
    with pytest.raises(ImageError, match="blocked"):
        loaded.endpoints(parse_reference("evil.example/x"))
    with pytest.raises(ImageError, match=r"registries.conf.*invalid TOML"):
        load([conf(tmp_path, "[[registry]\n")])
    with pytest.raises(ImageError, match=r"aliases\.x"):
        load([conf(tmp_path, '[aliases]\n"x" = "short"\n')])


def test_login_file_is_0600_and_logout_forgets(tmp_path: Path) -> None:
    path = tmp_path / "dir/auth.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"other.io": {"auth": "dTpw"}}}))
    save_login(path, "reg.example:5000", Credentials("u", "p:w"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ref = parse_reference("reg.example:5000/a/b")
    assert find_credentials(ref, (path,)) == Credentials("u", "p:w")
    assert remove_login(path, "reg.example:5000")
    assert find_credentials(ref, (path,)) is None
    assert "other.io" in json.loads(path.read_text())["auths"]


def test_credential_helper_is_asked_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    helper = tmp_path / "bin/docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = reg.example ] && '
                      'echo \'{"ServerURL":"reg.example","Username":"h","Secret":"s"}\' '
                      '&& exit 0\necho "credentials not found in native keychain"; exit 1\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"credHelpers": {"reg.example": "fake"},
                                "auths": {"reg.example": {"auth": "dTpw"}},
                                "credsStore": "fake"}))
    assert find_credentials(parse_reference("reg.example/a"), (path,)) == Credentials("h", "s")
    assert find_credentials(parse_reference("none.example/a"), (path,)) is None


def test_insecure_names_the_registry_by_location_prefix_wildcard_or_mirror(
    tmp_path: Path,
) -> None:
    path = conf(tmp_path, '[[registry]]\nprefix = "plain.example/team"\n'
                'location = "Build.Lan:5000/team"\ninsecure = true\n'
                '[[registry]]\nprefix = "*.corp.example"\ninsecure = true\n'
                '[[registry]]\nprefix = "secure.example"\n'
                '[[registry.mirror]]\nlocation = "cache.lan:5000"\ninsecure = true\n'
                '[[registry]]\nlocation = "tls.example"\n')
    loaded = load([path])
    assert loaded.insecure("build.lan:5000")  # the rewritten location, any case
    assert loaded.insecure("reg.corp.example:5000")  # a wildcard prefix
    assert loaded.insecure("cache.lan:5000")  # an insecure mirror
    assert not loaded.insecure("plain.example")  # rewritten: only the location is
    assert not loaded.insecure("secure.example")
    assert not loaded.insecure("tls.example")
    assert not loaded.insecure("corp.example.evil:5000")
