"""Quadlet files beyond a single .container, in a real systemd: a template with an
instance by symlink and one by DefaultInstance=, each running with its own %i, an
instance started on demand, a drop-in for one instance, a dependency written as
db.container reaching the unit of a ServiceName=, a Secret=...,type=env, and all of it
back after a reboot."""

from __future__ import annotations

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
LOOP = "trap 'exit 0' TERM; echo word=$WORD; while :; do sleep 1 & wait; done"


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    """One guest with its own network namespace for the whole module (its registry
    serves netguest.IMAGE); the reboot comes last."""
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        yield guest
    finally:
        guest.close()


def state(host: Any, unit: str) -> str:
    out: str = host.run(["systemctl", "show", "-P", "ActiveState", unit]).stdout
    return out.strip()


def says(host: Any, text: str, *selector: str) -> str:
    """The journal of SELECTOR (a unit, or journalctl matches) once it holds TEXT (the
    journal may lag behind the process's write); the journal as it is after 20 s."""
    argv = ["-u", *selector] if len(selector) == 1 and "=" not in selector[0] else selector
    deadline = time.monotonic() + 20
    while True:
        out: str = host.run(["journalctl", "--no-pager", "-o", "cat", *argv],
                            check=False).stdout
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def assert_says(host: Any, text: str, *selector: str) -> None:
    out = says(host, text, *selector)
    assert text in out, out




def test_a_oneshot_container_runs_to_its_end(host: Any) -> None:
    busybox_ref = netguest.IMAGE
    for name, code in (("job-ok", 0), ("job-fails", 3)):
        host.write_file(f"{DECLS}/{name}.container", (
            f"[Container]\nImage={busybox_ref}\nNetwork=none\n"
            f'Exec=sh -c "sleep 1; echo job {name} done; exit {code}"\n'
            "[Service]\nType=oneshot\n"
        ))
    try:
        host.run(["systemctl", "daemon-reload"])
        # a oneshot start returns once the container ended, with its result
        host.run(["systemctl", "start", "job-ok"])
        assert "job job-ok done" in host.journal("job-ok.service")
        assert state(host, "job-ok.service") == "inactive"
        failed = host.run(["systemctl", "start", "job-fails"], check=False)
        assert failed.returncode != 0
        assert state(host, "job-fails.service") == "failed"
        status = host.run(["systemctl", "show", "-P", "ExecMainStatus", "job-fails.service"])
        assert status.stdout.strip() == "3"
        assert "job job-fails done" in host.journal("job-fails.service")
    finally:
        host.run(["rm", "-f", f"{DECLS}/job-ok.container", f"{DECLS}/job-fails.container"])
        host.run(["systemctl", "reset-failed", "job-fails.service"], check=False)
        host.run(["systemctl", "daemon-reload"])


def test_a_network_file_referenced_by_containers(host: Any) -> None:
    busybox_ref = netguest.IMAGE
    host.write_file(f"{DECLS}/lab.network", (
        "[Network]\nSubnet=10.91.7.0/24\nGateway=10.91.7.1\n"
        "IPRange=10.91.7.100-10.91.7.110\nDNS=192.0.2.53\n"
    ))
    show = ("trap 'exit 0' TERM; ip -4 -o addr show eth0; cat /etc/resolv.conf; "
            "while :; do sleep 1 & wait; done")
    for name in ("labone", "labtwo"):
        host.write_file(f"{DECLS}/{name}.container", (
            f"[Container]\nImage={busybox_ref}\nNetwork=lab.network\nStopTimeout=2\n"
            f'Exec=sh -c "{show}"\n'
        ))
    try:
        host.run(["systemctl", "daemon-reload"])
        started = host.run(["systemctl", "start", "labone", "labtwo"], check=False)
        assert started.returncode == 0, host.journal("labone.service")
        for name in ("labone", "labtwo"):
            assert state(host, f"{name}.service") == "active", host.journal(f"{name}.service")
            said_here = says(host, "nameserver", f"{name}.service")
            assert "inet 10.91.7.1" in said_here and "nameserver 192.0.2.53" in said_here
            address = said_here.split("inet ", 1)[1].split("/", 1)[0]
            assert 100 <= int(address.rsplit(".", 1)[1]) <= 110, address  # IPRange=
        hosts = host.run(["cat", "/run/hostctl/containers/labone/hosts"]).stdout
        assert "labtwo" in hosts  # names of the other members (DisableDNS= not set)
        listed = host.run([HOSTCTL, "network", "ls"]).stdout
        assert "lab" in listed and "10.91.7.0/24" in listed
    finally:
        host.run(["systemctl", "stop", "labone", "labtwo"], check=False)
        host.run(["rm", "-f", f"{DECLS}/lab.network", f"{DECLS}/labone.container",
                  f"{DECLS}/labtwo.container"])
        host.run(["systemctl", "daemon-reload"])

def test_volume_files_shared_and_mounted(host: Any) -> None:
    busybox_ref = netguest.IMAGE
    host.write_file(f"{DECLS}/shared.volume", "[Volume]\nUID=1234\nGID=4321\n")
    host.write_file(f"{DECLS}/scratch.volume",
                    "[Volume]\nDevice=tmpfs\nOptions=size=2M,mode=0700\n")
    loop = "while :; do sleep 1 & wait; done"
    host.write_file(f"{DECLS}/writer.container", (
        f"[Container]\nImage={busybox_ref}\nNetwork=none\nStopTimeout=2\n"
        "Volume=shared.volume:/data\n"
        "Mount=type=volume,source=scratch.volume,destination=/scratch\n"
        f"Exec=sh -c \"trap 'exit 0' TERM; echo written > /data/note; "
        f"grep ' /scratch ' /proc/mounts; {loop}\"\n"
    ))
    host.write_file(f"{DECLS}/reader.container", (
        "[Unit]\nRequires=writer.container\nAfter=writer.container\n"
        f"[Container]\nImage={busybox_ref}\nNetwork=none\nStopTimeout=2\n"
        "Volume=shared.volume:/data:ro\n"
        f"Exec=sh -c \"trap 'exit 0' TERM; sleep 1; echo read $(cat /data/note); {loop}\"\n"
    ))
    root = "/var/lib/hostctl/volumes"
    units = ["reader.service", "writer.service", "shared-volume.service",
             "scratch-volume.service"]
    try:
        host.run(["systemctl", "daemon-reload"])
        started = host.run(["systemctl", "start", "reader"], check=False)
        assert started.returncode == 0, host.journal("writer.service") + host.journal(
            "shared-volume.service") + host.journal("scratch-volume.service")
        for unit in units:
            assert state(host, unit) == "active", host.journal(unit)
        assert_says(host, "read written", "reader.service")  # what the writer wrote
        assert_says(host, "tmpfs /scratch tmpfs", "writer.service")  # Device=tmpfs
        owner = host.run(["stat", "-c", "%u:%g", f"{root}/shared/_data"]).stdout.strip()
        assert owner == "1234:4321"  # UID= and GID=
        assert host.run(["mountpoint", "-q", f"{root}/scratch/_data"],
                        check=False).returncode == 0
        host.run(["systemctl", "stop", "reader", "writer", "scratch-volume"])
        assert host.run(["mountpoint", "-q", f"{root}/scratch/_data"],
                        check=False).returncode != 0  # unmounted by its unit's stop
        assert host.run(["cat", f"{root}/shared/_data/note"]).stdout == "written\n"
    finally:
        host.run(["systemctl", "stop", *units], check=False)
        host.run(["rm", "-rf", f"{DECLS}/shared.volume", f"{DECLS}/scratch.volume",
                  f"{DECLS}/writer.container", f"{DECLS}/reader.container",
                  f"{root}/shared", f"{root}/scratch"])
        host.run(["systemctl", "daemon-reload"])


def test_a_build_file_builds_the_image_of_its_container(host: Any) -> None:
    host.write_file("/srv/app/Containerfile", (
        f"FROM {netguest.IMAGE}\nARG WORD\nRUN echo \"built with $WORD\" > /built\n"
        'CMD ["sh", "-c", "cat /built; trap \'exit 0\' TERM; while :; do sleep 1 & wait; done"]\n'
    ))
    host.write_file(f"{DECLS}/app.build", (
        "[Build]\nImageTag=localhost/app:1\nSetWorkingDirectory=/srv/app\n"
        "BuildArg=WORD=quadlet\n"
    ))
    host.write_file(f"{DECLS}/built.container",
                    "[Container]\nImage=app.build\nNetwork=none\nStopTimeout=2\n")
    try:
        host.run(["systemctl", "daemon-reload"])
        started = host.run(["systemctl", "start", "built"], check=False)
        assert started.returncode == 0, host.journal("built.service")
        assert_says(host, "built with quadlet", "built.service")
    finally:
        host.run(["systemctl", "stop", "built"], check=False)
        host.run(["rm", "-rf", "/srv/app", f"{DECLS}/app.build", f"{DECLS}/built.container"])
        host.run(["systemctl", "daemon-reload"])


def test_an_image_file_pulls_before_its_container_starts(host: Any) -> None:
    ahead = "127.0.0.1:5000/demo/ahead:1"
    host.run([HOSTCTL, "pull", netguest.IMAGE])
    host.run([HOSTCTL, "push", netguest.IMAGE, f"docker://{ahead}"])
    host.run([HOSTCTL, "rmi", ahead], check=False)  # not in the store: the unit pulls it
    host.write_file(f"{DECLS}/ahead.image", f"[Image]\nImage={ahead}\nRetry=2\n")
    host.write_file(f"{DECLS}/early.container", (  # Pull=never: only the unit can pull
        "[Container]\nImage=ahead.image\nPull=never\nNetwork=none\nStopTimeout=2\n"
        "Exec=sh -c \"echo started early; trap 'exit 0' TERM; "
        "while :; do sleep 1 & wait; done\"\n"
    ))
    try:
        host.run(["systemctl", "daemon-reload"])
        started = host.run(["systemctl", "start", "early"], check=False)
        assert started.returncode == 0, host.journal("ahead-image.service") + host.journal(
            "early.service")
        assert state(host, "ahead-image.service") == "active"
        assert_says(host, f"hostctl: {ahead}: sha256:", "ahead-image.service")
        assert_says(host, "started early", "early.service")
        assert ahead in host.run([HOSTCTL, "images"]).stdout
    finally:
        host.run(["systemctl", "stop", "early", "ahead-image"], check=False)
        host.run(["rm", "-f", f"{DECLS}/ahead.image", f"{DECLS}/early.container"])
        host.run(["systemctl", "daemon-reload"])


def test_rootless_template_volume_and_image(host: Any) -> None:
    """A user's quadlet directory: an .image pulled by a user unit, a .volume, a
    template with two instances using both, and a container on a .network, rootless."""
    uid = host.lingering_user("alice")
    home = "/home/alice/.config/hostctl/containers"
    files = {
        "base.image": f"[Image]\nImage={netguest.IMAGE}\n",
        "store.volume": "[Volume]\n",
        "ulab.network": "[Network]\nSubnet=10.92.4.0/24\n",
        "member.container": (
            "[Container]\nImage=base.image\nPull=never\nNetwork=ulab.network\n"
            "StopTimeout=2\nExec=sh -c \"ip -4 -o addr show eth0; trap 'exit 0' TERM; "
            "while :; do sleep 1 & wait; done\"\n"),
        "echo@.container": (
            "[Container]\nImage=base.image\nPull=never\nNetwork=none\nStopTimeout=2\n"
            "Volume=store.volume:/data\n"
            "Exec=sh -c \"echo rootless=%i uid=$(id -u) > /data/%i; cat /data/%i; "
            "trap 'exit 0' TERM; while :; do sleep 1 & wait; done\"\n"
            "[Install]\nWantedBy=default.target\nDefaultInstance=one\n"),
    }
    env = f"XDG_RUNTIME_DIR=/run/user/{uid}"

    def as_alice(*argv: str, check: bool = True) -> Any:
        return host.run(["runuser", "-u", "alice", "--", "env", env, *argv], check=check)

    as_alice("mkdir", "-p", home)
    for name, text in files.items():
        host.run(["runuser", "-u", "alice", "--", "sh", "-c", f"cat > {home}/{name}"],
                 input=text)
    try:
        as_alice("systemctl", "--user", "daemon-reload")
        started = as_alice("systemctl", "--user", "start", "echo@one", "echo@two", "member",
                           check=False)
        journal = host.run(["journalctl", "--no-pager", "-o", "cat", "_UID=" + str(uid)],
                           check=False).stdout
        assert started.returncode == 0, journal
        for unit in ("echo@one.service", "echo@two.service", "base-image.service",
                     "store-volume.service", "member.service", "hostctl-network-ulab.service"):
            shown = as_alice("systemctl", "--user", "show", "-P", "ActiveState", unit)
            assert shown.stdout.strip() == "active", (unit, journal)
        data = "/home/alice/.local/share/hostctl/volumes/store/_data"
        assert host.run(["cat", f"{data}/one"]).stdout == "rootless=one uid=0\n"
        assert host.run(["cat", f"{data}/two"]).stdout == "rootless=two uid=0\n"
        assert host.run(["stat", "-c", "%U", data]).stdout.strip() == "alice"
        member = says(host, "inet 10.92.4.", "SYSLOG_IDENTIFIER=member")
        assert "inet 10.92.4." in member, member  # on the user network ulab.network
    finally:
        as_alice("systemctl", "--user", "stop", "echo@one", "echo@two", "member",
                 "hostctl-network-ulab", check=False)
        host.run(["rm", "-rf", home])
        as_alice("systemctl", "--user", "daemon-reload", check=False)


def test_quadlet_install_list_and_rm_an_application(host: Any) -> None:
    host.write_file("/srv/shop/shop.container", (
        f"[Container]\nImage={netguest.IMAGE}\nNetwork=none\nStopTimeout=2\n"
        "Volume=cart.volume:/cart\n"
        "Exec=sh -c \"trap 'exit 0' TERM; while :; do sleep 1 & wait; done\"\n"))
    host.write_file("/srv/shop/cart.volume", "[Volume]\n")
    try:
        host.run([HOSTCTL, "quadlet", "install", "/srv/shop"])  # reloads systemd itself
        host.run(["systemctl", "start", "shop"])
        listed = host.run([HOSTCTL, "quadlet", "list"]).stdout
        assert any(line.split()[:4] == ["shop.container", "shop.service", "active", "shop"]
                   for line in listed.splitlines()), listed
        assert "cart-volume.service" in listed
        removed = host.run([HOSTCTL, "quadlet", "rm", "shop"]).stdout
        assert "cart.volume" in removed  # the whole application
        assert state(host, "shop.service") in ("inactive", "failed")
        assert host.run(["test", "-e", f"{DECLS}/shop.container"], check=False).returncode
    finally:
        host.run(["systemctl", "stop", "shop"], check=False)
        host.run(["rm", "-rf", "/srv/shop", f"{DECLS}/shop.container", f"{DECLS}/cart.volume",
                  f"{DECLS}/.quadlet-apps"])
        host.run(["systemctl", "daemon-reload"])


def test_a_template_with_instances_and_a_dependency(host: Any) -> None:
    busybox_ref = netguest.IMAGE
    host.write_file(f"{DECLS}/db.container", (
        "[Quadlet]\nDefaultDependencies=false\n"
        f"[Container]\nImage={busybox_ref}\nNetwork=host\nStopTimeout=2\n"
        "ServiceName=database\nSecret=dbword,type=env,target=WORD\n"
        f'Exec=sh -c "{LOOP}"\n'
    ))
    host.write_file(f"{DECLS}/echo@.container", (
        "[Unit]\nRequires=db.container\nAfter=db.container\n"
        f"[Container]\nImage={busybox_ref}\nNetwork=host\nStopTimeout=2\n"
        "Environment=WORD=%i\nHealthCmd=test -n $WORD\nHealthInterval=1s\n"
        f'Exec=sh -c "{LOOP}"\n'
        "[Install]\nWantedBy=multi-user.target\nDefaultInstance=one\n"
    ))
    host.write_file("/etc/credstore/dbword", "from-a-secret", mode=0o600)
    host.run(["ln", "-s", "echo@.container", f"{DECLS}/echo@two.container"])
    host.write_file(f"{DECLS}/echo@two.container.d/10-word.conf",
                    "[Container]\nEnvironment=WORD=second\n")
    units = ["echo@one.service", "echo@two.service", "echo@three.service", "database.service"]
    try:
        host.run(["systemctl", "daemon-reload"])
        host.run(["systemctl", "start", "echo@one", "echo@two", "echo@three"])
        for unit in units:
            assert state(host, unit) == "active", host.journal(unit)
        assert_says(host, "word=one", "echo@one.service")
        assert_says(host, "word=second", "echo@two.service")  # the instance's drop-in
        assert_says(host, "word=three", "echo@three.service")  # from the template alone
        assert_says(host, "word=from-a-secret", "database.service")  # type=env
        assert state(host, "db.service") == "active"  # hostctl's name of it is an alias
        listed = host.run([HOSTCTL, "ps"]).stdout
        for name in ("echo@one", "echo@two", "echo@three", "db"):
            assert any(line.split()[:1] == [name] and "active/running" in line
                       for line in listed.splitlines()), listed
        # the instances' health checks run from the template's timer units
        deadline = time.monotonic() + 30
        while (row := next(
                line for line in host.run([HOSTCTL, "ps"]).stdout.splitlines()
                if line.startswith("echo@two "))).split()[2:3] != ["healthy"]:
            assert time.monotonic() < deadline, (row, host.journal("echo-healthcheck@two"))
            time.sleep(0.5)
        assert state(host, "echo-healthcheck@two.timer") == "active"
        assert host.run([HOSTCTL, "healthcheck", "echo@one"]).returncode == 0
        host.run([HOSTCTL, "stop", "echo@three"])  # an instance no file declares
        assert state(host, "echo@three.service") == "inactive"
        host.reboot()
        host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
        for unit in ("echo@one.service", "echo@two.service", "database.service"):
            assert state(host, unit) == "active", host.journal(unit)
        assert state(host, "echo@three.service") == "inactive"  # never enabled
        host.run(["systemctl", "stop", "echo@one", "echo@two"])
        assert state(host, "echo@one.service") == "inactive"
    finally:
        host.run(["systemctl", "stop", *units], check=False)
        host.run(["rm", "-rf", "/etc/credstore/dbword", f"{DECLS}/db.container",
                  f"{DECLS}/echo@.container", f"{DECLS}/echo@two.container",
                  f"{DECLS}/echo@two.container.d"])
        host.run(["systemctl", "daemon-reload"])
        host.run(["systemctl", "reset-failed"], check=False)
