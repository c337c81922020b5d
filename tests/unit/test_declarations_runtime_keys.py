"""The runtime, resource and network settings: parsed into typed values, errors at
FILE:LINE:KEY saying what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.declarations.model import (
    RLIM_INFINITY,
    Device,
    Port,
    Protocol,
    Secret,
    Tmpfs,
    Ulimit,
    Volume,
    VolumeKind,
)
from hostctl.declarations.settings import Pull, Runtime
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError

IMAGE = "image: docker.io/library/busybox:1.36\n"
SOURCE = Path("/etc/hostctl/containers/app.yaml")

FULL = IMAGE + """\
pull: newer
platform: linux/arm64/v8
env_files: [/etc/app/app.env]
group: www-data
groups: [audio, 1001]
hostname: web1.example
volumes: ["/srv/app:/data", "cache:/var/cache:ro,nocopy", "/etc/ssl:/ssl:Z,rw"]
tmpfs: ["/tmp:size=64M,mode=1777", /run]
shm_size: 256m
read_only: true
cap_add: [net_admin, CAP_SYS_TIME]
cap_drop: [ALL]
no_new_privileges: yes
devices: ["/dev/fuse", "/dev/ttyUSB0:/dev/modem:rw", "-/dev/dri"]
ulimits: {nofile: "1024:4096", core: 0, nproc: unlimited}
sysctls: {net.ipv4.ip_unprivileged_port_start: 80}
timezone: Europe/Berlin
init: true
notify: false
stop_signal: quit
reload_signal: 1
restart_sec: 0
memory: 1.5G
cpus: 1.5
pids_limit: 256
labels: {team: web}
annotations: [org.example/a=b=c]
secrets: [token, {name: db, source: /etc/app/db-password, target: /etc/db/pw}]
network: host
ports: ["8080:80", "127.0.0.1:5353:53/udp", "[::1]:9000-9001:90-91"]
dns: [192.0.2.53, "2001:db8::1"]
dns_search: [example.com]
dns_options: ["ndots:2", edns0]
add_hosts: ["db.local:192.0.2.10", "gw:host-gateway", "v6:2001:db8::2"]
runtime: crun
"""


def test_every_runtime_key_parses_into_typed_values() -> None:
    c = parse_yaml(FULL, SOURCE)
    assert (c.pull, c.platform) == (Pull.NEWER, "linux/arm64/v8")
    assert c.env_files == ("/etc/app/app.env",)
    assert (c.group, c.groups, c.hostname) == ("www-data", ("audio", "1001"), "web1.example")
    assert c.volumes == (
        Volume("/srv/app", "/data", VolumeKind.BIND),
        Volume("cache", "/var/cache", VolumeKind.VOLUME, read_only=True, options=("nocopy",)),
        Volume("/etc/ssl", "/ssl", VolumeKind.BIND, options=("Z",)),
    )
    assert c.tmpfs == (Tmpfs("/tmp", (f"size={64 * 2**20}", "mode=1777")), Tmpfs("/run"))
    assert (c.shm_size, c.read_only, c.no_new_privileges) == (256 * 2**20, True, True)
    assert (c.cap_add, c.cap_drop) == (("CAP_NET_ADMIN", "CAP_SYS_TIME"), ("ALL",))
    assert c.devices == (
        Device("/dev/fuse", "/dev/fuse"),
        Device("/dev/ttyUSB0", "/dev/modem", "rw"),
        Device("/dev/dri", "/dev/dri", optional=True),
    )
    assert c.ulimits == (
        Ulimit("nofile", 1024, 4096), Ulimit("core", 0, 0),
        Ulimit("nproc", RLIM_INFINITY, RLIM_INFINITY),
    )
    assert c.sysctls == (("net.ipv4.ip_unprivileged_port_start", "80"),)
    assert (c.timezone, c.init, c.notify) == ("Europe/Berlin", True, False)
    assert (c.stop_signal, c.reload_signal, c.restart_sec) == ("SIGQUIT", "SIGHUP", 0)
    assert (c.memory, c.cpus, c.pids_limit) == (3 * 2**29, 1.5, 256)
    assert (c.labels, c.annotations) == ((("team", "web"),), (("org.example/a", "b=c"),))
    assert c.secrets == (
        Secret("token", "token", "/run/secrets/token"),
        Secret("db", "/etc/app/db-password", "/etc/db/pw"),
    )
    assert c.network == "host"
    assert c.ports == (
        Port(None, 8080, 80), Port("127.0.0.1", 5353, 53, Protocol.UDP),
        Port("::1", 9000, 90), Port("::1", 9001, 91),
    )
    assert (c.dns, c.dns_search, c.dns_options) == (
        ("192.0.2.53", "2001:db8::1"), ("example.com",), ("ndots:2", "edns0"),
    )
    assert c.add_hosts == (("db.local", "192.0.2.10"), ("gw", "host-gateway"),
                           ("v6", "2001:db8::2"))
    assert c.runtime is Runtime.CRUN


def test_defaults() -> None:
    c = parse_yaml(IMAGE, SOURCE)
    assert (c.pull, c.runtime, c.network, c.stop_signal) == (
        Pull.MISSING, Runtime.RUNC, "bridge", "SIGTERM")
    assert (c.memory, c.cpus, c.pids_limit, c.restart_sec, c.reload_signal) == (None,) * 5
    assert (c.read_only, c.init, c.notify, c.no_new_privileges) == (False,) * 4
    assert c.volumes == c.ports == c.secrets == c.cap_add == ()


def test_single_strings_count_as_lists_of_one() -> None:
    c = parse_yaml(IMAGE + "dns: 192.0.2.1\nvolumes: /a:/b\n", SOURCE)
    assert c.dns == ("192.0.2.1",)
    assert c.volumes == (Volume("/a", "/b", VolumeKind.BIND),)


BAD = [
    ("volumes: ['a']", "volumes[0]", "SRC:DST"),
    ("volumes: ['/a:rel']", "volumes[0]", "not an absolute path"),
    ("volumes: ['/a:/b:rx']", "volumes[0]", "'rx' is not allowed"),
    ("volumes: ['a b:/b']", "volumes[0]", "neither an absolute host path"),
    ("tmpfs: ['/t:size=lots']", "tmpfs[0]", "not a size"),
    ("tmpfs: ['/t:mode=999']", "tmpfs[0]", "not octal"),
    ("shm_size: 1.5", "shm_size", "expected bytes"),
    ("memory: 12X", "memory", "not a size"),
    ("memory: 0", "memory", "zero"),
    ("cpus: 0", "cpus", "out of range"),
    ("cpus: lots", "cpus", "expected a number of CPUs"),
    ("pids_limit: 0", "pids_limit", "too small"),
    ("pids_limit: '5'", "pids_limit", "expected a whole number"),
    ("restart_sec: -1", "restart_sec", "too small"),
    ("read_only: 'yes'", "read_only", "expected true or false"),
    ("cap_add: [net_admn]", "cap_add[0]", "did you mean 'CAP_NET_ADMIN'"),
    ("devices: ['/dev/x:/dev/y:rwx']", "devices[0]", "device permissions"),
    ("devices: ['dev/x']", "devices[0]", "not an absolute path"),
    ("ulimits: {nofiles: 5}", "ulimits.nofiles", "did you mean 'nofile'"),
    ("ulimits: {nofile: '10:5'}", "ulimits.nofile", "above the hard limit"),
    ("sysctls: {Kernel: 1}", "sysctls.Kernel", "not a sysctl name"),
    ("timezone: ../etc/passwd", "timezone", "not a time zone"),
    ("stop_signal: SIGTERN", "stop_signal", "did you mean 'SIGTERM'"),
    ("reload_signal: 99", "reload_signal", "no signal number"),
    ("secrets: [{name: x, mode: 1}]", "secrets[0].mode", "unknown key"),
    ("secrets: [{source: /x}]", "secrets[0]", "has no name"),
    ("secrets: [{name: x, target: a/b}]", "secrets[0]", "not a file name"),
    ("secrets: [a, a]", "secrets", "given twice"),
    ("network: 'my net'", "network", "not a network"),
    ("ports: ['80']", "ports[0]", "both ports are needed"),
    ("ports: ['1-3:1-2']", "ports[0]", "differ in length"),
    ("ports: ['70000:80']", "ports[0]", "not a port"),
    ("ports: ['1.2.3:80:80']", "ports[0]", "not an IP address"),
    ("ports: ['8080:80/sctp']", "ports[0]", "'sctp' is not allowed"),
    ("ports: ['8080:80', '8080:81']", "ports", "published twice"),
    ("dns: [dns.example]", "dns[0]", "not an IP address"),
    ("dns_search: ['-bad']", "dns_search[0]", "not a host name"),
    ("dns_options: ['ndots 2']", "dns_options[0]", "not a resolver option"),
    ("add_hosts: [db]", "add_hosts[0]", "not NAME:IP"),
    ("add_hosts: {db: nowhere}", "add_hosts.db", "not an IP address"),
    ("runtime: kata", "runtime", "allowed: runc, crun"),
    ("pull: sometimes", "pull", "allowed: missing, always, newer, never"),
    ("platform: Linux", "platform", "os/arch"),
    ("env_files: [app.env]", "env_files[0]", "not an absolute path"),
    ("group: 'a b'", "group", "not a group"),
    ("hostname: 'a_b'", "hostname", "not a host name"),
    ("user: a:b\ngroup: c", "group", "given twice"),
    ("volumes: ['/a:/x']\ntmpfs: [/x]", "tmpfs", "two mounts at /x"),
]


@pytest.mark.parametrize(("text", "key", "message"), BAD)
def test_bad_values_name_file_line_and_key(text: str, key: str, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        parse_yaml(IMAGE + text + "\n", SOURCE)
    err = caught.value
    line = 2 + text.count("\n") if key in ("group", "tmpfs") and "\n" in text else 2
    assert err.where == f"{SOURCE}:{line}:{key}"
    assert message in str(err)
    assert err.hint
