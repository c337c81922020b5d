"""hostctl's compose model against podman-compose 1.0.3's (Debian's), on the same files.

podman-compose 1.0.3 has no `config` verb, so its model is read through its own loader
(PodmanCompose._parse_compose_file: interpolation, file merge, extends) and compared on
what both represent: images, commands, environment, ports, volume targets, dependencies,
health checks. Where the two differ, podman-compose departs from the compose spec, and
each test asserts the difference with the reason, so a podman-compose that changes is
noticed. podman-compose is not the reference; the compose spec is.
"""

from __future__ import annotations

import argparse
import os
import shlex
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hostctl.compose.project import load_project

with warnings.catch_warnings():  # Debian's podman_compose.py has an invalid "\." escape
    warnings.simplefilter("ignore", DeprecationWarning)
    podman_compose = pytest.importorskip("podman_compose", reason="apt install podman-compose")

DATA = Path(__file__).parent.parent / "data" / "compose"


def podman_services(
    monkeypatch: pytest.MonkeyPatch, files: list[Path], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The services as podman-compose 1.0.3 resolves FILES under ENVIRON."""
    monkeypatch.setattr(os, "environ", dict(environ))
    monkeypatch.chdir(files[0].parent)  # it changes directory itself; put it back after
    peer = podman_compose.PodmanCompose()
    peer.global_args = argparse.Namespace(
        file=[str(f) for f in files],
        project_name=None,
        no_ansi=True,
        no_cleanup=False,
        dry_run=True,
        command="config",
    )
    peer._parse_compose_file()
    monkeypatch.undo()
    return dict(peer.services)


def _command(value: Any) -> list[str] | None:
    return shlex.split(value) if isinstance(value, str) else value


def _port(spec: Any) -> tuple[str, int]:
    if isinstance(spec, dict):
        return str(spec.get("published", "")), int(spec["target"])
    published, _, target = str(spec).rpartition(":")
    return published.rpartition(":")[2], int(target.partition("/")[0])


def _target(spec: Any) -> str:
    if isinstance(spec, dict):
        return str(spec["target"])
    parts = str(spec).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _test(value: Any) -> list[str]:
    return ["CMD-SHELL", value] if isinstance(value, str) else list(value)


def comparable_peer(service: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"image": service.get("image")}
    out["command"] = _command(service.get("command"))
    environment = service.get("environment") or {}
    out["environment"] = {k: v if v is None else str(v) for k, v in environment.items()}
    out["ports"] = sorted(_port(p) for p in service.get("ports") or [])
    out["volume_targets"] = sorted(_target(v) for v in service.get("volumes") or [])
    out["depends_on"] = sorted(service.get("depends_on") or [])
    health = service.get("healthcheck")
    out["health_test"] = _test(health["test"]) if health else None
    return out


def comparable_ours(service: Mapping[str, Any], peer_env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"image": service.get("image")}
    out["command"] = service.get("command")
    # podman-compose passes env_file to podman unread: compare the `environment` keys
    out["environment"] = {k: service["environment"][k] for k in peer_env}
    out["ports"] = sorted((p.get("published", ""), p["target"]) for p in service.get("ports", []))
    out["volume_targets"] = sorted(v["target"] for v in service.get("volumes", []))
    out["depends_on"] = sorted(service.get("depends_on") or [])
    health = service.get("healthcheck")
    out["health_test"] = health["test"] if health else None
    return out


def test_webapp_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"WEB_PORT": "9090"}
    root = DATA / "webapp"
    ours = load_project(root, environ=environ).model["services"]
    theirs = podman_services(monkeypatch, [root / "compose.yaml"], environ)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        peer = comparable_peer(theirs[name])
        assert comparable_ours(ours[name], peer["environment"]) == peer, name


def test_stack_differences_are_podman_compose_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack project without its override file (podman-compose's YAML loader refuses
    the override's `!reset` tag outright)."""
    root = DATA / "stack"
    files = [root / "compose.yaml"]
    ours = load_project(root, files=files, environ={"MODE": "on"}).model["services"]
    theirs = podman_services(monkeypatch, files, {"MODE": "on"})
    # profiles: podman-compose 1.0.3 ignores them and starts every service
    assert sorted(theirs) == ["api", "debug", "worker", "worker-low"]
    assert sorted(ours) == ["api", "worker"]
    # ${VAR:+replacement} is not among podman-compose 1.0.3's forms: left as written
    assert theirs["api"]["environment"]["API_MODE"] == "${MODE:+production}"
    assert ours["api"]["environment"]["API_MODE"] == "production"
    # extends merges into the parent's own lists: worker-low's command is appended to
    # worker's (the spec replaces command, and a parent is not changed by its children)
    assert theirs["worker"]["command"] == [
        "worker",
        "--queue",
        "default",
        "worker",
        "--queue",
        "low",
    ]
    assert ours["worker"]["command"] == ["worker", "--queue", "default"]
    theirs["worker"]["command"] = ours["worker"]["command"]
    # the rest agrees: anchors, merge keys, extends from another file
    for name in ours:
        peer = comparable_peer(theirs[name])
        peer["environment"].pop("API_MODE", None)
        mine = comparable_ours(ours[name], peer["environment"])
        assert mine == peer, name


def test_override_ports_deduplicated_unlike_podman_compose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\n'
        '    command: ["a"]\n    volumes: ["./a:/data"]\n'
    )
    (tmp_path / "compose.override.yaml").write_text(
        'services:\n  web:\n    ports: ["8080:80", "8443:443"]\n    command: ["b"]\n'
        '    volumes: ["./b:/data"]\n'
    )
    files = [tmp_path / "compose.yaml", tmp_path / "compose.override.yaml"]
    ours = load_project(tmp_path, environ={}).model["services"]["web"]
    theirs = podman_services(monkeypatch, files, {})["web"]
    # the spec merges ports as a set; podman-compose 1.0.3 appends, publishing 8080 twice
    assert theirs["ports"] == ["8080:80", "8080:80", "8443:443"]
    assert [(p["published"], p["target"]) for p in ours["ports"]] == [("8080", 80), ("8443", 443)]
    # the spec replaces command; podman-compose 1.0.3 appends the lists
    assert theirs["command"] == ["a", "b"]
    assert ours["command"] == ["b"]
    # both merge volumes by target
    assert theirs["volumes"] == ["./b:/data"]
    assert [v["source"] for v in ours["volumes"]] == [str(tmp_path / "b")]


def test_dotenv_precedence_differs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: img:${TAG}\n")
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    ours = load_project(tmp_path, environ={"TAG": "shell"}).model["services"]["a"]
    theirs = podman_services(monkeypatch, [tmp_path / "compose.yaml"], {"TAG": "shell"})["a"]
    # docker compose (and the spec): the shell environment wins over .env
    assert ours["image"] == "img:shell"
    assert theirs["image"] == "img:dotenv"
