"""A systemd test host with its own network namespace, for the networking tests.

Bridges, veths and iptables rules made by the tests stay inside the guest: it boots
with --private-network. The guest then cannot reach the machine's registry, so images
come from an OCI layout in its /var/lib/hostctl (a directory of the machine), and a
dummy interface with a default route stands in for an uplink (pasta copies the
addresses and routes of the interface with the default route).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.imagebuild import Dir, File, ImageSpec, Layer, Symlink, busybox_image
from tests.support.testhost import TestHost

REGISTRY = "127.0.0.1:5000"
IMAGE = f"{REGISTRY}/demo/busybox:1"
REGISTRY_CONFIG = f"""\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: /var/lib/test-registry
http:
  addr: {REGISTRY}
"""
PUSH = (
    "from tests.support.imagebuild import push; from tests.support.netguest import image; "
    "push('127.0.0.1:5000', 'demo/busybox', '1', image())"
)
# Debian's static busybox cannot resolve names (static glibc crashes looking up NSS), so
# the image also carries glibc's dynamic getent: `getent hosts NAME` reads /etc/hosts.
GETENT_FILES = ("/usr/bin/getent", "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
CHECKOUT = str(Path(__file__).resolve().parents[2])
UPLINK = """\
ip link add uplink0 type veth peer name uplink1 2>/dev/null || true
ip link set uplink1 up
ip addr replace 192.0.2.2/24 dev uplink0
ip link set uplink0 up
ip link set lo up
ip route replace default via 192.0.2.1 dev uplink0
chmod 0666 /dev/net/tun  # as udev leaves it on a real host; nspawn makes it 0600
"""


UPLINK_UNIT = """\
[Unit]
Description=The test guest's uplink (tests/support/netguest.py)
DefaultDependencies=no
Before=network.target network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh /usr/local/sbin/test-uplink

[Install]
WantedBy=network.target network-online.target
"""


def uplink_at_boot(host: TestHost) -> None:
    """Make the uplink part of the guest's boot, before network.target: what starts at
    boot and needs a way out (a user's pasta) finds it, as on a real host."""
    host.write_file("/usr/local/sbin/test-uplink", UPLINK)
    host.write_file("/etc/systemd/system/test-uplink.service", UPLINK_UNIT)
    host.run(["systemctl", "enable", "test-uplink.service"])


def boot() -> TestHost:
    """A booted private-network guest with the busybox layout and an uplink."""
    host = TestHost(nspawn_args=["--private-network"])
    host.start()
    try:
        host.sh(UPLINK)
        serve_image(host)
    except BaseException:
        host.close()
        raise
    return host


def image() -> ImageSpec:
    """busybox plus getent and its libraries, and `hosts: files` for glibc."""
    entries: list[Any] = [Dir("usr"), Dir("usr/bin"), Dir("lib"), Dir("lib/x86_64-linux-gnu"),
                          Dir("lib64"), File("etc/nsswitch.conf", "hosts: files\n")]
    entries += [File(path.lstrip("/"), Path(path).read_bytes(), mode=0o755)
                for path in GETENT_FILES]
    entries.append(Symlink("lib64/ld-linux-x86-64.so.2",
                           "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"))
    return busybox_image(extra_layers=(Layer(tuple(entries)),))


def start_registry(host: Any) -> None:
    """Start the guest's registry (a transient unit: gone after a reboot; its storage
    stays) and wait until it answers."""
    host.write_file("/etc/test-registry.yml", REGISTRY_CONFIG)
    host.run(["systemd-run", "--unit", "test-registry", "docker-registry", "serve",
              "/etc/test-registry.yml"])
    deadline = time.monotonic() + 15
    while host.run(["curl", "-sf", f"http://{REGISTRY}/v2/"], check=False).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(host.journal("test-registry"))
        time.sleep(0.1)


def serve_image(host: TestHost) -> None:
    """Start the guest's registry and push the busybox image to it."""
    start_registry(host)
    host.run(["sh", "-c", 'cd "$1" && exec "$2" -c "$3"', "push", CHECKOUT,
              sys.executable, PUSH])


@dataclass(frozen=True)
class Leftovers:
    """What networking leaves in the guest, counted."""

    namespaces: int
    veths: int
    rules: int  # iptables rules (nat and filter) in all chains
    container_rules: int  # rules naming an address of a hostctl subnet
    leases: int  # host-local IPAM reservations
    pastas: int

    def without_shared(self) -> tuple[int, int, int, int, int]:
        """Everything but the total rule count (shared chains stay by design)."""
        return (self.namespaces, self.veths, self.container_rules, self.leases, self.pastas)


SUBNETS = re.compile(r"10\.(89|9[0-9])\.[0-9]+\.[0-9]+")


def leftovers(host: Any) -> Leftovers:
    out = host.sh(
        "ls /run/netns 2>/dev/null | grep -c '^hostctl-' || true; echo ---;"
        "ip -o link show type veth | grep -v uplink | wc -l; echo ---;"
        "iptables-save -t nat; iptables-save -t filter; echo ---;"
        "find /run/hostctl/network/ipam -type f ! -name 'last_reserved_ip*' ! -name lock"
        " 2>/dev/null | wc -l; echo ---;"
        "pgrep ^pass?t | wc -l"
    ).stdout
    parts = out.split("---\n")
    rules = [line for line in parts[2].splitlines() if line.startswith("-A ")]
    return Leftovers(
        namespaces=int(parts[0].strip() or 0),
        veths=int(parts[1].strip()),
        rules=len(rules),
        container_rules=sum(1 for line in rules if SUBNETS.search(line)
                            and "/16" not in line and "/24" not in line),
        leases=int(parts[3].strip()),
        pastas=int(parts[4].strip()),
    )
