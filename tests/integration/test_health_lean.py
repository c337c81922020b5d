"""The lean exec of health checks (hostctl.runtime.nsexec) against `runc exec`, in a real
systemd test host: the same probe, run both ways in the same running container, sees
the same credentials, capabilities, no_new_privs, seccomp, namespaces, cgroup, root,
environment, working directory and rlimit, and a system call the container's seccomp
profile refuses is refused the same way. For system containers (a non-root user with
supplementary groups and no_new_privileges; root without it) and a rootless user's
container. Also `hostctl exec --user` into a rootless container."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_containers_systemd import HOSTCTL
from tests.integration.test_health import as_user, declare, remove
from tests.support.testhost import TestHost

pytestmark = pytest.mark.integration

PYTHON = str(Path(sys.executable))
USER = "alice"
MARKER = "/tmp/only-in-this-container"

# A container that marks its root with a file the test host does not have.
BASE = """\
image: {ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo inside > {marker}; while :; do sleep 1; done"]
network: host
stop_timeout: 2
health_cmd: test -e {marker}
health_interval: 1h
"""

PROBE = f"""\
grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' \
    /proc/self/status
for ns in cgroup ipc mnt net pid uts user; do echo "ns $ns $(readlink /proc/self/ns/$ns)"; done
echo "cgroup $(cat /proc/self/cgroup)"
echo "root $(cat {MARKER}) $(test -e /etc/os-release && echo host-os-release)"
env | sort
echo "cwd $(pwd)"
echo "nofile $(ulimit -Sn) $(ulimit -Hn) oom_score_adj $(cat /proc/self/oom_score_adj)" \\
    "umask $(umask)"
unshare -n true 2>&1; echo "unshare exit $?"
"""

# Runs in the test host as the container's owner: the probe through each path.
SCRIPT = """\
import json, os, sys
from hostctl.health import run, status
name, user, probe = sys.argv[1], sys.argv[2] == "user", sys.argv[3]
container = run.Container(name, user)
store = status.load_store(container.bundle)
lean = run.lean_plan(container, store)
argv = ["/bin/sh", "-c", probe]
pid_file = os.path.join(container.bundle, "probe.pid")
found = {"why": lean["why"]}
if not lean["why"]:
    found["lean"] = run.run_lean(lean, container.pid, argv, pid_file, 30)
found["runc"] = run.run_runc(container, store["process"], argv, pid_file, 30)
missing = ["no-such-command"]
if not lean["why"]:
    found["missing_lean"] = run.run_lean(lean, container.pid, missing, pid_file, 30)
found["missing_runc"] = run.run_runc(container, store["process"], missing, pid_file, 30)
found["init_ns"] = {kind: os.readlink(f"/proc/{container.pid}/ns/{kind}")
                    for kind in ("cgroup", "ipc", "mnt", "net", "pid", "uts", "user")}
found["filters"] = next(int(line.split()[1]) for line in open("/proc/self/status")
                       if line.startswith("Seccomp_filters:"))
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def host() -> Iterator[TestHost]:
    with TestHost() as guest:
        guest.run([HOSTCTL, "install"])
        guest.uid = guest.lingering_user(USER)  # type: ignore[attr-defined]
        yield guest


def start(host: TestHost, name: str) -> None:
    started = host.run(["systemctl", "start", f"{name}.service"], check=False)
    assert started.returncode == 0, host.run(
        ["journalctl", "--no-pager", "-n", "30", "-u", f"{name}.service"]).stdout


def unraced(runc_output: str, lean_output: str) -> str:
    """runc 1.1's `exec` sets the process's rlimits with prlimit() while its child's Go
    runtime raises the soft RLIMIT_NOFILE to the hard one: whichever comes last wins
    (opencontainers/runc#4195). The lean exec sets the declared limits every time; where
    runc lost the race (its soft limit is its hard one), its line is taken as the declared
    one, and only then."""
    lean = next(line for line in lean_output.splitlines() if line.startswith("nofile "))
    runc = next(line for line in runc_output.splitlines() if line.startswith("nofile "))
    _, soft, hard, *rest = runc.split()
    _, _, lean_hard, *lean_rest = lean.split()
    if runc != lean and soft == hard == lean_hard and rest == lean_rest:
        return runc_output.replace(runc, lean)
    return runc_output


def compare(host: TestHost, name: str, user: bool) -> dict[str, Any]:
    argv = [PYTHON, "-c", SCRIPT, name, "user" if user else "system", PROBE]
    # A user's checks run from its manager (a timer's service): so does the script.
    done = (as_user(host, "systemd-run", "--user", "--quiet", "--wait", "--pipe", *argv)
            if user else host.run(argv))
    found: dict[str, Any] = json.loads(done.stdout)
    assert found["why"] == "", found  # the lean path is taken
    lean_code, lean_output, why = found["lean"]
    runc_code, runc_output = found["runc"]
    assert why == "", found
    runc_output = unraced(runc_output, lean_output)
    assert (lean_code, lean_output) == (runc_code, runc_output), "\n".join(
        difflib.unified_diff(runc_output.splitlines(), lean_output.splitlines(), "runc exec",
                             "lean", lineterm=""))
    assert lean_code == 0, lean_output
    # A command that is not there: the same exit status, the same complaint.
    (lean_code, lean_missing, _), (runc_code, runc_missing) = (
        found["missing_lean"], found["missing_runc"])
    assert lean_code == runc_code != 0, (lean_missing, runc_missing)
    for said in (lean_missing, runc_missing):
        assert "exec failed: unable to start container process: exec: " in said, said
        assert "no-such-command" in said and "executable file not found in $PATH" in said
    lean_code, lean_output = found["lean"][:2]
    lines = lean_output.splitlines()
    # The container's namespaces, its root (not the test host's), the seccomp filter.
    for kind, link in found["init_ns"].items():
        assert f"ns {kind} {link}" in lines, (kind, lean_output)
    assert "root inside " in lines, lean_output
    # One filter more than the caller's (a user's manager has its own).
    filters = f"Seccomp_filters:\t{found['filters'] + 1}"
    assert "Seccomp:\t2" in lines and filters in lines, lean_output
    assert "unshare exit 1" in lines, lean_output
    assert "Function not implemented" in lean_output  # the profile's ENOSYS, not EPERM
    assert "0::/" in lines, lean_output  # its own cgroup, the root of its namespace
    return {line.split(":")[0]: line for line in lines if ":" in line}


def test_a_system_containers_user_groups_and_no_new_privileges(
        host: TestHost, busybox_ref: str) -> None:
    text = BASE.format(ref=busybox_ref, marker=MARKER) + (
        "user: app\ngroups: [4242, 4343]\nno_new_privileges: true\nworkdir: /tmp\n"
        "env: {PROBE_VAR: lean}\nulimits: {nofile: \"777:888\"}\ncap_add: [SYS_TIME]\n")
    declare(host, "leanapp", text)
    try:
        start(host, "leanapp")
        status = compare(host, "leanapp", user=False)
        assert status["Uid"].split()[1:] == ["1000"] * 4, status
        assert status["Groups"].split()[1:] == ["4242", "4343"], status
        assert status["NoNewPrivs"].split()[1] == "1", status
        output = host.run([PYTHON, "-c", SCRIPT, "leanapp", "system", PROBE]).stdout
        assert "PROBE_VAR=lean" in output and "cwd /tmp" in output
        assert "nofile 777 888 " in output
    finally:
        remove(host, "leanapp")


def test_a_system_container_as_root(host: TestHost, busybox_ref: str) -> None:
    declare(host, "leanroot", BASE.format(ref=busybox_ref, marker=MARKER))
    try:
        start(host, "leanroot")
        status = compare(host, "leanroot", user=False)
        assert status["Uid"].split()[1:] == ["0"] * 4, status
        assert status["NoNewPrivs"].split()[1] == "0", status
        # The check itself goes the lean way, and passes.
        checked = host.run([HOSTCTL, "healthcheck", "leanroot"], check=False)
        assert checked.returncode == 0, checked
    finally:
        remove(host, "leanroot")


def user_declare(host: TestHost, name: str, text: str) -> None:
    home = f"/home/{USER}/.config/hostctl/containers"
    as_user(host, "mkdir", "-p", home)
    host.run(["runuser", "-u", USER, "--", "sh", "-c", f"cat > {home}/{name}.yaml"],
             input=text)
    as_user(host, "systemctl", "--user", "daemon-reload")


def user_remove(host: TestHost, name: str) -> None:
    as_user(host, "systemctl", "--user", "stop", f"{name}.service", check=False)
    host.run(["rm", "-f", f"/home/{USER}/.config/hostctl/containers/{name}.yaml"])
    as_user(host, "systemctl", "--user", "daemon-reload", check=False)


def test_a_rootless_users_container(host: TestHost, busybox_ref: str) -> None:
    user_declare(host, "leanrl", BASE.format(ref=busybox_ref, marker=MARKER)
                 + "env: {PROBE_VAR: rootless}\n")
    try:
        started = as_user(host, "systemctl", "--user", "start", "leanrl.service", check=False)
        assert started.returncode == 0, host.sh("journalctl --no-pager -n 40").stdout
        status = compare(host, "leanrl", user=True)
        assert status["Uid"].split()[1:] == ["0"] * 4, status  # root of its user namespace
        checked = as_user(host, HOSTCTL, "healthcheck", "--user", "leanrl", check=False)
        assert checked.returncode == 0, checked
    finally:
        user_remove(host, "leanrl")


def test_exec_into_a_rootless_container(host: TestHost, busybox_ref: str) -> None:
    user_declare(host, "execrl", BASE.format(ref=busybox_ref, marker=MARKER))
    try:
        as_user(host, "systemctl", "--user", "start", "execrl.service")
        done = as_user(host, HOSTCTL, "exec", "--user", "execrl", "cat", MARKER, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "inside", done
        status = as_user(host, HOSTCTL, "exec", "--user", "execrl", "sh", "-c", "exit 3",
                         check=False)
        assert status.returncode == 3, status
    finally:
        user_remove(host, "execrl")


# Breaks the kept plan of a container's checks: an rlimit the command's process cannot
# set, so the lean exec fails after the joins, before the command's exec.
BREAK = """\
import sys
from hostctl.health import status
bundle = status.bundle_dir(sys.argv[1], False)
lean = status.load_store(bundle)["lean"]
lean["process"]["rlimits"] = [{"type": "RLIMIT_NOT_THERE", "soft": 1, "hard": 1}]
status.remember(bundle, "lean", lean)
"""
WHY = """\
import sys
from hostctl.health import status
print(status.load_store(status.bundle_dir(sys.argv[1], False))["lean"]["why"])
"""


def test_a_lean_exec_failing_before_the_exec_leaves_the_checks_to_runc(
        host: TestHost, busybox_ref: str) -> None:
    text = BASE.format(ref=busybox_ref, marker=MARKER).replace(
        f"health_cmd: test -e {MARKER}", "health_cmd: echo ran >> /tmp/runs")
    declare(host, "leanfb", text)
    try:
        start(host, "leanfb")
        first = host.run([HOSTCTL, "healthcheck", "leanfb"], check=False)
        assert first.returncode == 0, first
        assert host.run([PYTHON, "-c", WHY, "leanfb"]).stdout.strip() == ""  # lean
        host.run([PYTHON, "-c", BREAK, "leanfb"])
        second = host.run([HOSTCTL, "healthcheck", "leanfb"], check=False)
        assert second.returncode == 0, second
        assert "the check runs through runc exec: cannot run" in second.stderr, second
        why = host.run([PYTHON, "-c", WHY, "leanfb"]).stdout
        assert "RLIMIT_NOT_THERE" in why, why
        # The failed attempt ran nothing: one line from the first check, one from runc's.
        runs = host.run([HOSTCTL, "exec", "leanfb", "cat", "/tmp/runs"]).stdout.split()
        assert runs == ["ran", "ran"], runs
    finally:
        remove(host, "leanfb")
