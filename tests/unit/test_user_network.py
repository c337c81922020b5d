"""User networks' pure logic: the generator's network unit and member dependencies, the
user declaration's limits, and the forwarded-port lists (hostctl.network.holder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.declarations.model import Port, Protocol
from hostctl.declarations.search import ENV_PATH
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.network import defs, holder
from hostctl.paths import Scope, for_scope
from hostctl.units import generator
from hostctl.units.gencache import ENV_CACHE
from tests.unit.test_units_syntax import exec_argv, parse_unit, values

UNIT = "hostctl-network-appnet.service"


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user scope: declarations in decls/, networks in config/networks/."""
    (tmp_path / "decls").mkdir()
    (tmp_path / "config" / "networks").mkdir(parents=True)
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "decls"))
    monkeypatch.setenv("SYSTEMD_SCOPE", "user")
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(generator, "KMSG", tmp_path / "kmsg")
    return tmp_path


def generate(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert generator.main([str(out)]) == 0
    return out


def test_members_require_their_networks_unit_which_forwards_their_ports(user: Path) -> None:
    (user / "config/networks/appnet.yaml").write_text("subnet: 10.95.0.0/24\n")
    decls = user / "decls"
    (decls / "web.yaml").write_text(
        'image: busybox\nnetwork: appnet\nports: ["8080:80", "127.0.0.1:5353:53/udp"]\n')
    (decls / "api.yaml").write_text('image: busybox\nnetwork: appnet\nports: ["9000:9000"]\n')
    (decls / "worker.yaml").write_text("image: busybox\nnetwork: appnet\n")
    (decls / "alone.yaml").write_text("image: busybox\n")  # bridge: pasta
    (decls / "lost.yaml").write_text("image: busybox\nnetwork: nowhere\n")
    out = generate(user)

    for member in ("web", "api", "worker"):
        unit = parse_unit((out / f"{member}.service").read_text())
        assert values(unit, "Unit", "Requires") == [UNIT]
        assert values(unit, "Unit", "After")[-1] == UNIT
    for other in ("alone", "lost"):  # pasta; an undeclared network (its start says so)
        assert values(parse_unit((out / f"{other}.service").read_text()), "Unit",
                      "Requires") == []
    assert sorted(p.name for p in out.glob("hostctl-network-*")) == [
        UNIT, "hostctl-network-online.service"]

    unit = parse_unit((out / UNIT).read_text())
    assert values(unit, "Service", "Type") == ["notify"]
    assert values(unit, "Service", "SyslogIdentifier") == ["hostctl-network-appnet"]
    assert values(unit, "Unit", "SourcePath") == [str(user / "config/networks/appnet.yaml")]
    start = exec_argv(values(unit, "Service", "ExecStart")[0])
    assert start[3:] == ["network-hold", "--user", "appnet", "--tcp=8080,9000",
                         "--udp=127.0.0.1/5353"]
    stop = exec_argv(values(unit, "Service", "ExecStopPost")[0])
    assert stop[3:] == ["network-release", "--user", "appnet"]


def test_a_network_declared_later_gets_its_unit_at_the_next_reload(user: Path) -> None:
    (user / "decls/web.yaml").write_text("image: busybox\nnetwork: late\n")
    assert not (generate(user) / "hostctl-network-late.service").exists()
    (user / "config/networks/late.yml").write_text("")
    out = user / "out2"
    assert generator.main([str(out)]) == 0  # the render cache sees the networks folder
    assert (out / "hostctl-network-late.service").exists()
    assert "Requires=hostctl-network-late.service" in (out / "web.service").read_text()


def test_system_containers_get_no_network_unit(user: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setenv("SYSTEMD_SCOPE", "system")
    (user / "config/networks/appnet.yaml").write_text("")
    (user / "decls/web.yaml").write_text("image: busybox\nnetwork: appnet\n")
    out = generate(user)
    assert "Requires=" not in (out / "web.service").read_text()
    assert not (out / UNIT).exists()


def test_user_networks_are_ipv4_and_not_named_bridge(user: Path) -> None:
    paths = for_scope(Scope.USER)
    bad = user / "config/networks/six.yaml"
    bad.write_text("subnet: 10.96.0.0/24\nipv6_subnet: fd00:96::/64\n")
    with pytest.raises(DeclarationError) as caught:
        defs.find_user("six", paths)
    assert caught.value.where == f"{bad}:2:ipv6_subnet"
    (user / "config/networks/bridge.yaml").write_text("")
    with pytest.raises(DeclarationError, match="rootless default"):
        defs.find_user("bridge", paths)
    (user / "config/networks/online.yaml").write_text("")  # hostctl-network-online.service
    with pytest.raises(DeclarationError, match="network-online"):
        defs.find_user("online", paths)
    (user / "config/networks/online.yaml").unlink()
    with pytest.raises(RuntimeFailure) as missing:
        defs.find_user("nowhere", paths, "web.yaml:3:network")
    assert missing.value.where == "web.yaml:3:network"
    assert f"{user}/config/networks/nowhere.yaml" in str(missing.value.hint)
    bad.unlink()
    (user / "config/networks/bridge.yaml").unlink()
    (user / "config/networks/a.yaml").write_text("subnet: 10.97.0.0/24\n")
    (user / "config/networks/b.yaml").write_text("subnet: 10.97.0.0/24\n")  # own namespaces
    assert sorted(defs.declared(paths)) == ["a", "b"]  # no built-in bridge in user scope


def test_forwarded_ports_round_trip_and_cover_what_they_bind() -> None:
    ports = [Port(None, 8080, 80), Port("127.0.0.1", 5353, 53, Protocol.UDP),
             Port(None, 8080, 81)]
    forwards = holder.forwards_of(ports)
    assert holder.format_forwards(forwards, "tcp") == "8080"
    assert holder.format_forwards(forwards, "udp") == "127.0.0.1/5353"
    assert holder.format_forwards((), "tcp") == "none"
    assert holder.parse_forwards("8080", "127.0.0.1/5353") == forwards
    running = holder.Holder("appnet", 1, "1", 2, forwards)
    assert running.forwards_port(Port("192.0.2.2", 8080, 80))  # every address covers one
    assert running.forwards_port(Port("127.0.0.1", 5353, 53, Protocol.UDP))
    assert not running.forwards_port(Port(None, 5353, 53, Protocol.UDP))  # only 127.0.0.1
    assert not running.forwards_port(Port(None, 8080, 80, Protocol.UDP))
    assert not running.forwards_port(Port(None, 8081, 80))
    with pytest.raises(RuntimeFailure, match="--tcp"):
        holder.parse_forwards("80x", "none")


def test_a_users_compose_project_network_gets_a_unit_its_services_require(user: Path) -> None:
    """A user's project's own network is a user network: its unit forwards the services'
    ports, and each service's unit requires it (a service on network_mode: bridge does
    not); a declared user network a project names as external gets their ports too."""
    (user / "config/networks/shared.yaml").write_text("")
    folder = user / "config/compose/shop"
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text(
        'services:\n  web:\n    image: busybox\n    ports: ["8081:80"]\n'
        "  db:\n    image: busybox\n"
        "  solo:\n    image: busybox\n    network_mode: bridge\n"
        '  side:\n    image: busybox\n    networks: [shared]\n    ports: ["7000:7000"]\n'
        "networks:\n  shared: {external: true}\n")
    out = generate(user)
    own = "hostctl-network-shop_default.service"
    for service in ("web", "db"):
        unit = parse_unit((out / f"shop-{service}.service").read_text())
        assert own in values(unit, "Unit", "Requires")
    assert "Requires=hostctl-network" not in (out / "shop-solo.service").read_text()
    side = parse_unit((out / "shop-side.service").read_text())
    assert "hostctl-network-shared.service" in values(side, "Unit", "Requires")
    unit = parse_unit((out / own).read_text())
    assert values(unit, "Unit", "SourcePath") == [str(folder / "compose.yaml")]
    start = exec_argv(values(unit, "Service", "ExecStart")[0])
    assert start[3:] == ["network-hold", "--user", "shop_default", "--tcp=8081", "--udp=none"]
    shared = exec_argv(values(parse_unit((out / "hostctl-network-shared.service").read_text()),
                              "Service", "ExecStart")[0])
    assert shared[3:] == ["network-hold", "--user", "shared", "--tcp=7000", "--udp=none"]
