"""Compose translation: a canonical model (as the loader gives it) into declarations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hostctl.compose.translate import Translation, translate
from hostctl.declarations.model import VolumeKind
from hostctl.declarations.settings import Restart
from hostctl.errors import DeclarationError

FILE = Path("/srv/app/compose.yaml")


@dataclass(frozen=True)
class FakeProject:
    """A loaded project as hostctl.compose.project gives it; where() names the path."""

    model: Mapping[str, Any]
    name: str = "shop"
    directory: Path = Path("/srv/app")
    files: tuple[Path, ...] = (FILE,)
    ignored: tuple[tuple[str, str], ...] = field(default=())

    def where(self, *path: str | int) -> str:
        return f"{FILE}:7: " + ".".join(str(p) for p in path)


def web_db_cache() -> dict[str, Any]:
    return {
        "name": "shop",
        "services": {
            "web": {
                "image": "127.0.0.1:5000/web:1",
                "command": ["httpd", "-f"],
                "ports": [{"mode": "ingress", "target": 80, "published": "8080",
                           "protocol": "tcp"}],
                "environment": {"DB": "db", "UNSET": None},
                "depends_on": {
                    "db": {"condition": "service_healthy", "required": True},
                    "cache": {"condition": "service_started", "required": False},
                    "migrate": {"condition": "service_completed_successfully",
                                "required": True, "restart": True},
                },
                "restart": "unless-stopped",
                "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": 268435456},
                                         "reservations": {"memory": "64M", "cpus": "0.25"}},
                           "placement": {"constraints": ["node.role==manager"]}},
                "networks": {"default": {"aliases": ["www"]}},
                "expose": ["80"],
            },
            "db": {
                "image": "127.0.0.1:5000/db:1",
                "healthcheck": {"test": ["CMD-SHELL", "test -e /ready"], "interval": "1s",
                                "timeout": "2s", "retries": 5, "start_period": "1m30s"},
                "volumes": [{"type": "volume", "source": "data", "target": "/data"},
                            {"type": "bind", "source": "/srv/app/conf", "target": "/conf",
                             "read_only": True},
                            {"type": "tmpfs", "target": "/scratch", "tmpfs": {"size": 1048576}}],
                "secrets": [{"source": "pw"}],
                "stop_grace_period": "1m",
                "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
            },
            "cache": {"image": "127.0.0.1:5000/cache:1", "deploy": {"replicas": 2}},
            "migrate": {"image": "127.0.0.1:5000/db:1", "restart": "always"},
        },
        "networks": {"default": {"name": "shop_default"}},
        "volumes": {"data": {"name": "shop_data"}},
        "secrets": {"pw": {"file": "/srv/app/pw.txt"}},
    }


def of(translation: Translation, name: str) -> Any:
    return next(unit.container for unit in translation.containers
                if unit.container.name == name)


def directive(container: Any, section: str, name: str) -> tuple[str, ...]:
    return dict(getattr(container, section)).get(name, ())


def test_units_and_names_docker_users_expect() -> None:
    result = translate(FakeProject(web_db_cache()))
    assert [u.unit for u in result.containers] == [
        "shop-web.service", "shop-db.service", "shop-cache-1.service",
        "shop-cache-2.service", "shop-migrate.service"]
    web = of(result, "shop-web-1")
    assert web.unit_name == "shop-web.service" and web.service_name == "shop-web.service"
    assert of(result, "shop-cache-2").service_name is None
    assert result.target == "shop.target"
    assert result.units_of("cache") == ("shop-cache-1.service", "shop-cache-2.service")


def test_dependencies_become_unit_ordering() -> None:
    result = translate(FakeProject(web_db_cache()))
    web, db, migrate = (of(result, n) for n in ("shop-web-1", "shop-db-1", "shop-migrate-1"))
    assert directive(web, "unit", "Requires") == ("shop-db.service", "shop-migrate.service")
    assert directive(web, "unit", "Wants") == ("shop-cache-1.service", "shop-cache-2.service")
    assert set(directive(web, "unit", "After")) == {
        "shop-db.service", "shop-cache-1.service", "shop-cache-2.service",
        "shop-migrate.service"}
    assert directive(web, "unit", "PartOf") == ("shop.target", "shop-migrate.service")
    assert db.notify == "healthy" and web.notify is False
    assert migrate.oneshot and directive(migrate, "service", "RemainAfterExit") == ("yes",)
    assert migrate.restart is Restart.ON_FAILURE  # always cannot be a oneshot's


def test_service_settings() -> None:
    result = translate(FakeProject(web_db_cache()))
    web, db = of(result, "shop-web-1"), of(result, "shop-db-1")
    assert web.env == (("DB", "db"),)
    assert [(p.host_port, p.container_port) for p in web.ports] == [(8080, 80)]
    assert web.restart is Restart.ALWAYS
    assert web.cpus == 0.5 and web.memory == 268435456
    assert directive(web, "service", "MemoryLow") == ("67108864",)
    assert directive(web, "service", "CPUWeight") == ("25",)
    assert web.network == "shop_default" and web.network_aliases == ("web",)
    assert web.network_aliases_by_network == (("shop_default", ("www",)),)
    assert web.aliases_on("shop_default") == ("web", "www")
    assert ("com.docker.compose.service", "web") in web.labels
    assert db.health_cmd == ("CMD-SHELL", "test -e /ready")
    assert (db.health_interval, db.health_timeout, db.health_retries,
            db.health_start_period) == (1.0, 2.0, 5, 90.0)
    assert [(v.source, v.kind, v.read_only) for v in db.volumes] == [
        ("shop_data", VolumeKind.VOLUME, False), ("/srv/app/conf", VolumeKind.BIND, True)]
    assert db.tmpfs[0].destination == "/scratch" and db.tmpfs[0].options == ("size=1048576",)
    assert [(s.source, s.target) for s in db.secrets] == [("/srv/app/pw.txt", "/run/secrets/pw")]
    assert db.stop_timeout == 60
    assert {(u.name, u.soft, u.hard) for u in db.ulimits} == {
        ("nofile", 1024, 2048), ("nproc", 512, 512)}
    assert result.volumes == ("shop_data",)
    assert [n.name for n in result.networks] == ["shop_default"]
    assert ("services.web.deploy.placement", "there is one host") in result.ignored
    assert any(path == "services.web.expose" for path, _ in result.ignored)


def test_errors_name_the_compose_key() -> None:
    model = web_db_cache()
    model["services"]["web"]["privileged"] = True
    with pytest.raises(DeclarationError) as raised:
        translate(FakeProject(model))
    assert raised.value.where == f"{FILE}:7: services.web.privileged"


@pytest.mark.parametrize(("key", "value", "where"), [
    ("networks", {"default": None, "back": {"ipv4_address": "10.1.0.2"}},
     "services.web.networks.back.ipv4_address"),
    ("networks", {"default": {"mac_address": "02:42:ac:11:00:02"}},
     "services.web.networks.default.mac_address"),
    ("ports", [{"target": 80, "protocol": "tcp"}], "services.web.ports.0"),
    ("network_mode", "service:db", "services.web.network_mode"),
    ("user", "a b", "services.web.user"),
    ("healthcheck", {"test": ["WHAT"]}, "services.web.healthcheck.test"),
    ("deploy", {"resources": {"reservations": {"devices": [{"driver": "nvidia"}]}}},
     "services.web.deploy.resources.reservations.devices"),
])
def test_unsupported_values(key: str, value: Any, where: str) -> None:
    model = web_db_cache()
    model["services"]["web"][key] = value
    model["networks"]["back"] = {}
    with pytest.raises(DeclarationError) as raised:
        translate(FakeProject(model))
    assert raised.value.where == f"{FILE}:7: {where}"


def test_minimal_project_gets_the_default_network() -> None:
    result = translate(FakeProject({"services": {"one": {"image": "x.io/a:1"}}}))
    assert [(n.key, n.name) for n in result.networks] == [("default", "shop_default")]
    assert of(result, "shop-one-1").network == "shop_default"


def test_missing_dependency_and_optional_one() -> None:
    model = {"services": {"a": {"image": "x.io/a:1", "depends_on": {
        "gone": {"condition": "service_started", "required": False}}}}}
    assert translate(FakeProject(model)).containers[0].container.unit[0][0] == "PartOf"
    model["services"]["a"]["depends_on"]["gone"]["required"] = True
    with pytest.raises(DeclarationError, match="not in the project"):
        translate(FakeProject(model))


def test_several_networks_first_by_priority_aliases_per_network() -> None:
    model = web_db_cache()
    model["networks"]["back"] = {}
    model["networks"]["front"] = {}
    model["services"]["web"]["networks"] = {
        "default": {"aliases": ["www"]},
        "back": {"aliases": ["api"], "priority": 10, "ipv4_address": "10.89.3.7",
                 "ipv6_address": "fd00:89::7"},
        "front": None}
    result = translate(FakeProject(model))
    web = of(result, "shop-web-1")
    assert web.network == "shop_back"
    assert web.networks == ("shop_default", "shop_front")
    # the service's name on every network; an alias given under one network on that one
    assert web.network_aliases == ("web",)
    assert web.network_aliases_by_network == (("shop_back", ("api",)),
                                              ("shop_default", ("www",)))
    assert web.aliases_on("shop_back") == ("web", "api")
    assert web.aliases_on("shop_default") == ("web", "www")
    assert web.aliases_on("shop_front") == ("web",)
    assert (web.ip, web.ip6) == ("10.89.3.7", "fd00:89::7")
    assert web.where("ip") == f"{FILE}:7: services.web.networks.back.ipv4_address"
    assert of(result, "shop-db-1").networks == ()


def test_an_alias_that_is_not_a_host_name_names_its_network() -> None:
    model = web_db_cache()
    model["services"]["web"]["networks"] = {"default": {"aliases": ["w w"]}}
    with pytest.raises(DeclarationError, match="cannot be a host name") as caught:
        translate(FakeProject(model))
    assert "services.web.networks.default.aliases" in str(caught.value)


def test_a_list_of_networks_keeps_its_order() -> None:
    model = web_db_cache()
    model["networks"]["back"] = {}
    model["services"]["web"]["networks"] = {"back": None, "default": None}
    web = of(translate(FakeProject(model)), "shop-web-1")
    assert (web.network, web.networks) == ("shop_back", ("shop_default",))


AWESOME = Path(__file__).parent.parent / "data" / "compose" / "awesome"
# docker/awesome-compose projects hostctl refuses, and the key it names: a wasm runtime.
# (37 of the 39 translate: services on two networks and static addresses included.)
REFUSED = {
    "wasmedge-kafka-mysql": "services.etl.runtime",
    "wasmedge-mysql-nginx": "services.backend.runtime",
}


@pytest.mark.parametrize("root", sorted(p.parent for p in AWESOME.glob("*/compose.y*ml")),
                         ids=lambda p: p.name)
def test_real_projects_translate_or_name_the_key(root: Path) -> None:
    from hostctl.compose.project import load_project

    project = load_project(root, environ={})
    if root.name not in REFUSED:
        result = translate(project)
        assert {unit.service for unit in result.containers} == set(project.model["services"])
        return
    with pytest.raises(DeclarationError) as raised:
        translate(project)
    assert str(raised.value.where).endswith(f":{REFUSED[root.name]}")
    assert str(raised.value.where).startswith(str(root / "compose.y"))


def test_awesome_projects_with_two_networks_and_a_static_address() -> None:
    from hostctl.compose.project import load_project

    pihole = translate(load_project(AWESOME / "pihole-cloudflared-DoH", environ={}))
    assert of(pihole, "cloudflared").ip == "172.20.0.2"
    flask = translate(load_project(AWESOME / "nginx-flask-mysql", environ={}))
    backend = of(flask, "nginx-flask-mysql-backend-1")
    assert (backend.network, backend.networks) == ("nginx-flask-mysql_backnet",
                                                   ("nginx-flask-mysql_frontnet",))
