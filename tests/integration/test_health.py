"""Health checks in a real systemd test host with a real registry and runc: the timer
units the generator writes, the check running inside the container, the state, the
journal staying quiet, `notify: healthy`, health_on_failure: kill with restart, the
image's HEALTHCHECK, a reboot, and a rootless user's container."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.test_containers_systemd import HOSTCTL
from tests.support.imagebuild import busybox_image, push
from tests.support.testhost import TestHost

pytestmark = pytest.mark.integration

DECLS = "/etc/hostctl/containers"
RUN = "/run/hostctl/containers"
USER = "alice"
SECOND = 1_000_000_000  # nanoseconds, as image configs give durations

# A container that runs until stopped; its check is given per test.
BASE = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; {prelude} while :; do sleep 1 & wait; done"]
network: host
stop_timeout: 2
health_interval: 1s
"""


@pytest.fixture(scope="module")
def host() -> Iterator[TestHost]:
    with TestHost() as guest:
        guest.run([HOSTCTL, "install"])
        guest.uid = guest.lingering_user(USER)  # type: ignore[attr-defined]
        yield guest


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             diagnostics: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{diagnostics()}")
        time.sleep(0.2)


def declare(host: TestHost, name: str, text: str) -> None:
    host.write_file(f"{DECLS}/{name}.yaml", text)
    host.run(["systemctl", "daemon-reload"])


def remove(host: TestHost, name: str) -> None:
    host.run(["systemctl", "stop", f"{name}.service"], check=False)
    host.run(["systemctl", "reset-failed", f"{name}.service"], check=False)
    host.run(["rm", "-rf", f"{DECLS}/{name}.yaml", f"{DECLS}/{name}.yaml.d"])
    host.run(["systemctl", "daemon-reload"])


def health(host: TestHost, name: str, run: str = RUN) -> dict[str, Any] | None:
    done = host.run(["cat", f"{run}/{name}/health.json"], check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def status_of(host: TestHost, name: str) -> str | None:
    state = health(host, name)
    return state["status"] if state else None


def prop(host: TestHost, unit: str, name: str) -> str:
    return host.run(["systemctl", "show", "-P", name, unit]).stdout.strip()


def journal(host: TestHost, *units: str) -> str:
    selectors = [arg for unit in units for arg in ("-u", unit)]
    return host.run(["journalctl", "--no-pager", "-o", "cat", *selectors]).stdout


def diagnose(host: TestHost, name: str) -> Callable[[], str]:
    def show() -> str:
        return (f"--- health ---\n{health(host, name)}\n--- journal ---\n"
                + journal(host, f"{name}.service", f"{name}-healthcheck.service",
                          f"{name}-healthcheck.timer"))
    return show


@pytest.fixture(scope="module")
def quiet(host: TestHost, busybox_ref: str) -> Iterator[float]:
    """A healthy container checked every second from the start of this module to its
    last test (which counts its journal): the guest's clock when it started."""
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "health_cmd: echo checked >> /tmp/checks\n")
    declare(host, "quiet", text)
    started = float(host.run(["date", "+%s.%N"]).stdout)
    host.run(["systemctl", "start", "quiet.service"])
    try:
        yield started
    finally:
        remove(host, "quiet")


def test_failing_checks_make_it_unhealthy_and_a_passing_one_healthy_again(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "user: app\n"
        "health_cmd: echo uid=$(id -u) home=$HOME; test -e /tmp/fine\n"
        "health_retries: 3\n")
    declare(host, "sick", text)
    try:
        host.run(["systemctl", "start", "sick.service"])
        assert prop(host, "sick-healthcheck.timer", "ActiveState") == "active"
        wait_for(lambda: status_of(host, "sick") == "unhealthy", 30, "unhealthy",
                 diagnose(host, "sick"))
        state = health(host, "sick")
        assert state is not None and state["failing_streak"] >= 3
        last = state["log"][-1]
        # The check ran in the container, as its user with its environment.
        assert last["exit_code"] == 1 and "uid=1000 home=/home/app" in last["output"]
        assert len(state["log"]) <= 5
        ps = host.run([HOSTCTL, "ps"]).stdout
        assert any(line.split()[:3] == ["sick", "active/running", "unhealthy"]
                   for line in ps.splitlines()), ps
        rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
        assert [row["health"] for row in rows if row["name"] == "sick"] == ["unhealthy"]
        failed = host.run([HOSTCTL, "healthcheck", "sick"], check=False)
        assert failed.returncode == 1 and "uid=1000" in failed.stdout, failed
        shown = host.run([HOSTCTL, "status", "sick"]).stdout
        assert "health: unhealthy (failing streak " in shown, shown
        assert "last check: exit 1, uid=1000 home=/home/app" in shown
        inspected = json.loads(host.run([HOSTCTL, "inspect", "sick"]).stdout)
        assert inspected["health"]["status"] == "unhealthy"
        assert inspected["health"]["check"]["source"] == "declaration"
        host.run([HOSTCTL, "exec", "sick", "touch", "/tmp/fine"])
        passed = host.run([HOSTCTL, "healthcheck", "sick"], check=False)
        assert passed.returncode == 0, passed
        assert "passed; healthy" in passed.stdout
        assert status_of(host, "sick") == "healthy"
        # The unit stayed up: health_on_failure is none.
        assert prop(host, "sick.service", "NRestarts") == "0"
        lines = journal(host, "sick-healthcheck.service")
        assert "sick: health starting -> unhealthy" in lines, lines
    finally:
        remove(host, "sick")
    gone = host.run([HOSTCTL, "healthcheck", "sick"], check=False)
    assert gone.returncode == 2 and "not running" in gone.stderr


def test_a_check_past_its_timeout_is_killed_and_counts_as_failed(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="").replace(
        "health_interval: 1s", "health_interval: disable") + (
        "health_cmd: echo started; exec sleep 600\nhealth_timeout: 1s\n")
    declare(host, "slow", text)
    try:
        host.run(["systemctl", "start", "slow.service"])
        assert prop(host, "slow-healthcheck.timer", "LoadState") == "not-found"
        done = host.run([HOSTCTL, "healthcheck", "slow"], check=False, timeout=30)
        assert done.returncode == 1, done
        assert "failed (exit status -1)" in done.stdout
        assert "started" in done.stdout and "timed out after 1s" in done.stdout
        # The check's process is gone from the container; the container is not.
        cgroup = prop(host, "slow.service", "ControlGroup")
        comms = host.sh(f"cat $(find /sys/fs/cgroup{cgroup} -name cgroup.procs) | "
                        "xargs -r -I@ cat /proc/@/cmdline | tr '\\0' ' '; echo").stdout
        assert "sleep 600" not in comms, comms
        assert prop(host, "slow.service", "ActiveState") == "active"
        assert status_of(host, "slow") == "starting"  # 1 failure of 3
        # Checks run by hand change the status too, and say so in the unit's journal.
        for _ in range(2):
            host.run([HOSTCTL, "healthcheck", "slow"], check=False, timeout=30)
        assert status_of(host, "slow") == "unhealthy"
        lines = journal(host, "slow.service")
        assert "hostctl: slow: health starting -> unhealthy, check exit status -1" in lines
    finally:
        remove(host, "slow")


def test_kill_on_failure_restarts_the_container_and_its_checks(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "health_cmd: [\"false\"]\nhealth_retries: 3\nhealth_on_failure: kill\n"
        "restart: on-failure\nrestart_sec: 1\n")
    declare(host, "doomed", text)
    try:
        host.run(["systemctl", "start", "doomed.service"])
        first = prop(host, "doomed.service", "MainPID")
        wait_for(lambda: int(prop(host, "doomed.service", "NRestarts")) >= 1, 40,
                 "a restart", diagnose(host, "doomed"))
        wait_for(lambda: prop(host, "doomed.service", "ActiveState") == "active", 20,
                 "the restarted container", diagnose(host, "doomed"))
        assert prop(host, "doomed.service", "MainPID") != first
        lines = journal(host, "doomed.service", "doomed-healthcheck.service")
        assert "doomed: health starting -> unhealthy" in lines, lines
        assert "killing its init" in lines
        # The restarted container's checks run again (its timer came back with it).
        wait_for(lambda: prop(host, "doomed-healthcheck.timer", "ActiveState") == "active",
                 10, "the timer after the restart", diagnose(host, "doomed"))
        wait_for(lambda: bool((health(host, "doomed") or {}).get("log")), 20,
                 "a check of the restarted container", diagnose(host, "doomed"))
    finally:
        remove(host, "doomed")


def test_a_startup_probe_gates_the_checks_and_restart_on_failure_restarts_the_unit(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="sleep 2; touch /tmp/started;") + (
        "health_cmd: test ! -e /tmp/broken\nhealth_retries: 2\n"
        "health_on_failure: restart\n"
        "health_startup_cmd: echo probing; test -e /tmp/started\n"
        "health_startup_interval: 1s\nhealth_startup_success: 2\n")
    declare(host, "phased", text)
    try:
        host.run(["systemctl", "start", "phased.service"])
        first = prop(host, "phased.service", "InvocationID")
        wait_for(lambda: status_of(host, "phased") == "healthy", 30, "healthy",
                 diagnose(host, "phased"))
        state = health(host, "phased")
        assert state is not None and state["startup"]["done"]
        assert state["startup"]["passes"] == 2
        lines = journal(host, "phased-healthcheck.service")
        assert "phased: startup probe passed, regular health checks begin" in lines, lines
        host.run([HOSTCTL, "exec", "phased", "touch", "/tmp/broken"])
        wait_for(lambda: prop(host, "phased.service", "InvocationID") != first, 30,
                 "a restart", diagnose(host, "phased"))
        lines = journal(host, "phased-healthcheck.service")
        assert "phased: unhealthy: restart phased.service" in lines, lines
        wait_for(lambda: status_of(host, "phased") == "healthy", 30,
                 "the fresh container healthy", diagnose(host, "phased"))
    finally:
        remove(host, "phased")


def test_a_startup_probe_failing_retries_times_restarts_the_unit(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "health_cmd: [\"true\"]\n"
        "health_startup_cmd: echo still-booting; false\n"
        "health_startup_interval: 1s\nhealth_startup_retries: 2\n")
    declare(host, "stuck", text)
    try:
        host.run(["systemctl", "start", "stuck.service"])
        first = prop(host, "stuck.service", "InvocationID")
        wait_for(lambda: prop(host, "stuck.service", "InvocationID") != first, 30,
                 "a restart", diagnose(host, "stuck"))
        lines = journal(host, "stuck-healthcheck.service")
        assert "stuck: startup probe failed 2 times (last output: still-booting)" in lines
        assert "stuck: restart stuck.service" in lines, lines
    finally:
        remove(host, "stuck")


def test_stop_on_failure_stops_the_unit(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "health_cmd: [\"false\"]\nhealth_retries: 1\nhealth_on_failure: stop\n"
        "restart: always\n")
    declare(host, "stopped", text)
    try:
        host.run(["systemctl", "start", "stopped.service"])
        wait_for(lambda: prop(host, "stopped.service", "ActiveState") == "inactive", 30,
                 "the stop", diagnose(host, "stopped"))
        assert prop(host, "stopped-healthcheck.timer", "ActiveState") == "inactive"
        assert prop(host, "stopped.service", "NRestarts") == "0"  # a stop, not a failure
        lines = journal(host, "stopped-healthcheck.service")
        assert "stopped: unhealthy: stop stopped.service" in lines, lines
    finally:
        remove(host, "stopped")


def test_notify_healthy_keeps_the_unit_activating_until_the_check_passes(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    host.run(["mkdir", "-p", "/srv/flag"])
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "volumes: [\"/srv/flag:/flag\"]\nnotify: healthy\n"
        "health_cmd: test -e /flag/ready\nhealth_start_period: 1m\n"
        # The start period extends the start timeout (EXTEND_TIMEOUT_USEC).
        "service: {TimeoutStartSec: 2}\n")
    declare(host, "gated", text)
    try:
        host.run(["systemctl", "start", "--no-block", "gated.service"])
        wait_for(lambda: bool((health(host, "gated") or {}).get("log")), 20,
                 "the first check", diagnose(host, "gated"))
        time.sleep(3)  # more failed checks, inside the start period, past TimeoutStartSec
        assert prop(host, "gated.service", "ActiveState") == "activating", \
            diagnose(host, "gated")()
        assert int(prop(host, "gated.service", "TimeoutStartUSec").rstrip("s") or 0) == 2
        assert status_of(host, "gated") == "starting"
        host.run(["touch", "/srv/flag/ready"])
        wait_for(lambda: prop(host, "gated.service", "ActiveState") == "active", 20,
                 "active", diagnose(host, "gated"))
        assert status_of(host, "gated") == "healthy"
        # Nothing of the launcher stays once the unit is active.
        cgroup = prop(host, "gated.service", "ControlGroup")
        comms = host.sh(f"cat $(find /sys/fs/cgroup{cgroup} -name cgroup.procs) | "
                        "xargs -r -I@ cat /proc/@/comm").stdout.split()
        assert "hostctl" not in comms, comms
    finally:
        remove(host, "gated")
        host.run(["rm", "-rf", "/srv/flag"])


def test_notify_healthy_fails_the_start_of_a_container_that_never_gets_healthy(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + (
        "notify: healthy\nhealth_cmd: echo not-yet-ready; false\nhealth_retries: 2\n")
    declare(host, "never", text)
    try:
        done = host.run([HOSTCTL, "start", "never"], check=False)
        assert done.returncode != 0
        assert prop(host, "never.service", "ActiveState") == "failed"
        lines = journal(host, "never.service")
        assert "became unhealthy before it was ever healthy" in lines, lines
        assert "not-yet-ready" in lines
    finally:
        remove(host, "never")


@pytest.fixture(scope="module")
def checked_ref(registry: Any) -> str:
    """An image whose config has a HEALTHCHECK (echo from-the-image)."""
    check = {"Test": ["CMD-SHELL", "echo from-the-image"], "Interval": 30 * SECOND,
             "Timeout": 2 * SECOND, "Retries": 4}
    push(registry.host, "demo/checked", "1", busybox_image(Healthcheck=check))
    return f"{registry.host}/demo/checked:1"


def test_the_images_healthcheck_is_used_without_a_declared_one(
    host: TestHost, checked_ref: str, quiet: float
) -> None:
    ref = checked_ref
    declare(host, "imaged", BASE.format(ref=ref, prelude=""))
    declare(host, "unchecked", BASE.format(ref=ref, prelude="") + "health_cmd: none\n")
    try:
        host.run(["systemctl", "start", "imaged.service", "unchecked.service"])
        wait_for(lambda: status_of(host, "imaged") == "healthy", 20, "healthy",
                 diagnose(host, "imaged"))
        spec = json.loads(host.read_file(f"{RUN}/imaged/healthcheck.json"))
        assert spec["source"] == "image" and spec["retries"] == 4 and spec["timeout"] == 2
        assert spec["interval"] == 1  # the declaration's: its timer runs the checks
        assert "from-the-image" in (health(host, "imaged") or {})["log"][-1]["output"]
        # health_cmd: none: no check, no units, no state.
        assert health(host, "unchecked") is None
        assert prop(host, "unchecked-healthcheck.timer", "LoadState") == "not-found"
        # The launcher started the timer (the unit cannot want it: the generator does not
        # know the image); the recorded start does so too.
        record = "/run/hostctl/launch/imaged.record"
        # (the first restart may be a full start: the other container's pull changed
        # the store's index after this one's record was written)
        host.run(["systemctl", "restart", "imaged.service"])
        before = host.run(["stat", "-c", "%i", record]).stdout
        host.run(["systemctl", "restart", "imaged.service"])
        assert host.run(["stat", "-c", "%i", record]).stdout == before  # a recorded start
        wait_for(lambda: bool((health(host, "imaged") or {}).get("log")), 20,
                 "a check after the restart", diagnose(host, "imaged"))
        assert prop(host, "imaged-healthcheck.timer", "ActiveState") == "active"
    finally:
        remove(host, "imaged")
        remove(host, "unchecked")


def test_a_container_without_any_check_starts_no_timer(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    declare(host, "plain", BASE.format(ref=busybox_ref, prelude=""))
    try:
        host.run(["systemctl", "start", "plain.service"])
        time.sleep(1.5)
        assert prop(host, "plain-healthcheck.timer", "LoadState") == "loaded"
        assert prop(host, "plain-healthcheck.timer", "ActiveState") == "inactive"
        assert prop(host, "plain-healthcheck.service", "NRestarts") in ("0", "")
        assert prop(host, "plain-healthcheck.service", "ExecMainStartTimestamp") == ""
        assert health(host, "plain") is None
        # Not even a "skipped because of an unmet condition" line: nothing wants the timer.
        assert journal(host, "plain-healthcheck.timer", "plain-healthcheck.service") == ""
        plain = host.run([HOSTCTL, "healthcheck", "plain"], check=False)
        assert plain.returncode == 2 and "no health check" in plain.stderr
    finally:
        remove(host, "plain")


def as_user(host: TestHost, *argv: str, check: bool = True) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"  # type: ignore[attr-defined]
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check)


def test_a_rootless_containers_checks_run_from_the_users_manager(
    host: TestHost, busybox_ref: str, quiet: float
) -> None:
    home = f"/home/{USER}/.config/hostctl/containers"
    run = f"/run/user/{host.uid}/hostctl/containers"  # type: ignore[attr-defined]
    as_user(host, "mkdir", "-p", home)
    text = BASE.format(ref=busybox_ref, prelude="touch /tmp/up;") + (
        "health_cmd: echo uid=$(id -u); test -e /tmp/up\nnotify: healthy\n")
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {home}/rl.yaml"], input=text)
    try:
        as_user(host, "systemctl", "--user", "daemon-reload")
        started = as_user(host, "systemctl", "--user", "start", "rl.service", check=False)
        state = health(host, "rl", run)
        assert started.returncode == 0, host.sh("journalctl --no-pager -n 40").stdout
        assert state is not None and state["status"] == "healthy"
        # The next checks come from the user's timer.
        count = len(state["log"])
        wait_for(lambda: len((health(host, "rl", run) or {}).get("log", ())) > count, 20,
                 "a timer check", lambda: host.sh("journalctl --no-pager -n 40").stdout)
        assert "uid=0" in (health(host, "rl", run) or {})["log"][-1]["output"]
        done = as_user(host, HOSTCTL, "healthcheck", "--user", "rl", check=False)
        assert done.returncode == 0, done
        assert json.loads(as_user(host, HOSTCTL, "ps", "--user", "--format", "json").stdout)[
            0]["health"] == "healthy"
    finally:
        as_user(host, "systemctl", "--user", "stop", "rl.service", check=False)
        host.run(["rm", "-f", f"{home}/rl.yaml"])
        as_user(host, "systemctl", "--user", "daemon-reload", check=False)


def test_a_rootless_container_gets_its_images_check_on_the_users_timer(
    host: TestHost, checked_ref: str, quiet: float
) -> None:
    home = f"/home/{USER}/.config/hostctl/containers"
    run = f"/run/user/{host.uid}/hostctl/containers"  # type: ignore[attr-defined]
    as_user(host, "mkdir", "-p", home)
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {home}/rli.yaml"],
             input=BASE.format(ref=checked_ref, prelude=""))
    try:
        as_user(host, "systemctl", "--user", "daemon-reload")
        as_user(host, "systemctl", "--user", "start", "rli.service")
        wait_for(lambda: (health(host, "rli", run) or {}).get("status") == "healthy", 20,
                 "healthy", lambda: host.sh("journalctl --no-pager -n 40").stdout)
        assert "from-the-image" in (health(host, "rli", run) or {})["log"][-1]["output"]
        active = as_user(host, "systemctl", "--user", "is-active", "rli-healthcheck.timer",
                         check=False)
        assert active.stdout.strip() == "active"
    finally:
        as_user(host, "systemctl", "--user", "stop", "rli.service", check=False)
        host.run(["rm", "-f", f"{home}/rli.yaml"])
        as_user(host, "systemctl", "--user", "daemon-reload", check=False)


def test_the_journal_holds_status_changes_only(host: TestHost, quiet: float) -> None:
    """Runs after the others: the quiet container has been checked every second since."""
    wait_for(lambda: float(host.run(["date", "+%s.%N"]).stdout) - quiet > 60, 70,
             "a minute of checks")
    checks = host.run([HOSTCTL, "exec", "quiet", "cat", "/tmp/checks"]).stdout.split()
    assert len(checks) >= 30, len(checks)  # about one a second
    units = ("quiet-healthcheck.service", "quiet-healthcheck.timer")
    lines = journal(host, *units).splitlines()
    # systemd's line when the timer started with the container (timers have no
    # LogLevelMax=), then the one status change: nothing per check.
    assert lines == ["Started quiet-healthcheck.timer - hostctl health checks of quiet.",
                     "hostctl: quiet: health starting -> healthy, check exit status 0"], lines


def test_checks_run_again_after_a_reboot(host: TestHost, busybox_ref: str) -> None:
    text = BASE.format(ref=busybox_ref, prelude="") + "health_cmd: echo after-boot\n"
    declare(host, "booted", text)
    try:
        assert "booted: enabled" in host.run([HOSTCTL, "enable", "booted"]).stdout
        host.reboot()
        host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
        assert prop(host, "booted.service", "ActiveState") == "active"
        wait_for(lambda: status_of(host, "booted") == "healthy", 20, "a check after boot",
                 diagnose(host, "booted"))
        assert prop(host, "booted-healthcheck.timer", "ActiveState") == "active"
        host.run([HOSTCTL, "disable", "booted"])
    finally:
        remove(host, "booted")
