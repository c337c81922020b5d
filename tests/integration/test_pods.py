"""Pods in a real systemd (one private-network guest for the module): three members of
one pod (a .pod file, two .container members and a YAML one) reaching each other on
localhost, sharing one network, IPC and UTS namespace and /dev/shm; the pod's published
port answering from the host; `systemctl stop` of the pod stopping its members and
leaving nothing behind; exit_policy stop ending the pod with its last member; `hostctl
pod ls|inspect` and `ps`; a lingering user's rootless pod of two (its namespaces held by
a holder process, pasta publishing its port); a pod on a declared network at its static
address, known to the network's other containers by its name, alias and members' names;
and the enabled pods back after a reboot (last)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netguest

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
DECLS = "/etc/hostctl/containers"
SHOW = ("echo ns $(readlink /proc/self/ns/net) $(readlink /proc/self/ns/ipc) "
        "$(readlink /proc/self/ns/uts) host $(hostname)")
LOOP = "while :; do sleep 1 & wait; done"


def _httpd(text: str, port: int) -> str:
    return (f"trap 'exit 0' TERM; mkdir -p /www; echo {text} > /www/index.html; {SHOW}; "
            f"httpd -p {port} -h /www; {LOOP}")


POD = "[Pod]\nPublishPort=8080:80\nHostName=shop\nShmSize=8M\n" \
      "[Install]\nWantedBy=multi-user.target\n"
WEB = (f"[Container]\nImage={netguest.IMAGE}\nPod=shop.pod\nStopTimeout=2\n"
       f"Exec=sh -c \"{_httpd('hello-web', 80)}\"\n")
DB = (f"[Container]\nImage={netguest.IMAGE}\nPod=shop.pod\nStopTimeout=2\n"
      f"Exec=sh -c \"{_httpd('hello-db', 81)}\"\n")
GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 {port} | tail -n 1"
CLIENT = f"""\
image: {netguest.IMAGE}
pod: shop
stop_timeout: 2
command:
  - sh
  - -c
  - >-
    trap 'exit 0' TERM; {SHOW}; echo shared > /dev/shm/note;
    until [ -n "$w" ] && [ -n "$d" ]; do sleep 0.2;
    w=$({GET.format(port=80)}); d=$({GET.format(port=81)}); done;
    echo got $w $d; {LOOP}
"""
MEMBERS = ("web", "db", "client")
LAN_POD = "[Pod]\nNetwork=host\nHostName=lan\nShmSize=4M\n"
LAN_MEMBER = (f"[Container]\nImage={netguest.IMAGE}\nPod=lan.pod\nStopTimeout=2\n"
              "Exec=sh -c \"trap 'exit 0' TERM; " + SHOW + "; " + LOOP + "\"\n")
NETS = "/etc/hostctl/networks"
API_POD = "[Pod]\nNetwork=backend.network\nIP=10.94.0.50\nNetworkAlias=gateway\n"
API_WEB = (f"[Container]\nImage={netguest.IMAGE}\nPod=api.pod\nStopTimeout=2\n"
           f"Exec=sh -c \"{_httpd('hello-api', 80)}\"\n")
CALLER = (f"[Container]\nImage={netguest.IMAGE}\nNetwork=backend.network\nStopTimeout=1\n"
          "Exec=sleep 600\n")
USER = "alice"
USER_DECLS = f"/home/{USER}/.config/hostctl/containers"
USER_POD = "[Pod]\nPublishPort=8090:80\nHostName=team\n[Install]\nWantedBy=default.target\n"
USER_WEB = (f"[Container]\nImage={netguest.IMAGE}\nPod=team.pod\nStopTimeout=2\n"
            f"Exec=sh -c \"{_httpd('hello-team', 80)}\"\n")
USER_CLIENT = (f"[Container]\nImage={netguest.IMAGE}\nPod=team.pod\nStopTimeout=2\n"
               "Exec=sh -c \"trap 'exit 0' TERM; " + SHOW + "; "
               "until [ -n \\\"$w\\\" ]; do sleep 0.2; w=$(" + GET.format(port=80)
               + "); done; echo got $w; " + LOOP + "\"\n")
USER_MEMBERS = ("team-web", "team-client")


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.write_file(f"{DECLS}/shop.pod", POD)
        guest.write_file(f"{DECLS}/web.container", WEB)
        guest.write_file(f"{DECLS}/db.container", DB)
        guest.write_file(f"{DECLS}/client.yaml", CLIENT)
        guest.write_file(f"{DECLS}/lan.pod", LAN_POD)
        guest.write_file(f"{DECLS}/lan-app.container", LAN_MEMBER)
        guest.write_file(f"{NETS}/backend.yaml", "subnet: 10.94.0.0/24\n")
        guest.write_file(f"{DECLS}/api.pod", API_POD)
        guest.write_file(f"{DECLS}/api-web.container", API_WEB)
        guest.write_file(f"{DECLS}/caller.container", CALLER)
        guest.run(["systemctl", "daemon-reload"])
        guest.uid = guest.lingering_user(USER)
        as_user(guest, "mkdir", "-p", USER_DECLS)
        for name, text in (("team.pod", USER_POD), ("team-web.container", USER_WEB),
                           ("team-client.container", USER_CLIENT)):
            as_user(guest, "sh", "-c", f"cat > {USER_DECLS}/{name}", input=text)
        as_user(guest, "systemctl", "--user", "daemon-reload")
        yield guest
    finally:
        guest.close()


def as_user(host: Any, *argv: str, check: bool = True, input: str | None = None) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check,
                    input=input)


def state(host: Any, unit: str, user: bool = False) -> str:
    argv = ["systemctl", *(["--user"] if user else []), "show", "-P", "ActiveState", unit]
    out: str = (as_user(host, *argv) if user else host.run(argv)).stdout
    return out.strip()


def wait_for(host: Any, unit: str, wanted: str, seconds: float = 60, user: bool = False
             ) -> str:
    """UNIT's state once it is WANTED (or as it is after SECONDS)."""
    deadline = time.monotonic() + seconds
    while (found := state(host, unit, user)) != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def says(host: Any, unit: str, text: str, user: bool = False) -> str:
    """UNIT's journal once it holds TEXT (or as it is after 20 s)."""
    deadline = time.monotonic() + 20
    # a user unit's output: by its identifier (the guest's journal has no user units' fields)
    selector = [f"SYSLOG_IDENTIFIER={unit.removesuffix('.service')}"] if user else ["-u", unit]
    while True:
        out: str = host.run(["journalctl", "-b", "--no-pager", "-o", "cat",
                             *selector]).stdout
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def fetch(host: Any, url: str) -> str:
    deadline = time.monotonic() + 5
    while True:
        done = host.run(["curl", "-sS", "--max-time", "2", url], check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            return str(done.stdout)
        time.sleep(0.1)


def namespaces(host: Any, unit: str, user: bool = False) -> str:
    line = next(line for line in says(host, unit, "ns net:", user).splitlines()
                if line.startswith("ns "))
    return line


def test_a_pod_of_three_shares_its_namespaces_and_port(host: Any) -> None:
    started = host.run(["systemctl", "start", "shop-pod"], check=False)
    assert started.returncode == 0, host.journal("shop-pod.service")
    try:
        for name in MEMBERS:  # the pod's unit Wants= them all
            assert wait_for(host, f"{name}.service", "active") == "active", \
                host.journal(f"{name}.service")
        # on localhost, the other members' servers
        assert "got hello-web hello-db" in says(host, "client.service", "got "), \
            host.journal("client.service")
        seen = {namespaces(host, f"{name}.service") for name in MEMBERS}
        assert len(seen) == 1, seen  # one net, ipc and uts namespace, host name "shop"
        line = seen.pop()
        assert all(f"{kind}:[" in line for kind in ("net", "ipc", "uts")), line
        assert line.endswith("host shop"), line
        own = host.run(["readlink", "/proc/self/ns/net"]).stdout.strip()
        assert own not in line  # the pod's, not the host's
        # the pod's published port, from the host
        assert fetch(host, "http://127.0.0.1:8080/") == "hello-web\n"
        assert fetch(host, "http://192.0.2.2:8080/") == "hello-web\n"
        # /dev/shm is the pod's (8M), the same for every member
        pid = host.run(["systemctl", "show", "-P", "MainPID", "web.service"]).stdout.strip()
        shm = host.run(["nsenter", "-t", pid, "-a", "sh", "-c",
                        "cat /dev/shm/note; grep ' /dev/shm ' /proc/mounts"]).stdout
        assert shm.startswith("shared\n") and "size=8192k" in shm, shm
        # hostctl pod ls|inspect, ps
        listed = host.run([HOSTCTL, "pod", "ls"]).stdout
        assert "shop" in listed and "3/3" in listed, listed
        inspected = json.loads(host.run([HOSTCTL, "pod", "inspect", "shop"]).stdout)
        assert inspected["unit"] == "shop-pod.service" and inspected["state"] == "active"
        assert sorted(m["name"] for m in inspected["members"]) == sorted(MEMBERS)
        assert inspected["ports"] == ["8080:80/tcp"]
        ps = host.run([HOSTCTL, "ps"]).stdout
        assert all(line.split()[-2] == "shop" for line in ps.splitlines()[1:]
                   if line.split()[0] in MEMBERS), ps
    finally:
        host.run(["systemctl", "stop", "shop-pod"], check=False)
    for name in MEMBERS:  # members are bound to the pod
        assert state(host, f"{name}.service") in ("inactive", "failed")
    assert state(host, "shop-pod.service") == "inactive"
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8080/"],
                    check=False).returncode != 0
    assert host.run(["ls", "/run/hostctl/pods"]).stdout.strip() == ""
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def records(host: Any) -> str:
    """The members' start records, by inode (a full start writes a new one)."""
    out: str = host.sh("cd /run/hostctl/launch && stat -c '%n %i' "
                       + " ".join(f"{name}.record" for name in MEMBERS)).stdout
    return out


def test_the_last_member_stopping_stops_the_pod(host: Any) -> None:
    before = records(host)  # written by the members' first (full) starts
    host.run(["systemctl", "start", "shop-pod"])
    try:
        for name in MEMBERS:
            assert wait_for(host, f"{name}.service", "active") == "active"
        # the pod started anew, its members took their recorded (quick) starts
        assert records(host) == before, host.sh(
            "journalctl -b --no-pager -o cat -u web -u db -u client -u shop-pod | tail -60").stdout
        assert "got hello-web hello-db" in says(host, "client.service", "got ")
        host.run(["systemctl", "stop", "web", "db"])
        assert state(host, "shop-pod.service") == "active"  # client still runs
        host.run(["systemctl", "stop", "client"])
        assert wait_for(host, "shop-pod.service", "inactive", 10) == "inactive"
        # a member started alone brings its pod up (BindsTo= and After=)
        host.run(["systemctl", "start", "db"])
        assert state(host, "shop-pod.service") == "active"
    finally:
        host.run(["systemctl", "stop", "shop-pod"], check=False)


def test_a_host_network_pod_starts_again_from_its_record(host: Any) -> None:
    """The second start of a pod on the host's network takes the recorded setup
    (hostctl.pod.quick) and its member the recorded start: the same namespaces' kind,
    host name and /dev/shm as the full ones made."""
    setup = "stat -c %i /run/hostctl/launch/lan.pod-setup /run/hostctl/launch/lan-app.record"
    runs = []
    for _ in range(2):
        started = host.run(["systemctl", "start", "lan-pod"], check=False)
        assert started.returncode == 0, host.journal("lan-pod.service")
        try:
            assert wait_for(host, "lan-app.service", "active") == "active", \
                host.journal("lan-app.service")
            pid = host.run(["systemctl", "show", "-P", "MainPID", "lan-app.service"]).stdout
            seen = host.run(["nsenter", "-t", pid.strip(), "-a", "sh", "-c",
                             "hostname; grep ' /dev/shm ' /proc/mounts; readlink "
                             "/proc/self/ns/net; readlink /proc/self/ns/uts"]).stdout
            runs.append((seen, host.sh(setup).stdout))
        finally:
            host.run(["systemctl", "stop", "lan-pod"], check=False)
        assert state(host, "lan-app.service") in ("inactive", "failed")
    (first, records_first), (second, records_second) = runs
    own = host.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts").stdout.split()
    assert first.startswith("lan\n") and "size=4096k" in first, first
    assert own[0] in first and own[1] not in first, first  # the host's network, own UTS
    assert second.split("\n")[:2] == first.split("\n")[:2] and own[0] in second, second
    assert records_second == records_first  # neither written again: both taken as they were
    assert host.run(["ls", "/run/hostctl/pods"]).stdout.strip() == ""


def test_a_pod_on_a_declared_network_has_its_address_and_names(host: Any) -> None:
    """IP= and NetworkAlias= of a .pod: the pod answers at its address, and a container
    on the network finds it by the pod's name, its alias and its member's name."""
    try:
        for unit in ("api-pod", "caller"):
            done = host.run(["systemctl", "start", unit], check=False)
            assert done.returncode == 0, host.journal(f"{unit}.service")
        assert wait_for(host, "api-web.service", "active") == "active", \
            host.journal("api-web.service")
        assert fetch(host, "http://10.94.0.50/") == "hello-api\n"  # from the host
        shown = json.loads(host.run([HOSTCTL, "pod", "inspect", "api"]).stdout)
        assert (shown["ip"], shown["network_aliases"], shown["addresses"]) == (
            "10.94.0.50", ["gateway"], ["10.94.0.50"]), shown
        pid = host.run(["systemctl", "show", "-P", "MainPID", "caller.service"]).stdout
        deadline = time.monotonic() + 5
        while True:  # the hosts file is brought up to date as members come and go
            found = host.run(["nsenter", "-t", pid.strip(), "-a", "getent", "hosts", "api",
                              "gateway", "api-web"], check=False).stdout
            if found.count("10.94.0.50") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert found.count("10.94.0.50") == 3, found
    finally:
        host.run(["systemctl", "stop", "caller", "api-pod"], check=False)
    assert state(host, "api-web.service") in ("inactive", "failed")
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def user_pod_answers(host: Any) -> None:
    """The user's pod is up: its members share namespaces (not the host's), the client
    reached the web member on localhost, the published port answers from the host."""
    for name in USER_MEMBERS:
        assert wait_for(host, f"{name}.service", "active", user=True) == "active", \
            host.sh("journalctl -b --no-pager -n 60").stdout
    assert "got hello-team" in says(host, "team-client.service", "got ", True), \
        host.sh("journalctl -b --no-pager -n 60").stdout
    seen = {namespaces(host, f"{name}.service", True) for name in USER_MEMBERS}
    assert len(seen) == 1, seen
    line = seen.pop()
    assert line.endswith("host team") and host.run(
        ["readlink", "/proc/self/ns/net"]).stdout.strip() not in line, line
    assert fetch(host, "http://127.0.0.1:8090/") == "hello-team\n"
    assert fetch(host, "http://192.0.2.2:8090/") == "hello-team\n"


def test_a_users_pod_of_two_shares_its_namespaces_and_port(host: Any) -> None:
    started = as_user(host, "systemctl", "--user", "start", "team-pod", check=False)
    assert started.returncode == 0, host.sh("journalctl -b --no-pager -n 60").stdout
    try:
        user_pod_answers(host)
        holder = as_user(host, "systemctl", "--user", "show", "-P", "MainPID",
                         "team-pod").stdout.strip()
        assert host.read_file(f"/proc/{holder}/comm").strip() == "sleep"  # the holder
        listed = as_user(host, HOSTCTL, "pod", "ls").stdout
        assert "team" in listed and "2/2" in listed, listed
    finally:
        as_user(host, "systemctl", "--user", "stop", "team-pod", check=False)
    for name in USER_MEMBERS:
        assert state(host, f"{name}.service", True) in ("inactive", "failed")
    assert state(host, "team-pod.service", True) == "inactive"
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8090/"],
                    check=False).returncode != 0
    assert host.run(["ls", f"/run/user/{host.uid}/hostctl/pods"],
                    check=False).stdout.strip() == ""


def test_the_enabled_pods_are_back_after_a_reboot(host: Any) -> None:
    netguest.uplink_at_boot(host)  # the user's pod starts its pasta at boot
    host.reboot()
    for name in MEMBERS:
        assert wait_for(host, f"{name}.service", "active") == "active", \
            host.journal(f"{name}.service")
    assert "got hello-web hello-db" in says(host, "client.service", "got ")
    assert fetch(host, "http://127.0.0.1:8080/") == "hello-web\n"
    user_pod_answers(host)
