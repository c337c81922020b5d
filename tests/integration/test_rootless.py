"""Rootless: a lingering user's container as a user service, in a real systemd."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_e2e import HOSTCTL
from tests.support.testhost import TestHost

pytestmark = pytest.mark.integration
USER = "alice"


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    with TestHost() as guest:
        guest.run([HOSTCTL, "install"])
        guest.uid = guest.lingering_user(USER)
        yield guest


def as_user(host: Any, *argv: str, check: bool = True) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check)


def user_prop(host: Any, unit: str, name: str) -> str:
    out: str = as_user(host, "systemctl", "--user", "show", "-P", name, unit).stdout
    return out.strip()


def user_journal(host: Any, identifier: str) -> str:
    out: str = host.run(["journalctl", "--no-pager", "-o", "cat",
                         f"SYSLOG_IDENTIFIER={identifier}"]).stdout
    return out


@pytest.fixture(scope="module")
def rootless_run(host: Any, busybox_ref: str) -> str:
    """Start the user's container `rl` once; its journal once it printed its ids."""
    decl = f"/home/{USER}/.config/hostctl/containers/rl.yaml"
    host.run(["runuser", "-u", USER, "--", "mkdir", "-p", decl.rsplit("/", 1)[0]])
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {decl}"], input=f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo rl-id=$(id -u) owner=$(stat -c %u /home/app); touch /w; exec sleep 600"]
stop_timeout: 2
network: host
""")
    as_user(host, "systemctl", "--user", "daemon-reload")
    done = as_user(host, "systemctl", "--user", "start", "rl", check=False)
    journal = user_journal(host, "rl")
    assert done.returncode == 0, journal + host.sh("journalctl --no-pager -n 30").stdout
    deadline = time.monotonic() + 10
    while "rl-id=" not in journal:
        assert time.monotonic() < deadline, journal
        time.sleep(0.2)
        journal = user_journal(host, "rl")
    return journal


def test_user_service_runs_rootless_and_leaves_nothing_behind(host: Any,
                                                              rootless_run: str) -> None:
    assert "rl-id=0" in rootless_run
    cg = user_prop(host, "rl.service", "ControlGroup")
    script = (f"for p in $(find /sys/fs/cgroup{cg} -name cgroup.procs -exec cat {{}} +);"
              " do cat /proc/$p/comm; done")
    deadline = time.monotonic() + 2  # the launcher exits right after READY=1
    while (comms := host.sh(script).stdout.split()) != ["sleep"]:
        assert time.monotonic() < deadline, comms  # no hostctl, runc or helper stays
        time.sleep(0.1)
    pid = user_prop(host, "rl.service", "MainPID")
    assert host.run(["stat", "-c", "%U", f"/proc/{pid}"]).stdout.strip() == USER
    as_user(host, "systemctl", "--user", "stop", "rl")
    # Everything is the user's: its own uid, or ids of its /etc/subuid range (image files
    # owned by other users inside the image, as in podman's rootless storage).
    own = {int(host.run(["id", flag, USER]).stdout) for flag in ("-u", "-g")}
    subs = []
    for table in ("/etc/subuid", "/etc/subgid"):
        first, count = host.sh(f"grep ^{USER}: {table} | cut -d: -f2,3").stdout.split(":")
        subs.append(range(int(first), int(first) + int(count)))
    owners = host.sh(f"find /home/{USER} /run/user/{host.uid}/hostctl -printf '%U %G %p\\n' "
                     "2>/dev/null || true").stdout.splitlines()
    foreign = [line for line in owners
               if not all(int(i) in own or int(i) in subs[n]
                          for n, i in enumerate(line.split()[:2]))]
    assert foreign == []
    assert host.sh(f"ls /home/{USER}/.local/share/hostctl/containers/ 2>/dev/null || true"
                   ).stdout.strip() == ""


def test_image_files_keep_their_owners_in_a_rootless_container(rootless_run: str) -> None:
    # busybox_image's /home/app belongs to uid 1000: with the sub-uid mapping, inside
    # the container it must still belong to 1000.
    assert "owner=1000" in rootless_run


def test_user_image_verbs_work_on_a_store_holding_sub_id_owned_files(
    host: Any, rootless_run: str, busybox_ref: str
) -> None:
    # The launcher applied the image with /home/app owned by a sub-id: the user's own
    # CLI must still list, verify and remove it (it acts from the same user namespace).
    listed = as_user(host, HOSTCTL, "images", "--user", "--format", "json").stdout
    assert busybox_ref in listed
    verified = as_user(host, HOSTCTL, "image", "verify", "--user", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    removed = as_user(host, HOSTCTL, "image", "rm", "--user", busybox_ref, check=False)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    store = f"/home/{USER}/.local/share/hostctl/storage"
    assert host.sh(f"ls {store}/snapshots").stdout.strip() == ""
    assert busybox_ref not in as_user(host, HOSTCTL, "images", "--user").stdout
    # Pulled again by the CLI, the image keeps its owners as the launcher would apply them.
    as_user(host, HOSTCTL, "pull", "--user", busybox_ref)
    owner = host.sh(f"stat -c %u {store}/snapshots/*/home/app").stdout.strip()
    first = host.sh(f"grep ^{USER}: /etc/subuid | cut -d: -f2").stdout.strip()
    assert int(owner) == int(first) + 999  # image uid 1000 -> sub-id 999 (0 is the user)
