"""Short port and volume syntax as the compose spec lists it, into the long syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.compose.project import load_project
from hostctl.errors import DeclarationError


def _service(tmp_path: Path, body: str) -> dict[str, object]:
    (tmp_path / "compose.yaml").write_text(f"services:\n  s:\n    image: x\n{body}")
    return dict(load_project(tmp_path, environ={"HOME": "/home/u"}).model["services"]["s"])


def _port(target: int, published: str = "", protocol: str = "tcp", ip: str = "") -> dict[
    str, object
]:
    port: dict[str, object] = {"mode": "ingress"}
    if ip:
        port["host_ip"] = ip
    port["target"] = target
    if published:
        port["published"] = published
    port["protocol"] = protocol
    return port


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('"3000"', [_port(3000)]),
        ('"3000-3002"', [_port(3000), _port(3001), _port(3002)]),
        ('"8000:8000"', [_port(8000, "8000")]),
        ('"9090-9091:8080-8081"', [_port(8080, "9090"), _port(8081, "9091")]),
        ('"49100:22"', [_port(22, "49100")]),
        ('"8000-9000:80"', [_port(80, "8000-9000")]),
        ('"127.0.0.1:8001:8001"', [_port(8001, "8001", ip="127.0.0.1")]),
        ('"127.0.0.1:5000-5001:5000-5001"',
         [_port(5000, "5000", ip="127.0.0.1"), _port(5001, "5001", ip="127.0.0.1")]),
        ('"127.0.0.1::5000"', [_port(5000, ip="127.0.0.1")]),
        ('"6060:6060/udp"', [_port(6060, "6060", "udp")]),
        ('"[::1]:6000:6000"', [_port(6000, "6000", ip="::1")]),
        ("8080:80", [_port(80, "8080")]),  # a plain scalar, not YAML 1.1's base-60 integer
        ("80", [_port(80)]),
    ],
)  # fmt: skip
def test_short_ports(tmp_path: Path, spec: str, expected: list[dict[str, object]]) -> None:
    assert _service(tmp_path, f"    ports:\n      - {spec}\n")["ports"] == expected


@pytest.mark.parametrize("spec", ['"80:"', '"a:80"', '"80/"', '"1-3:1-2"', '""'])
def test_bad_ports(tmp_path: Path, spec: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        _service(tmp_path, f"    ports:\n      - {spec}\n")
    assert caught.value.where == f"{tmp_path / 'compose.yaml'}:5:services.s.ports[0]"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/var/lib/mysql", {"type": "volume", "target": "/var/lib/mysql"}),
        ("/opt/data:/var/lib/mysql",
         {"type": "bind", "source": "/opt/data", "target": "/var/lib/mysql",
          "bind": {"create_host_path": True}}),
        ("./cache:/tmp/cache",
         {"type": "bind", "source": "@/cache", "target": "/tmp/cache",
          "bind": {"create_host_path": True}}),
        ("~/configs:/etc/configs/:ro",
         {"type": "bind", "source": "/home/u/configs", "target": "/etc/configs",
          "read_only": True, "bind": {"create_host_path": True}}),
        (".:/code:z",
         {"type": "bind", "source": "@", "target": "/code",
          "bind": {"create_host_path": True, "selinux": "z"}}),
        ("datavolume:/var/lib/mysql:nocopy",
         {"type": "volume", "source": "datavolume", "target": "/var/lib/mysql",
          "volume": {"nocopy": True}}),
    ],
)  # fmt: skip
def test_short_volumes(tmp_path: Path, spec: str, expected: dict[str, object]) -> None:
    body = f"    volumes:\n      - {spec}\nvolumes:\n  datavolume:\n"
    volume = _service(tmp_path, body)["volumes"][0]  # type: ignore[index]
    if isinstance(expected.get("source"), str):
        expected["source"] = str(expected["source"]).replace("@", str(tmp_path))
    assert volume == expected
