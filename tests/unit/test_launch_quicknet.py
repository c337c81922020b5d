"""The recorded start's port check (hostctl.launcher.quicknet): the claims written by
hostctl.network.replay, compared as hostctl.network.ports.overlaps would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hostctl.declarations.model import Port, Protocol
from hostctl.launcher import quicknet
from hostctl.network import ports, replay


def _net(tmp_path: Path, *published: Port) -> dict[str, Any]:
    return {"cni_dir": str(tmp_path), "claims": replay.claims(published)}


def _attached(tmp_path: Path, name: str, *published: Port) -> None:
    cache = tmp_path / f"{name}.json"
    cache.write_text("{}")
    replay.write_claims(cache, published)


@pytest.mark.parametrize(("mine", "theirs"), [
    (Port(None, 8080, 80), Port(None, 8080, 81)),
    (Port("127.0.0.1", 8080, 80), Port(None, 8080, 80)),
    (Port("0.0.0.0", 8080, 80), Port("192.0.2.2", 8080, 80)),
    (Port("::", 8080, 80), Port("fd00::2", 8080, 80)),
])
def test_a_port_another_container_publishes_is_a_doubt(tmp_path: Path, mine: Port,
                                                       theirs: Port) -> None:
    assert ports.overlaps(mine, theirs)  # as the full start would refuse it
    _attached(tmp_path, "other", theirs)
    with pytest.raises(quicknet.Doubt, match="published by other"):
        quicknet._check_claims("web", _net(tmp_path, mine))


@pytest.mark.parametrize(("mine", "theirs"), [
    (Port(None, 8080, 80), Port(None, 8081, 80)),
    (Port(None, 8080, 80), Port(None, 8080, 80, Protocol.UDP)),
    (Port("127.0.0.1", 8080, 80), Port("192.0.2.2", 8080, 80)),
    (Port("127.0.0.1", 8080, 80), Port("::", 8080, 80)),
])
def test_ports_that_do_not_overlap_pass(tmp_path: Path, mine: Port, theirs: Port) -> None:
    assert not ports.overlaps(mine, theirs)
    _attached(tmp_path, "other", theirs)
    _attached(tmp_path, "web", mine)  # its own attachment (a crash's) is not a clash
    quicknet._check_claims("web", _net(tmp_path, mine))


def test_an_attachment_without_claims_is_a_doubt(tmp_path: Path) -> None:
    (tmp_path / "older.json").write_text("{}")  # from a hostctl before claims files
    with pytest.raises(quicknet.Doubt, match="no port claims for older"):
        quicknet._check_claims("web", _net(tmp_path, Port(None, 8080, 80)))
