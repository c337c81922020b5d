"""Lingering: whether a user's systemd manager runs without a login session, so that the
user's enabled containers start at boot (systemd-logind keeps one file per lingering
user in /var/lib/systemd/linger)."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path

from hostctl.errors import HostctlError

LINGER_DIR = Path("/var/lib/systemd/linger")
MANAGER_WAIT = 30.0  # seconds for user@UID.service to come up after enable-linger


def user_name(uid: int | None = None) -> str:
    """The login name of UID (default: the calling user)."""
    uid = os.getuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def is_lingering(user: str | None = None) -> bool:
    """Whether USER (default: the calling user) lingers."""
    return (LINGER_DIR / (user or user_name())).exists()


def linger_hint(user: str | None = None) -> str:
    """What to tell a user whose containers would not start at boot."""
    name = user or user_name()
    return (
        f"lingering is off for {name}: enabled containers start only while {name} is "
        f"logged in; to start them at boot run `loginctl enable-linger {name}` "
        "(or `hostctl enable --user --linger NAME`)"
    )


def enable_linger(user: str | None = None) -> bool:
    """Turn lingering on for USER (default: the calling user) and wait until the user's
    manager accepts connections; False when it already lingered."""
    from hostctl.proc import run

    name = user or user_name()
    if is_lingering(name):
        return False
    try:
        run(["loginctl", "enable-linger", name])
    except HostctlError as err:
        raise HostctlError(
            f"cannot turn lingering on for {name}: {err.message}",
            hint=f"an administrator can: sudo loginctl enable-linger {name}",
        ) from None
    _wait_for_manager(pwd.getpwnam(name).pw_uid)
    return True


def _wait_for_manager(uid: int) -> None:
    bus = Path(f"/run/user/{uid}/bus")
    deadline = time.monotonic() + MANAGER_WAIT
    while not bus.exists():
        if time.monotonic() > deadline:
            raise HostctlError(
                f"the systemd manager of uid {uid} did not start within {MANAGER_WAIT:g}s",
                hint=f"systemctl status user@{uid}.service",
            )
        time.sleep(0.1)
