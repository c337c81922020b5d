"""A user's container at boot: declared in ~/.config/hostctl/containers, enabled with
`hostctl enable --user`, running after a reboot because the user lingers; the user's
network wait returns at once on a host where network-online.target is never activated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_containers_systemd import HOSTCTL
from tests.support.testhost import TestHost

pytestmark = pytest.mark.integration

USER = "alice"
NAME = "ulinger"
DECLARATION = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 1 & wait; done"]
network: host
stop_timeout: 2
"""


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    """A host on which nothing ever activates network-online.target (masked here, as on
    systems whose network needs no wait-online service)."""
    with TestHost(masks=("network-online.target",)) as guest:
        guest.run([HOSTCTL, "install"])
        guest.run(["useradd", "-m", USER])
        guest.uid = guest.run(["id", "-u", USER]).stdout.strip()
        yield guest


def as_user(host: Any, *argv: str, check: bool = True) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check)


def user_prop(host: Any, unit: str, prop: str) -> str:
    out: str = as_user(host, "systemctl", "--user", "show", "-P", prop, unit).stdout
    return out.strip()


def wait_for(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def diagnostics(host: Any) -> str:
    journal = host.run(["journalctl", "--no-pager", "-n", "60", f"_UID={host.uid}"],
                       check=False).stdout
    status = as_user(host, "systemctl", "--user", "status", "--no-pager", f"{NAME}.service",
                     check=False).stdout
    return f"--- user journal ---\n{journal}\n--- status ---\n{status}"


def test_enable_without_lingering_says_how_to_turn_it_on(host: Any, busybox_ref: str) -> None:
    home = f"/home/{USER}/.config/hostctl/containers"
    as_user(host, "mkdir", "-p", home)
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {home}/{NAME}.yaml"],
             input=DECLARATION.format(ref=busybox_ref))
    done = as_user(host, HOSTCTL, "enable", "--user", NAME)
    assert f"{NAME}: enabled" in done.stdout
    assert f"loginctl enable-linger {USER}" in done.stderr  # the note, with the command
    assert "daemon-reload skipped" in done.stderr  # no manager runs for alice yet
    refused = host.run([HOSTCTL, "enable", "--linger", NAME], check=False)
    assert refused.returncode != 0 and "--user" in refused.stderr


def test_a_lingering_users_enabled_container_runs_after_a_reboot(host: Any) -> None:
    host.run(["loginctl", "enable-linger", USER])
    host.reboot()
    host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
    manager = f"user@{host.uid}.service"
    assert wait_for(lambda: host.run(["systemctl", "is-active", manager],
                                     check=False).stdout.strip() == "active", 60)
    again = as_user(host, HOSTCTL, "enable", "--user", NAME)
    assert "enable-linger" not in again.stderr  # lingering is on: no note

    def settled() -> bool:
        return user_prop(host, f"{NAME}.service", "ActiveState") in ("active", "failed")

    wait_for(settled, 90)
    state = user_prop(host, f"{NAME}.service", "ActiveState")
    assert state == "active", diagnostics(host)
    running = as_user(host, "systemctl", "--user", "is-active", NAME, check=False)
    assert running.stdout.strip() == "active"


def test_the_user_network_wait_returns_at_once_without_network_online(host: Any) -> None:
    # Nothing in this host activates the system's network-online.target ...
    target = host.run(["systemctl", "show", "-P", "ActiveState,Job", "network-online.target"])
    assert target.stdout.split() == ["inactive"]
    # ... so the user's wait unit (which every user container wants) returned at once.
    unit = "hostctl-network-online.service"
    assert user_prop(host, unit, "ActiveState") == "active"
    assert user_prop(host, unit, "Result") == "success"
    started = int(user_prop(host, unit, "ExecMainStartTimestampMonotonic"))
    exited = int(user_prop(host, unit, "ExecMainExitTimestampMonotonic"))
    assert 0 < exited - started < 5_000_000, (started, exited)  # microseconds: not 90 s


def test_linger_option_turns_lingering_on(host: Any) -> None:
    host.run(["loginctl", "disable-linger", USER])
    try:
        done = as_user(host, HOSTCTL, "enable", "--user", "--linger", NAME, check=False)
        if done.returncode == 0:
            assert host.run(["test", "-e", f"/var/lib/systemd/linger/{USER}"],
                            check=False).returncode == 0
            assert f"loginctl enable-linger {USER}" in done.stdout
        else:  # polkit refuses an unprivileged user without a session: say who can
            assert f"sudo loginctl enable-linger {USER}" in done.stderr, done.stderr
    finally:
        host.run(["loginctl", "enable-linger", USER])
