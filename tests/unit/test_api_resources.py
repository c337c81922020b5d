"""apply()/remove() of networks and volumes: validated, idempotent, check mode writes
nothing, a reload only for a change."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.api import resources
from hostctl.api.resources import Resource, apply, remove
from hostctl.errors import DeclarationError
from hostctl.paths import Scope


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "config"


@pytest.fixture
def reloads(monkeypatch: pytest.MonkeyPatch) -> list[Scope]:
    """The daemon-reloads asked for (systemd itself is not involved)."""
    calls: list[Scope] = []
    monkeypatch.setattr(resources, "_reload", calls.append)
    return calls


@pytest.fixture(autouse=True)
def stops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The units remove() stops first."""
    calls: list[str] = []
    monkeypatch.setattr(resources, "_stop", lambda scope, unit: calls.append(unit))
    return calls


def test_a_network_is_written_once_and_then_left_alone(config: Path,
                                                       reloads: list[Scope]) -> None:
    wanted = {"subnet": "10.90.7.0/24", "dns": ["192.0.2.53"], "mtu": 1400}
    checked = apply(Resource.NETWORK, "backend", wanted, check=True)
    path = config / "networks" / "backend.yaml"
    assert checked.changed and not path.exists() and reloads == []
    assert "+subnet: 10.90.7.0/24" in checked.diff
    done = apply(Resource.NETWORK, "backend", wanted)
    assert done.changed and done.actions == (f"write {path}", "daemon-reload")
    assert reloads == [Scope.SYSTEM]
    from hostctl.network import defs

    network = defs.load(path)
    assert (str(network.subnet), network.dns, network.mtu) == ("10.90.7.0/24", ("192.0.2.53",),
                                                              1400)
    again = apply(Resource.NETWORK, "backend", wanted)
    assert not again.changed and again.actions == () and reloads == [Scope.SYSTEM]
    changed = apply(Resource.NETWORK, "backend", {**wanted, "internal": True})
    assert changed.changed and "+internal: true" in changed.diff
    assert remove(Resource.NETWORK, "backend").actions == (f"delete {path}", "daemon-reload")


def test_a_volume_round_trips_and_absent_keeps_nothing_but_data(
        config: Path, reloads: list[Scope], stops: list[str]) -> None:
    done = apply(Resource.VOLUME, "cache", {"uid": 1000, "gid": 1000, "copy": False})
    path = config / "volumes" / "cache.yaml"
    from hostctl.declarations.volume_file import load_volume

    volume = load_volume(path)
    assert (volume.uid, volume.gid, volume.copy, done.changed) == (1000, 1000, False, True)
    assert apply(Resource.VOLUME, "cache", {}).after == ""  # every key left out
    gone = remove(Resource.VOLUME, "cache", check=True)
    assert gone.changed and path.exists() and stops == []
    assert gone.actions == ("stop cache-volume.service", f"delete {path}", "daemon-reload")
    assert remove(Resource.VOLUME, "cache").changed and not path.exists()
    assert stops == ["cache-volume.service"]
    assert not remove(Resource.VOLUME, "cache").changed
    assert len(reloads) == 3


@pytest.mark.parametrize(("kind", "declaration", "where", "words"), [
    (Resource.NETWORK, {"subnet": "10.90.7.1/24"}, "1:subnet", "not a subnet"),
    (Resource.NETWORK, {"subnet": "10.90.7.0/24", "gateway": "10.99.0.1"}, "2:gateway",
     "not a host address"),
    (Resource.VOLUME, {"type": "ext4"}, "1:type", "Type= without Device="),
])
def test_a_bad_declaration_is_refused_before_anything_is_written(
        config: Path, reloads: list[Scope], kind: Resource, declaration: dict[str, object],
        where: str, words: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        apply(kind, "backend", declaration)
    path = config / f"{kind}s" / "backend.yaml"
    assert caught.value.where == f"{path}:{where}" and words in caught.value.message
    assert not path.exists() and reloads == []


def test_a_user_network_refuses_ipv6(config: Path, reloads: list[Scope],
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    with pytest.raises(DeclarationError, match="user networks are IPv4 only"):
        apply(Resource.NETWORK, "backend", {"ipv6_subnet": "fd00:90:7::/64"},
              scope=Scope.USER)


def test_a_pod_is_declared_once_and_absent_stops_its_unit(
        config: Path, reloads: list[Scope], stops: list[str]) -> None:
    wanted = {"ports": ["18080:80"], "labels": {"team": "web"}, "stop_timeout": 3}
    checked = apply(Resource.POD, "shop", wanted, check=True)
    path = config / "pods" / "shop.yaml"
    assert checked.changed and not path.exists() and "+- 18080:80" in checked.diff
    assert apply(Resource.POD, "shop", wanted).actions == (f"write {path}", "daemon-reload")
    from hostctl.declarations.pod_file import load_pod

    pod = load_pod(path)
    assert ([p.host_port for p in pod.ports], dict(pod.labels), pod.stop_timeout) == (
        [18080], {"team": "web"}, 3)
    assert not apply(Resource.POD, "shop", wanted).changed and len(reloads) == 1
    renamed = {**wanted, "service_name": "shop.service"}
    apply(Resource.POD, "shop", renamed)
    assert resources.unit_of(Resource.POD, "shop", Scope.SYSTEM, path.read_text()) \
        == "shop.service"
    assert remove(Resource.POD, "shop").actions == (
        "stop shop.service", f"delete {path}", "daemon-reload")
    assert stops == ["shop.service"] and not path.exists()
    assert resources.unit_of(Resource.POD, "shop", Scope.SYSTEM, "") == "shop-pod.service"


def test_a_pod_is_checked_like_a_pods_file(config: Path, reloads: list[Scope],
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeclarationError) as caught:
        apply(Resource.POD, "shop", {"network": "host", "ports": ["80:80"]})
    assert caught.value.where.endswith("pods/shop.yaml:2:ports")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    with pytest.raises(DeclarationError, match="a user's pod cannot have ip"):
        apply(Resource.POD, "shop", {"ip": "10.89.0.20"}, scope=Scope.USER)
    assert reloads == []
