"""A container on several networks: the declarations, the CNI chain per interface, the
hosts file's sections per network, and what is refused (rootless, recorded starts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostctl.declarations.quadlet_reader import parse_quadlet
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.network import _attachment_file, _attachment_files, cni, defs, plan
from hostctl.paths import Paths, Scope
from hostctl.runtime import peers

IMAGE = "Image=docker.io/library/busybox:1.36\n"
UNIT = Path("/etc/containers/systemd/web.container")
YAML = Path("/etc/hostctl/containers/web.yaml")


def test_network_given_twice_in_a_quadlet_file_joins_both_in_order() -> None:
    container = parse_quadlet(
        f"[Container]\n{IMAGE}Network=front.network\nNetwork=back.network\nNetwork=bridge\n",
        UNIT)
    assert (container.network, container.networks) == ("front", ("back", "bridge"))
    assert container.where("networks") == f"{UNIT}:networks"
    reset = parse_quadlet(f"[Container]\n{IMAGE}Network=a\nNetwork=b\nNetwork=\nNetwork=c\n",
                          UNIT)
    assert (reset.network, reset.networks) == ("c", ())


@pytest.mark.parametrize(("text", "words"), [
    ("Network=host\nNetwork=back.network\n", "network: host with more networks"),
    ("Network=back.network\nNetwork=back\n", "network back is joined twice"),
    ("Network=back\nNetwork=none\n", "'none' cannot be one of several networks"),
])
def test_impossible_network_lists_are_refused_at_the_line(text: str, words: str) -> None:
    with pytest.raises(DeclarationError, match=words) as raised:
        parse_quadlet(f"[Container]\n{IMAGE}{text}", UNIT)
    assert raised.value.where == f"{UNIT}:4:Network"


def test_yaml_networks_setting_and_pod_members() -> None:
    image = "image: docker.io/library/busybox:1.36\n"
    container = parse_yaml(f"{image}network: front\nnetworks: [back, bridge]\n", YAML)
    assert container.networks == ("back", "bridge")
    with pytest.raises(DeclarationError) as raised:
        parse_yaml(f"{image}network: host\nnetworks: [back]\n", YAML)
    assert raised.value.where == f"{YAML}:3:networks"
    with pytest.raises(DeclarationError, match="member of pod") as raised:
        parse_yaml(f"{image}pod: web\nnetworks: [back]\n", YAML)


def _paths(tmp_path: Path, scope: Scope = Scope.SYSTEM) -> Paths:
    return Paths(scope, tmp_path / "state", tmp_path / "run", tmp_path / "etc")


def test_a_users_container_on_two_networks_is_refused_at_the_key(tmp_path: Path) -> None:
    container = parse_yaml("image: docker.io/library/busybox:1.36\nnetwork: front\n"
                           "networks: [back]\n", YAML)
    with pytest.raises(RuntimeFailure, match="joins one network") as raised:
        plan(container, _paths(tmp_path, Scope.USER))
    assert raised.value.where == f"{YAML}:3:networks"


def test_an_undeclared_second_network_is_an_error_at_its_key(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    defs.networks_dir(paths).mkdir(parents=True)
    (defs.networks_dir(paths) / "front.yaml").write_text("subnet: 10.91.0.0/24\n")
    container = parse_yaml("image: docker.io/library/busybox:1.36\nnetwork: front\n"
                           "networks: [back]\n", YAML)
    with pytest.raises(RuntimeFailure, match="back") as raised:
        plan(container, paths)
    assert raised.value.where == f"{YAML}:3:networks"
    assert not (paths.run / "network" / "cni").exists() or not any(
        (paths.run / "network" / "cni").iterdir())


def test_later_networks_get_no_default_route_and_their_own_interface(tmp_path: Path) -> None:
    network = _network(tmp_path, "back", "10.92.0.0/24")
    assert "routes" in cni.conflist(network, tmp_path)["plugins"][0]["ipam"]
    later = cni.conflist(network, tmp_path, default_route=False)["plugins"][0]
    assert "routes" not in later["ipam"] and later["isGateway"]
    att = cni.Attachment("web", "back", "/run/netns/hostctl-web", later, ifname="eth1")
    assert cni.Attachment.from_json(att.to_json()) == att
    assert "ifname" not in cni.Attachment("web", "back", "/n", later).to_json()


def _network(tmp_path: Path, name: str, subnet: str) -> defs.Network:
    paths = _paths(tmp_path)
    defs.networks_dir(paths).mkdir(parents=True, exist_ok=True)
    (defs.networks_dir(paths) / f"{name}.yaml").write_text(f"subnet: {subnet}\n")
    return defs.find(name, paths, "here")


def test_attachment_caches_of_later_networks_go_first(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    first = _attachment_file(paths, "web")
    first.parent.mkdir(parents=True)
    for ifname in ("eth1", "eth2"):
        _attachment_file(paths, "web", ifname).write_text("{}")
    _attachment_file(paths, "web+x", "eth1").write_text("{}")  # not web's
    (first.parent / "web@eth1.json").write_text("{}")  # an instance web@eth1's
    assert [p.name for p in _attachment_files(paths, "web")] == [
        "web+eth2.json", "web+eth1.json", "web.json"]


def test_each_network_rewrites_its_own_section_of_a_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    multi = peers.Member("multi", ("10.91.0.2",), hosts)
    front = [multi, peers.Member("a", ("10.91.0.3",), tmp_path / "a")]
    back = [multi, peers.Member("b", ("10.92.0.3",), tmp_path / "b", ("db",))]
    hosts.write_text("127.0.0.1\tlocalhost\n" + "".join(
        f"{address}\t{names}\n" for address, names in
        peers.peer_lines("front", front, "multi") + peers.peer_lines("back", back, "multi")))
    peers.rewrite_peers(multi, "front", front[:1])  # a left front
    assert hosts.read_text() == ("127.0.0.1\tlocalhost\n"
                                 f"{peers.MARKER}front\t\n"
                                 f"{peers.MARKER}back\t\n10.92.0.3\tb db\n")
    peers.rewrite_peers(multi, "back", [*back, peers.Member("c", ("10.92.0.4",), hosts)])
    peers.rewrite_peers(multi, "front", front)
    assert hosts.read_text() == ("127.0.0.1\tlocalhost\n"
                                 f"{peers.MARKER}front\t\n10.91.0.3\ta\n"
                                 f"{peers.MARKER}back\t\n10.92.0.3\tb db\n10.92.0.4\tc\n")
    peers.rewrite_peers(multi, "side", [])  # a section that was not there: added
    assert hosts.read_text().endswith(f"{peers.MARKER}side\t\n")


def test_a_start_on_several_networks_is_never_recorded() -> None:
    from hostctl.launcher.recording import eligible

    config = {"linux": {"cgroupsPath": "system.slice:x:y"}}
    one = parse_quadlet(f"[Container]\n{IMAGE}Network=front\n", UNIT)
    two = parse_quadlet(f"[Container]\n{IMAGE}Network=front\nNetwork=back\n", UNIT)
    assert eligible(one, Scope.SYSTEM, config)
    assert not eligible(two, Scope.SYSTEM, config)


def test_run_with_network_given_twice_declares_both() -> None:
    from hostctl.cli.run import adhoc_declaration

    body = adhoc_declaration("docker.io/library/busybox:1.36", [], [], [], 5,
                             ["front", "back", "bridge"])
    assert (body["network"], body["networks"]) == ("front", ["back", "bridge"])
    container = parse_yaml(json.dumps(body), Path("/run/hostctl/adhoc/x.yaml"))
    assert container.networks == ("back", "bridge")
    assert "networks" not in adhoc_declaration("x.io/a:1", [], [], [], 5, ["front"])


def test_aliases_per_network_in_yaml_and_quadlet() -> None:
    image = "image: docker.io/library/busybox:1.36\n"
    yaml = parse_yaml(f"{image}network: front\nnetworks: [back]\nnetwork_aliases: [web]\n"
                      "network_aliases_by_network: {back: [api, api-v1], front: www}\n", YAML)
    assert yaml.network_aliases_by_network == (("back", ("api", "api-v1")), ("front", ("www",)))
    assert yaml.aliases_on("back") == ("web", "api", "api-v1")
    assert yaml.aliases_on("front") == ("web", "www")
    quadlet = parse_quadlet(f"[Container]\n{IMAGE}Network=front.network\n"
                            "Network=back.network:alias=api,alias=api-v1\n"
                            "Network=side:alias=s\nNetworkAlias=web\n", UNIT)
    assert (quadlet.network, quadlet.networks) == ("front", ("back", "side"))
    assert quadlet.aliases_on("back") == ("web", "api", "api-v1")
    assert quadlet.aliases_on("side") == ("web", "s")
    assert quadlet.aliases_on("front") == ("web",)
    reset = parse_quadlet(f"[Container]\n{IMAGE}Network=a:alias=x\nNetwork=\nNetwork=c\n", UNIT)
    assert reset.network_aliases_by_network == ()


@pytest.mark.parametrize(("text", "where", "words"), [
    ("network: front\nnetwork_aliases_by_network: {back: [api]}\n",
     "3:network_aliases_by_network", "network back, which the container does not join"),
    ("network_aliases_by_network: {bridge: [api]}\n", "2:network_aliases_by_network",
     "aliases on network bridge"),
    ("network: front\nnetwork_aliases_by_network: {front: ['a b']}\n",
     "3:network_aliases_by_network.front[0]", "not a host name"),
    ("network: front\nnetwork_aliases_by_network: [front]\n",
     "3:network_aliases_by_network", "a mapping"),
    ("network: front\nnetwork_aliases_by_network: {host: [x]}\n",
     "3:network_aliases_by_network.host", "cannot be one of several networks"),
    ("pod: web\nnetwork_aliases_by_network: {front: [x]}\n",
     "3:network_aliases_by_network", "a member of pod web cannot set"),
])
def test_bad_aliases_per_network_name_the_key(text: str, where: str, words: str) -> None:
    with pytest.raises(DeclarationError, match=words) as raised:
        parse_yaml(f"image: docker.io/library/busybox:1.36\n{text}", YAML)
    assert raised.value.where == f"{YAML}:{where}"


@pytest.mark.parametrize(("line", "words"), [
    ("Network=back:ip=10.0.0.2", "network option 'ip=10.0.0.2' is not supported"),
    ("Network=back:alias", "network option 'alias' is not supported"),
    ("Network=back:alias=a_b c", "not a host name"),
    ("Network=host:alias=x", "aliases on network host"),
])
def test_bad_quadlet_network_options_are_refused_at_the_line(line: str, words: str) -> None:
    with pytest.raises(DeclarationError, match=words) as raised:
        parse_quadlet(f"[Container]\n{IMAGE}{line}\n", UNIT)
    assert raised.value.where == f"{UNIT}:3:Network"


class _Wired:
    """plan()'s wiring, done: the attachments a real ADD returned (what attach() waits for)."""

    def __init__(self, attachments: list[cni.Attachment], networks: list[defs.Network]):
        self.attachments, self.networks = attachments, networks

    def wait(self) -> list[cni.Attachment]:
        return self.attachments


def test_attach_records_each_networks_own_aliases(tmp_path: Path) -> None:
    import ipaddress

    from hostctl import network

    paths = _paths(tmp_path)
    container = parse_yaml("image: docker.io/library/busybox:1.36\nnetwork: front\n"
                           "networks: [back]\nnetwork_aliases: [web]\n"
                           "network_aliases_by_network: {back: [api]}\n", YAML)
    nets = [defs.Network(name, ipaddress.IPv4Network(subnet),
                         ipaddress.IPv4Network(subnet)[1], f"hc-{name}")
            for name, subnet in (("front", "10.91.0.0/24"), ("back", "10.92.0.0/24"))]
    wired = [cni.Attachment("web", net.name, "", {}, {"ips": [{"address": address}]},
                            ifname=f"eth{i}")
             for i, (net, address) in enumerate(zip(nets, ("10.91.0.2/24", "10.92.0.2/24"),
                                                    strict=True))]
    network._wiring["web"] = _Wired(wired, nets)  # type: ignore[assignment]
    try:
        network.attach(container, 1, paths)
    finally:
        network._wiring.pop("web", None)
        network._attached.pop("web", None)
    members = network.state_dir(paths) / "members"
    front = peers.Members(members, "front").all()
    back = peers.Members(members, "back").all()
    assert [(m.container, m.addresses, m.aliases) for m in front] == [
        ("web", ("10.91.0.2",), ("web",))]
    assert [(m.container, m.addresses, m.aliases) for m in back] == [
        ("web", ("10.92.0.2",), ("web", "api"))]
