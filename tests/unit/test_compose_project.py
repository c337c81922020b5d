"""Loading real compose projects into the canonical model (hostctl.compose.project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.compose.project import load_project, render_config

DATA = Path(__file__).parent.parent / "data" / "compose"
WEBAPP = DATA / "webapp"


def test_web_db_cache_project_resolves_to_docker_compose_model() -> None:
    project = load_project(WEBAPP, environ={"WEB_PORT": "9090"})
    assert project.name == "webapp"
    assert project.files == (WEBAPP / "compose.yaml",)
    services = project.model["services"]
    assert sorted(services) == ["cache", "db", "web"]
    web = services["web"]
    assert web["image"] == "registry.local/demo/app:2.1"  # export APP_TAG=2.1 in .env
    assert web["ports"] == [
        {"mode": "ingress", "target": 8000, "published": "9090", "protocol": "tcp"}
    ]
    # env_file first, `environment` over it; the optional local.env is absent
    assert web["environment"] == {
        "LOG_LEVEL": "info",
        "WORKERS": "4",
        "REDIS_URL": "redis://cache:6379/0",
        "DATABASE_URL": "postgres://app:s3cr3t$notavar@db:5432/app",
    }
    assert "env_file" not in web
    assert web["depends_on"] == {
        "db": {"condition": "service_healthy", "required": True, "restart": True},
        "cache": {"condition": "service_started", "required": True, "restart": False},
    }
    assert web["healthcheck"]["interval"] == "10s"
    assert web["networks"] == {"default": None}
    db = services["db"]
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U app -d app"]
    assert db["stop_grace_period"] == "1m30s"
    assert db["deploy"]["resources"]["limits"] == {"memory": 512 << 20, "cpus": "1.5"}
    assert db["volumes"] == [
        {"type": "volume", "source": "dbdata", "target": "/var/lib/postgresql/data"},
        {
            "type": "bind",
            "source": str(WEBAPP / "initdb"),
            "target": "/docker-entrypoint-initdb.d",
            "read_only": True,
            "bind": {"create_host_path": True},
        },
    ]
    assert services["cache"]["command"] == ["redis-server", "--save", "", "--appendonly", "no"]
    assert services["cache"]["tmpfs"] == ["/data"]
    assert project.model["networks"] == {"default": {"name": "webapp_default"}}
    assert project.model["volumes"] == {"dbdata": {"name": "webapp_dbdata"}}
    assert project.ignored == ()


def test_where_names_the_line_of_each_key() -> None:
    project = load_project(WEBAPP, environ={})
    compose = WEBAPP / "compose.yaml"
    assert project.where("services", "web", "ports", 0) == f"{compose}:8:services.web.ports[0]"
    assert project.where("services", "db", "healthcheck", "test") == (
        f"{compose}:40:services.db.healthcheck.test"
    )
    # a default filled in by the loader points at its nearest written parent
    assert project.where("services", "cache", "networks", "default").startswith(f"{compose}:52:")


def test_render_config_prints_name_first_then_sorted_services() -> None:
    text = render_config(load_project(WEBAPP, environ={}))
    lines = text.splitlines()
    assert lines[0] == "name: webapp"
    assert lines[1] == "services:"
    tops = [line for line in lines if line and not line.startswith(" ")]
    assert tops == ["name: webapp", "services:", "networks:", "volumes:"]
    services = [line.strip(" :") for line in lines if line.startswith("  ") and line[2] != " "]
    assert services[:3] == ["cache", "db", "web"]
    assert '        published: "8080"' in lines


def test_project_name_precedence(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("name: fromfile\nservices:\n  a:\n    image: x\n")
    assert load_project(tmp_path, environ={}).name == "fromfile"
    env = {"COMPOSE_PROJECT_NAME": "fromenv"}
    assert load_project(tmp_path, environ=env).name == "fromenv"
    assert load_project(tmp_path, environ=env, name="given").name == "given"


@pytest.mark.parametrize(
    ("directory", "expected"), [("My.App", "myapp"), ("web_site-2", "web_site-2")]
)
def test_project_name_from_directory_is_normalised(
    tmp_path: Path, directory: str, expected: str
) -> None:
    root = tmp_path / directory
    root.mkdir()
    (root / "docker-compose.yml").write_text("services:\n  a:\n    image: x\n")
    project = load_project(root, environ={})
    assert project.name == expected
    assert project.model["networks"]["default"]["name"] == f"{expected}_default"
