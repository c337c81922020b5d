"""Override files, extends, anchors, x- extensions and profiles, by the compose spec's
merge rules (tests/data/compose/stack, and small files written per test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hostctl.compose.project import load_project
from hostctl.errors import DeclarationError

STACK = Path(__file__).parent.parent / "data" / "compose" / "stack"


def test_stack_with_override_anchors_extends() -> None:
    project = load_project(STACK, environ={"MODE": "on"})
    assert project.files == (STACK / "compose.yaml", STACK / "compose.override.yaml")
    services = project.model["services"]
    assert sorted(services) == ["api", "worker"]  # worker-low and debug are in profiles
    api = services["api"]
    assert api["image"] == "demo/api:1.0"
    assert api["restart"] == "on-failure:3"  # from the x-base anchor through `<<`
    assert api["logging"] == {"driver": "json-file", "options": {"max-size": "10m"}}
    assert "labels" not in api  # `labels: !reset {}` in the override
    # maps merge per key: LANG from the override, TZ from the anchor
    assert api["environment"] == {
        "API_MODE": "production",
        "TZ": "Europe/Paris",
        "LANG": "en_US.UTF-8",
    }
    assert api["command"] == ["api", "--reload"]
    # ports appended, the repeated 8000:8000 once
    assert [(p["published"], p["target"]) for p in api["ports"]] == [("8000", 8000), ("9000", 9000)]
    assert api["networks"] == {"front": None, "back": None}
    worker = services["worker"]
    assert worker["image"] == "demo/worker:1.0"  # from common/workers.yaml
    # paths in an extended file resolve against that file's directory; the override's
    # against the project directory
    assert [v["source"] for v in worker["volumes"]] == [
        str(STACK / "common" / "scripts"),
        str(STACK / "src"),
    ]
    assert worker["environment"] == {"CONCURRENCY": "8", "QUEUE": "default"}
    assert worker["deploy"] == {"replicas": 2}
    assert project.ignored == (
        (
            "services.worker.deploy.update_config",
            "rolling updates across swarm nodes; units restart in place",
        ),
    )
    assert project.where("services", "worker", "deploy", "update_config") == (
        f"{STACK / 'common' / 'workers.yaml'}:9:services.worker.deploy.update_config"
    )
    assert project.where("services", "api", "command") == (
        f"{STACK / 'compose.override.yaml'}:6:services.api.command"
    )
    assert project.where("services", "api", "restart").startswith(f"{STACK / 'compose.yaml'}:11:")
    assert set(project.model["networks"]) == {"default", "front", "back"}
    assert project.model["networks"]["back"] == {"internal": True, "name": "stack_back"}


def test_api_mode_replacement_empty_when_mode_unset() -> None:
    env = load_project(STACK, environ={}).model["services"]["api"]["environment"]
    assert env["API_MODE"] == ""


@pytest.mark.parametrize(
    ("profiles", "environ", "expected"),
    [
        (None, {}, ["api", "worker"]),
        (None, {"COMPOSE_PROFILES": "extra"}, ["api", "worker", "worker-low"]),
        (["debug"], {"COMPOSE_PROFILES": "extra"}, ["api", "debug", "worker"]),
        (["*"], {}, ["api", "debug", "worker", "worker-low"]),
    ],
)
def test_profiles(profiles: list[str] | None, environ: dict[str, str], expected: list[str]) -> None:
    project = load_project(STACK, profiles=profiles, environ=environ)
    assert sorted(project.model["services"]) == expected


def test_extends_in_same_file_inherits_the_resolved_parent() -> None:
    services = load_project(STACK, profiles=["extra"], environ={}).model["services"]
    low = services["worker-low"]
    assert low["command"] == ["worker", "--queue", "low"]
    assert low["image"] == "demo/worker:1.0"
    assert low["environment"]["QUEUE"] == "default"
    assert low["healthcheck"] == {"test": ["CMD", "true"], "interval": "30s"}


def _project(tmp_path: Path, base: str, override: str) -> dict[str, Any]:
    (tmp_path / "compose.yaml").write_text(base)
    (tmp_path / "compose.override.yaml").write_text(override)
    return dict(load_project(tmp_path, environ={}).model["services"])


BASE = """
services:
  web:
    image: nginx
    command: ["a", "b"]
    entrypoint: /bin/sh
    ports: ["80:80", "443:443"]
    volumes: ["./a:/data", "/etc/x:/etc/x:ro"]
    environment: [A=1, B=2]
    labels: {one: "1"}
    dns: [1.1.1.1]
    cap_add: [NET_ADMIN]
    depends_on: [db]
    healthcheck:
      test: ["CMD", "a"]
      interval: 5s
  db:
    image: postgres
"""


def test_override_rules(tmp_path: Path) -> None:
    web = _project(
        tmp_path,
        BASE,
        """
services:
  web:
    command: c
    ports: ["443:443", "8080:8080"]
    volumes: ["./b:/data"]
    environment: {B: "3", C: "4"}
    labels: [two=2]
    dns: [1.1.1.1, 8.8.8.8]
    cap_add: [SYS_ADMIN]
    depends_on:
      db: {condition: service_healthy}
    healthcheck:
      test: ["CMD", "b"]
""",
    )["web"]
    assert web["command"] == ["c"]
    assert web["entrypoint"] == ["/bin/sh"]
    assert [p["target"] for p in web["ports"]] == [80, 443, 8080]
    assert [(v["source"], v["target"]) for v in web["volumes"]] == [
        (str(tmp_path / "b"), "/data"),
        ("/etc/x", "/etc/x"),
    ]
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}
    assert web["labels"] == {"one": "1", "two": "2"}
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert web["cap_add"] == ["NET_ADMIN", "SYS_ADMIN"]
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert web["healthcheck"] == {"test": ["CMD", "b"], "interval": "5s"}


def test_reset_and_override_tags(tmp_path: Path) -> None:
    services = _project(
        tmp_path,
        BASE,
        """
services:
  web:
    ports: !override ["9090:90"]
    environment: !override {Z: "26"}
    dns: !reset []
    healthcheck: !reset null
    depends_on: !reset
  db: !reset
""",
    )
    web = services["web"]
    assert [p["target"] for p in web["ports"]] == [90]
    assert web["environment"] == {"Z": "26"}
    assert "dns" not in web and "healthcheck" not in web and "depends_on" not in web
    assert "db" not in services


def test_files_given_in_order_and_env_file_replaces_dotenv(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("services:\n  a:\n    image: one:${TAG}\n")
    (tmp_path / "two.yaml").write_text("services:\n  a:\n    image: two:${TAG}\n")
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    (tmp_path / "other.env").write_text("TAG=other\n")
    files = [tmp_path / "one.yaml", tmp_path / "two.yaml"]
    assert load_project(files=files, environ={}).model["services"]["a"]["image"] == "two:dotenv"
    project = load_project(files=files[:1], env_files=[tmp_path / "other.env"], environ={})
    assert project.model["services"]["a"]["image"] == "one:other"
    project = load_project(files=files[:1], environ={"TAG": "process"})
    assert project.model["services"]["a"]["image"] == "one:process"


def test_compose_file_variable(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("services:\n  a:\n    image: one\n")
    (tmp_path / "two.yaml").write_text("services:\n  a:\n    image: two\n")
    (tmp_path / ".env").write_text("COMPOSE_FILE=one.yaml:two.yaml\nCOMPOSE_PROFILES=\n")
    project = load_project(tmp_path, environ={})
    assert project.files == (tmp_path / "one.yaml", tmp_path / "two.yaml")
    assert project.model["services"]["a"]["image"] == "two"


def test_extends_file_cycle_across_files(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    extends: {file: other.yaml, service: b}\n"
    )
    (tmp_path / "other.yaml").write_text(
        "services:\n  b:\n    extends: {file: compose.yaml, service: a}\n"
    )
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={})
    assert "extends loops: other.yaml:b -> compose.yaml:a -> other.yaml:b" in str(caught.value)


INCLUDE = STACK.parent / "include"


def test_include_brings_a_project_with_its_own_directory_and_env() -> None:
    project = load_project(INCLUDE, environ={})
    services = project.model["services"]
    assert services["app"]["image"] == "demo/app:3"
    assert services["db"]["image"] == "postgres:16"  # from shared/.env, not the project's
    assert services["db"]["volumes"][0]["source"] == str(INCLUDE / "shared" / "init")
    assert project.model["volumes"] == {"pgdata": {"name": "include_pgdata"}}
    assert project.where("services", "db", "image") == (
        f"{INCLUDE / 'shared' / 'db.yaml'}:3:services.db.image"
    )


def test_include_conflict_and_loop(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "include: [other.yaml]\nservices:\n  db:\n    image: mine\n"
    )
    (tmp_path / "other.yaml").write_text("services:\n  db:\n    image: theirs\n")
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={})
    assert caught.value.where == f"{tmp_path / 'compose.yaml'}:3:services.db"
    assert "also defined by the included file" in caught.value.message
    (tmp_path / "other.yaml").write_text("include: [compose.yaml]\n")
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={})
    assert caught.value.where == f"{tmp_path / 'other.yaml'}:1:include[0]"
    assert "include loops back to" in caught.value.message


def test_env_files_optional_and_raw(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    env_file:\n"
        "      - path: missing.env\n        required: false\n"
        "      - path: raw.env\n        format: raw\n"
        "      - path: parsed.env\n"
    )
    (tmp_path / "raw.env").write_text('QUOTED="kept" # and this\nDOLLAR=$HOME\n')
    (tmp_path / "parsed.env").write_text('PARSED="unquoted" # comment\n')
    environment = load_project(tmp_path, environ={"HOME": "/h"}).model["services"]["a"][
        "environment"
    ]
    assert environment == {"QUOTED": '"kept" # and this', "DOLLAR": "$HOME", "PARSED": "unquoted"}


def test_markers_in_an_included_file_do_not_leak(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("include: [inc.yaml]\nservices:\n  a:\n    image: x\n")
    (tmp_path / "inc.yaml").write_text(
        'services:\n  b:\n    image: y\n    labels: !reset {}\n    ports: !override ["1:1"]\n'
    )
    b = load_project(tmp_path, environ={}).model["services"]["b"]
    assert "labels" not in b
    assert b["ports"] == [{"mode": "ingress", "target": 1, "published": "1", "protocol": "tcp"}]
