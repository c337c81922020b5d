"""Networking in a real systemd test host with its own network namespace: published
ports, names on a named network, internal networks, rootless pasta, cleanup."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_e2e import DECLS, HOSTCTL, prop
from tests.support import netguest

pytestmark = pytest.mark.integration
NETS = "/etc/hostctl/networks"
HTTPD = ('command: ["sh", "-c", "mkdir -p /www && echo {text} > /www/index.html'
         ' && exec httpd -f -p 80 -h /www"]')


def web(text: str, *extra: str) -> str:
    return "\n".join([f"image: {netguest.IMAGE}", HTTPD.format(text=text), "stop_timeout: 2",
                      *extra]) + "\n"


HOST6 = "fd00:2::2"
RECORDS = "/run/hostctl/launch"
SLEEPER = f'image: {netguest.IMAGE}\ncommand: ["sleep", "600"]\nstop_timeout: 1\n'


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.write_file(f"{NETS}/backend.yaml", "subnet: 10.91.0.0/24\n")
        guest.write_file(f"{NETS}/isolated.yaml", "internal: true\n")
        guest.write_file(f"{NETS}/six.yaml", "subnet: 10.93.0.0/24\nipv6_subnet: fd00:93::/64\n")
        guest.sh(f"ip -6 addr add {HOST6}/64 dev uplink0 nodad")  # the host's own IPv6
        yield guest
    finally:
        guest.close()


def declare(host: Any, name: str, body: str) -> None:
    """Write a declaration as given: with no `network:`, the default (bridge). (test_e2e's
    declare() adds `network: host` for its shared-namespace guest.)"""
    host.write_file(f"{DECLS}/{name}.yaml", body)
    host.run(["systemctl", "daemon-reload"])


def start(host: Any, *names: str) -> None:
    for name in names:
        done = host.run(["systemctl", "start", name], check=False)
        assert done.returncode == 0, host.journal(f"{name}.service")


def stop(host: Any, *names: str) -> None:
    for name in names:
        host.run(["systemctl", "stop", name], check=False)


def in_container(host: Any, name: str, *argv: str, check: bool = True) -> Any:
    pid = prop(host, f"{name}.service", "MainPID")
    return host.run(["nsenter", "-t", pid, "-a", *argv], check=check)


def by_name(host: Any, client: str, server: str) -> str:
    """What CLIENT gets from http://SERVER/, the name looked up in its /etc/hosts by glibc."""
    address = in_container(host, client, "getent", "hosts", server).stdout.split()[0]
    return get(host, client, address, 80).stdout


def get(host: Any, client: str, address: str, port: int) -> Any:
    """GET / from inside CLIENT with nc (static busybox's wget crashes looking up NSS);
    stdout is the body."""
    script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} {port}"
              " | sed '1,/^\\r*$/d'")
    return in_container(host, client, "sh", "-c", script, check=False)


def fetch(host: Any, url: str) -> str:
    deadline = time.monotonic() + 5
    while True:
        done = host.run(["curl", "-sS", "--max-time", "2", url], check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            return str(done.stdout)
        time.sleep(0.1)


def test_published_port_answers_from_the_host(host: Any) -> None:
    declare(host, "web", web("hello-web", 'ports: ["8080:80"]'))
    start(host, "web")
    try:
        assert fetch(host, "http://127.0.0.1:8080/") == "hello-web\n"
        assert fetch(host, "http://192.0.2.2:8080/") == "hello-web\n"
        address = host.run([HOSTCTL, "network", "inspect", "bridge", "--format", "json"]).stdout
        assert '"web"' in address
        # The container has its own namespace: the host's uplink is not in it.
        links = in_container(host, "web", "cat", "/proc/net/dev").stdout
        assert "eth0" in links and "uplink0" not in links
    finally:
        stop(host, "web")
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8080/"],
                    check=False).returncode != 0
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


# A UDP echo server and an httpd in one container: the host's python (bind-mounted /usr)
# answers "echo:DATA" on port 53 over IPv4 and IPv6; busybox httpd serves "six" on 80.
UDP_ECHO = ("import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\ns.bind(('::', 53))\n"
            "while True:\n    data, peer = s.recvfrom(512)\n    s.sendto(b'echo:' + data, peer)\n")
SIX = (f"image: {netguest.IMAGE}\n"
       'command: ["sh", "-c", "mkdir -p /www && echo six > /www/index.html && httpd -p 80'
       f' -h /www && exec /usr/bin/python3 -c \\"$0\\"", {json.dumps(UDP_ECHO)}]\n'
       'volumes: ["/usr:/usr:ro", "/usr/lib:/lib:ro"]\nnetwork: six\nstop_timeout: 1\n'
       'ports: ["5353:53/udp", "8084:80"]\n')
UDP_ASK = ("import socket, sys\n"
           "family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
           "s = socket.socket(family, socket.SOCK_DGRAM)\ns.settimeout(0.5)\n"
           "for _ in range(6):\n    s.sendto(b'ping', (sys.argv[1], int(sys.argv[2])))\n"
           "    try:\n        print(s.recv(512).decode())\n        break\n"
           "    except OSError:\n        pass\n")


def udp_ask(host: Any, address: str, port: int) -> str:
    """What a UDP datagram "ping" sent from the host to ADDRESS:PORT gets back."""
    return str(host.run(["python3", "-c", UDP_ASK, address, str(port)], check=False).stdout)


def refused(host: Any, url: str) -> bool:
    """Whether URL's connection is refused at once (no DNAT rule answers for it)."""
    return host.run(["curl", "-gsS", "--max-time", "2", url], check=False).returncode == 7


def hostctl_rules(host: Any, name: str) -> list[str]:
    """The iptables and ip6tables rules (every table) tagged for container NAME."""
    out = host.sh("iptables-save; ip6tables-save").stdout
    return [line for line in out.splitlines() if f'"hostctl {name}"' in line]


def test_ports_bound_to_a_host_ip_over_udp_and_ipv6_and_hairpin(host: Any) -> None:
    declare(host, "bound", web("bound-web", 'ports: ["127.0.0.1:8082:80", "192.0.2.2:8083:80"]'))
    declare(host, "six", SIX)
    declare(host, "peer", SLEEPER)
    start(host, "bound", "six", "peer")
    try:
        assert fetch(host, "http://127.0.0.1:8082/") == "bound-web\n"
        assert fetch(host, "http://192.0.2.2:8083/") == "bound-web\n"
        # HOST_IP restricts: each port answers on its address only
        assert refused(host, "http://192.0.2.2:8082/") and refused(host, "http://127.0.0.1:8083/")
        for address in ("127.0.0.1", "192.0.2.2", HOST6):
            assert udp_ask(host, address, 5353) == "echo:ping\n", address
        assert fetch(host, f"http://[{HOST6}]:8084/") == "six\n"
        assert fetch(host, "http://[fd00:93::1]:8084/") == "six\n"  # the gateway's IPv6
        assert refused(host, "http://[::1]:8084/")  # ::1 is left alone: refused at once
        assert fetch(host, "http://localhost:8084/") == "six\n"  # so this falls back
        # hairpin: through a host address, from the container itself and from its network
        assert get(host, "bound", "192.0.2.2", 8083).stdout == "bound-web\n"
        assert get(host, "peer", "192.0.2.2", 8083).stdout == "bound-web\n"
        assert hostctl_rules(host, "six") and hostctl_rules(host, "bound")
    finally:
        stop(host, "bound", "six", "peer")
    assert hostctl_rules(host, "bound") == [] and hostctl_rules(host, "six") == []
    assert refused(host, "http://127.0.0.1:8082/") and udp_ask(host, "127.0.0.1", 5353) == ""
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def test_a_host_port_published_by_another_container_is_refused_clearly(host: Any) -> None:
    declare(host, "holder", web("holder", 'ports: ["8095:80"]'))
    declare(host, "taker", web("taker", 'ports: ["0.0.0.0:8095:80"]', "network: backend"))
    start(host, "holder")
    try:
        failed = host.run(["systemctl", "start", "taker"], check=False)
        assert failed.returncode != 0
        journal = host.journal("taker.service")
        assert "host port 8095/tcp (0.0.0.0:8095:80/tcp) is already published by container " \
               "holder (8095:80/tcp)" in journal, journal
        assert "taker.yaml" in journal and "systemctl stop holder" in journal
        assert fetch(host, "http://127.0.0.1:8095/") == "holder\n"  # untouched
        assert hostctl_rules(host, "taker") == []
        stop(host, "holder")
        start(host, "taker")
        assert fetch(host, "http://127.0.0.1:8095/") == "taker\n"
    finally:
        stop(host, "holder", "taker")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def test_containers_on_a_named_network_reach_each_other_by_name(host: Any) -> None:
    declare(host, "db", web("db-answers", "network: backend"))
    declare(host, "app", SLEEPER + "network: backend\n")
    start(host, "db", "app")
    try:
        assert by_name(host, "app", "db") == "db-answers\n"
        # db started first: its hosts file learnt app's address when app joined.
        db_hosts = in_container(host, "db", "cat", "/etc/hosts").stdout
        assert "\tapp\n" in db_hosts and "10.91.0." in db_hosts
        stop(host, "app")
        assert "\tapp\n" not in in_container(host, "db", "cat", "/etc/hosts").stdout
    finally:
        stop(host, "app", "db")


def test_a_static_address_answers_and_a_taken_one_is_refused(host: Any) -> None:
    """ip/ip6 (quadlet IP=/IP6=): the container answers at the address it declared, on
    both families; a second container asking for the same address does not start."""
    declare(host, "fixed", web("fixed-answers", "network: six", "ip: 10.93.0.77",
                               "ip6: fd00:93::77"))
    declare(host, "client", SLEEPER + "network: six\n")
    declare(host, "twin", SLEEPER + "network: six\nip: 10.93.0.77\n")
    start(host, "fixed", "client")
    try:
        assert address_of(host, "six", "fixed") == "10.93.0.77"
        assert get(host, "client", "10.93.0.77", 80).stdout == "fixed-answers\n"
        assert get(host, "client", "fd00:93::77", 80).stdout == "fixed-answers\n"
        assert host.run(["systemctl", "start", "twin"], check=False).returncode != 0
        assert "10.93.0.77" in host.journal("twin.service")
    finally:
        stop(host, "twin", "client", "fixed")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def record_id(host: Any, name: str) -> str:
    """The start record's inode and mtime: a full start writes a new one, a recorded start
    (hostctl.launcher.quicknet) leaves it as it was."""
    done = host.run(["stat", "-c", "%i %Y", f"{RECORDS}/{name}.record"], check=False)
    return str(done.stdout).strip()


def address_of(host: Any, network: str, container: str) -> str:
    info = json.loads(host.run([HOSTCTL, "network", "inspect", network]).stdout)
    return next(c["addresses"][0] for c in info["containers"] if c["container"] == container)


def test_networks_are_isolated_and_an_internal_one_has_no_way_out(host: Any) -> None:
    """A container on another network reaches `target` only through its published port;
    one on an internal network reaches nothing outside its network."""
    declare(host, "target", web("outside", 'ports: ["8090:80"]'))
    declare(host, "inside", SLEEPER + "network: isolated\n")
    declare(host, "outside", SLEEPER + "network: backend\n")
    start(host, "target", "inside", "outside")
    try:
        ok = get(host, "outside", "192.0.2.2", 8090)
        assert ok.stdout == "outside\n", ok.stderr
        direct = address_of(host, "bridge", "target")
        assert fetch(host, f"http://{direct}/") == "outside\n"  # the host itself may
        assert get(host, "outside", direct, 80).stdout == ""  # another network may not
        blocked = get(host, "inside", "192.0.2.2", 8090)
        assert blocked.stdout == "" and "unreachable" in blocked.stderr
        routes = in_container(host, "inside", "cat", "/proc/net/route").stdout
        assert "00000000\t" not in "".join(line.split(None, 2)[1] + "\t"
                                           for line in routes.splitlines()[1:])
    finally:
        stop(host, "target", "inside", "outside")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def test_a_container_on_two_networks_reaches_both_by_name(host: Any) -> None:
    """networks: (podman's second --network): eth0 on backend with the ports and the
    default route, eth1 on six; its name and aliases in each network's members' hosts
    files; the two networks' other members still cannot reach each other; such a start
    is never recorded; the stop releases both attachments."""
    host.write_file(f"{DECLS}/both.yaml", web("both-answers", "network: backend",
                    "networks: [six]", 'ports: ["8095:80"]', "network_aliases: [hub]"))
    host.write_file(f"{DECLS}/onback.yaml", web("back-answers", "network: backend"))
    host.write_file(f"{DECLS}/onsix.yaml", web("six-answers", "network: six"))
    host.run(["systemctl", "daemon-reload"])
    units = ("both", "onback", "onsix")
    done = host.run(["systemctl", "start", "onback", "onsix"], check=False)  # together
    assert done.returncode == 0, host.journal("onback.service") + host.journal("onsix.service")
    start(host, "both")  # after them: their hosts files learn its name when it joins
    try:
        assert by_name(host, "both", "onback") == "back-answers\n"
        assert by_name(host, "both", "onsix") == "six-answers\n"
        assert by_name(host, "onback", "both") == "both-answers\n"  # joined after onback
        assert by_name(host, "onsix", "hub") == "both-answers\n"
        assert fetch(host, "http://127.0.0.1:8095/") == "both-answers\n"
        pid = prop(host, "both.service", "MainPID")
        links = host.run(["nsenter", "-t", pid, "-n", "ip", "-o", "-4", "addr"]).stdout
        assert "eth0    inet 10.91.0." in links and "eth1    inet 10.93.0." in links, links
        routes = host.run(["nsenter", "-t", pid, "-n", "ip", "route", "show", "default"])
        assert routes.stdout.split()[:5] == ["default", "via", "10.91.0.1", "dev", "eth0"]
        # isolation between backend and six holds for everyone else
        for client, server in (("onback", "onsix"), ("onsix", "onback")):
            address = in_container(host, "both", "getent", "ahostsv4", server).stdout.split()[0]
            probe = f"nc -w 1 {address} 80 </dev/null && echo open"
            assert in_container(host, "both", "sh", "-c", probe).stdout == "open\n"
            assert in_container(host, client, "sh", "-c", probe, check=False).stdout == ""
        stop(host, "both")
        assert "hub" not in in_container(host, "onsix", "cat", "/etc/hosts").stdout
        assert attached(host, "both") == [] and hostctl_rules(host, "both") == []
        start(host, "both")
        assert record_id(host, "both") == ""  # several networks: never a recorded start
        assert by_name(host, "onsix", "both") == "both-answers\n"
    finally:
        host.run(["systemctl", "stop", *units], check=False)  # together: quicker
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def test_rootless_container_publishes_a_port_and_restarts_from_its_record(host: Any) -> None:
    """A user's container publishes its port through pasta; its second start is the
    recorded one (hostctl.launcher.quickuser), pasta connecting the namespace the
    launcher made, and the compiled launcher's (hostctl/launcher/launchfast.c: it goes
    on without the Python launcher's record); a changed declaration, or pasta failing
    (the port taken meanwhile), means a full start."""
    from hostctl.launcher.quickuser import RECORDED_START

    uid = host.lingering_user("alice")
    user = ["runuser", "-u", "alice", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}"]
    folder = "/home/alice/.config/hostctl/containers"
    record = f"/run/user/{uid}/hostctl/launch/rweb.record"

    def start(body: str | None = None) -> tuple[str, str]:
        """(Re)start rweb (declared anew with BODY); its record's id and this start's lines."""
        if body is not None:
            host.run([*user, "sh", "-c", f"cat > {folder}/rweb.yaml"], input=body)
            host.run([*user, "systemctl", "--user", "daemon-reload"])
        host.run([*user, "systemctl", "--user", "stop", "rweb"], check=False)
        since = host.sh("date +%s.%N").stdout.strip()
        done = host.run([*user, "systemctl", "--user", "start", "rweb"], check=False)
        lines = host.run(["journalctl", "--no-pager", "-o", "cat", f"--since=@{since}",
                          "SYSLOG_IDENTIFIER=rweb"]).stdout
        assert done.returncode == 0, lines + host.sh("journalctl --no-pager -n 40").stdout
        found = host.run(["stat", "-c", "%i %Y", record], check=False).stdout.strip()
        return found, lines

    host.run([*user, "mkdir", "-p", folder])
    try:
        first, lines = start(web("rootless-web", 'ports: ["8081:80"]'))
        assert first and RECORDED_START not in lines
        assert fetch(host, "http://127.0.0.1:8081/") == "rootless-web\n"
        assert netguest.leftovers(host).pastas == 1
        again, lines = start()
        assert (again, RECORDED_START in lines) == (first, True)  # from the record
        assert fetch(host, "http://127.0.0.1:8081/") == "rootless-web\n"
        assert netguest.leftovers(host).pastas == 1
        # the compiled launcher's start: with the Python launcher's record made junk, it
        # still starts from the fast record (the Python launcher would start in full)
        assert "/hostctl-launch." in host.run(
            [*user, "systemctl", "--user", "show", "-p", "ExecStart", "rweb"]).stdout
        host.run([*user, "systemctl", "--user", "stop", "rweb"])
        host.run([*user, "sh", "-c", f"printf junk > {record}"])  # the same file
        _, lines = start()
        assert RECORDED_START in lines and host.read_file(record) == "junk"
        assert fetch(host, "http://127.0.0.1:8081/") == "rootless-web\n"
        assert netguest.leftovers(host).pastas == 1
        changed, lines = start(web("rootless-changed", 'ports: ["8081:80"]'))
        assert changed != first and RECORDED_START not in lines  # a full start
        assert fetch(host, "http://127.0.0.1:8081/") == "rootless-changed\n"
        # the port taken between two starts: pasta fails, the full start says why
        host.run([*user, "systemctl", "--user", "stop", "rweb"])
        host.run(["systemd-run", "--unit=squat8081", "busybox", "nc", "-l", "-p", "8081"])
        try:
            done = host.run([*user, "systemctl", "--user", "start", "rweb"], check=False)
            journal = host.run(["journalctl", "--no-pager", "-o", "cat",
                                "SYSLOG_IDENTIFIER=rweb"]).stdout
            assert done.returncode != 0
            assert "the recorded start does not apply (pasta exited with 1)" in journal
            assert "8081" in journal.rsplit("starting in full", 1)[1]  # the full start's error
        finally:
            host.run(["systemctl", "stop", "squat8081"], check=False)
        back, lines = start()
        assert back != changed and RECORDED_START not in lines  # the record was dropped
        assert fetch(host, "http://127.0.0.1:8081/") == "rootless-changed\n"
    finally:
        host.run([*user, "systemctl", "--user", "stop", "rweb"], check=False)
    assert netguest.leftovers(host).pastas == 0
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8081/"],
                    check=False).returncode != 0


CYCLES = """\
import sys
from pathlib import Path
from hostctl import network
from hostctl.declarations.yaml_reader import load_yaml
from hostctl.paths import Scope, for_scope
paths = for_scope(Scope.SYSTEM)
c = load_yaml(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    network.detach(c.name, paths)  # what the launcher does before every start
    plan = network.plan(c, paths)
    network.attach(c, 0, paths)  # waits for the wiring plan() started
    assert plan.namespace and Path(plan.namespace).exists(), plan
    if i % 10 == 9:
        continue  # a "crash": no detach; the next start's detach cleans up
    network.detach(c.name, paths)
network.detach(c.name, paths)
"""


def test_start_stop_cycles_leave_nothing_behind(host: Any) -> None:
    declare(host, "cyc", web("cycle", 'ports: ["8070:80", "8071:81/udp"]', "network: backend"))
    start(host, "cyc")
    stop(host, "cyc")
    baseline = netguest.leftovers(host)
    assert baseline.without_shared() == (0, 0, 0, 0, 0)
    for _ in range(5):  # whole systemd cycles: launcher and ExecStopPost
        start(host, "cyc")
        assert fetch(host, "http://127.0.0.1:8070/") == "cycle\n"
        stop(host, "cyc")
    host.write_file("/root/cycles.py", CYCLES)
    python = HOSTCTL.rsplit("/", 1)[0] + "/python"
    host.run([python, "/root/cycles.py", "/etc/hostctl/containers/cyc.yaml", "95"],
             timeout=120)
    assert netguest.leftovers(host) == baseline
    assert hostctl_rules(host, "cyc") == []  # the DNAT and masquerades counted above too


def test_reboot_leaves_nothing_behind_and_containers_come_back(host: Any) -> None:
    """Enabled containers come back after a reboot from the records their last starts
    kept (hostctl.launcher.record): the bridge, hostctl's chains and the run directory
    are new, the address, port and names are the last boot's."""
    from hostctl.launcher.record import RECORDED_START

    declare(host, "boot-web", web("after-boot", 'ports: ["8060:80"]', "network: backend",
                                  "install:", "  WantedBy: multi-user.target"))
    declare(host, "boot-app", SLEEPER + "network: backend\n"
            "install:\n  WantedBy: multi-user.target\n")
    start(host, "boot-web", "boot-app")
    address = attached_address(host, "backend", "boot-web")
    host.reboot()
    host.sh(netguest.UPLINK)
    try:
        for name in ("boot-web", "boot-app"):
            deadline = time.monotonic() + 20
            while prop(host, f"{name}.service", "ActiveState") != "active":
                assert time.monotonic() < deadline, host.journal(f"{name}.service")
                time.sleep(0.2)
            assert said_this_boot(host, RECORDED_START, "-u", f"{name}.service")
        # on 127.0.0.1: route_localnet set on the new bridge by the recorded start
        assert fetch(host, "http://127.0.0.1:8060/") == "after-boot\n"
        assert by_name(host, "boot-app", "boot-web") == "after-boot\n"
        assert attached_address(host, "backend", "boot-web") == address
        counts = netguest.leftovers(host)
        assert (counts.namespaces, counts.veths, counts.leases) == (2, 2, 2)
    finally:
        stop(host, "boot-web", "boot-app")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def said_this_boot(host: Any, text: str, *match: str, timeout: float = 10) -> bool:
    """Whether TEXT reaches the journal of this boot for MATCH (journalctl's arguments)
    within TIMEOUT: a unit's output is read from its stream by journald on its own
    time, and may come after the unit is active. The journal and what the last stop
    left are in the assertion's message when it does not."""
    deadline = time.monotonic() + timeout
    while True:
        lines = host.run(["journalctl", "-b", "--no-pager", "-o", "cat", *match]).stdout
        if text in lines:
            return True
        if time.monotonic() > deadline:
            left = host.sh("ls /var/lib/hostctl/containers /var/lib/hostctl/launch 2>&1",
                           check=False).stdout
            raise AssertionError(f"{text!r} not in:\n{lines}\n{left}")
        time.sleep(0.2)


def attached_address(host: Any, network: str, name: str) -> list[str]:
    """Container NAME's addresses on NETWORK, as `hostctl network inspect` shows them."""
    inspect = json.loads(host.run([HOSTCTL, "network", "inspect", network]).stdout)
    found: list[str] = next(c for c in inspect["containers"]
                            if c["container"] == name)["addresses"]
    return found


def test_a_host_port_bound_by_another_process_is_refused_naming_it(host: Any) -> None:
    """Not only hostctl's own containers: a server on the host holding the port fails the
    start naming it, and keeps its port; a HOST_IP the host lacks is an error too."""
    host.run(["systemd-run", "--unit", "squatter", "--", "busybox", "httpd", "-f",
              "-p", "8097", "-h", "/etc"])
    declare(host, "late", web("late", 'ports: ["8097:80"]'))
    declare(host, "nowhere", web("nowhere", 'ports: ["198.51.100.7:8098:80"]'))
    try:
        pid = prop(host, "squatter.service", "MainPID")
        deadline = time.monotonic() + 5
        while "8097" not in host.run(["ss", "-Hltn"]).stdout:
            assert time.monotonic() < deadline, "the squatter did not listen"
            time.sleep(0.1)
        assert host.run(["systemctl", "start", "late"], check=False).returncode != 0
        journal = host.journal("late.service")
        assert (f"host port 8097/tcp (8097:80/tcp) is in use on the host by busybox "
                f"(PID {pid})") in journal, journal
        assert "late.yaml" in journal and "ports" in journal
        assert prop(host, "squatter.service", "ActiveState") == "active"
        assert hostctl_rules(host, "late") == []
        assert host.run(["systemctl", "start", "nowhere"], check=False).returncode != 0
        assert "198.51.100.7 is not an address of this host" in host.journal("nowhere.service")
        host.run(["systemctl", "stop", "squatter"])
        start(host, "late")
        assert fetch(host, "http://127.0.0.1:8097/") == "late\n"
        inspect = json.loads(host.run([HOSTCTL, "network", "inspect", "bridge"]).stdout)
        attached = {c["container"]: c for c in inspect["containers"]}
        assert attached["late"]["ports"] == ["8097:80/tcp"]
    finally:
        stop(host, "squatter", "late", "nowhere")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def attached(host: Any, name: str) -> list[str]:
    """What container NAME holds on the host: its namespace, attachment, claims."""
    found = host.sh(f"ls /run/netns/hostctl-{name} /run/hostctl/network/cni/{name}.* "
                    f"/run/hostctl/network/cni/{name}+* 2>/dev/null || true").stdout
    return str(found).split()


def test_recorded_bridged_and_named_network_starts(host: Any) -> None:
    """A second start on the default and on a named network replays the first one's
    network (the same address, port rules, names); the stop after it releases the address
    and the rules; a changed network file, or the bridge gone, means a full start."""
    declare(host, "rweb", web("rec-web", 'ports: ["8075:80"]'))
    declare(host, "rdb", web("rec-db", "network: backend"))
    declare(host, "rapp", SLEEPER + "network: backend\n")
    start(host, "rweb", "rdb", "rapp")
    try:
        first = {name: record_id(host, name) for name in ("rweb", "rdb", "rapp")}
        assert all(first.values()), first
        address, rules = address_of(host, "bridge", "rweb"), hostctl_rules(host, "rweb")
        stop(host, "rweb", "rapp")  # the recorded cleanup: address, rules, names released
        assert hostctl_rules(host, "rweb") == [], host.journal("rweb.service")
        assert attached(host, "rweb") == []
        assert netguest.leftovers(host).leases == 1  # rdb's
        assert "\trapp\n" not in in_container(host, "rdb", "cat", "/etc/hosts").stdout
        start(host, "rweb", "rapp")
        assert {n: record_id(host, n) for n in ("rweb", "rapp")} == \
            {"rweb": first["rweb"], "rapp": first["rapp"]}  # recorded starts
        assert fetch(host, "http://127.0.0.1:8075/") == "rec-web\n"
        assert fetch(host, "http://192.0.2.2:8075/") == "rec-web\n"
        assert address_of(host, "bridge", "rweb") == address
        assert sorted(hostctl_rules(host, "rweb")) == sorted(rules)
        assert by_name(host, "rapp", "rdb") == "rec-db\n"
        assert "\trapp\n" in in_container(host, "rdb", "cat", "/etc/hosts").stdout
        # The address taken meanwhile: found after runc create, undone, a full start.
        stop(host, "rweb")
        lease = f"/run/hostctl/network/ipam/bridge/{address}"
        host.write_file(lease, "squatter\neth0")
        start(host, "rweb")
        assert record_id(host, "rweb") != first["rweb"]
        assert "the recorded start does not apply" in host.journal("rweb.service")
        assert fetch(host, "http://127.0.0.1:8075/") == "rec-web\n"
        assert address_of(host, "bridge", "rweb") != address
        host.run(["rm", lease])
        # A changed network file: a full start (a new record), on the changed network.
        stop(host, "rapp")
        host.write_file(f"{NETS}/backend.yaml", "subnet: 10.91.0.0/24\nmtu: 1400\n")
        start(host, "rapp")
        assert record_id(host, "rapp") != first["rapp"]
        pid = prop(host, "rapp.service", "MainPID")
        assert "mtu 1400" in host.run(["nsenter", "-t", pid, "-n", "ip", "link", "show",
                                       "eth0"]).stdout
        # The bridge gone (as after a reboot, which also empties /run): a full start.
        stop(host, "rweb")
        second = record_id(host, "rweb")
        host.run(["ip", "link", "delete", "hostctl0"])
        start(host, "rweb")
        assert record_id(host, "rweb") != second
        assert fetch(host, "http://127.0.0.1:8075/") == "rec-web\n"
    finally:
        stop(host, "rweb", "rdb", "rapp")
        host.write_file(f"{NETS}/backend.yaml", "subnet: 10.91.0.0/24\n")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)
    assert attached(host, "rweb") == attached(host, "rapp") == []
