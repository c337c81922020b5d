"""The sync file: parsing with file:line errors, tag selection by list, regex, semver."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.sync import Source, in_range, load, parse_range, parse_version, select_tags

TAGS = ["1.0.0", "1.2.0", "v1.2.5", "1.3.1", "2.0.0", "2.0", "latest", "1.2.0-rc1", "0.4.2"]


@pytest.mark.parametrize(("text", "chosen"), [
    (">=1.2, <2", ["1.2.0", "v1.2.5", "1.3.1"]),
    ("^1.2", ["1.2.0", "v1.2.5", "1.3.1"]),
    ("~1.2", ["1.2.0", "v1.2.5"]),
    ("^0.4", ["0.4.2"]),
    ("2", ["2.0.0", "2.0"]),
    (">1.3.1", ["2.0.0", "2.0"]),
])
def test_semver_ranges(text: str, chosen: list[str]) -> None:
    assert select_tags(Source("q.io", "a", semver=text), TAGS) == chosen


def test_regex_and_explicit_tags() -> None:
    assert select_tags(Source("q.io", "a", regex=r"^v?1\.2"), TAGS) == [
        "1.2.0", "v1.2.5", "1.2.0-rc1"]
    assert select_tags(Source("q.io", "a", tags=("x",)), TAGS) == ["x"]
    assert select_tags(Source("q.io", "a"), TAGS) == TAGS


def test_versions() -> None:
    assert parse_version("v1.2") == (1, 2, 0)
    assert parse_version("1.2.0-rc1") is None and parse_version("latest") is None
    assert in_range((1, 5, 0), parse_range(">=1, <=1.5"))
    with pytest.raises(ImageError, match="invalid version constraint"):
        parse_range(">=one")


def test_load(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("q.io:\n  images:\n    team/app: ['1']\n    team/db: []\n"
                    "  images-by-tag-regex:\n    team/web: '^v1'\n"
                    "  rename:\n    team/app: mirror/app\n"
                    "  credentials: {username: u, password: p}\n  tls-verify: false\n")
    spec = load(path)
    assert [(s.repository, s.tags, s.regex, s.destination) for s in spec.sources] == [
        ("team/app", ("1",), None, "mirror/app"), ("team/db", (), None, None),
        ("team/web", (), "^v1", None)]
    assert spec.credentials == {"q.io": ("u", "p")} and spec.insecure == {"q.io"}


@pytest.mark.parametrize(("text", "where", "message"), [
    ("q.io:\n  images:\n    team/app: ['1']\n  imagez: {}\n", ":4: q.io.imagez", "unknown key"),
    ("q.io:\n  images-by-tag-regex:\n    team/web: '(['\n", ":3: q.io.images-by-tag-regex",
     "invalid regular expression"),
    ("q.io:\n  images-by-semver:\n    a: 'soon'\n", ":3: q.io.images-by-semver.a",
     "invalid version constraint"),
    ("q.io:\n  credentials: {username: u}\n", ":2: q.io.credentials", "username and password"),
    ("q.io: [\n", ":2", "invalid YAML"),
    ("q.io:\n  images:\n    Team/App: []\n", ":3: q.io.images.Team/App",
     "invalid repository component"),
    ("q.io:\n  images: {}\n  cert-dir: /nonexistent\n", ":3: q.io.cert-dir",
     "not a directory"),
    ("q.io:\n  images: {}\n  rename:\n    a: ../../etc\n", ":4: q.io.rename.a",
     "invalid destination repository"),
])
def test_bad_files_name_the_line_and_key(tmp_path: Path, text: str, where: str,
                                         message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ImageError, match=message) as caught:
        load(path)
    assert f"{path}{where}" in str(caught.value)


def test_a_registry_tag_that_is_no_tag_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile tag list must not steer a dir: destination outside its directory."""
    from hostctl.images import sync as sync_module
    from hostctl.images import upload
    from hostctl.images.copy import CopyOptions

    monkeypatch.setattr(upload, "list_tags", lambda _client, _ref: ["../../escape"])
    path = tmp_path / "s.yaml"
    path.write_text("q.io:\n  images:\n    team/app: []\n")

    class Client:
        def use_credentials(self, *_args: object) -> None:
            return None

    with pytest.raises(ImageError, match=r"invalid tag '\.\./\.\./escape'"):
        sync_module.sync(load(path), f"dir:{tmp_path / 'out'}", store=None,  # type: ignore[arg-type]
                         client=Client(), options=CopyOptions(),  # type: ignore[arg-type]
                         log=lambda _m: None)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape").exists()
