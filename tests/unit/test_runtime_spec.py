"""The OCI config a container gets: process merge rules, identity, capabilities."""

from __future__ import annotations

import pytest

from hostctl.errors import RuntimeFailure
from hostctl.runtime.spec import DEFAULT_CAPABILITIES, DEFAULT_PATH, build_config, merge_process
from hostctl.runtime.users import Identity

IMAGE = {
    "config": {
        "Entrypoint": ["/entry"],
        "Cmd": ["serve", "--port", "80"],
        "Env": ["PATH=/opt/bin:/bin", "LANG=C.UTF-8", "EMPTY="],
        "WorkingDir": "/srv",
    }
}


def merged(**kw):  # type: ignore[no-untyped-def]
    args = {"entrypoint": None, "command": None, "env": (), "workdir": None}
    args.update(kw)
    return merge_process(IMAGE, **args)


def test_image_entrypoint_and_cmd_are_used_by_default() -> None:
    p = merged()
    assert p.args == ("/entry", "serve", "--port", "80")
    assert p.cwd == "/srv"
    assert "LANG=C.UTF-8" in p.env and "EMPTY=" in p.env


def test_command_replaces_cmd_but_keeps_entrypoint() -> None:
    assert merged(command=["debug"]).args == ("/entry", "debug")


def test_declared_entrypoint_drops_the_image_cmd() -> None:
    assert merged(entrypoint=["/bin/sh"]).args == ("/bin/sh",)
    assert merged(entrypoint=["/bin/sh"], command=["-c", "x"]).args == ("/bin/sh", "-c", "x")


def test_declared_env_overrides_image_env_in_place() -> None:
    p = merged(env=[("PATH", "/x"), ("NEW", "1")])
    assert p.env[0] == "PATH=/x"
    assert p.env[-1] == "NEW=1"
    assert sum(e.startswith("PATH=") for e in p.env) == 1


def test_path_defaults_when_the_image_has_none() -> None:
    p = merge_process({"config": {"Cmd": ["x"]}}, entrypoint=None, command=None, env=(),
                      workdir="/w")
    assert f"PATH={DEFAULT_PATH}" in p.env
    assert p.cwd == "/w"


def test_nothing_to_run_is_an_error_with_a_hint() -> None:
    with pytest.raises(RuntimeFailure) as err:
        merge_process({}, entrypoint=None, command=None, env=(), workdir=None)
    assert "command:" in str(err.value)


def _config(uid: int):  # type: ignore[no-untyped-def]
    return build_config(merged(), Identity(uid, uid), rootfs="/r", hostname="app",
                        files={"/etc/hosts": "/b/hosts"}, cgroups_path="/system.slice/a/container",
                        annotations={"k": "v"})


def test_root_gets_podmans_default_capabilities() -> None:
    caps = _config(0)["process"]["capabilities"]
    assert caps["effective"] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in caps["bounding"]


def test_non_root_user_keeps_only_the_bounding_set() -> None:
    caps = _config(1000)["process"]["capabilities"]
    assert caps["effective"] == [] and caps["permitted"] == []
    assert caps["bounding"] == list(DEFAULT_CAPABILITIES)


def test_config_carries_cgroup_hostname_files_and_no_terminal() -> None:
    cfg = _config(0)
    assert cfg["linux"]["cgroupsPath"] == "/system.slice/a/container"
    assert cfg["hostname"] == "app"
    assert cfg["process"]["terminal"] is False
    hosts = [m for m in cfg["mounts"] if m["destination"] == "/etc/hosts"]
    assert hosts and hosts[0]["source"] == "/b/hosts"
    assert {"type": "network"} not in cfg["linux"]["namespaces"]
