"""sd_notify messages reach a real datagram socket, and nothing is sent outside systemd."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hostctl.launcher.notify import extend_timeout, notify


def test_notify_sends_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("MAINPID=42", "READY=1")
        assert server.recv(4096) == b"MAINPID=42\nREADY=1"
        assert extend_timeout(2.5)
        assert server.recv(4096) == b"EXTEND_TIMEOUT_USEC=2500000"


def test_abstract_socket_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"hostctl-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1")
        assert server.recv(4096) == b"READY=1"


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
