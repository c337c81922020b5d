"""User networks: a lingering user's rootless containers on a network it declared in
~/.config/hostctl/networks, in a real systemd test host with its own network namespace.
The network's unit (hostctl-network-NAME.service) holds its namespaces and its pasta."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_e2e import HOSTCTL
from tests.integration.test_network import SLEEPER, fetch, said_this_boot, web
from tests.support import netguest

pytestmark = pytest.mark.integration
USER = "alice"
HOME = f"/home/{USER}"
DECLS = f"{HOME}/.config/hostctl/containers"
NETS = f"{HOME}/.config/hostctl/networks"
NET_UNIT = "hostctl-network-appnet.service"
NET_ID = "hostctl-network-appnet"  # its journal's SYSLOG_IDENTIFIER
UPLINK_ADDRESS = "192.0.2.2"  # the guest's non-loopback address (netguest.UPLINK)


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.uid = guest.lingering_user(USER)
        as_user(guest, "mkdir", "-p", DECLS, NETS)
        write(guest, f"{NETS}/appnet.yaml", "subnet: 10.95.0.0/24\n")
        write(guest, f"{NETS}/closed.yaml", "internal: true\n")
        yield guest
    finally:
        guest.close()


def as_user(host: Any, *argv: str, check: bool = True, input: str | None = None) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check,
                    input=input)


def write(host: Any, path: str, text: str) -> None:
    as_user(host, "sh", "-c", f"cat > {path}", input=text)


def declare(host: Any, name: str, body: str) -> None:
    write(host, f"{DECLS}/{name}.yaml", body)
    as_user(host, "systemctl", "--user", "daemon-reload")


def journal(host: Any, identifier: str) -> str:
    out: str = host.run(["journalctl", "--no-pager", "-o", "cat",
                         f"SYSLOG_IDENTIFIER={identifier}"]).stdout
    return out


def start(host: Any, *names: str) -> None:
    for name in names:
        done = as_user(host, "systemctl", "--user", "start", name, check=False)
        assert done.returncode == 0, (journal(host, name) + journal(host, NET_ID)
                                      + host.sh("journalctl --no-pager -n 30").stdout)


def stop(host: Any, *names: str) -> None:
    for name in names:
        as_user(host, "systemctl", "--user", "stop", name, check=False)


def prop(host: Any, unit: str, name: str) -> str:
    out: str = as_user(host, "systemctl", "--user", "show", "-P", name, unit).stdout
    return out.strip()


def in_container(host: Any, name: str, *argv: str, check: bool = True) -> Any:
    pid = prop(host, f"{name}.service", "MainPID")
    return host.run(["nsenter", "-t", pid, "-a", *argv], check=check)


def container_routes(host: Any, name: str) -> str:
    pid = prop(host, f"{name}.service", "MainPID")
    out: str = host.run(["nsenter", "-t", pid, "-n", "ip", "route"]).stdout
    return out


def in_holder(host: Any, script: str) -> str:
    """SCRIPT's output in the network namespace of appnet's holder."""
    pid = prop(host, NET_UNIT, "MainPID")
    assert pid not in ("", "0")
    out: str = host.run(["nsenter", "-t", pid, "-n", "sh", "-c", script]).stdout
    return out


def holder_counts(host: Any) -> tuple[int, int, int]:
    """(veths, container rules, leases) of appnet, counted in its holder's namespace."""
    leases = f"/run/user/{host.uid}/hostctl/network/ipam/appnet"
    out = in_holder(host, "ip -o link show type veth | wc -l; echo ---;"
                          "iptables-save | grep -c 'hostctl u' || true; echo ---;"
                          f"find {leases} -type f ! -name 'last_reserved_ip*' ! -name lock"
                          " 2>/dev/null | wc -l")
    veths, container_rules, lease_count = (int(part.strip() or 0) for part in out.split("---"))
    return veths, container_rules, lease_count


def get(host: Any, client: str, address: str, port: int) -> str:
    script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} {port}"
              " | sed '1,/^\\r*$/d'")
    out: str = in_container(host, client, "sh", "-c", script, check=False).stdout
    return out


def unit_processes(host: Any, unit: str) -> list[str]:
    cgroup = prop(host, unit, "ControlGroup")
    if not cgroup:
        return []
    out: str = host.sh(f"cat /sys/fs/cgroup{cgroup}/cgroup.procs 2>/dev/null || true").stdout
    return out.split()


@pytest.fixture(scope="module")
def members(host: Any) -> Any:
    """The web server uweb (publishing 8090) and the client uclient on appnet."""
    declare(host, "uweb", web("user-web", 'ports: ["8090:80"]', "network: appnet"))
    declare(host, "uclient", SLEEPER + "network: appnet\n")
    return host


def test_members_reach_each_other_by_name_and_publish_ports(members: Any) -> None:
    host = members
    start(host, "uweb", "uclient")  # the network's unit is started first, as required
    try:
        assert prop(host, NET_UNIT, "ActiveState") == "active"
        comms = sorted(host.sh(f"cat /proc/{pid}/comm").stdout.strip()[:5]
                       for pid in unit_processes(host, NET_UNIT))
        assert comms == ["passt", "sleep"]  # pasta (passt.avx2) and the holder: no more
        address = in_container(host, "uclient", "getent", "hosts", "uweb").stdout.split()[0]
        assert address.startswith("10.95.0.")
        assert get(host, "uclient", address, 80) == "user-web\n"
        back = in_container(host, "uweb", "getent", "hosts", "uclient").stdout.split()
        assert back and back[0].startswith("10.95.0.")
        # From the host: through pasta's splice (loopback) and its tap (the uplink).
        assert fetch(host, "http://127.0.0.1:8090/") == "user-web\n"
        assert fetch(host, f"http://{UPLINK_ADDRESS}:8090/") == "user-web\n"
        # A member's way out: the holder's masquerade, then pasta, which takes the
        # gateway's address to the host (here the guest's registry on 127.0.0.1:5000).
        assert "default via 10.95.0.1" in container_routes(host, "uclient")
        pid = prop(host, "uclient.service", "MainPID")
        out = host.run(["nsenter", "-t", pid, "-n", "curl", "-sS", "--max-time", "3",
                        "http://192.0.2.1:5000/v2/"], check=False)
        assert out.stdout == "{}", out.stderr
        assert holder_counts(host) == (2, 4, 2)  # uweb's DNAT x2, hairpin, loopback masquerade
        listed = as_user(host, HOSTCTL, "network", "ls", "--user").stdout
        assert "appnet" in listed and "10.95.0.0/24" in listed
        info = json.loads(as_user(host, HOSTCTL, "network", "inspect", "--user", "appnet").stdout)
        attached = {c["container"]: c["addresses"] for c in info["containers"]}
        assert attached["uweb"] == [address] and sorted(attached) == ["uclient", "uweb"]
    finally:
        stop(host, "uweb", "uclient")
    assert holder_counts(host) == (0, 0, 0)  # the network stays up, its members gone
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8090/"],
                    check=False).stdout == ""


def test_a_port_the_running_network_does_not_forward_is_refused_clearly(members: Any) -> None:
    host = members
    start(host, "uclient")  # the network runs, forwarding 8090 only
    try:
        declare(host, "uextra", web("extra", 'ports: ["8091:80"]', "network: appnet"))
        done = as_user(host, "systemctl", "--user", "start", "uextra", check=False)
        assert done.returncode != 0
        said = journal(host, "uextra")
        assert "8091" in said and "is not forwarded by network appnet" in said, said
        assert "uextra.yaml" in said and "ports" in said, said
        assert f"restart {NET_UNIT}" in said, said
        # Restarted after the daemon-reload, the network forwards it.
        as_user(host, "systemctl", "--user", "restart", NET_UNIT)
        start(host, "uextra")
        assert fetch(host, "http://127.0.0.1:8091/") == "extra\n"
    finally:
        stop(host, "uextra", "uclient")
        as_user(host, "rm", "-f", f"{DECLS}/uextra.yaml")
        as_user(host, "systemctl", "--user", "daemon-reload")
    assert holder_counts(host) == (0, 0, 0)


def test_what_a_crashed_member_left_is_removed_by_its_next_start(members: Any) -> None:
    host = members
    dropin = f"{HOME}/.config/systemd/user/uweb.service.d"
    as_user(host, "mkdir", "-p", dropin)
    write(host, f"{dropin}/crash.conf", "[Service]\nExecStopPost=\n")  # no cleanup
    as_user(host, "systemctl", "--user", "daemon-reload")
    try:
        start(host, "uweb")
        stop(host, "uweb")  # as a crash: the container is gone, its cleanup never ran
        assert holder_counts(host)[1:] == (4, 1)  # its rules and lease are left
    finally:
        as_user(host, "rm", "-rf", dropin)
        as_user(host, "systemctl", "--user", "daemon-reload")
    start(host, "uweb")
    try:
        assert holder_counts(host) == (1, 4, 1)  # the leftovers removed, not doubled
        assert fetch(host, "http://127.0.0.1:8090/") == "user-web\n"
    finally:
        stop(host, "uweb")
    assert holder_counts(host) == (0, 0, 0)


def test_a_crashed_member_moved_to_another_network_is_cleaned_from_the_first(
    members: Any
) -> None:
    host = members
    dropin = f"{HOME}/.config/systemd/user/uclient.service.d"
    as_user(host, "mkdir", "-p", dropin)
    write(host, f"{dropin}/crash.conf", "[Service]\nExecStopPost=\n")
    as_user(host, "systemctl", "--user", "daemon-reload")
    try:
        start(host, "uclient")
        stop(host, "uclient")  # as a crash: its lease on appnet is left
        assert holder_counts(host)[2] == 1
    finally:
        as_user(host, "rm", "-rf", dropin)
    declare(host, "uclient", SLEEPER + "network: closed\n")  # moved, then started
    try:
        start(host, "uclient")
        assert holder_counts(host) == (0, 0, 0)  # its start cleaned appnet up
    finally:
        stop(host, "uclient", "hostctl-network-closed.service")
        declare(host, "uclient", SLEEPER + "network: appnet\n")


def test_stopping_the_network_stops_its_members_and_leaves_no_process(members: Any) -> None:
    host = members
    start(host, "uweb", "uclient")
    holder = prop(host, NET_UNIT, "MainPID")
    processes = unit_processes(host, NET_UNIT)
    assert holder in processes and len(processes) == 2
    stop(host, NET_UNIT)
    for member in ("uweb", "uclient"):  # stopped first: they require the network
        # ("failed" too: sleep and httpd as PID 1 ignore SIGTERM, so the stop kills them)
        assert prop(host, f"{member}.service", "ActiveState") in ("inactive", "failed"), (
            journal(host, member) + host.sh("journalctl --no-pager -n 40").stdout)
    left = [p for p in processes if host.run(["test", "-e", f"/proc/{p}"],
                                             check=False).returncode == 0]
    assert left == []
    assert host.sh("pgrep -u alice '^pass?t' || true").stdout.strip() == ""
    state = f"/run/user/{host.uid}/hostctl/network"
    assert host.sh(f"find {state}/holders {state}/cni {state}/ipam/appnet -type f "
                   "! -name '*.lock' 2>/dev/null; true").stdout.strip() == ""


def test_an_internal_user_network_has_no_way_out(host: Any) -> None:
    declare(host, "shut", SLEEPER + "network: closed\n")
    declare(host, "shutweb", web("closed-web", "network: closed"))
    start(host, "shut", "shutweb")
    try:
        assert "default" not in container_routes(host, "shut")
        peer = in_container(host, "shut", "getent", "hosts", "shutweb").stdout.split()[0]
        assert get(host, "shut", peer, 80) == "closed-web\n"  # members reach each other
        pid = prop(host, "shut.service", "MainPID")
        out = host.run(["nsenter", "-t", pid, "-n", "curl", "-sS", "--max-time", "2",
                        "http://192.0.2.1:5000/v2/"], check=False)
        assert out.returncode != 0 and out.stdout == ""  # and nothing else
        holder = prop(host, "hostctl-network-closed.service", "MainPID")
        nat = host.run(["nsenter", "-t", holder, "-n", "iptables-save", "-t", "nat"]).stdout
        assert "MASQUERADE" not in nat
    finally:
        stop(host, "shut", "shutweb", "hostctl-network-closed.service")



def test_hostctl_run_on_a_user_network_starts_the_network_first(host: Any) -> None:
    """An ad-hoc rootless container on a declared network: the generator made a unit for
    every declared network (spare has no members) and the transient unit requires it."""
    write(host, f"{NETS}/spare.yaml", "subnet: 10.96.0.0/24\n")
    as_user(host, "systemctl", "--user", "daemon-reload")
    unit = "hostctl-network-spare.service"
    assert prop(host, unit, "LoadState") == "loaded"
    assert prop(host, unit, "ActiveState") == "inactive"
    try:
        done = as_user(host, HOSTCTL, "run", "--user", "--rm", "--network", "spare",
                       netguest.IMAGE, "sh", "-c", "ip -4 -o addr show eth0", check=False)
        assert done.returncode == 0, (done.stdout + done.stderr
                                      + journal(host, "hostctl-network-spare"))
        assert "inet 10.96.0." in done.stdout
        assert prop(host, unit, "ActiveState") == "active"
    finally:
        stop(host, unit)

def test_after_a_reboot_enabled_members_come_back_on_their_network(host: Any) -> None:
    """Last in this module (it reboots the guest): enabled members of a user network start
    at boot with the user's lingering manager, the network's unit first; a container on
    pasta's network that ran before the reboot starts from the record it kept
    (hostctl.launcher.record.kept_path)."""
    from hostctl.launcher.record import RECORDED_START

    declare(host, "bootweb", web("boot-user-web", 'ports: ["8092:80"]', "network: appnet",
                                 "install:", "  WantedBy: default.target"))
    declare(host, "bootclient", SLEEPER + "network: appnet\n"
            "install:\n  WantedBy: default.target\n")
    declare(host, "bootsolo", web("boot-solo", 'ports: ["8093:80"]',
                                  "install:", "  WantedBy: default.target"))
    start(host, "bootsolo")
    # the way out in place before the user's manager starts, as on a real host: a user's
    # record holds the default route it was made with
    netguest.uplink_at_boot(host)
    host.reboot()
    host.sh(netguest.UPLINK)
    try:
        deadline = time.monotonic() + 30
        for name in ("bootweb", "bootclient", "bootsolo"):
            while as_user(host, "systemctl", "--user", "is-active", f"{name}.service",
                          check=False).stdout.strip() != "active":
                assert time.monotonic() < deadline, (
                    journal(host, name) + journal(host, NET_ID)
                    + host.sh("journalctl --no-pager -n 40").stdout)
                time.sleep(0.2)
        assert fetch(host, "http://127.0.0.1:8092/") == "boot-user-web\n"
        assert fetch(host, "http://127.0.0.1:8093/") == "boot-solo\n"
        assert said_this_boot(host, RECORDED_START, "SYSLOG_IDENTIFIER=bootsolo")
        peer = in_container(host, "bootclient", "getent", "hosts", "bootweb").stdout.split()[0]
        assert get(host, "bootclient", peer, 80) == "boot-user-web\n"
        veths, _, leases = holder_counts(host)
        assert (veths, leases) == (2, 2)  # the two members', nothing from before the reboot
    finally:
        stop(host, "bootweb", "bootclient", "bootsolo", NET_UNIT)
    assert host.sh("pgrep -u alice '^pass?t' || true").stdout.strip() == ""
