"""Pure logic of networking: network files, CNI configs, resolv.conf, hosts, pasta."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from hostctl.declarations.model import Port, Protocol
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.network import cni, defs, pasta, ports, resolv, rules
from hostctl.paths import Paths, Scope
from hostctl.runtime import peers

SRC = Path("/etc/hostctl/networks/backend.yaml")


def parse(text: str, name: str = "backend") -> defs.Network:
    return defs.parse(text, SRC, name)


def test_an_empty_network_file_gets_defaults_derived_from_its_name() -> None:
    net = parse("")
    assert net.subnet == defs.auto_subnet("backend")
    assert net.subnet.prefixlen == 24 and str(net.subnet).startswith("10.90.")
    assert net.gateway == next(net.subnet.hosts())
    assert net.bridge == "hc-backend" and not net.internal and net.ipv6_subnet is None


def test_network_settings_are_read() -> None:
    net = parse("subnet: 10.91.0.0/24\ngateway: 10.91.0.254\ninternal: true\n"
                "ipv6_subnet: fd00:91::/64\nbridge: br-back\n")
    assert net.subnet == ipaddress.IPv4Network("10.91.0.0/24")
    assert str(net.gateway) == "10.91.0.254"
    assert net.internal and net.bridge == "br-back"
    assert str(net.ipv6_gateway) == "fd00:91::1"


@pytest.mark.parametrize(("text", "where", "words"), [
    ("subnet: 10.91.0.1/24\n", "1:subnet", "not a subnet"),
    ("subnet: fd00::/64\n", "1:subnet", "not an IPv4 subnet"),
    ("subnet: 10.91.0.0/31\n", "1:subnet", "too small"),
    ("subnet: 10.91.0.0/24\ngateway: 10.92.0.1\n", "2:gateway", "not a host address"),
    ("gateway: banana\n", "1:gateway", "not an IPv4 address"),
    ("internal: maybe\n", "1:internal", "true or false"),
    ("\nbridge: this-name-is-far-too-long\n", "2:bridge", "not an interface name"),
    ("subnet: 10.91.0.0/24\nsubnett: x\n", "2:subnett", "unknown key"),
    ("- a\n", "1", "mapping"),
])
def test_bad_network_files_name_file_line_and_key(text: str, where: str, words: str) -> None:
    with pytest.raises(DeclarationError) as err:
        parse(text)
    assert err.value.where == f"{SRC}:{where}"
    assert words in err.value.message


@pytest.mark.parametrize("name", ["host", "none", "-x"])
def test_reserved_or_bad_network_names_are_refused(name: str) -> None:
    with pytest.raises(DeclarationError):
        parse("", name)


def test_long_network_names_get_a_short_bridge_name() -> None:
    assert len(defs.bridge_name("a-very-long-network-name")) <= 15
    assert defs.bridge_name("a-very-long-network-name") != defs.bridge_name("a-very-long-other")


def _paths(tmp_path: Path) -> Paths:
    return Paths(Scope.SYSTEM, tmp_path / "state", tmp_path / "run", tmp_path / "etc")


def test_declared_networks_include_bridge_and_refuse_overlaps(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    folder = defs.networks_dir(paths)
    folder.mkdir(parents=True)
    (folder / "one.yaml").write_text("subnet: 10.91.0.0/24\n")
    assert sorted(defs.declared(paths)) == ["bridge", "one"]
    (folder / "two.yaml").write_text("subnet: 10.91.0.128/25\n")
    with pytest.raises(DeclarationError, match="overlaps"):
        defs.declared(paths)


def test_an_undeclared_network_is_an_error_at_the_containers_key(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure) as err:
        defs.find("nope", _paths(tmp_path), "/etc/hostctl/containers/a.yaml:3:network")
    assert err.value.where == "/etc/hostctl/containers/a.yaml:3:network"
    assert "nope.yaml" in (err.value.hint or "")


def test_conflist_is_the_bridge_plugin_alone(tmp_path: Path) -> None:
    conf = cni.conflist(parse("subnet: 10.91.0.0/24\n"), tmp_path)
    assert [p["type"] for p in conf["plugins"]] == ["bridge"]  # ports: hostctl's own DNAT
    bridge = conf["plugins"][0]
    # hostctl's own rules masquerade (one iptables-restore instead of the plugin's calls)
    assert bridge["isGateway"] and not bridge["ipMasq"] and bridge["bridge"] == "hc-backend"
    assert bridge["ipam"]["dataDir"] == str(tmp_path)
    assert bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]


def test_internal_networks_have_no_gateway_masquerade_or_default_route(tmp_path: Path) -> None:
    conf = cni.conflist(parse("internal: true\n"), tmp_path)
    assert [p["type"] for p in conf["plugins"]] == ["bridge"]
    bridge = conf["plugins"][0]
    assert not bridge["isGateway"] and not bridge["ipMasq"] and "routes" not in bridge["ipam"]


def test_ipv6_subnet_adds_a_second_range(tmp_path: Path) -> None:
    conf = cni.conflist(parse("ipv6_subnet: fd00:91::/64\n"), tmp_path)
    ipam = conf["plugins"][0]["ipam"]
    assert ipam["ranges"][1] == [{"subnet": "fd00:91::/64", "gateway": "fd00:91::1"}]
    assert {"dst": "::/0"} in ipam["routes"]


def test_attachment_round_trips_and_lists_ipv4_first() -> None:
    result = {"ips": [{"address": "fd00::5/64"}, {"address": "10.91.0.5/24"}]}
    kept = (("4", "nat", "-A POSTROUTING -s 10.91.0.5/32 -j MASQUERADE"),)
    att = cni.Attachment("web", "backend", "/run/netns/hostctl-web", {"plugins": []}, result,
                         kept, (Port(None, 8080, 80), Port("127.0.0.1", 53, 53, Protocol.UDP)))
    assert cni.Attachment.from_json(att.to_json()) == att
    assert att.addresses() == ["10.91.0.5", "fd00::5"]


def test_cni_error_text_prefers_the_json_message() -> None:
    out = b'{"code": 7, "msg": "failed to allocate", "details": "range full"}'
    assert cni._error_text(out, b"") == "failed to allocate range full"
    assert cni._error_text(b"", b"plain stderr\n") == "plain stderr"


def test_resolv_drops_loopback_servers_in_a_private_namespace(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nsearch lan\noptions edns0\n")
    upstream = tmp_path / "upstream.conf"
    upstream.write_text("nameserver 192.0.2.53\nsearch lan\n")
    monkeypatch.setattr(resolv, "HOST_RESOLV", host)
    monkeypatch.setattr(resolv, "RESOLVED_UPSTREAM", upstream)
    assert resolv.host_resolv(own_netns=False) == host.read_text()
    assert resolv.host_resolv(own_netns=True) == "nameserver 192.0.2.53\nsearch lan\n"
    upstream.unlink()
    assert resolv.host_resolv(own_netns=True) == "search lan\noptions edns0\n"


def test_dns_settings_replace_the_lines_they_name() -> None:
    base = "domain corp\nsearch corp\nnameserver 192.0.2.1\noptions ndots:1\n"
    assert resolv.shape(base, (), (), ()) == base
    shaped = resolv.shape(base, ("192.0.2.53", "2001:db8::53"), ("a.example",), ("ndots:2",))
    assert shaped == ("search a.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"
                      "options ndots:2\n")
    assert resolv.shape(base, ("192.0.2.9",), (), ()) == (
        "domain corp\nsearch corp\noptions ndots:1\nnameserver 192.0.2.9\n")


def test_add_hosts_resolves_host_gateway() -> None:
    lines = resolv.extra_hosts((("db", "192.0.2.10"), ("gw", "host-gateway")), "10.89.0.1", "k")
    assert lines == (("192.0.2.10", "db"), ("10.89.0.1", "gw"))
    with pytest.raises(RuntimeFailure, match="host-gateway"):
        resolv.extra_hosts((("gw", "host-gateway"),), None, "k")


def test_peer_section_of_a_hosts_file_is_rewritten_in_place(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n192.0.2.10\tdb.local\n")
    inode = hosts.stat().st_ino
    members = [peers.Member("web", ("10.91.0.2",), hosts),
               peers.Member("app", ("10.91.0.3", "fd00::3"), tmp_path / "gone")]
    peers.rewrite_peers(members[0], "backend", members)
    text = hosts.read_text()
    assert text == ("127.0.0.1\tlocalhost\n192.0.2.10\tdb.local\n"
                    f"{peers.MARKER}backend\t\n10.91.0.3\tapp\nfd00::3\tapp\n")
    peers.rewrite_peers(members[0], "backend", members[:1])  # app left
    assert hosts.read_text().endswith(f"{peers.MARKER}backend\t\n")
    assert "app" not in hosts.read_text() and hosts.stat().st_ino == inode
    peers.rewrite_peers(members[1], "backend", members)  # a missing file: nothing to do


def test_member_records_are_kept_per_network(tmp_path: Path) -> None:
    group = peers.Members(tmp_path, "backend")
    with group.locked():
        group.add(peers.Member("web", ("10.91.0.2",), tmp_path / "h"))
    assert group.all() == [peers.Member("web", ("10.91.0.2",), tmp_path / "h")]
    group.discard("web")
    assert group.all() == []


def test_pasta_forwards_exactly_the_published_ports(tmp_path: Path) -> None:
    ports = (Port(None, 8080, 80), Port("127.0.0.1", 8443, 443),
             Port(None, 5353, 53, Protocol.UDP))
    argv = pasta.argv("/proc/self/fd/3", None, ports, tmp_path / "p.pid")
    assert argv[argv.index("-t") + 1] == "8080:80,127.0.0.1/8443:443"
    assert argv[argv.index("-u") + 1] == "5353:53"
    assert argv[argv.index("-T") + 1] == "none" and "--netns-only" in argv
    quiet = pasta.argv("/x", "/proc/self/fd/4", (), tmp_path / "p.pid")
    assert quiet[quiet.index("-t") + 1] == "none" and "--userns" in quiet


def test_stopping_pasta_without_a_pid_file_is_harmless(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    pasta.stop(pid_file)
    pid_file.write_text("not a pid")
    pasta.stop(pid_file)
    assert not pid_file.exists()


def test_container_rules_masquerade_accept_and_isolate_by_bridge() -> None:
    found = rules.for_container("web", ["10.91.0.5", "fd00:91::5"],
                                ["10.91.0.0/24", "fd00:91::/64"], "hc-backend", False)
    v4 = [spec for family, _, spec in found if family == "4"]
    assert [(t, s.split()[:2]) for f, t, s in found if f == "4"] == [
        ("nat", ["-A", "POSTROUTING"]), ("filter", ["-I", rules.CHAIN]),
        ("filter", ["-A", rules.CHAIN]), ("filter", ["-A", rules.CHAIN])]
    assert "-s 10.91.0.5/32 ! -d 10.91.0.0/24" in v4[0] and v4[0].endswith("MASQUERADE")
    # new connections reach it only over its own bridge, or through a published port
    assert "-d 10.91.0.5/32 ! -i hc-backend" in v4[1] and "! --ctstate RELATED,ESTABLISHED,DNAT" \
        in v4[1] and v4[1].endswith("DROP")
    assert any("fd00:91::5/128 ! -d fd00:91::/64" in s for f, _, s in found if f == "6")
    assert all('"hostctl web"' in spec for _, _, spec in found)


def test_internal_container_rules_drop_all_but_its_bridge_and_never_masquerade() -> None:
    found = rules.for_container("db", ["10.92.0.5"], ["10.92.0.0/24"], "hc-isolated", True)
    assert not [s for _, t, s in found if t == "nat"]
    assert any("-s 10.92.0.5/32 ! -o hc-isolated" in s and s.endswith("DROP") for _, _, s in found)


def test_rule_batches_add_and_delete_every_rule_per_family_and_table() -> None:
    found = rules.for_container("web", ["10.91.0.5"], ["10.91.0.0/24"], "hc-backend", False)
    added = rules._batch(found, "4", delete=False).splitlines()
    deleted = rules._batch(found, "4", delete=True).splitlines()
    # filter first: when it fails (no shared chain yet) nothing was committed
    assert added[0] == "*filter" and added[4] == "COMMIT" and added[5] == "*nat"
    assert [line.split()[0] for line in deleted if line.startswith("-")] == ["-D"] * 4
    assert deleted[1].split()[1] == rules.CHAIN and deleted[6].split()[1] == "POSTROUTING"
    assert rules._batch(found, "6", delete=False) == ""


def _port_rules(*published: Port, addresses: tuple[str, ...] = ("10.91.0.5", "fd00:91::5")
                ) -> list[tuple[str, str, str]]:
    return ports.for_container("web", published, addresses, ["10.91.0.0/24", "fd00:91::/64"])


def test_a_published_port_is_dnat_on_every_local_address_of_both_families() -> None:
    found = _port_rules(Port(None, 8080, 80))
    v4 = [spec for family, table, spec in found if family == "4" and table == "nat"]
    v6 = [spec for family, table, spec in found if family == "6" and table == "nat"]
    assert [s.split()[:2] for s in v4] == [["-I", "PREROUTING"], ["-I", "OUTPUT"],
                                           ["-A", "POSTROUTING"], ["-A", "POSTROUTING"]]
    for dnat in v4[:2]:
        assert "-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 8080" in dnat
        assert dnat.endswith("-j DNAT --to-destination 10.91.0.5:80") and " -d " not in dnat
    # hairpin: from its own network through a host address, answered from that address
    assert "-s 10.91.0.0/24 -d 10.91.0.5/32 -p tcp -m tcp --dport 80 -m conntrack " \
           "--ctstate DNAT" in v4[2] and v4[2].endswith("MASQUERADE")
    # 127.0.0.1 on the host: masqueraded to the bridge's address
    assert "-s 127.0.0.0/8 -d 10.91.0.5/32 -p tcp" in v4[3] and v4[3].endswith("MASQUERADE")
    assert v6[0].endswith("--to-destination [fd00:91::5]:80") and "! -d ::1/128" in v6[0]
    assert not any("127.0.0.0/8" in s for s in v6) and len(v6) == 3
    assert all('"hostctl web"' in spec for _, _, spec in found)
    assert ports.needs_route_localnet([Port(None, 8080, 80)])


def test_a_host_ip_restricts_the_dnat_to_that_address_and_family() -> None:
    found = _port_rules(Port("192.0.2.2", 8080, 80), Port("127.0.0.1", 5353, 53, Protocol.UDP))
    assert {family for family, _, _ in found} == {"4"}
    dnat = [s for _, _, s in found if "DNAT --to" in s]
    assert sum("-d 192.0.2.2/32 -p tcp -m tcp --dport 8080" in s for s in dnat) == 2
    assert sum("-d 127.0.0.1/32 -p udp -m udp --dport 5353" in s and s.endswith(
        "10.91.0.5:53") for s in dnat) == 2
    loopback = [s for _, _, s in found if "-s 127.0.0.0/8" in s]
    assert loopback and all("--dport 53" in s for s in loopback)  # not for 192.0.2.2
    assert not ports.needs_route_localnet([Port("192.0.2.2", 8080, 80)])
    assert ports.needs_route_localnet([Port("0.0.0.0", 8080, 80)])
    v6only = _port_rules(Port("fd00::1", 8080, 80))
    assert {family for family, _, _ in v6only} == {"6"}
    assert "-d fd00::1/128" in v6only[0][2]


def test_port_rules_go_in_the_same_batch_and_leave_with_it() -> None:
    found = rules.for_container("web", ["10.91.0.5"], ["10.91.0.0/24"], "hc-backend", False)
    found += _port_rules(Port(None, 8080, 80), addresses=("10.91.0.5",))
    found.append(rules.loopback_guard("web", "hc-backend"))
    added = rules._batch(found, "4", delete=False)
    assert added.count("COMMIT") == 2 and added.count("DNAT --to-destination") == 2
    assert f"-A {rules.INPUT_CHAIN} -i hc-backend -d 127.0.0.0/8" in added
    deleted = rules._batch(found, "4", delete=True).splitlines()
    assert len([line for line in deleted if line.startswith("-D ")]) == len(found)
    assert "-D PREROUTING -m addrtype" in "\n".join(deleted)


@pytest.mark.parametrize(("port", "words"), [
    (Port("::1", 8080, 80), "::1 cannot be published"),
    (Port("fd00::1", 8080, 80), "has no IPv6 subnet"),
])
def test_ports_that_cannot_be_published_are_refused(port: Port, words: str) -> None:
    with pytest.raises(RuntimeFailure) as err:
        ports.check([port], False, "/etc/hostctl/containers/web.yaml:4:ports", "backend")
    assert words in err.value.message
    assert err.value.where == "/etc/hostctl/containers/web.yaml:4:ports"
    ports.check([Port(None, 8080, 80), Port("127.0.0.1", 53, 53)], False, "k", "backend")


def test_a_host_port_held_by_another_container_is_refused_naming_both() -> None:
    taken = {"db": (Port(None, 5432, 5432),), "web": (Port("127.0.0.1", 8080, 80),)}
    with pytest.raises(RuntimeFailure) as err:
        ports.check_free([Port(None, 9000, 90), Port("0.0.0.0", 8080, 81)], taken,
                         "/etc/hostctl/containers/new.yaml:3:ports")
    assert "host port 8080/tcp (0.0.0.0:8080:81/tcp)" in err.value.message
    assert "published by container web (127.0.0.1:8080:80/tcp)" in err.value.message
    assert "systemctl stop web" in (err.value.hint or "")
    assert err.value.where == "/etc/hostctl/containers/new.yaml:3:ports"
    with pytest.raises(RuntimeFailure, match="container db"):
        ports.check_free([Port("::1", 5432, 1)], taken, "k")


@pytest.mark.parametrize(("one", "other"), [
    (Port(None, 8080, 80), Port(None, 8080, 80, Protocol.UDP)),  # another protocol
    (Port(None, 8080, 80), Port(None, 8081, 80)),  # another port
    (Port("127.0.0.1", 8080, 80), Port("192.0.2.2", 8080, 80)),  # other addresses
    (Port("0.0.0.0", 8080, 80), Port("::", 8080, 80)),  # other families
])
def test_ports_that_do_not_overlap_can_be_published_together(one: Port, other: Port) -> None:
    assert not ports.overlaps(one, other) and not ports.overlaps(other, one)
    ports.check_free([one], {"other": (other,)}, "k")


def test_a_bound_host_port_is_refused_naming_the_process_that_holds_it() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        taken = server.getsockname()[1]
        with pytest.raises(RuntimeFailure) as failure:
            ports.check_unbound([Port("127.0.0.1", taken, 80)], "web.yaml:3:ports")
        me = Path("/proc/self/comm").read_text().strip()
        assert failure.value.message == (
            f"host port {taken}/tcp (127.0.0.1:{taken}:80/tcp) is in use on the host by "
            f"{me} (PID {os.getpid()})")
        assert failure.value.where == "web.yaml:3:ports"
        # UDP on the same number is another port: free
        ports.check_unbound([Port("127.0.0.1", taken, 80, Protocol.UDP)], "k")
    ports.check_unbound([Port("127.0.0.1", taken, 80)], "k")  # closed: free again


def test_a_host_ip_that_is_not_the_hosts_is_refused() -> None:
    with pytest.raises(RuntimeFailure, match=r"198\.51\.100\.7 is not an address of this host"):
        ports.check_unbound([Port("198.51.100.7", 8080, 80)], "k")
