"""Pods in a real systemd (one private-network guest for the module): three members of
one pod (a .pod file, two .container members and a YAML one) reaching each other on
localhost, sharing one network, IPC and UTS namespace and /dev/shm; the pod's published
port answering from the host; `systemctl stop` of the pod stopping its members and
leaving nothing behind; exit_policy stop ending the pod with its last member; `hostctl
pod ls|inspect` and `ps`; and the enabled pod back after a reboot (last)."""

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


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.write_file(f"{DECLS}/shop.pod", POD)
        guest.write_file(f"{DECLS}/web.container", WEB)
        guest.write_file(f"{DECLS}/db.container", DB)
        guest.write_file(f"{DECLS}/client.yaml", CLIENT)
        guest.run(["systemctl", "daemon-reload"])
        yield guest
    finally:
        guest.close()


def state(host: Any, unit: str) -> str:
    out: str = host.run(["systemctl", "show", "-P", "ActiveState", unit]).stdout
    return out.strip()


def wait_for(host: Any, unit: str, wanted: str, seconds: float = 60) -> str:
    """UNIT's state once it is WANTED (or as it is after SECONDS)."""
    deadline = time.monotonic() + seconds
    while (found := state(host, unit)) != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def says(host: Any, unit: str, text: str) -> str:
    """UNIT's journal once it holds TEXT (or as it is after 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        out: str = host.run(["journalctl", "-b", "--no-pager", "-o", "cat", "-u", unit]).stdout
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


def namespaces(host: Any, unit: str) -> str:
    line = next(line for line in says(host, unit, "ns net:").splitlines()
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


def test_the_last_member_stopping_stops_the_pod(host: Any) -> None:
    host.run(["systemctl", "start", "shop-pod"])
    try:
        for name in MEMBERS:
            assert wait_for(host, f"{name}.service", "active") == "active"
        host.run(["systemctl", "stop", "web", "db"])
        assert state(host, "shop-pod.service") == "active"  # client still runs
        host.run(["systemctl", "stop", "client"])
        assert wait_for(host, "shop-pod.service", "inactive", 10) == "inactive"
        # a member started alone brings its pod up (BindsTo= and After=)
        host.run(["systemctl", "start", "db"])
        assert state(host, "shop-pod.service") == "active"
    finally:
        host.run(["systemctl", "stop", "shop-pod"], check=False)


def test_the_enabled_pod_is_back_after_a_reboot(host: Any) -> None:
    host.reboot()
    host.sh(netguest.UPLINK)
    for name in MEMBERS:
        assert wait_for(host, f"{name}.service", "active") == "active", \
            host.journal(f"{name}.service")
    assert "got hello-web hello-db" in says(host, "client.service", "got ")
    assert fetch(host, "http://127.0.0.1:8080/") == "hello-web\n"
