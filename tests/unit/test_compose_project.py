"""Loading real compose projects into the canonical model (hostctl.compose.project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.compose.project import load_project, render_config
from hostctl.errors import DeclarationError

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
    # a variable from an env_file points at the env file's line
    assert project.where("services", "web", "environment", "WORKERS") == (
        f"{WEBAPP / 'web.env'}:2:services.web.environment.WORKERS"
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


FULL = DATA / "full"


def test_long_and_short_forms_become_canonical() -> None:
    project = load_project(FULL, environ={"FROM_SHELL": "sh"})
    app = project.model["services"]["app"]
    assert app["build"] == {
        "context": str(FULL / "app"),
        "args": {"VERSION": "1.2", "PROXY": None},
        "target": "runtime",
        "dockerfile": "Dockerfile",
    }
    assert app["command"] == ["serve", "--verbose"]
    assert app["environment"] == {"MODE": "production", "EMPTY": "", "FROM_SHELL": "sh"}
    assert app["ports"] == [
        {"mode": "host", "target": 80, "published": "8080", "protocol": "tcp"},
        {"mode": "ingress", "host_ip": "::1", "target": 53, "published": "5353", "protocol": "udp"},
        {"mode": "ingress", "target": 3000, "protocol": "tcp"},
    ]
    assert app["expose"] == ["9000", "9001"]
    assert app["volumes"] == [
        {"type": "volume", "source": "appdata", "target": "/srv/data", "volume": {"nocopy": True}},
        {"type": "bind", "source": str(FULL / "config"), "target": "/etc/app", "read_only": True},
        {"type": "tmpfs", "target": "/scratch", "tmpfs": {"size": 64 << 20}},
        {"type": "volume", "target": "/var/cache/app"},
    ]
    assert app["tmpfs"] == ["/run"]
    assert app["dns"] == ["9.9.9.9"]
    assert app["extra_hosts"] == ["db.local:10.0.0.5", "gw:10.0.0.1"]
    assert app["sysctls"] == {"net.core.somaxconn": "1024"}
    assert app["ulimits"] == {"nproc": 65535, "nofile": {"soft": 20000, "hard": 40000}}
    assert app["devices"] == [
        {"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"},
        {"source": "/dev/sda", "target": "/dev/xvda", "permissions": "r"},
    ]
    assert app["labels"] == {"com.example.owner": "ops", "com.example.team": "web"}
    assert app["networks"] == {
        "front": {"aliases": ["www", "app.front"]},
        "back": {"ipv4_address": "172.28.0.10"},
    }
    assert app["secrets"] == [
        {"source": "db_password", "target": "/run/secrets/db_password"},
        {"source": "api_key", "target": "/run/secrets/api.key", "uid": "1000", "mode": 0o400},
    ]
    assert app["configs"] == [{"source": "app_config", "target": "/app_config"}]
    assert app["deploy"] == {
        "replicas": 3,
        "resources": {
            "limits": {"cpus": "0.5", "memory": 256 << 20, "pids": 100},
            "reservations": {"memory": 64 << 20},
        },
        "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3},
    }
    assert (app["mem_limit"], app["shm_size"]) == (1 << 30, 128 << 20)
    assert app["healthcheck"] == {
        "test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "interval": "1m0s",
        "timeout": "1.5s",
        "start_period": "2m30s",
        "start_interval": "500ms",
        "retries": 5,
    }
    assert app["stop_grace_period"] == "45s"
    assert app["user"] == "1000:1000"
    job = project.model["services"]["job"]
    assert job["restart"] == "no" and "networks" not in job
    assert project.model["services"]["migrate"]["depends_on"] == {
        "job": {"condition": "service_completed_successfully", "required": False, "restart": False}
    }
    assert project.model["networks"]["outside"] == {"external": True, "name": "corp-net"}
    assert project.model["volumes"]["shared"] == {"external": True, "name": "shared"}
    assert project.model["secrets"] == {
        "db_password": {
            "file": str(FULL / "secrets" / "db_password.txt"),
            "name": "full_db_password",
        },
        "api_key": {"environment": "API_KEY", "name": "full_api_key"},
    }
    assert project.model["configs"]["app_config"]["content"] == "listen 80\n"
    assert [path for path, _ in project.ignored] == [
        "services.app.deploy.placement",
        "services.app.deploy.update_config",
        "networks.front.attachable",
    ]
    assert project.where("services", "app", "deploy", "placement") == (
        f"{FULL / 'compose.yaml'}:99:services.app.deploy.placement"
    )


def test_project_is_immutable() -> None:
    project = load_project(WEBAPP, environ={})
    with pytest.raises(AttributeError):
        project.name = "other"
    assert project == load_project(WEBAPP, environ={})


@pytest.mark.parametrize(
    ("directory", "environ"),
    [(DATA / "stack", {"MODE": "on"}), (FULL, {"FROM_SHELL": "sh"})],
    ids=["stack", "full"],
)
def test_render_config_golden(directory: Path, environ: dict[str, str]) -> None:
    """The whole `config` text: struct fields in compose-go's order, maps sorted, sizes
    as quoted byte counts, durations as Go writes them (reviewed by hand once)."""
    text = render_config(load_project(directory, environ=environ))
    expected = (directory / "config.expected.yaml").read_text()
    assert text == expected.replace("@DIR@", str(directory))


def test_implicit_dependencies(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  vpn:\n    image: vpn\n"
        "  app:\n    image: app\n    network_mode: service:vpn\n"
        "    volumes_from: [data:ro]\n    depends_on: {vpn: {condition: service_healthy}}\n"
        "  data:\n    image: data\n"
        "  old:\n    image: old\n    links: [app:application]\n"
        "  orphan:\n    image: x\n    pid: service:nowhere\n    profiles: [p]\n"
    )
    services = load_project(tmp_path, environ={}).model["services"]
    assert services["app"]["depends_on"] == {
        "vpn": {"condition": "service_healthy", "required": True, "restart": False},
        "data": {"condition": "service_started", "required": True, "restart": False},
    }
    assert services["old"]["depends_on"] == {
        "app": {"condition": "service_started", "required": True, "restart": True}
    }
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={}, profiles=["p"])
    assert (
        caught.value.where == f"{tmp_path / 'compose.yaml'}:16:services.orphan.depends_on.nowhere"
    )
    assert "'nowhere', which is not defined" in caught.value.message
