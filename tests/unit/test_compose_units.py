"""Installed compose projects: the generator's units, the launcher's lookup, networks,
installing with a record, a broken project's failing unit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hostctl.compose import install, installed
from hostctl.declarations.search import ENV_PATH, load_declaration
from hostctl.errors import DeclarationError
from hostctl.network import defs
from hostctl.paths import Scope, for_scope
from hostctl.units import generator
from hostctl.units.gencache import ENV_CACHE
from hostctl.units.generator import main
from tests.unit.test_units_syntax import exec_argv, parse_unit, values

SHOP = """\
services:
  web:
    image: registry.example.com/web:1
    ports: ["8080:80"]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: registry.example.com/db:1
    healthcheck: {test: ["CMD", "true"], interval: 1s}
    volumes: [data:/data]
  worker:
    image: registry.example.com/web:1
    deploy: {replicas: 2}
volumes:
  data: {}
"""


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty system configuration directory; declarations nowhere."""
    config = tmp_path / "etc"
    (config / "compose").mkdir(parents=True)
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(config))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "decls"))
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    (tmp_path / "kmsg").touch()
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "hostctl-generator")])
    return config


def project(etc: Path, name: str, text: str) -> Path:
    folder = etc / "compose" / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(text)
    return folder


def test_generator_writes_service_units_and_the_target(etc: Path, tmp_path: Path) -> None:
    project(etc, "shop", SHOP)
    out = tmp_path / "out"
    assert main([str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    for unit in ("shop-web.service", "shop-db.service", "shop-worker-1.service",
                 "shop-worker-2.service", "shop.target", "shop-web-1.service",
                 "shop-db-1-healthcheck.timer", "multi-user.target.wants"):
        assert unit in names
    assert os.readlink(out / "shop-web-1.service") == "shop-web.service"
    assert os.readlink(out / "multi-user.target.wants/shop.target") == "../shop.target"
    web = parse_unit((out / "shop-web.service").read_text())
    assert values(web, "Unit", "Requires") == ["shop-db.service"]
    assert "shop-db.service" in values(web, "Unit", "After")
    assert values(web, "Unit", "PartOf") == ["shop.target"]
    assert exec_argv(values(web, "Service", "ExecStart")[0])[-2:] == ["launch", "shop-web-1"]
    assert values(web, "Unit", "SourcePath") == [str(etc / "compose/shop/compose.yaml")]
    target = parse_unit((out / "shop.target").read_text())
    assert set(values(target, "Unit", "Wants")) == {
        "shop-web.service", "shop-db.service", "shop-worker-1.service", "shop-worker-2.service"}
    assert values(target, "Unit", "After") == values(target, "Unit", "Wants")


def test_the_launcher_finds_a_compose_container(etc: Path) -> None:
    project(etc, "shop", SHOP)
    db = load_declaration("shop-db-1", Scope.SYSTEM)
    assert db.notify == "healthy" and db.unit_name == "shop-db.service"
    assert db.network == "shop_default" and db.network_aliases == ("db",)
    assert load_declaration("shop-worker-2", Scope.SYSTEM).service_name is None
    with pytest.raises(DeclarationError, match="no declaration named"):
        load_declaration("shop-nothing-1", Scope.SYSTEM)


def test_project_networks_are_declared_without_overlaps(etc: Path) -> None:
    (etc / "networks").mkdir()
    (etc / "networks" / "mine.yaml").write_text("subnet: 10.90.7.0/24\n")
    project(etc, "shop", SHOP)
    project(etc, "blog", "services: {a: {image: x.io/a:1}}\n")
    networks = defs.declared(for_scope(Scope.SYSTEM))
    assert {"shop_default", "blog_default", "mine", "bridge"} <= set(networks)
    subnets = [networks[n].subnet for n in ("shop_default", "blog_default", "mine")]
    assert len({str(s) for s in subnets}) == 3
    assert not any(a.overlaps(b) for a in subnets for b in subnets if a is not b)
    assert defs.find("shop_default", for_scope(Scope.SYSTEM)).bridge == "hc-shop_default"
    (etc / "networks" / "mine.yaml").write_text("subnet: 10.90.0.0/16\n")
    # every 10.90.X.0/24 is taken by `mine`: a project network then says why it is missing
    with pytest.raises(DeclarationError, match="no free /24"):
        defs.find("shop_default", for_scope(Scope.SYSTEM))


def test_a_broken_project_gets_a_failing_unit(etc: Path, tmp_path: Path) -> None:
    project(etc, "bad", "services:\n  app:\n    image: x.io/a:1\n    privileged: true\n")
    out = tmp_path / "out"
    assert main([str(out)]) == 0
    target = parse_unit((out / "bad.target").read_text())
    assert values(target, "Unit", "Requires") == ["bad.service"]
    failing = (out / "bad.service").read_text()
    assert "compose.yaml:4:services.app.privileged" in failing
    assert exec_argv(values(parse_unit(failing), "Service", "ExecStart")[0])[-1] == "bad"
    with pytest.raises(DeclarationError, match="privileged"):  # what its start logs
        load_declaration("bad", Scope.SYSTEM)
    assert "services.app.privileged" in (tmp_path / "kmsg").read_text()


def test_install_records_the_source_and_a_disabled_project_has_no_boot_link(
        etc: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "compose.yaml").write_text(
        "services:\n  a:\n    image: x.io/a:${TAG}\n    volumes: [./data:/data]\n")
    (source / ".env").write_text("TAG=7\n")
    plan = install.plan("app", for_scope(Scope.SYSTEM), source, [source / "compose.yaml"],
                        [source / ".env"], None, enabled=False)
    assert plan.changed and "+TAG=7" in plan.diff()
    install.write(plan)
    record = json.loads((etc / "compose/app/.hostctl-project.json").read_text())
    assert record["source"] == str(source) and record["files"] == ["compose.yaml"]
    assert oct((etc / "compose/app/.env").stat().st_mode & 0o777) == "0o600"
    assert not install.plan("app", for_scope(Scope.SYSTEM), source, [source / "compose.yaml"],
                            [source / ".env"], None, enabled=False).changed
    container = installed.translation("app", Scope.SYSTEM).containers[0].container
    assert container.image == "x.io/a:7"
    assert container.volumes[0].source == str(source / "data")  # relative to the source
    out = tmp_path / "out"
    assert main([str(out)]) == 0
    assert (out / "app.target").exists() and not (out / "multi-user.target.wants").exists()


def test_a_failing_check_keeps_the_installed_project(etc: Path, tmp_path: Path) -> None:
    folder = project(etc, "keep", "services: {a: {image: x.io/a:1}}\n")
    broken = tmp_path / "compose.yaml"
    broken.write_text("services: {a: {image: x.io/a:2, privileged: true}}\n")
    plan = install.plan("keep", for_scope(Scope.SYSTEM), tmp_path, [broken], [], None)

    def verify(staged: installed.Installed) -> None:
        from hostctl.compose.translate import translate

        translate(installed.load(staged))

    with pytest.raises(DeclarationError):
        install.write(plan, verify)
    assert "x.io/a:1" in (folder / "compose.yaml").read_text()
    assert sorted(p.name for p in (etc / "compose").iterdir()) == ["keep"]


def test_a_users_project_networks_are_user_networks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's project on its own network: the network is a user network (find_user),
    a service on two networks is refused at its key (a user's container joins one)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "config/hostctl/compose/mine"
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text(
        "services:\n  a:\n    image: x.io/a:1\nnetworks:\n"
        "  default: {ipam: {config: [{subnet: 10.97.3.0/24}]}}\n")
    a = installed.translation("mine", Scope.USER).containers[0].container
    assert a.network == "mine_default"
    paths = for_scope(Scope.USER)
    network = defs.find_user("mine_default", paths)
    assert (network.name, str(network.subnet), network.source) == (
        "mine_default", "10.97.3.0/24", None)
    assert defs.user_project_network("elsewhere", paths) is None
    (folder / "compose.yaml").write_text(
        "services:\n  a:\n    image: x.io/a:1\n    networks: [default, back]\n"
        "networks:\n  back: {}\n")
    with pytest.raises(DeclarationError, match="a user's container joins one") as raised:
        installed.translation("mine", Scope.USER)
    assert str(raised.value).startswith(f"{folder}/compose.yaml:4:services.a.networks")
    assert defs.user_project_network("mine_default", paths) is None  # its project is broken


def test_compose_containers_may_take_the_recorded_quick_start(etc: Path) -> None:
    """Their record's inputs hold the projects' files (record_inputs, below)."""
    from hostctl.launcher.recording import eligible

    project(etc, "host", "services: {a: {image: x.io/a:1, network_mode: host}}\n")
    container = load_declaration("host-a-1", Scope.SYSTEM)
    assert container.network == "host"
    assert eligible(container, Scope.SYSTEM, {"linux": {"cgroupsPath": "/x"}})


def test_record_inputs_name_every_file_a_project_read_or_looked_for(etc: Path,
                                                                    tmp_path: Path) -> None:
    """A start record of a compose container (hostctl.launcher.recording) is only good
    while these are unchanged: the projects' directories and files, a file `extends`
    names outside the project, an optional env file that is missing (and its directory),
    and another project's files (the projects share the pool of subnets)."""
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "base.yaml").write_text(
        "services:\n  base:\n    image: registry.example.com/web:1\n")
    folder = project(etc, "shop", (
        f"services:\n  web:\n    extends: {{file: {outside / 'base.yaml'}, service: base}}\n"
        f"    env_file: [{{path: {outside / 'later.env'}, required: false}}]\n"))
    other = project(etc, "other", SHOP)
    inputs = installed.record_inputs(Scope.SYSTEM)
    for path in (etc / "compose", folder, folder / "compose.yaml", outside / "base.yaml",
                 outside / "later.env", outside, other, other / "compose.yaml"):
        assert str(path) in inputs, path
    broken = project(etc, "broken", "services: [")
    assert str(broken / "compose.yaml") in installed.record_inputs(Scope.SYSTEM)


def test_an_up_that_changes_a_users_published_ports_restarts_the_networks_unit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pasta's forwards are fixed at the network unit's start: `up` restarts the unit of
    an own network whose services' published ports changed (not when they did not)."""
    from hostctl.api.compose import changed_forwards

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "config/hostctl/compose/mine"
    folder.mkdir(parents=True)
    text = "services:\n  a:\n    image: x.io/a:1\n    ports: [{ports}]\n"
    (folder / "compose.yaml").write_text(text.format(ports='"8080:80"'))
    before = installed.translation("mine", Scope.USER)
    (folder / "compose.yaml").write_text(text.format(ports='"8080:80"') + "    init: true\n")
    same = installed.translation("mine", Scope.USER)
    (folder / "compose.yaml").write_text(text.format(ports='"8080:80", "8443:443"'))
    more = installed.translation("mine", Scope.USER)
    assert changed_forwards(before, same) == []
    assert changed_forwards(before, more) == ["hostctl-network-mine_default.service"]
    assert changed_forwards(None, more) == []
