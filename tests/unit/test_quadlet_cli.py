"""hostctl quadlet install|list|print|rm over a scope's declaration directory (no systemd:
--no-reload-systemd; the units' state is then unknown)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
WEB = "[Container]\nImage=docker.io/library/busybox:1.36\nVolume=data.volume:/data\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOSTCTL_CONFIG_DIR": str(tmp_path / "etc"),
            "HOSTCTL_STATE_DIR": str(tmp_path / "state"),
            "HOSTCTL_RUN_DIR": str(tmp_path / "run")}


def hostctl(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOSTCTL, "quadlet", *argv], capture_output=True, text=True, env=env)


def test_a_directory_is_one_application(tmp_path: Path, env: dict[str, str]) -> None:
    app = tmp_path / "shop"
    app.mkdir()
    (app / "web.container").write_text(WEB)
    (app / "data.volume").write_text("[Volume]\n")
    (app / "web.env").write_text("A=1\n")
    done = hostctl(env, "install", "--no-reload-systemd", str(app))
    assert done.returncode == 0, done.stderr
    target = tmp_path / "etc/containers"
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == [
        "data.volume", "web.container", "web.env"]
    listed = hostctl(env, "list", "--format", "json")
    rows = {r["file"]: r for r in __import__("json").loads(listed.stdout)}
    assert rows["web.container"]["unit"] == "web.service"
    assert rows["data.volume"]["unit"] == "data-volume.service"
    assert {r["app"] for r in rows.values()} == {"shop"}
    assert hostctl(env, "print", "web").stdout == WEB
    again = hostctl(env, "install", "--no-reload-systemd", str(app))
    assert again.returncode != 0 and "already installed" in again.stderr
    gone = hostctl(env, "rm", "--no-reload-systemd", "data.volume")  # the whole app
    assert gone.returncode == 0, gone.stderr
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == []


def test_a_quadlets_file_and_a_refusal_that_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bundle = tmp_path / "pair.quadlets"
    bundle.write_text(f"# FileName=one.container\n{WEB}---\n# FileName=data.volume\n"
                      "[Volume]\nCopy=false\n")
    done = hostctl(env, "install", "--no-reload-systemd", str(bundle))
    assert done.returncode == 0, done.stderr
    target = tmp_path / "etc/containers"
    assert (target / "data.volume").read_text() == "# FileName=data.volume\n[Volume]\nCopy=false\n"
    bad = tmp_path / "bad.container"
    bad.write_text("[Container]\nImage=docker.io/library/busybox\nPodmanArgs=--x\n")
    refused = hostctl(env, "install", "--no-reload-systemd", str(bad))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "bad.container:3:PodmanArgs" in refused.stderr
    assert not (target / "bad.container").exists()
    pod = tmp_path / "p.pod"
    pod.write_text("[Pod]\nUserNS=auto\n")
    assert "p.pod:2:UserNS" in hostctl(env, "install", "--no-reload-systemd", str(pod)).stderr
    kube = tmp_path / "p.kube"
    kube.write_text("[Kube]\n")
    assert "p.kube: no Yaml= in [Kube]" in hostctl(env, "install", "--no-reload-systemd",
                                                 str(kube)).stderr
    assert hostctl(env, "rm", "--no-reload-systemd", "one").returncode == 0
    assert not (target / "one.container").exists() and not (target / "data.volume").exists()
