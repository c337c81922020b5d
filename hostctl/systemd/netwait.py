"""The bounded wait for the system's network-online.target that user units run.

A user's systemd cannot order its units after a system target. This asks the system
manager about network-online.target instead: done when it is active, done at once when
it is inactive with no job queued (nothing on this system ever pulls it in, so waiting
would only hang), otherwise polled until TIMEOUT seconds have passed.
"""

from __future__ import annotations

import subprocess
import time
from enum import StrEnum

TARGET = "network-online.target"


class NetworkState(StrEnum):
    ONLINE = "online"  # the target is active
    NEVER = "never"  # inactive and no job: nothing will activate it
    PENDING = "pending"  # a start job is queued or running
    UNKNOWN = "unknown"  # the system manager cannot be asked


def network_state() -> NetworkState:
    """What the system manager says about network-online.target now."""
    try:
        done = subprocess.run(
            ["systemctl", "--system", "show", "--property=ActiveState,Job", TARGET],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return NetworkState.UNKNOWN
    if done.returncode != 0:
        return NetworkState.UNKNOWN
    props = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    if props.get("ActiveState") == "active":
        return NetworkState.ONLINE
    if props.get("ActiveState") == "inactive" and not props.get("Job"):
        return NetworkState.NEVER
    return NetworkState.PENDING


def wait_for_network(timeout: float, interval: float = 0.25) -> NetworkState:
    """Wait until the network is online or will never be; PENDING after TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        state = network_state()
        if state is not NetworkState.PENDING or time.monotonic() >= deadline:
            return state
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    """`python -m hostctl.systemd.netwait [TIMEOUT]`: what hostctl-network-online.service
    runs; always exits 0 so a slow network delays the containers but never fails them."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    timeout = float(args[0]) if args else 90.0
    state = wait_for_network(timeout)
    if state is NetworkState.PENDING:
        print(f"{TARGET} not reached after {timeout:g}s; starting anyway", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
