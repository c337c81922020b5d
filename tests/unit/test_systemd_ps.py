"""The image digest `hostctl ps` shows: the running bundle's annotation first, else the
store's entry for the image, else none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostctl.api.containers import image_digest
from hostctl.images.store import Store
from hostctl.paths import Scope

RUNNING = "sha256:" + "a" * 64
STORED = "sha256:" + "b" * 64


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    bundle = tmp_path / "run/containers/web"
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(
        {"ociVersion": "1.0.2", "annotations": {"io.hostctl.image.digest": RUNNING}}))
    store = Store(tmp_path / "state/storage")
    store.ensure()
    store.record("docker.io/library/busybox:1", "sha256:" + "c" * 64, STORED)
    return tmp_path


def test_a_running_container_shows_the_digest_it_was_made_from(dirs: Path) -> None:
    assert image_digest("web", "busybox:1", Scope.SYSTEM, running=True) == RUNNING


def test_a_stopped_container_shows_what_its_image_resolves_to_in_the_store(dirs: Path) -> None:
    assert image_digest("web", "busybox:1", Scope.SYSTEM, running=False) == STORED
    full = "docker.io/library/busybox:1"
    assert image_digest("db", full, Scope.SYSTEM, running=True) == STORED  # no bundle


def test_an_image_never_pulled_has_no_digest(dirs: Path) -> None:
    assert image_digest("web", "alpine:3", Scope.SYSTEM, running=False) is None
    (dirs / "run/containers/web/config.json").write_text("{not json")
    assert image_digest("web", "alpine:3", Scope.SYSTEM, running=True) is None


def test_a_corrupt_store_index_does_not_break_the_listing(dirs: Path) -> None:
    (dirs / "state/storage/images.json").write_text("{}")
    assert image_digest("web", "busybox:1", Scope.SYSTEM, running=False) is None
