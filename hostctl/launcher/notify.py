"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.

Through _socket, the C module itself: the socket module's enum conversions cost every
container start a few milliseconds."""

from __future__ import annotations

import _socket
import os
import sys


def notify(*assignments: str) -> bool:
    """Send KEY=VALUE lines to systemd; False when not run by a Type=notify unit."""
    sock = _connect()
    if sock is None:
        return False
    try:
        sock.sendall("\n".join(assignments).encode())
    finally:
        sock.close()
    return True


def _connect() -> _socket.socket | None:
    """A datagram socket connected to $NOTIFY_SOCKET; None when there is none."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def barrier(timeout: float = 5.0) -> bool:
    """Wait until systemd has processed every notification sent before (sd_notify_barrier:
    BARRIER=1 with a pipe's write end, which systemd closes once it got there). False when
    not run by a Type=notify unit or when systemd did not answer within TIMEOUT."""
    import select

    sock = _connect()
    if sock is None:
        return False
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        rights = write_end.to_bytes(4, sys.byteorder)  # one C int
        sock.sendmsg([b"BARRIER=1"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    finally:
        sock.close()
        os.close(write_end)  # systemd holds its own copy now
    try:
        poller = select.poll()
        poller.register(read_end, select.POLLHUP)
        return bool(poller.poll(int(timeout * 1000)))
    finally:
        os.close(read_end)


def extend_timeout(seconds: float) -> bool:
    """Ask systemd for SECONDS more before the start (or stop) times out."""
    return notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")
