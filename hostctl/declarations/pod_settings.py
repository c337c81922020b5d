"""Every pod setting, described once (the pods' counterpart of settings.SETTINGS).

The YAML reader (pods/NAME.yaml) and the .pod reader (hostctl.declarations.pod_file)
validate against this table, and docs/declarations.md's pod section is generated from
it. A new setting is a row here plus a field of the same name on pod_file.Pod (a test
checks the two agree). [Pod] keys that are not here are refused naming FILE:LINE:KEY,
with the reason in REFUSED when hostctl knows the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hostctl.declarations.kinds import ExitPolicy, Kind
from hostctl.declarations.settings import Setting

POD_SETTINGS: tuple[Setting, ...] = (
    Setting(
        key="pod_name", kind=Kind.POD,
        help="The name `hostctl pod` shows and accepts, and the members' default host "
        "name (default: the file's name, which members name in `pod:`).",
        maps_to="hostctl pod ls|inspect; the members' host name", quadlet="PodName",
        example="shop",
    ),
    Setting(
        key="network", kind=Kind.NETWORK, default="bridge",
        help="The pod's network, joined once by the pod and shared by its members: host, "
        "none, bridge (hostctl's default network; rootless: pasta) or a declared network's "
        "name (quadlet: NAME or NAME.network; a user's pod: bridge, none or host).",
        maps_to="the pod's network namespace", quadlet="Network", example="backend",
    ),
    Setting(
        key="network_aliases", kind=Kind.DOMAINS, default=(),
        help="More names the pod is known by on its declared network (besides the pod's "
        "name and its members' names, which the network's other members resolve too; "
        "the default network has no names, as podman's; rootful pods only).",
        maps_to="/etc/hosts of the network's other members", quadlet="NetworkAlias",
        example="[shop-api]",
    ),
    Setting(
        key="ip", kind=Kind.IPV4,
        help="A static IPv4 address of the pod on its network (bridge or a declared "
        "network; inside its subnet and IP range, and free; rootful pods only).",
        maps_to="the network's address assignment (host-local IPAM)", quadlet="IP",
        example="10.90.5.20",
    ),
    Setting(
        key="ip6", kind=Kind.IPV6,
        help="A static IPv6 address of the pod on its network (one with an IPv6 subnet; "
        "rootful pods only).",
        maps_to="the network's address assignment (host-local IPAM)", quadlet="IP6",
        example="fd00:90:5::20",
    ),
    Setting(
        key="ports", kind=Kind.PORTS, default=(),
        help="[IP:]HOST:CONTAINER[/tcp|udp] ports published on the host, once for the pod: "
        "whichever member listens on CONTAINER answers.",
        maps_to="network port forwarding to the pod's namespace", quadlet="PublishPort",
        example='["8080:80"]',
    ),
    Setting(
        key="hostname", kind=Kind.HOSTNAME,
        help="The host name of every member (default: the pod's name).",
        maps_to="the pod's UTS namespace", quadlet="HostName", example="shop",
    ),
    Setting(
        key="dns", kind=Kind.ADDRESSES, default=(),
        help="Name servers of the members' /etc/resolv.conf.",
        maps_to="/etc/resolv.conf nameserver", quadlet="DNS", example="[192.0.2.53]",
    ),
    Setting(
        key="dns_search", kind=Kind.DOMAINS, default=(),
        help="Search domains of the members' /etc/resolv.conf.",
        maps_to="/etc/resolv.conf search", quadlet="DNSSearch", example="[example.com]",
    ),
    Setting(
        key="dns_options", kind=Kind.DNS_OPTIONS, default=(),
        help="Resolver options of the members' /etc/resolv.conf.",
        maps_to="/etc/resolv.conf options", quadlet="DNSOption", example='["ndots:2"]',
    ),
    Setting(
        key="add_hosts", kind=Kind.HOSTS, default=(),
        help="NAME:IP lines added to every member's /etc/hosts.",
        maps_to="/etc/hosts", quadlet="AddHost", example='["db.local:192.0.2.10"]',
    ),
    Setting(
        key="volumes", kind=Kind.VOLUMES, default=(),
        help="SRC:DST[:OPTIONS] mounted in every member, before the member's own volumes "
        "(as `volumes:` of a container; NAME.volume names a .volume file).",
        maps_to="each member's OCI mounts", quadlet="Volume",
        example='["/srv/shared:/shared:ro"]',
    ),
    Setting(
        key="shm_size", kind=Kind.SIZE,
        help="Size of the /dev/shm the members share with their IPC namespace (default "
        "64M; a user's pod shares a directory of the user's runtime tmpfs instead, "
        "whose own size limit applies).",
        maps_to="the pod's /dev/shm tmpfs (size=)", quadlet="ShmSize", example="256M",
    ),
    Setting(
        key="labels", kind=Kind.LABELS, default=(),
        help="Labels recorded with the pod (shown by `hostctl pod inspect`).",
        maps_to="hostctl pod inspect", quadlet="Label", example="{team: web}",
    ),
    Setting(
        key="exit_policy", kind=Kind.CHOICE, choices=ExitPolicy, default=ExitPolicy.STOP,
        help="When the last running member stops: stop (the pod's unit stops too, as "
        "quadlet's pods do) or continue (the pod stays up, holding its namespaces).",
        maps_to="the members' ExecStopPost (hostctl pod-exit)", quadlet="ExitPolicy",
        example="continue",
    ),
    Setting(
        key="stop_timeout", kind=Kind.SECONDS, default=10,
        help="Seconds the pod's unit may take to stop.",
        maps_to="the pod unit's [Service] TimeoutStopSec=", quadlet="StopTimeout",
        example="20",
    ),
    Setting(
        key="service_name", kind=Kind.SERVICE_NAME,
        help="The name of the pod's unit instead of NAME-pod.service (which stays an "
        "alias of it).",
        maps_to="the pod unit's file name", quadlet="ServiceName", example="shop",
    ),
    Setting(
        key="default_dependencies", kind=Kind.BOOL, default=True,
        help="Whether the pod's unit waits for the network to be online (quadlet [Quadlet] "
        "DefaultDependencies=).",
        maps_to="the pod unit's [Unit] Wants=/After= network-online.target", example="false",
    ),
    Setting(
        key="unit", kind=Kind.DIRECTIVES, default=(), section="Unit",
        help="Extra [Unit] directives of the pod's unit.",
        maps_to="the pod unit's [Unit]", example="{Description: the shop}",
    ),
    Setting(
        key="service", kind=Kind.DIRECTIVES, default=(), section="Service",
        help="Extra [Service] directives of the pod's unit.",
        maps_to="the pod unit's [Service]", example="{CPUWeight: 50}",
    ),
    Setting(
        key="install", kind=Kind.DIRECTIVES, default=(), section="Install",
        help="[Install] directives of the pod's unit (WantedBy=, RequiredBy=, UpheldBy=, "
        "Alias=); the generator makes the links. An enabled pod starts its members "
        "(start_with_pod).",
        maps_to="the pod unit's [Install] and the generator's links",
        example="{WantedBy: multi-user.target}",
    ),
)

POD_BY_KEY: Mapping[str, Setting] = {setting.key: setting for setting in POD_SETTINGS}
POD_BY_QUADLET: Mapping[str, Setting] = {s.quadlet: s for s in POD_SETTINGS if s.quadlet}
POD_DEFAULTS: Mapping[str, Any] = {setting.key: setting.default for setting in POD_SETTINGS}

# [Pod] keys of podman's manual that hostctl refuses, and why.
_USERNS = ("hostctl maps a rootless pod's users as its containers' (the user's subordinate "
           "ids); rootful pods run without a user namespace")
REFUSED: Mapping[str, str] = {
    "UserNS": _USERNS,
    "UIDMap": _USERNS,
    "GIDMap": _USERNS,
    "SubUIDMap": _USERNS,
    "SubGIDMap": _USERNS,
    "RemapUsers": _USERNS,
    "RemapUid": _USERNS,
    "RemapGid": _USERNS,
    "RemapUidSize": _USERNS,
    "PodmanArgs": "hostctl does not run podman",
    "GlobalArgs": "hostctl does not run podman",
    "ContainersConfModule": "hostctl does not read containers.conf modules",
}
