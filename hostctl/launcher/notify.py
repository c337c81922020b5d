"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


def notify(*assignments: str) -> bool:
    """Send KEY=VALUE lines to systemd; False when not run by a Type=notify unit."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(assignments).encode())
    return True


def extend_timeout(seconds: float) -> bool:
    """Ask systemd for SECONDS more before the start (or stop) times out."""
    return notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")
