"""The keys of the YAML network and volume declarations, described once.

networks/NAME.yaml (hostctl.network.defs) and volumes/NAME.yaml
(hostctl.declarations.volume_file) accept exactly these keys; the Ansible network and
volume modules take them as options (ansible_collection/tools/generate_settings.py), as
the container module takes hostctl.declarations.settings.SETTINGS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceKey:
    """One key of a network or volume declaration."""

    key: str  # as written in YAML and in Ansible
    ansible_type: str  # str, bool, int, list (of str) or dict (of str)
    help: str
    quadlet: str  # the quadlet [Network] / [Volume] key with the same meaning
    example: str


NETWORK_KEYS: tuple[ResourceKey, ...] = (
    ResourceKey("subnet", "str", "The IPv4 subnet (default: 10.90.X.0/24 picked from the "
                "name; the default network bridge: 10.89.0.0/16).", "Subnet", "10.90.5.0/24"),
    ResourceKey("gateway", "str", "The bridge's address, a host address of the subnet "
                "(default: its first).", "Gateway", "10.90.5.1"),
    ResourceKey("internal", "bool", "No gateway, no masquerade: the members reach each "
                "other only.", "Internal", "true"),
    ResourceKey("ipv6_subnet", "str", "An IPv6 subnet: the members get an IPv6 address too "
                "(rootful networks only).", "Subnet", "fd00:90:5::/64"),
    ResourceKey("bridge", "str", "The host's bridge interface (default: hc-NAME).",
                "InterfaceName", "hc-backend"),
    ResourceKey("ip_range", "str", "The addresses leased to members: a CIDR or START-END "
                "inside the subnet.", "IPRange", "10.90.5.100-10.90.5.199"),
    ResourceKey("dns", "list", "Name servers of the members' resolv.conf (a member's own "
                "dns wins).", "DNS", "[192.0.2.53]"),
    ResourceKey("disable_dns", "bool", "true: a member's /etc/hosts does not list the "
                "other members.", "DisableDNS", "true"),
    ResourceKey("mtu", "int", "The bridge's and the members' MTU.", "Options=mtu=",
                "1400"),
    ResourceKey("labels", "dict", "Labels recorded with the network (shown by `hostctl "
                "network inspect`).", "Label", "{team: web}"),
)

VOLUME_KEYS: tuple[ResourceKey, ...] = (
    ResourceKey("copy", "bool", "On first use, the image's content at the mount point is "
                "copied into the empty volume (default true).", "Copy", "false"),
    ResourceKey("device", "str", "A device, directory (with type bind) or tmpfs mounted as "
                "the volume by its unit (rootful only).", "Device", "/dev/vdb1"),
    ResourceKey("type", "str", "The file system type of device (mount -t; bind: a bind "
                "mount).", "Type", "ext4"),
    ResourceKey("options", "str", "Mount options of device (mount -o).", "Options",
                "noatime"),
    ResourceKey("user", "str", "With device: the uid= mount option; without: the volume "
                "directory's owner (a host user name or uid; rootful only).", "User",
                "www-data"),
    ResourceKey("group", "str", "With device: the gid= mount option; without: the volume "
                "directory's group.", "Group", "www-data"),
    ResourceKey("uid", "int", "The owner of the volume directory (or the mount's root).",
                "UID", "1000"),
    ResourceKey("gid", "int", "The group of the volume directory (or the mount's root).",
                "GID", "1000"),
)
