"""Health checks, the pure parts: the effective check (declaration, else the image's
HEALTHCHECK), the state's rules, the check's process, and the check path's imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.health import spec, state, status
from hostctl.health.run import argv_of, check_process
from hostctl.paths import Scope, for_scope

SOURCE = Path("/etc/hostctl/containers/app.yaml")
SECOND = 1_000_000_000


def container(text: str = "") -> Any:
    return parse_yaml("image: registry.example/app:1\n" + text, SOURCE, "app")


def image(**check: Any) -> dict[str, Any]:
    return {"config": {"Healthcheck": check}} if check else {"config": {}}


# ---- the effective check ------------------------------------------------------------

def test_no_check_without_a_declared_one_or_an_image_one() -> None:
    assert spec.effective(container(), image()) is None
    assert spec.effective(container(), None) is None


def test_the_declared_check_wins_over_the_images() -> None:
    found = spec.effective(container("health_cmd: test -e /ok\n"),
                           image(Test=["CMD", "/bin/image-check"]))
    assert found is not None
    assert found["test"] == ["CMD-SHELL", "test -e /ok"]
    assert found["source"] == "declaration"


def test_none_disables_the_images_check() -> None:
    assert spec.effective(container("health_cmd: none\n"),
                          image(Test=["CMD", "/bin/check"])) is None


@pytest.mark.parametrize("test", [["NONE"], [], ["CMD"], ["BOGUS", "x"], "CMD true"])
def test_an_image_check_that_says_nothing_to_run_is_none(test: Any) -> None:
    assert spec.effective(container(), image(Test=test)) is None


def test_the_images_check_with_its_timings_where_the_declaration_keeps_defaults() -> None:
    found = spec.effective(container(), image(
        Test=["CMD-SHELL", "curl -f localhost"], Interval=5 * SECOND, Timeout=2 * SECOND,
        StartPeriod=60 * SECOND, Retries=7))
    assert found == {
        "test": ["CMD-SHELL", "curl -f localhost"], "source": "image",
        "interval": 30.0,  # the declaration's: its timer runs the checks
        "timeout": 2.0, "start_period": 60.0, "retries": 7, "on_failure": "none",
        "startup": None,
    }


def test_timings_the_declaration_sets_win_over_the_images() -> None:
    found = spec.effective(
        container("health_timeout: 9s\nhealth_retries: 2\nhealth_start_period: 5s\n"),
        image(Test=["CMD", "/bin/check"], Timeout=2 * SECOND, Retries=7,
              StartPeriod=60 * SECOND))
    assert found is not None
    assert (found["timeout"], found["retries"], found["start_period"]) == (9.0, 2, 5.0)


def test_a_startup_probe_and_the_failure_action() -> None:
    found = spec.effective(container(
        "health_cmd: [/bin/check]\nhealth_on_failure: restart\n"
        "health_startup_cmd: test -e /ready\nhealth_startup_interval: 2s\n"
        "health_startup_retries: 4\nhealth_startup_success: 2\n"), image())
    assert found is not None and found["on_failure"] == "restart"
    assert found["test"] == ["CMD", "/bin/check"]
    assert found["startup"] == {"test": ["CMD-SHELL", "test -e /ready"], "interval": 2.0,
                                "timeout": 30.0, "retries": 4, "success": 2}
    assert json.loads(spec.dumps(found)) == found


def test_units_are_written_unless_the_declaration_rules_timed_checks_out() -> None:
    assert spec.has_units(container())  # the image may have a HEALTHCHECK
    assert not spec.has_units(container("health_cmd: none\n"))
    assert not spec.has_units(container("health_cmd: [\"true\"]\nhealth_interval: 0\n"))


def test_the_unit_wants_the_timer_for_a_declared_check_the_launcher_for_an_images() -> None:
    declared, silent = container("health_cmd: [\"true\"]\n"), container()
    assert spec.timer_wanted(declared) and not spec.timer_wanted(silent)
    from_image = spec.effective(silent, image(Test=["CMD", "/bin/check"]))
    assert spec.launcher_starts_timer(silent, from_image)
    assert not spec.launcher_starts_timer(silent, None)  # no check this start
    assert not spec.launcher_starts_timer(declared, spec.effective(declared, image()))
    no_timer = container("health_interval: 0\n")
    assert not spec.launcher_starts_timer(no_timer, spec.effective(no_timer, image(
        Test=["CMD", "/bin/check"])))


# ---- the state's rules ----------------------------------------------------------------

def fresh(now: float = 1000.0) -> dict[str, Any]:
    return status.fresh(now)


def entry(code: int, at: float = 1001.0, output: str = "") -> dict[str, Any]:
    return status.result(at, at + 0.1, code, output)


CHECK = {"retries": 3, "start_period": 0.0}


def test_a_fresh_state_is_starting() -> None:
    found = state.from_dict(fresh())
    assert found == state.HealthState("starting", 0, ())


def test_retries_failures_in_a_row_make_it_unhealthy_and_a_pass_healthy() -> None:
    current = fresh()
    for n in (1, 2):
        status.record_check(current, CHECK, entry(1))
        assert (current["status"], current["failing_streak"]) == ("starting", n)
    status.record_check(current, CHECK, entry(1))
    assert (current["status"], current["failing_streak"]) == ("unhealthy", 3)
    status.record_check(current, CHECK, entry(0))
    assert (current["status"], current["failing_streak"]) == ("healthy", 0)
    status.record_check(current, CHECK, entry(1))
    assert (current["status"], current["failing_streak"]) == ("healthy", 1)


def test_failures_inside_the_start_period_do_not_count_and_a_pass_ends_it() -> None:
    period = {"retries": 1, "start_period": 60.0}
    current = fresh(1000.0)
    status.record_check(current, period, entry(1, at=1030.0))
    assert (current["status"], current["failing_streak"]) == ("starting", 0)
    status.record_check(current, period, entry(0, at=1031.0))
    status.record_check(current, period, entry(1, at=1032.0))  # still inside 60 s
    assert current["status"] == "unhealthy"  # the pass ended the start period
    late = fresh(1000.0)
    status.record_check(late, period, entry(1, at=1061.0))
    assert late["status"] == "unhealthy"


def test_the_log_keeps_the_last_five_results_with_trimmed_output() -> None:
    current = fresh()
    for n in range(7):
        status.record_check(current, CHECK, entry(0, at=1000.0 + n, output="x" * 2000))
    assert [e["start"] for e in current["log"]] == [1002.0 + n for n in range(5)]
    assert all(len(e["output"]) == status.OUTPUT_LIMIT for e in current["log"])
    assert state.from_dict(current) == state.HealthState(
        "healthy", 0, tuple(state.HealthResult(e["start"], e["end"], 0, e["output"])
                            for e in current["log"]))


STARTUP = {"startup": {"success": 2, "retries": 3}}


def test_startup_probes_end_after_success_passes_in_a_row() -> None:
    current = fresh()
    assert status.in_startup(current, STARTUP)
    assert status.record_probe(current, STARTUP, entry(0)) == status.PROBE_AGAIN
    assert status.record_probe(current, STARTUP, entry(1)) == status.PROBE_AGAIN
    assert status.record_probe(current, STARTUP, entry(0)) == status.PROBE_AGAIN
    assert status.record_probe(current, STARTUP, entry(0)) == status.PROBE_DONE
    assert not status.in_startup(current, STARTUP)
    assert current["status"] == "starting"  # the regular check decides that


def test_startup_probes_failing_retries_times_ask_for_a_restart() -> None:
    current = fresh()
    outcomes = [status.record_probe(current, STARTUP, entry(1)) for _ in range(3)]
    assert outcomes == [status.PROBE_AGAIN, status.PROBE_AGAIN, status.PROBE_RESTART]
    unlimited = {"startup": {"success": 0, "retries": 0}}
    current = fresh()
    assert all(status.record_probe(current, unlimited, entry(1)) == status.PROBE_AGAIN
               for _ in range(50))
    assert status.record_probe(current, unlimited, entry(0)) == status.PROBE_DONE


def test_no_startup_phase_without_a_probe() -> None:
    assert not status.in_startup(fresh(), {"startup": None})


# ---- the files ----------------------------------------------------------------------

@pytest.mark.parametrize("scope", list(Scope))
def test_the_lean_run_dir_is_the_scopes(scope: Scope, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.delenv("HOSTCTL_RUN_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    user = scope is Scope.USER
    assert status.run_dir(user) == str(for_scope(scope).run)
    assert status.bundle_dir("web", user) == str(for_scope(scope).containers / "web")
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path / "moved"))
    assert status.run_dir(user) == str(for_scope(scope).run)


PROCESS = {"args": [], "terminal": False, "cwd": "/", "env": ["A=\"x\"\n\u00e9"]}


def test_update_and_read_through_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path))
    paths = for_scope(Scope.SYSTEM)
    bundle = paths.containers / "web"
    check = {"test": ["CMD", "true"], "retries": 1, "start_period": 0}
    assert state.read("web", paths) is None
    assert status.update(str(bundle), lambda s: None) is None  # not running: nothing made
    assert not bundle.exists()
    bundle.mkdir(parents=True)
    status.begin(str(bundle), spec.dumps(check), check, PROCESS, 1000.0)
    assert state.has_check("web", paths)
    assert status.load_spec(str(bundle)) == check
    assert state.read("web", paths) == state.HealthState("starting", 0, ())
    checked = status.update(str(bundle), lambda s: status.record_check(
        s, check, entry(3, output='refused "x"\n\ttab é')))
    assert checked is not None and checked["status"] == "unhealthy"
    found = state.read("web", paths)  # health.json, as written without the json module
    assert found is not None and found.status == "unhealthy" and found.failing_streak == 1
    assert found.log[0].exit_code == 3 and found.log[0].output == 'refused "x"\n\ttab é'
    assert json.loads((bundle / "health.json").read_text()) == checked
    store = status.load_store(str(bundle))
    assert store == {"spec": check, "process": PROCESS, "state": checked}
    assert sorted(os.listdir(bundle)) == ["health.json", "health.lock", "health.state",
                                          "healthcheck.json"]
    status.begin(str(bundle), None, None, None, 1001.0)  # a start without a check
    assert not state.has_check("web", paths) and state.read("web", paths) is None
    assert status.load_store(str(bundle)) is None


@pytest.mark.parametrize("value", [
    None, True, False, 0, -3, 1.5, 1796193838.270022, 1e-07, "", "a\"b\\c\u0001\u00e9",
    [1, [2, {}]], {"k": {"n": [None, "x"]}}, (1, 2),
])
def test_the_hand_written_json_is_json(value: Any) -> None:
    expected = list(value) if isinstance(value, tuple) else value
    assert json.loads(status.to_json(value)) == expected


def test_a_garbled_state_reads_as_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path))
    bundle = tmp_path / "containers" / "web"
    bundle.mkdir(parents=True)
    (bundle / "health.json").write_text('{"status": "great"}')
    assert state.read("web", for_scope(Scope.SYSTEM)) is None
    (bundle / "health.json").write_text("{")
    assert state.read("web", for_scope(Scope.SYSTEM)) is None


# ---- the check's process ------------------------------------------------------------

def test_the_check_runs_as_the_containers_own_process() -> None:
    config = {"process": {
        "terminal": True, "consoleSize": {"height": 1, "width": 1},
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [27]},
        "args": ["/init", "--", "app"], "env": ["PATH=/bin", "HOME=/home/app"],
        "cwd": "/srv", "capabilities": {"bounding": ["CAP_KILL"], "effective": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 64, "soft": 64}],
        "noNewPrivileges": True, "apparmorProfile": "hostctl-default",
    }}
    process = check_process(config)
    assert process == {**{k: v for k, v in config["process"].items()
                          if k not in ("consoleSize", "terminal", "args")},
                       "args": [], "terminal": False}


def test_test_forms_become_arguments() -> None:
    assert argv_of(["CMD-SHELL", "curl -f localhost || exit 1"]) == [
        "/bin/sh", "-c", "curl -f localhost || exit 1"]
    assert argv_of(["CMD", "/bin/check", "--deep"]) == ["/bin/check", "--deep"]


def test_the_check_path_stays_lean() -> None:
    modules = ("hostctl.cli.main, hostctl.health.check, hostctl.health.wait, "
               "hostctl.launcher.quick")
    heavy = ("yaml", "jinja2", "typer", "pydbus", "urllib3", "rich", "dataclasses",
             "pathlib", "json", "hostctl.declarations", "hostctl.paths")
    code = (f"import sys; sys.path[0] = sys.argv[1]; import {modules}; "
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-sSE", "-c", code, root], capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
