"""What a container sees and how it behaves as a service, in a real systemd with runc."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_e2e import HOSTCTL, cgroup_processes, prop, wait_journal
from tests.integration.test_e2e import declare as declare_any

pytestmark = pytest.mark.integration


def declare(host: Any, name: str, body: str) -> None:
    """A declaration on the host's network: these tests are about the runtime only."""
    declare_any(host, name, body + "network: host\n")


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    test_host.write_file("/etc/hostctl-test/token", "s3cret-value\n", 0o600)
    test_host.write_file("/etc/hostctl-test/app.env", "FROM_FILE=file\nGREETING=overridden\n")
    test_host.sh("mkdir -p /srv/shared && echo host-data > /srv/shared/data.txt")
    return test_host


def wait_state(host: Any, unit: str, states: tuple[str, ...], timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while (state := prop(host, unit, "ActiveState")) not in states:
        assert time.monotonic() < deadline, f"{unit} stayed {state}:\n{host.journal(unit)}"
        time.sleep(0.1)
    return state


PROBE = r"""
echo "id=$(id -u):$(id -g) groups=$(id -G)"
echo "env=$GREETING/$FROM_FILE host=$(hostname)"
echo "data=$(cat /data/data.txt)"
touch /data/x 2>/dev/null && echo data-writable || echo data-readonly
touch /rootfile 2>/dev/null && echo root-writable || echo root-readonly
touch /tmp/ok && echo tmp-writable
echo "nofile=$(ulimit -n)"
grep CapEff /proc/self/status
echo "secret=$(cat /run/secrets/token)"
grep -q "$(cat /run/secrets/token)" /proc/1/environ && echo secret-in-env || echo secret-not-in-env
echo probe-done
exec sleep 600
"""


def test_declared_settings_are_what_the_container_sees(host: Any, busybox_ref: str) -> None:
    script = PROBE.replace("\n", "; ").strip("; ")
    declare(host, "probe", f"""\
image: {busybox_ref}
command: ["sh", "-c", {script!r}]
user: app
groups: ["0"]
hostname: probe-host
env: {{GREETING: hello}}
env_files: [/etc/hostctl-test/app.env]
volumes: ["/srv/shared:/data:ro"]
read_only: true
cap_add: [NET_BIND_SERVICE]
ulimits: {{nofile: "1000:2000"}}
secrets: [{{name: token, source: /etc/hostctl-test/token}}]
stop_timeout: 1
""")
    host.run(["systemctl", "start", "probe"])
    journal = wait_journal(host, "probe.service", "probe-done")
    assert "id=1000:1000 groups=1000 0" in journal
    assert "env=overridden/file host=probe-host" in journal
    assert "data=host-data" in journal and "data-readonly" in journal
    assert "root-readonly" in journal and "tmp-writable" in journal
    assert "nofile=1000" in journal
    # Non-root: only cap_add's capability is held (CAP_NET_BIND_SERVICE is bit 10).
    assert "CapEff:\t0000000000000400" in journal
    assert "secret=s3cret-value" in journal and "secret-not-in-env" in journal
    unit_text = host.run(["systemctl", "cat", "probe"]).stdout
    assert "s3cret" not in unit_text
    assert "s3cret" not in host.read_file("/run/hostctl/containers/probe/config.json")
    host.run(["systemctl", "stop", "probe"])


def test_root_gets_podmans_capabilities_and_a_seccomp_filter(host: Any,
                                                             busybox_ref: str) -> None:
    declare(host, "caps", f"""\
image: {busybox_ref}
command: ["sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; echo caps-done"]
cap_drop: [CHOWN]
""")
    host.run(["systemctl", "start", "caps"], check=False)
    journal = wait_journal(host, "caps.service", "caps-done")
    # podman's 11 default capabilities minus CAP_CHOWN (bit 0).
    assert "CapEff:\t00000000800405fa" in journal
    assert "Seccomp:\t2" in journal  # filter mode


def test_sigterm_ignoring_container_stops_within_stop_timeout(host: Any,
                                                              busybox_ref: str) -> None:
    declare(host, "stubborn", f"""\
image: {busybox_ref}
command: ["sh", "-c", "trap '' TERM; echo stubborn-up; while :; do sleep 1; done"]
stop_timeout: 2
""")
    host.run(["systemctl", "start", "stubborn"])
    wait_journal(host, "stubborn.service", "stubborn-up")
    started = time.monotonic()
    host.run(["systemctl", "stop", "stubborn"])
    assert time.monotonic() - started < 2 + 2
    assert host.sh("ls /run/hostctl/containers/ /var/lib/hostctl/containers/ 2>/dev/null "
                   "| grep -c stubborn || true").stdout.strip() == "0"
    host.run(["systemctl", "reset-failed", "stubborn"], check=False)


def test_init_true_runs_an_init_that_forwards_sigterm(host: Any, busybox_ref: str) -> None:
    declare(host, "withinit", f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo pid1=$(cat /proc/1/comm); exec sleep 600"]
init: true
stop_timeout: 20
""")
    host.run(["systemctl", "start", "withinit"])
    try:
        wait_journal(host, "withinit.service", "pid1=catatonit")
        assert sorted(cgroup_processes(host, "withinit.service")) == ["catatonit", "sleep"]
        started = time.monotonic()
        host.run(["systemctl", "stop", "withinit"])
        assert time.monotonic() - started < 5  # sleep got SIGTERM: no wait for SIGKILL
    finally:
        host.run(["systemctl", "stop", "withinit"], check=False)


def test_killed_container_under_restart_on_failure_comes_back(host: Any,
                                                              busybox_ref: str) -> None:
    declare(host, "phoenix", f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo phoenix-up; exec sleep 600"]
restart: on-failure
stop_timeout: 2
restart_sec: 1
""")
    host.run(["systemctl", "start", "phoenix"])
    try:
        first = prop(host, "phoenix.service", "MainPID")
        host.run([HOSTCTL, "kill", "phoenix"])
        deadline = time.monotonic() + 15
        while prop(host, "phoenix.service", "NRestarts") == "0" or prop(
            host, "phoenix.service", "ActiveState"
        ) != "active":
            assert time.monotonic() < deadline, host.journal("phoenix.service")
            time.sleep(0.1)
        assert prop(host, "phoenix.service", "MainPID") != first
        assert host.journal("phoenix.service").count("phoenix-up") >= 2
        assert cgroup_processes(host, "phoenix.service") == ["sleep"]
    finally:
        host.run(["systemctl", "stop", "phoenix"], check=False)


def test_memory_limit_is_the_units_and_the_container_sits_in_its_cgroup(
    host: Any, busybox_ref: str
) -> None:
    declare(host, "capped", f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo capped-up; exec sleep 600"]
memory: 64M
stop_timeout: 1
""")
    host.run(["systemctl", "start", "capped"])
    try:
        assert prop(host, "capped.service", "MemoryMax") == str(64 * 1024 * 1024)
        cg = prop(host, "capped.service", "ControlGroup")
        pid = prop(host, "capped.service", "MainPID")
        lines = host.read_file(f"/proc/{pid}/cgroup").splitlines()
        assert f"0::{cg}/container" in lines
        controllers = host.read_file("/sys/fs/cgroup/cgroup.controllers").split()
        if "memory" not in controllers:
            pytest.skip("the test host's cgroup v2 tree has no memory controller (bound to "
                        "the machine's v1 hierarchies): the OOM kill cannot be checked here")
    finally:
        host.run(["systemctl", "stop", "capped"], check=False)
    declare(host, "hog", f"""\
image: {busybox_ref}
command: ["sh", "-c", "x=a; while :; do x=$x$x; done"]
memory: 64M
""")
    host.run(["systemctl", "start", "hog"], check=False)
    wait_state(host, "hog.service", ("failed",), 30)
    assert prop(host, "hog.service", "Result") == "oom-kill"


def test_stale_state_is_cleaned_and_the_container_starts_after_a_reboot(
    host: Any, busybox_ref: str
) -> None:
    declare(host, "boot", f"""\
image: {busybox_ref}
command: ["sh", "-c", "ls /stale 2>/dev/null && echo saw-stale; echo booted; exec sleep 600"]
stop_timeout: 1
install: {{WantedBy: multi-user.target}}
""")
    # What a power cut leaves: a writable layer the ExecStopPost never removed.
    host.sh("mkdir -p /var/lib/hostctl/containers/boot/upper && "
            "touch /var/lib/hostctl/containers/boot/upper/stale")
    host.reboot()
    wait_state(host, "boot.service", ("active",), 30)
    journal = wait_journal(host, "boot.service", "booted")
    assert "saw-stale" not in journal
    assert host.run(["test", "-e", "/var/lib/hostctl/containers/boot/upper/stale"],
                    check=False).returncode == 1
    assert cgroup_processes(host, "boot.service") == ["sleep"]
    host.run(["systemctl", "stop", "boot"])
    host.run(["rm", "/etc/hostctl/containers/boot.yaml"])
    host.run(["systemctl", "daemon-reload"])


def test_adhoc_run_exec_logs_inspect_kill(host: Any, busybox_ref: str) -> None:
    out = host.run([HOSTCTL, "run", "-d", "--rm", "--network", "host", "--name", "adhoc",
                    "-e", "MSG=adhoc-hello", busybox_ref,
                    "sh", "-c", "echo $MSG; exec sleep 600"]).stdout
    assert out.strip() == "adhoc"
    try:
        wait_journal(host, "adhoc.service", "adhoc-hello")
        assert "adhoc-hello" in host.run([HOSTCTL, "logs", "adhoc"]).stdout
        done = host.run([HOSTCTL, "exec", "adhoc", "sh", "-c", "echo in-$MSG; exit 3"],
                        check=False)
        assert done.returncode == 3 and "in-adhoc-hello" in done.stdout
        import json

        info = json.loads(host.run([HOSTCTL, "inspect", "adhoc"]).stdout)
        assert info["unit"]["ActiveState"] == "active"
        assert info["runtime"]["status"] == "running"
        assert info["config"]["process"]["args"][-1] == "echo $MSG; exec sleep 600"
        assert cgroup_processes(host, "adhoc.service") == ["sleep"]
    finally:
        host.run([HOSTCTL, "kill", "adhoc"], check=False)
    wait_state(host, "adhoc.service", ("inactive", "failed"))
    fg = host.run([HOSTCTL, "run", "--rm", "--network", "host", busybox_ref,
                   "sh", "-c", "echo fg-out; exit 5"], check=False)
    assert "fg-out" in fg.stdout and fg.returncode == 5


def test_started_container_is_running_to_runc_and_left_no_fifo(host: Any,
                                                              busybox_ref: str) -> None:
    """The launcher starts the container through runc's exec.fifo, not `runc start`:
    runc must still see it as running (kill, state, delete work) and no fifo stays."""
    declare(host, "fifo", f"""\
image: {busybox_ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo fifo-started; sleep 600 & wait"]
stop_timeout: 5
""")
    host.run(["systemctl", "start", "fifo"])
    wait_journal(host, "fifo.service", "fifo-started")
    state = host.run(["runc", "--root", "/run/hostctl/runc", "state", "fifo"]).stdout
    assert '"status": "running"' in state, state
    fifo = host.run(["test", "-e", "/run/hostctl/runc/fifo/exec.fifo"], check=False)
    assert fifo.returncode != 0, "exec.fifo left behind: runc would call it created"
    host.run(["systemctl", "stop", "fifo"])
    assert prop(host, "fifo.service", "Result") == "success"


START_CREATED = """
import os, signal, sys
from hostctl.errors import RuntimeFailure
from hostctl.runtime.runc import Runc
runc = Runc("/run/fifo-test-runc")
pid = runc.create(sys.argv[1], "/srv/fifo-bundle", "/srv/fifo-bundle/pid")
if sys.argv[2] == "kill":
    os.kill(pid, signal.SIGKILL)
try:
    print("started" if runc.start_created(sys.argv[1], pid) else "no-fifo", flush=True)
except RuntimeFailure as err:
    print("failed:", err.message, flush=True)
finally:
    runc.delete(sys.argv[1])
"""


def test_a_container_that_dies_before_its_start_is_a_clear_failure(host: Any) -> None:
    """Between create and start the init can die (OOM, a kill): starting it then fails
    with a message, instead of waiting forever on the fifo."""
    host.sh("rm -rf /srv/fifo-bundle && mkdir -p /srv/fifo-bundle/rootfs/bin "
            "&& cp /bin/busybox /srv/fifo-bundle/rootfs/bin/ "
            "&& ln -s busybox /srv/fifo-bundle/rootfs/bin/sh "
            "&& ln -s busybox /srv/fifo-bundle/rootfs/bin/sleep "
            "&& cd /srv/fifo-bundle && runc spec")
    config = json.loads(host.read_file("/srv/fifo-bundle/config.json"))
    config["process"].update(terminal=False, args=["sleep", "30"])
    host.write_file("/srv/fifo-bundle/config.json", json.dumps(config))
    python = str(Path(HOSTCTL).parent / "python")
    repo = str(Path(__file__).resolve().parents[2])
    for how, expected in (("start", "started"), ("kill", "failed: runc start ")):
        out = host.sh(f"cd {repo} && {python} -c {shlex.quote(START_CREATED)} t-{how} {how} "
                      f"</dev/null >/srv/fifo-bundle/out 2>&1; cat /srv/fifo-bundle/out").stdout
        assert expected in out, out
    assert "ended before it was started" in out
    assert host.run(["runc", "--root", "/run/fifo-test-runc", "list", "-q"]).stdout.strip() == ""


def test_a_container_that_exits_at_once_gives_the_unit_its_status_every_time(
        host: Any, busybox_ref: str) -> None:
    """The launcher starts the container right after MAINPID=: systemd must have taken
    the init as main process by then (BARRIER=1), or a container that exits at once is
    reaped as a stranger and the launcher's own exit 0 becomes the unit's result. The
    first start is a full one, the others recorded (faster, so the tighter race)."""
    for name, code, result in (("quick-exit", 7, "exit-code"), ("quick-true", 0, "success")):
        declare(host, name, f"image: {busybox_ref}\ncommand: [\"sh\", \"-c\", \"exit {code}\"]\n")
        for attempt in range(6):
            # a container done before READY=1 would fail the start itself ("protocol")
            started = host.run(["systemctl", "start", name], check=False).returncode
            wait_state(host, f"{name}.service", ("inactive", "failed"))
            seen = (started, prop(host, f"{name}.service", "ExecMainStatus"),
                    prop(host, f"{name}.service", "Result"))
            assert seen == (0, str(code), result), \
                f"start {attempt}: {seen}\n" + host.journal(f"{name}.service")
            host.run(["systemctl", "reset-failed", name], check=False)
        assert host.run(["test", "-e", f"/run/hostctl/launch/{name}.record"],
                        check=False).returncode == 0, "no recorded start was exercised"
