"""Networks from quadlet .network files and the keys they brought to the YAML form:
where the files are found, what each key becomes (the CNI config a member gets), and
the errors naming FILE:LINE:KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.errors import DeclarationError
from hostctl.network import cni, defs
from hostctl.paths import Scope, for_scope


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the networks directory, a declaration directory) of a system scope under TMP."""
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "etc"))
    decl = tmp_path / "decl"
    decl.mkdir()
    monkeypatch.setenv("HOSTCTL_DECLARATION_PATH", str(decl))
    nets = defs.networks_dir(for_scope(Scope.SYSTEM))
    nets.mkdir(parents=True)
    return nets, decl


def test_network_files_are_found_in_both_places(places: tuple[Path, Path]) -> None:
    nets, decl = places
    (decl / "lab.network").write_text("[Network]\nSubnet=10.91.7.0/24\nDNS=192.0.2.53\n")
    (decl / "twice.network").write_text("[Network]\nInternal=true\n")
    (nets / "twice.yaml").write_text("subnet: 10.91.8.0/24\n")  # the networks dir wins
    paths = for_scope(Scope.SYSTEM)
    found = defs.declared(paths)
    assert str(found["lab"].subnet) == "10.91.7.0/24" and found["lab"].dns == ("192.0.2.53",)
    assert str(found["twice"].subnet) == "10.91.8.0/24" and not found["twice"].internal
    assert defs.find("lab", paths).source == decl / "lab.network"


def test_the_cni_config_carries_range_and_mtu() -> None:
    network = defs.parse_quadlet(
        "[Network]\nSubnet=10.91.7.0/24\nIPRange=10.91.7.128/25\nOptions=mtu=1400\n",
        Path("/x/lab.network"), "lab")
    plugin = cni.conflist(network, Path("/ipam"))["plugins"][0]
    assert plugin["mtu"] == 1400
    assert plugin["ipam"]["ranges"][0][0] == {
        "subnet": "10.91.7.0/24", "gateway": "10.91.7.1",
        "rangeStart": "10.91.7.128", "rangeEnd": "10.91.7.254",
    }


def test_the_yaml_form_has_the_same_keys() -> None:
    network = defs.parse(
        "subnet: 10.9.0.0/24\nip_range: 10.9.0.10-10.9.0.20\ndns: [192.0.2.1]\n"
        "disable_dns: true\nmtu: 1400\n", Path("/x/n.yaml"), "n")
    assert (str(network.ip_range[0]), str(network.ip_range[1])) == ("10.9.0.10", "10.9.0.20")  # type: ignore[index]
    assert (network.dns, network.names, network.mtu) == (("192.0.2.1",), False, 1400)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("[Network]\nSubnet=10.1.0.0/24\nIPRange=10.2.0.0/25\n", "3:IPRange", "is not inside"),
    ("[Network]\nDriver=macvlan\n", "2:Driver", "driver 'macvlan' is not supported"),
    ("[Network]\nOptions=isolate=true\n", "2:Options", "option 'isolate=true'"),
    ("[Network]\nNetworkName=other\n", "2:NetworkName", "name it other.network"),
    ("[Network]\nSubnt=10.1.0.0/24\n", "2:Subnt", "did you mean 'Subnet'"),
    ("[Network]\nGateway=10.1.0.1\n", "2:Gateway", "without subnet"),
    ("[Network]\nNetworkDeleteOnStop=true\n", "2:NetworkDeleteOnStop", "rootful"),
    ("[Unit]\nDescription=x\n", "2:Description", "section [Unit]"),
])
def test_errors_name_file_line_and_key(text: str, where: str, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        defs.parse_quadlet(text, Path("/x/lab.network"), "lab")
    assert caught.value.where == f"/x/lab.network:{where}"
    assert message in str(caught.value)


def test_a_user_network_may_go_with_its_unit_but_has_no_ipv6() -> None:
    network = defs.parse_quadlet("[Network]\nNetworkDeleteOnStop=true\n",
                                 Path("/x/lab.network"), "lab", user=True)
    assert network.name == "lab"
    with pytest.raises(DeclarationError, match="IPv4 only"):
        defs.parse_quadlet("[Network]\nIPv6=true\n", Path("/x/lab.network"), "lab", user=True)


def test_labels_are_kept_and_shown_by_inspect(tmp_path: Path) -> None:
    """Label= (YAML labels:) is recorded with the network; `hostctl network inspect`
    shows it."""
    from hostctl.network.status import inspect_network
    from hostctl.paths import Paths

    quadlet = defs.parse_quadlet('[Network]\nLabel=team=web "note=a b"\nLabel=tier=1\n',
                                 Path("/etc/containers/systemd/web.network"), "web")
    assert quadlet.labels == (("team", "web"), ("note", "a b"), ("tier", "1"))
    paths = Paths(Scope.SYSTEM, tmp_path / "state", tmp_path / "run", tmp_path / "etc")
    (tmp_path / "etc" / "networks").mkdir(parents=True)
    (tmp_path / "etc" / "networks" / "web.yaml").write_text("labels: {team: web, tier: 1}\n")
    assert inspect_network("web", paths, check=False).labels == {"team": "web", "tier": "1"}
    with pytest.raises(DeclarationError) as caught:
        defs.parse("labels: [a]\n", Path("/etc/hostctl/networks/web.yaml"), "web")
    assert caught.value.where == "/etc/hostctl/networks/web.yaml:1:labels"
    with pytest.raises(DeclarationError, match="has no '='"):
        defs.parse_quadlet("[Network]\nLabel=team\n", Path("/x/web.network"), "web")
