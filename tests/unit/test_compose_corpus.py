"""Real compose projects (docker/awesome-compose, tests/data/compose/awesome): each loads,
its `config` text reads back, only `version` is reported as ignored, and the model
agrees with podman-compose 1.0.3's on what both represent (see test_compose_podman.py).
The one systematic difference is the spec's: volume targets are cleaned (`/media/` is
`/media`), which podman-compose does not do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hostctl.compose.project import load_project, render_config
from tests.unit.test_compose_podman import comparable_ours, comparable_peer, podman_services

CORPUS = Path(__file__).parent.parent / "data" / "compose" / "awesome"
PROJECTS = sorted(p.parent for p in CORPUS.glob("*/compose.y*ml"))


@pytest.mark.parametrize("root", PROJECTS, ids=lambda p: p.name)
def test_real_project(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    file = next(root.glob("compose.y*ml"))
    project = load_project(files=[file], environ={})
    assert project.name == root.name.lower()
    assert yaml.safe_load(render_config(project))["services"].keys() == project.model[
        "services"
    ].keys()
    assert {path for path, _ in project.ignored} <= {"version"}
    ours = project.model["services"]
    theirs = podman_services(monkeypatch, [file], {})
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        peer = comparable_peer(theirs[name])
        peer["volume_targets"] = sorted(t.rstrip("/") or "/" for t in peer["volume_targets"])
        assert comparable_ours(ours[name], peer["environment"]) == peer, name


def test_corpus_is_there() -> None:
    assert len(PROJECTS) == 39
