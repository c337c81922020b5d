"""Rendered units: golden files, and what systemd reads back from them.

Regenerate the golden files after an intended change with
    HOSTCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_units_render.py
and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hostctl.declarations.model import Container
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError
from hostctl.paths import Scope
from hostctl.units.render import render_failed_unit, render_health_units, render_unit
from tests.unit.test_units_syntax import (
    exec_argv,
    parse_unit,
    resolve_specifiers,
    values,
)

GOLDEN = Path(__file__).parent / "golden"
BIN = "/usr/bin/hostctl"
PYTHON, ENTRY = "/usr/bin/python3", "/usr/lib/python3/dist-packages/hostctl/launcher/entry.py"
ETC = Path("/etc/hostctl/containers")

DECLARATIONS = {
    "minimal": "image: docker.io/library/busybox:1.36\n",
    "full": """\
image: registry.example.com/team/web:2.1
command: [nginx, -g, "daemon off;"]
env: {TZ: UTC}
stop_timeout: 45
restart: on-failure
memory: 512M
cpus: 1.5
pids_limit: 64
restart_sec: 3
stop_signal: SIGQUIT
reload_signal: HUP
volumes: ["/srv/web data:/data", "cache:/cache"]
secrets: [{name: db, source: /etc/web/db password}]
unit:
  Requires: db.service
  After: [db.service, "remote-fs.target"]
service:
  CPUWeight: 50
  ExecStartPre: /bin/echo starting %n
  Environment: HTTPS_PROXY=http://proxy:3128
install:
  WantedBy: multi-user.target
  Alias: www.service
""",
    "checked": """\
image: registry.example.com/team/api:3
health_cmd: curl -fsS http://localhost:8080/health
health_interval: 1s
health_timeout: 5s
health_on_failure: kill
""",
    "probed": """\
image: registry.example.com/team/api:3
health_cmd: [/bin/check, --deep]
health_startup_cmd: test -e /run/ready
health_startup_interval: 2s
health_startup_timeout: 3s
health_startup_retries: 10
""",
}


@pytest.fixture(autouse=True)
def _default_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HOSTCTL_STATE_DIR", "HOSTCTL_RUN_DIR", "HOSTCTL_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)


def _container(key: str, name: str | None = None) -> Container:
    name = name or key
    return parse_yaml(DECLARATIONS[key], ETC / f"{name}.yaml", name)


def _golden(file: str, text: str) -> None:
    path = GOLDEN / file
    if os.environ.get("HOSTCTL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with HOSTCTL_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{file} differs from the golden file"


def _rendered() -> dict[str, str]:
    return {
        "minimal.service": render_unit(_container("minimal"), hostctl_bin=BIN,
                                       scope=Scope.SYSTEM),
        "full.service": render_unit(_container("full"), hostctl_bin=BIN, scope=Scope.SYSTEM),
        "user.service": render_unit(_container("minimal", "user"), hostctl_bin=BIN,
                                    scope=Scope.USER),
        **_health_rendered("checked", Scope.SYSTEM),
        **_health_rendered("probed", Scope.USER),
        "failed.service": render_failed_unit(
            "broken", ETC / "broken.yaml",
            f"{ETC}/broken.yaml:2:imgae: unknown key 'imgae' (hint: did you mean 'image'?)",
            hostctl_bin=BIN, scope=Scope.SYSTEM,
        ),
    }


def _health_rendered(key: str, scope: Scope) -> dict[str, str]:
    return dict(render_health_units(_container(key), hostctl_bin=(PYTHON, "-sSE", ENTRY),
                                    scope=scope))


@pytest.mark.parametrize("file", sorted(_rendered()))
def test_golden(file: str) -> None:
    _golden(file, _rendered()[file])


def test_system_unit_runs_the_launcher_under_systemd_supervision() -> None:
    unit = parse_unit(render_unit(_container("full"), hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert exec_argv(values(unit, "Service", "ExecStart")[0]) == [BIN, "launch", "full"]
    assert exec_argv(values(unit, "Service", "ExecStopPost")[0]) == [BIN, "cleanup", "full"]
    expected = {
        "Type": "notify", "NotifyAccess": "all", "Delegate": "yes", "KillMode": "mixed",
        "TimeoutStopSec": "45", "TimeoutStartSec": "300", "Restart": "on-failure",
        "SyslogIdentifier": "full", "Environment": "HOSTCTL_UNIT=%n",
    }
    for key, value in expected.items():
        assert values(unit, "Service", key)[0] == value, key
    assert values(unit, "Service", "Environment")[1] == "HTTPS_PROXY=http://proxy:3128"
    assert values(unit, "Unit", "SourcePath") == [str(ETC / "full.yaml")]
    assert values(unit, "Unit", "Wants") == ["network-online.target"]
    assert values(unit, "Unit", "After") == [
        "network-online.target", "db.service", "remote-fs.target",
    ]
    assert values(unit, "Service", "ExecStartPre") == ["/bin/echo starting %n"]
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]
    assert len(values(unit, "Service", "ExecStart")) == 1


def test_user_unit_passes_user_and_waits_with_the_bounded_network_wait() -> None:
    unit = parse_unit(render_unit(_container("minimal"), hostctl_bin=BIN, scope=Scope.USER))
    assert exec_argv(values(unit, "Service", "ExecStart")[0]) == [
        BIN, "launch", "--user", "minimal",
    ]
    assert values(unit, "Unit", "Wants") == ["hostctl-network-online.service"]
    assert "network-online.target" not in values(unit, "Unit", "After")
    assert values(unit, "Unit", "RequiresMountsFor") == []


def test_runtime_settings_map_onto_the_unit() -> None:
    unit = parse_unit(render_unit(_container("full"), hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert values(unit, "Service", "MemoryMax") == [str(512 * 2**20)]
    assert values(unit, "Service", "CPUQuota") == ["150%"]
    assert values(unit, "Service", "TasksMax") == ["64"]
    assert values(unit, "Service", "RestartSec") == ["3"]
    assert values(unit, "Service", "KillSignal") == ["SIGQUIT"]
    assert values(unit, "Service", "ExecReload") == ["/bin/kill -s SIGHUP $MAINPID"]
    assert values(unit, "Service", "LoadCredential") == ["db:/etc/web/db password"]
    mounts = [exec_argv(v) for v in values(unit, "Unit", "RequiresMountsFor")]
    assert mounts == [["/var/lib/hostctl"], ["/srv/web data"], ["/etc/web/db password"]]


def test_system_unit_waits_for_the_state_directory_mount(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTCTL_STATE_DIR", "/srv/hostctl state")
    unit = parse_unit(render_unit(_container("minimal"), hostctl_bin=BIN, scope=Scope.SYSTEM))
    [value] = values(unit, "Unit", "RequiresMountsFor")
    assert exec_argv(value) == ["/srv/hostctl state"]


def test_odd_names_and_paths_come_back_exactly() -> None:
    name = "web\\x2d1:blue_2.0"
    source = Path("/srv/my decls/100% ready/web.yaml")
    container = parse_yaml(DECLARATIONS["minimal"], source, name)
    hostctl_bin = "/opt/my venv/$x/bin/hostctl"
    unit = parse_unit(render_unit(container, hostctl_bin=hostctl_bin, scope=Scope.SYSTEM))
    assert exec_argv(values(unit, "Service", "ExecStart")[0]) == [hostctl_bin, "launch", name]
    assert resolve_specifiers(values(unit, "Unit", "SourcePath")[0]) == str(source)
    assert resolve_specifiers(values(unit, "Service", "SyslogIdentifier")[0]) == name


def test_hostile_directives_built_in_code_are_still_refused() -> None:
    container = Container(
        name="web", source=ETC / "web.yaml", image="busybox",
        service=(("MemoryMax", ("1G\nExecStart=/bin/sh",)),),
    )
    with pytest.raises(DeclarationError, match="line break"):
        render_unit(container, hostctl_bin=BIN, scope=Scope.SYSTEM)


def test_failed_unit_fails_to_start_and_carries_the_error_only_as_comment() -> None:
    error = "bad\nExecStart=/bin/sh -c 'rm -rf /' \\\n[Install]\nWantedBy=multi-user.target"
    text = render_failed_unit("web", ETC / "web.yaml", error, hostctl_bin=BIN,
                              scope=Scope.USER)
    unit = parse_unit(text)
    assert [(s, k) for s, k, _ in unit] == [
        ("Unit", "Description"), ("Unit", "SourcePath"), ("Service", "Type"),
        ("Service", "RemainAfterExit"), ("Service", "SyslogIdentifier"),
        ("Service", "Environment"), ("Service", "ExecStart"),
    ]
    assert exec_argv(values(unit, "Service", "ExecStart")[0]) == [
        BIN, "launch", "--user", "web",
    ]
    assert values(unit, "Service", "Type") == ["oneshot"]
    assert "broken declaration" in values(unit, "Unit", "Description")[0]
    assert "# ExecStart=/bin/sh -c 'rm -rf /' \\\\" in text.splitlines()


def test_failed_unit_for_a_path_systemd_cannot_hold() -> None:
    source = Path("/etc/hostctl/containers/evil\nExecStart=x/web.yaml")
    unit = parse_unit(render_failed_unit("web", source, "oops", hostctl_bin=BIN,
                                         scope=Scope.SYSTEM))
    assert values(unit, "Unit", "SourcePath") == []
    assert len(values(unit, "Service", "ExecStart")) == 1
    assert "?ExecStart=x" in values(unit, "Unit", "Description")[0]
    with pytest.raises(DeclarationError):
        render_unit(parse_yaml(DECLARATIONS["minimal"], source, "web"), hostctl_bin=BIN,
                    scope=Scope.SYSTEM)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_units_without_warnings(tmp_path: Path) -> None:
    hostctl_bin = tmp_path / "bin dir" / "hostctl"
    hostctl_bin.parent.mkdir()
    hostctl_bin.write_text("#!/bin/sh\n")
    hostctl_bin.chmod(0o755)
    units = {
        "db.service": "[Service]\nExecStart=/bin/true\n",  # full's dependency
        **dict(render_health_units(_container("full"), hostctl_bin=str(hostctl_bin),
                                   scope=Scope.SYSTEM)),
        "full.service": render_unit(_container("full"), hostctl_bin=str(hostctl_bin),
                                    scope=Scope.SYSTEM),
        "broken.service": render_failed_unit(
            "broken", tmp_path / "broken 100%.yaml", "x\nExecStart=/bin/false \\",
            hostctl_bin=str(hostctl_bin), scope=Scope.SYSTEM,
        ),
    }
    for file, text in units.items():
        (tmp_path / file).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / f) for f in units)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_a_container_wants_its_health_timer_bound_to_it() -> None:
    container = _container("checked")
    unit = parse_unit(render_unit(container, hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert "checked-healthcheck.timer" in values(unit, "Unit", "Wants")
    units = _health_rendered("checked", Scope.SYSTEM)
    timer = parse_unit(units["checked-healthcheck.timer"])
    service = parse_unit(units["checked-healthcheck.service"])
    for part in (timer, service):
        assert values(part, "Unit", "BindsTo") == ["checked.service"]
        assert values(part, "Unit", "After") == ["checked.service"]
    assert values(timer, "Unit", "ConditionPathExists") == [
        "%t/hostctl/containers/checked/healthcheck.json"]
    assert values(timer, "Timer", "OnActiveSec") == ["1s"]
    assert values(timer, "Timer", "OnUnitInactiveSec") == ["1s"]
    assert values(timer, "Timer", "AccuracySec") == ["10ms"]  # not the default minute
    assert exec_argv(values(service, "Service", "ExecStart")[0]) == [
        PYTHON, "-sSE", ENTRY, "health-timer", "checked"]
    assert values(service, "Service", "Type") == ["oneshot"]
    assert values(service, "Service", "LogLevelMax") == ["notice"]
    assert values(service, "Service", "TimeoutStartSec") == ["35"]  # 5 s check + margin
    # runc exec's mount of itself stays in the check's mount namespace (no journal line)
    assert values(service, "Service", "PrivateMounts") == ["yes"]


def test_a_startup_probe_sets_the_first_check_and_the_phases_time() -> None:
    units = _health_rendered("probed", Scope.USER)
    timer = parse_unit(units["probed-healthcheck.timer"])
    service = parse_unit(units["probed-healthcheck.service"])
    assert values(timer, "Timer", "OnActiveSec") == ["2s"]  # the startup interval
    assert values(timer, "Timer", "OnUnitInactiveSec") == ["30s"]
    assert exec_argv(values(service, "Service", "ExecStart")[0])[3:] == [
        "health-timer", "--user", "probed"]
    # A user manager's PrivateMounts= implies PrivateUsers=: the check could no longer
    # join the rootless container's user namespace.
    assert values(service, "Service", "PrivateMounts") == []
    # 10 failures with a pass between each, and the pass that ends it: 5 s apiece.
    assert int(values(service, "Service", "TimeoutStartSec")[0]) >= 21 * 5
    unlimited = parse_yaml(DECLARATIONS["probed"].replace("health_startup_retries: 10",
                                                          "health_startup_retries: 0"),
                           ETC / "probed.yaml", "probed")
    service = parse_unit(dict(render_health_units(
        unlimited, hostctl_bin=BIN, scope=Scope.SYSTEM))["probed-healthcheck.service"])
    assert values(service, "Service", "TimeoutStartSec") == ["infinity"]


def test_without_a_declared_check_the_unit_leaves_the_timer_to_the_launcher() -> None:
    # The image may have a HEALTHCHECK: the units are there for the launcher to start,
    # but a Wants= would log "skipped because of an unmet condition" at every start of
    # every container without a check.
    container = _container("minimal")
    assert [name for name, _ in render_health_units(
        container, hostctl_bin=BIN, scope=Scope.SYSTEM)] == [
        "minimal-healthcheck.timer", "minimal-healthcheck.service"]
    unit = parse_unit(render_unit(container, hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert "minimal-healthcheck.timer" not in values(unit, "Unit", "Wants")


@pytest.mark.parametrize("setting", ["health_cmd: none", "health_interval: disable"])
def test_no_health_units_when_the_declaration_rules_out_timed_checks(setting: str) -> None:
    container = parse_yaml(DECLARATIONS["minimal"] + setting + "\n", ETC / "quiet.yaml",
                           "quiet")
    assert render_health_units(container, hostctl_bin=BIN, scope=Scope.SYSTEM) == []
    unit = parse_unit(render_unit(container, hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert values(unit, "Unit", "Wants") == ["network-online.target"]


def test_the_spec_path_follows_a_moved_run_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", "/srv/run 100%")
    timer = parse_unit(_health_rendered("checked", Scope.SYSTEM)["checked-healthcheck.timer"])
    [path] = values(timer, "Unit", "ConditionPathExists")
    assert resolve_specifiers(path) == "/srv/run 100%/containers/checked/healthcheck.json"


@pytest.mark.parametrize(("init", "expected"), [(True, ["143"]), (False, [])])
def test_an_init_s_143_after_sigterm_is_a_clean_stop(init: bool, expected: list[str]) -> None:
    text = f"image: docker.io/library/busybox:1\ninit: {str(init).lower()}\n"
    container = parse_yaml(text, ETC / "x.yaml")
    unit = parse_unit(render_unit(container, hostctl_bin=BIN, scope=Scope.SYSTEM))
    assert values(unit, "Service", "SuccessExitStatus") == expected
