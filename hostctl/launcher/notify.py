"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.

Through _socket, the C module itself: the socket module's enum conversions cost every
container start a few milliseconds."""

from __future__ import annotations

import _socket
import os


def notify(*assignments: str) -> bool:
    """Send KEY=VALUE lines to systemd; False when not run by a Type=notify unit."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(address)
        sock.sendall("\n".join(assignments).encode())
    finally:
        sock.close()
    return True


def extend_timeout(seconds: float) -> bool:
    """Ask systemd for SECONDS more before the start (or stop) times out."""
    return notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")
