"""What a recorded start needs to wire a rootful container to its bridge network again.

A full start (hostctl.network.plan and attach) decides the namespace, runs the CNI
bridge plugin (host-local IPAM picks the address) and puts hostctl's rules in place.
for_record() writes all of that down as finished text, for the start record
(hostctl.launcher.record): the plugin's stdin for ADD, now asking host-local for the
address it gave (so the rules stay right), and for DEL; the attachment cache's text; the
iptables-restore batches that add and delete the rules; the claims on host ports. The
recorded start (hostctl.launcher.quicknet) replays them with os, _thread and _socket
only. A network's inputs (its file, the directories a network may be declared in) go
into the record's signatures through inputs().
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.declarations.dirs import declaration_dirs
from hostctl.network import cni, defs, ports, rules
from hostctl.runtime import netns

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hostctl.declarations.model import Port
    from hostctl.paths import Paths

# In the recorded attachment cache text: replaced by the plugin's ADD result (JSON).
RESULT_PLACEHOLDER = {"@hostctl-cni-result@": 0}
RESTORE = {"4": "iptables-restore", "6": "ip6tables-restore"}
LIST = {"4": "iptables", "6": "ip6tables"}


def claims(published: Sequence[Port]) -> list[tuple[str, int, int, str]]:
    """PUBLISHED as (protocol, host port, IP version, host address or "" for every
    address of that version): two ports clash when a claim of each has the same
    protocol, port and version, and one of their addresses is "" or both are equal
    (hostctl.network.ports.overlaps, flattened for the recorded start)."""
    found = []
    for port in published:
        dest = "" if port.host_ip is None else str(ipaddress.ip_address(port.host_ip))
        if dest in ("0.0.0.0", "::"):
            dest = ""
        found += [(str(port.protocol), port.host_port, version, dest)
                  for version in ports.families(port)]
    return found


def claims_file(cache: Path) -> Path:
    """The claims of the container whose attachment is cached at CACHE (marshal)."""
    return cache.with_suffix(".ports")


def write_claims(cache: Path, published: Sequence[Port]) -> None:
    import marshal

    partial = cache.with_name(f".{cache.stem}.ports.tmp")
    partial.write_bytes(marshal.dumps(claims(published)))
    partial.replace(claims_file(cache))


def _probes(published: Sequence[Port]) -> list[tuple[int, str, int, bool]]:
    """What ports.check_unbound binds: (IP version, address, port, tcp)."""
    return [(version, port.host_ip or ("0.0.0.0" if version == 4 else "::"), port.host_port,
             str(port.protocol) == "tcp")
            for port in published for version in ports.families(port)]


def _batches(wanted: Sequence[rules.Rule], delete: bool) -> dict[str, str]:
    found = {}
    for family in ("4", "6"):
        batch = rules._batch(wanted, family, delete=delete)
        if batch:
            found[family] = batch
    return found


def _tool(name: str) -> str:
    from hostctl.proc import which

    return which(name)


def _plugin_env(attachment: cni.Attachment) -> dict[str, str]:
    return {"CNI_CONTAINERID": attachment.container, "CNI_NETNS": attachment.netns,
            "CNI_IFNAME": cni.IFNAME, "CNI_PATH": str(cni.PLUGIN_DIR), "PATH": cni._ENV_PATH}


def for_record(attachment: cni.Attachment, network: defs.Network, paths: Paths,
               cache: Path, hosts: Path, aliases: tuple[str, ...] = ()
               ) -> dict[str, Any] | None:
    """The recorded start's network part for ATTACHMENT (ADD done, rules in place) on
    NETWORK, cached at CACHE; None when it cannot be replayed (a chain of more than the
    bridge plugin, from an older hostctl)."""
    plugins = attachment.config["plugins"]
    if len(plugins) != 1 or plugins[0]["type"] != "bridge" or attachment.result is None:
        return None
    addresses = [str(ip["address"]) for ip in attachment.result.get("ips", [])]
    stdin = {**plugins[0], "cniVersion": attachment.config["cniVersion"],
             "name": attachment.config["name"]}
    # the same MAC address too: the host's neighbour entry for the address (REACHABLE
    # after a restart) still names the last start's, which no longer answers
    macs = [str(i["mac"]) for i in attachment.result.get("interfaces", [])
            if i.get("sandbox") and i.get("mac")]
    asked = {**stdin, "args": {"cni": {"ips": [a.split("/")[0] for a in addresses],
                                       **({"mac": macs[0]} if macs else {})}}}
    before = dataclasses.replace(attachment, result=None, rules=())
    after = dataclasses.replace(attachment, result=RESULT_PLACEHOLDER)
    localnet = ports.needs_route_localnet(attachment.ports)
    families = {fam for fam, _table, _spec in attachment.rules}
    return {
        "netns": netns.path_for(attachment.container),
        "bridge": network.bridge,
        "cni_dir": str(cache.parent),
        "cache": str(cache),
        "cache_before": before.to_json(),
        "cache_after": after.to_json(),
        "result_placeholder": json.dumps(RESULT_PLACEHOLDER),
        "claims": claims(attachment.ports),
        "claims_file": str(claims_file(cache)),
        "ports_lock": str(cache.parent.parent / "ports.lock") if attachment.ports else None,
        "probes": _probes(attachment.ports),
        "plugin": str(cni.PLUGIN_DIR / "bridge"),
        "plugin_env": _plugin_env(attachment),
        "add": json.dumps(asked).encode(),
        "del": json.dumps(stdin).encode(),
        "addresses": addresses,
        "restore": {fam: [_tool(RESTORE[fam]), add, _batches(attachment.rules, True)[fam]]
                    for fam, add in _batches(attachment.rules, False).items()
                    if fam in families},
        # after a boot the shared chains are not there yet: the first start makes them,
        # under the lock the full start's rules.add takes (hostctl.network.rules)
        "chains": {fam: [_tool(LIST[fam]),
                         [[chain, "\n".join(rules.chain_lines(chain))]
                          for chain in rules.shared_chains(fam)]]
                   for fam in families},
        "rules_lock": str(cache.parent.parent / "rules.lock"),
        # an IPv6 network's bridge is made without DAD before the plugin makes it
        # (hostctl.runtime.netns.ipv6_bridge), as the full start does after a boot
        "ipv6_bridge": network.ipv6_subnet is not None,
        "localnet": f"{ports.PROC_CONF}/{network.bridge}/route_localnet" if localnet else None,
        "members": (str(paths.run / "network" / "members") if network.name != defs.DEFAULT
                    and network.names else None),
        "network": network.name,
        "hosts": str(hosts),
        "aliases": list(aliases),
    }


def inputs(network: defs.Network, paths: Paths
           ) -> tuple[list[str], list[str], list[tuple[str, str, list[str]]]]:
    """(content, present, listed) signatures for a start on NETWORK
    (hostctl.launcher.record): every network file, the networks directory and the
    .network files of the declaration directories (a network added, changed or removed
    anywhere may change this one: subnets and bridges are checked against each other);
    the plugins and the restore tools. A compose project's network (no file of its own)
    depends on every installed project's files too (hostctl.compose.installed)."""
    from hostctl.launcher.record import listing

    content = [str(defs.networks_dir(paths))]
    content += [str(p) for p in defs.network_files(paths).values()]
    if network.name != defs.DEFAULT and network.source is None:
        from hostctl.compose.installed import record_inputs

        content += record_inputs(paths.scope)
    listed = [(str(d), ".network", listing(str(d), ".network"))
              for d in declaration_dirs(paths.scope)]
    present = [str(cni.PLUGIN_DIR / "bridge"), str(cni.PLUGIN_DIR / "host-local")]
    present += [_tool(RESTORE["4"]), _tool(LIST["4"])]
    if network.ipv6_subnet is not None:
        present += [_tool(RESTORE["6"]), _tool(LIST["6"])]
    return content, present, listed
