"""Calling the CNI plugins (Debian's containernetworking-plugins) as the CNI spec says.

A network becomes a conflist of one plugin: bridge (with host-local IPAM). The way out
(masquerade), forwarding, isolation and published ports are hostctl's own rules
(hostctl.network.rules and .ports: one iptables-restore instead of the bridge plugin's
ipMasq, the firewall plugin and the portmap plugin, which between them fork iptables
about thirty times). Attachments cached by an earlier hostctl that list portmap or
firewall are undone with them, as cached. ADD runs the plugins in
order, each given the previous one's result as prevResult; DEL runs them in reverse,
each given the cached result of ADD; CHECK runs them in order with the cached result.
Each attachment is cached under the run directory (a tmpfs: a reboot forgets it,
together with the namespaces, addresses and rules), with the exact config and rules
used, so DEL undoes what ADD did even if the declaration changed. IPAM leases live
there too, for the same reason.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostctl import proc
from hostctl.declarations.model import Container, Port
from hostctl.errors import RuntimeFailure, ToolMissing
from hostctl.network import ports as published
from hostctl.network.defs import Network

CNI_VERSION = "1.0.0"
PLUGIN_DIR = Path(os.environ.get("HOSTCTL_CNI_PATH", "/usr/lib/cni"))
IFNAME = "eth0"
_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def conflist(network: Network, ipam_dir: Path, ips: tuple[str, ...] = (),
             default_route: bool = True) -> dict[str, Any]:
    """The plugin chain for one container on NETWORK; IPS: the static addresses it asks
    host-local for (requested_ips). Without DEFAULT_ROUTE (a container's second and
    later networks) the interface reaches its subnet only: the way out is the first's."""
    first: dict[str, str] = {"subnet": str(network.subnet), "gateway": str(network.gateway)}
    if network.ip_range is not None:
        first["rangeStart"], first["rangeEnd"] = map(str, network.ip_range)
    ranges = [[first]]
    routes = [{"dst": "0.0.0.0/0"}]
    if network.ipv6_subnet is not None:
        ranges.append([{"subnet": str(network.ipv6_subnet),
                        "gateway": str(network.ipv6_gateway)}])
        routes.append({"dst": "::/0"})
    ipam: dict[str, Any] = {"type": "host-local", "dataDir": str(ipam_dir), "ranges": ranges}
    if not network.internal and default_route:
        ipam["routes"] = routes
    plugins: list[dict[str, Any]] = [{
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": not network.internal,
        "ipMasq": False,  # hostctl.network.rules masquerades, in one iptables call
        "hairpinMode": True,
        "ipam": ipam,
    }]
    if network.mtu is not None:
        plugins[0]["mtu"] = network.mtu
    if ips:  # host-local leases these (and fails when one is taken or out of range)
        plugins[0]["args"] = {"cni": {"ips": list(ips)}}
    return {"cniVersion": CNI_VERSION, "name": network.name, "plugins": plugins}


def requested_ips(container: Container, network: Network) -> tuple[str, ...]:
    """The container's `ip` and `ip6` on NETWORK, checked against its subnets."""
    ips = []
    for key, address, subnet in (("ip", container.ip, network.subnet),
                                 ("ip6", container.ip6, network.ipv6_subnet)):
        if address is None:
            continue
        if subnet is None:
            raise RuntimeFailure(f"network {network.name} has no IPv6 subnet",
                                 where=container.where(key),
                                 hint="give the network an IPv6 subnet, or drop `ip6`")
        gateway = network.gateway if key == "ip" else network.ipv6_gateway
        if ipaddress.ip_address(address) not in subnet or address == str(gateway):
            raise RuntimeFailure(
                f"{address} is not a free address of network {network.name} ({subnet})",
                where=container.where(key),
                hint=f"give an address in {subnet} other than its gateway {gateway}")
        ips.append(address)
    return tuple(ips)


@dataclass(frozen=True)
class Attachment:
    """One container's interface on one network, as cached between ADD and DEL."""

    container: str
    network: str
    netns: str
    config: dict[str, Any]
    result: dict[str, Any] | None = None
    rules: tuple[tuple[str, str, str], ...] = ()  # hostctl.network.rules, as added
    ports: tuple[Port, ...] = ()  # published: what other containers cannot take
    holder: str = ""  # a user network: its holder's identity (hostctl.network.holder)
    ifname: str = IFNAME  # the interface in the container: eth0, eth1 on a second network

    def addresses(self) -> list[str]:
        """The container's addresses (without prefix length), IPv4 first."""
        ips = [str(ip["address"]).split("/")[0] for ip in (self.result or {}).get("ips", [])]
        return sorted(ips, key=lambda a: ":" in a)

    def to_json(self) -> str:
        return json.dumps({"container": self.container, "network": self.network,
                           "netns": self.netns, "config": self.config, "result": self.result,
                           "rules": self.rules, "ports": published.to_json(self.ports),
                           **({"holder": self.holder} if self.holder else {}),
                           **({"ifname": self.ifname} if self.ifname != IFNAME else {})})

    @classmethod
    def from_json(cls, text: str) -> Attachment:
        data = json.loads(text)
        return cls(data["container"], data["network"], data["netns"], data["config"],
                   data.get("result"), tuple(tuple(r) for r in data.get("rules", ())),
                   published.from_json(data.get("ports", ())), str(data.get("holder", "")),
                   str(data.get("ifname", IFNAME)))


def _plugin(kind: str) -> Path:
    path = PLUGIN_DIR / kind
    if not os.access(path, os.X_OK):
        raise ToolMissing(f"CNI plugin {kind} not found in {PLUGIN_DIR}",
                          hint="install the containernetworking-plugins package")
    return path


def _invoke(command: str, attachment: Attachment, plugin: dict[str, Any],
            prev: dict[str, Any] | None) -> dict[str, Any] | None:
    config = {**plugin, "cniVersion": attachment.config["cniVersion"],
              "name": attachment.config["name"]}
    if prev is not None:
        config["prevResult"] = prev
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": attachment.container,
        "CNI_NETNS": attachment.netns,
        "CNI_IFNAME": attachment.ifname,
        "CNI_PATH": str(PLUGIN_DIR),
        "PATH": _ENV_PATH,
    }
    done = proc.run([str(_plugin(plugin["type"]))], env=env,
                    input=json.dumps(config).encode(), check=False)
    if done.returncode != 0:
        raise RuntimeFailure(
            f"CNI {plugin['type']} {command} on network {attachment.network} failed: "
            f"{_error_text(done.stdout, done.stderr)}",
            where=f"container {attachment.container}",
            hint="see the message; `hostctl network inspect "
                 f"{attachment.network}` shows the network")
    if command != "ADD":
        return None
    result: dict[str, Any] = json.loads(done.stdout or b"{}")
    return result


def _error_text(stdout: bytes, stderr: bytes) -> str:
    try:
        error = json.loads(stdout)
        return " ".join(str(error.get(k, "")) for k in ("msg", "details")).strip()
    except ValueError:
        return (stderr or stdout).decode(errors="replace").strip() or "no message"


def add(attachment: Attachment) -> Attachment:
    """Run ADD through the chain; the attachment with its final result."""
    result: dict[str, Any] | None = None
    for plugin in attachment.config["plugins"]:
        result = _invoke("ADD", attachment, plugin, result)
    return dataclasses.replace(attachment, result=result)


def delete(attachment: Attachment) -> list[str]:
    """Run DEL through the chain in reverse; every plugin runs even if one fails.

    Returns the failures' messages (empty when all went well)."""
    failures = []
    for plugin in reversed(attachment.config["plugins"]):
        try:
            _invoke("DEL", attachment, plugin, attachment.result)
        except RuntimeFailure as err:
            failures.append(err.message)
    return failures


def check(attachment: Attachment) -> str | None:
    """Run CHECK through the chain; None when everything is as ADD left it."""
    if attachment.result is None:
        return "ADD did not finish"
    try:
        for plugin in attachment.config["plugins"]:
            _invoke("CHECK", attachment, plugin, attachment.result)
    except RuntimeFailure as err:
        return err.message
    return None
