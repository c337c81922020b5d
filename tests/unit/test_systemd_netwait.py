"""The user scope's network wait: done at once when network-online.target is active or
will never be activated, polling only while a start job for it is queued."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from hostctl.systemd import netwait
from hostctl.systemd.netwait import NetworkState, network_state, wait_for_network

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$@" >> {log}
n=$(wc -l < {log})
answer=$(sed -n "${{n}}p" {answers})
[ -z "$answer" ] && answer=$(tail -n 1 {answers})
[ "$answer" = fail ] && exit 1
printf '%s\\n' $answer
"""


Answer = Callable[..., Path]


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Answer:
    """A `systemctl` on PATH answering line N of `answers` on its Nth call."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log, answers = tmp_path / "calls", tmp_path / "answers"
    log.touch()
    script = bindir / "systemctl"
    script.write_text(FAKE_SYSTEMCTL.format(log=log, answers=answers))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    def answer(*lines: str) -> Path:
        answers.write_text("\n".join(lines) + "\n")
        return log

    return answer


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ("ActiveState=active Job=", NetworkState.ONLINE),
        ("ActiveState=inactive Job=", NetworkState.NEVER),
        ("ActiveState=inactive Job=42", NetworkState.PENDING),
        ("ActiveState=activating Job=42", NetworkState.PENDING),
        ("fail", NetworkState.UNKNOWN),
    ],
)
def test_network_state(systemctl: Answer, answer: str, state: NetworkState) -> None:
    log = systemctl(answer)
    assert network_state() is state
    assert log.read_text().split() == [
        "--system", "show", "--property=ActiveState,Job", "network-online.target"
    ]


def test_never_activated_returns_after_one_question(systemctl: Answer) -> None:
    log = systemctl("ActiveState=inactive Job=")
    assert wait_for_network(90) is NetworkState.NEVER
    assert len(log.read_text().splitlines()) == 1


def test_a_queued_job_is_waited_for(systemctl: Answer) -> None:
    log = systemctl("ActiveState=inactive Job=7", "ActiveState=activating Job=7",
                    "ActiveState=active Job=")
    assert wait_for_network(90, interval=0.01) is NetworkState.ONLINE
    assert len(log.read_text().splitlines()) == 3


def test_the_wait_is_bounded_and_never_fails_the_unit(
    systemctl: Answer, capsys: pytest.CaptureFixture[str]
) -> None:
    systemctl("ActiveState=inactive Job=7")
    assert wait_for_network(0.05, interval=0.01) is NetworkState.PENDING
    assert netwait.main(["0"]) == 0
    assert "network-online.target not reached after 0s" in capsys.readouterr().err
