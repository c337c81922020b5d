"""The recorded start of a user's container (hostctl.launcher.quickuser): which starts
are recorded, when a record applies, and what a doubt does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hostctl import __version__
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.launcher import quickuser
from hostctl.launcher import record as records
from hostctl.launcher.recording import eligible, recorded_config
from hostctl.network import for_record
from hostctl.paths import Scope, for_scope

CONFIG = {"linux": {"cgroupsPath": "/user.slice/app.service/container",
                    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}]}}
ROUTES = ("Iface\tDestination\tGateway\tFlags\n"
          "uplink0\t00000000\t010200C0\t0003\n"
          "uplink0\t000200C0\t00000000\t0001\n")


def _container(tmp_path: Path, extra: str = "") -> Any:
    source = tmp_path / "app.yaml"
    text = "image: docker.io/library/busybox:1.36\n" + extra
    source.write_text(text)
    return parse_yaml(text, source)


@pytest.mark.parametrize("extra", ["", "network: host\n", "network: none\n",
                                   'ports: ["8080:80"]\n'])
def test_a_users_container_on_pasta_host_or_none_is_recorded(tmp_path: Path,
                                                             extra: str) -> None:
    assert eligible(_container(tmp_path, extra), Scope.USER, CONFIG)


@pytest.mark.parametrize("extra", ["network: front\n", "pod: shop\n"])
def test_a_users_container_on_a_user_network_or_in_a_pod_is_not(tmp_path: Path,
                                                                extra: str) -> None:
    # it joins the namespaces of the network's or pod's holder, found anew at each start
    container = _container(tmp_path, extra)
    assert not eligible(container, Scope.USER, CONFIG)
    assert eligible(container, Scope.SYSTEM, CONFIG)  # replayed by hostctl.launcher.quick


def test_the_users_record_path_is_in_the_users_run_dir(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.delenv("HOSTCTL_RUN_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    expected = for_scope(Scope.USER).run / "launch" / "app.record"
    assert records.record_path("app", True) == str(expected)
    assert expected.is_relative_to(tmp_path)
    assert records.record_path("app") != str(expected)  # the system scope's


def test_pastas_command_line_is_recorded_with_a_placeholder(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    paths = for_scope(Scope.USER)
    found = for_record(_container(tmp_path, 'ports: ["8080:80", "53:53/udp"]\n'), paths)
    assert found is not None
    net, content, present, listed = found
    assert net is not None
    command = net["pasta"]
    assert command[0] == present[0] and os.path.isabs(command[0])
    assert command[command.index("--netns") + 1] == records.NETNS_PLACEHOLDER
    assert command[command.index("-t") + 1] == "8080:80"
    assert command[command.index("-u") + 1] == "53:53"
    assert net["pid_file"] == command[command.index("--pid") + 1]
    assert (content, listed) == ([], [])
    argv = quickuser.pasta_argv(command, 7)
    assert argv[argv.index("--netns") + 1] == "/proc/self/fd/7"
    assert records.NETNS_PLACEHOLDER not in argv
    # a user network: its holder's namespace is joined anew, nothing to record
    assert for_record(_container(tmp_path, "network: front\n"), paths) is None


def test_the_recorded_config_names_the_namespace_the_recorded_start_makes() -> None:
    text = recorded_config(CONFIG, pasta=True)
    config = json.loads(text)
    assert config["linux"]["cgroupsPath"] == records.CGROUP_PLACEHOLDER
    assert {"type": "network", "path": records.NETNS_PLACEHOLDER} in \
        config["linux"]["namespaces"]
    assert len(config["linux"]["namespaces"]) == 3
    assert records.NETNS_PLACEHOLDER not in recorded_config(CONFIG, pasta=False)
    assert CONFIG["linux"]["namespaces"][1] == {"type": "network"}  # not changed in place


def _user_record(tmp_path: Path) -> dict[str, Any]:
    decl = tmp_path / "app.yaml"
    decl.write_text("image: x\n")
    return {
        "format": records.FORMAT, "hostctl": __version__, "env": records.start_environment(),
        "content": [[str(decl), records.content_signature(str(decl))]], "present": [],
        "text": [],
        "absent": [str(tmp_path / "bundle")], "listed": [], "store": str(tmp_path),
        "rootless": {"uid_map": [[0, 1000, 1]], "gid_map": [[0, 1000, 1]], "tools": [],
                     "route": "010200C0"},
    }


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "route"
    path.write_text(ROUTES)
    monkeypatch.setattr(quickuser, "ROUTES", str(path))
    return path


def test_a_users_record_applies_while_its_inputs_and_the_route_hold(tmp_path: Path,
                                                                    routes: Path) -> None:
    record = _user_record(tmp_path)
    assert quickuser.default_route() == "010200C0"
    assert quickuser.applies(record)
    routes.write_text(ROUTES.replace("010200C0", "FE0200C0"))  # another default gateway
    assert not quickuser.applies(record)
    routes.write_text(ROUTES)
    (tmp_path / "app.yaml").write_text("image: y\n")  # a changed declaration
    assert not quickuser.applies(record)


def test_a_system_record_or_none_never_applies(tmp_path: Path, routes: Path) -> None:
    assert not quickuser.applies(None)
    assert not quickuser.applies(_user_record(tmp_path) | {"rootless": None})
    assert not quickuser.applies(_user_record(tmp_path) | {"store": None})
    (tmp_path / "bundle").mkdir()  # leftovers of a start whose cleanup did not run
    assert not quickuser.applies(_user_record(tmp_path))


def test_without_a_current_record_the_namespace_is_not_entered(
        tmp_path: Path, routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert quickuser.launch_recorded("app") is None  # not started by systemd
    monkeypatch.setenv("INVOCATION_ID", "0123")
    assert quickuser.launch_recorded("app") is None  # no record
    record = _user_record(tmp_path)
    records.write(records.record_path("app", True), record)
    (tmp_path / "app.yaml").write_text("image: y\n")
    assert quickuser.launch_recorded("app") is None  # stale: the full start
    record = _user_record(tmp_path) | {"store": str(tmp_path / "no-store")}
    records.write(records.record_path("app", True), record)
    assert quickuser.launch_recorded("app") is None  # no store lock to take
    assert not quickuser.entered()


def test_pasta_failing_is_a_doubt() -> None:
    quickuser.pasta_ready(os.posix_spawn("/bin/true", ["true"], {}))
    with pytest.raises(quickuser.Doubt, match="pasta exited with 1"):
        quickuser.pasta_ready(os.posix_spawn("/bin/false", ["false"], {}))


def test_the_full_start_after_a_doubt_takes_the_entered_maps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.runtime.userns import IdMap

    entered = [{"uid_map": [[0, 1000, 1], [1, 100000, 65536]], "gid_map": [[0, 1001, 1]]}]
    monkeypatch.setattr(quickuser, "_entered", entered)
    assert quickuser.entered()
    assert quickuser.entered_maps() == (IdMap(1000, 100000, 65536), IdMap(1001))
