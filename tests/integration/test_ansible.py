"""The Ansible collection against a fleet of three systemd test hosts, over ssh.

One fleet for the module: the install role prepares the hosts from a freshly built wheel,
then plays deploy, re-run, change, check and remove containers, and the tests look at
the hosts themselves (unit states, main PIDs, files) rather than only at Ansible's word.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet import Fleet, PlayRun
from tests.support.imagebuild import File, ImageSpec, Layer, push
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV = "/opt/hostctl"  # where the role installs hostctl inside the guests
APPS = ("app1", "app2")

INSTALL = """\
- hosts: fleet
  gather_facts: true
  gather_subset: [min]
  roles:
    - role: hostctl.hostctl.install
      vars:
        hostctl_venv: @VENV@
        hostctl_wheel: "{{ wheel }}"
        hostctl_pip_extra_args: "--no-index --find-links {{ wheelhouse }}"
        hostctl_apt_cache_valid_time: 0
        hostctl_linger_users: [alice]
""".replace("@VENV@", VENV)

DEPLOY = """\
- hosts: fleet
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - name: Deploy the apps
      hostctl.hostctl.container:
        name: "{{ item.name }}"
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; echo $GREETING from $APP; sleep 1d & wait"]
        env:
          APP: "{{ item.name }}"
          GREETING: "{{ item.greeting }}"
        stop_timeout: 2
        state: "{{ state | default('started') }}"
      loop:
        - {name: app1, greeting: "{{ app1_greeting | default('hello') }}"}
        - {name: app2, greeting: hello}
""".replace("@VENV@", VENV)


def run_ok(fleet: Fleet, play: str, **kwargs: object) -> PlayRun:
    return fleet.playbook(play, **kwargs).check()  # type: ignore[arg-type]


def main_pids(fleet: Fleet, unit: str) -> dict[str, str]:
    return {name: host.run(["systemctl", "show", "-P", "MainPID", unit]).stdout.strip()
            for name, host in fleet.hosts.items()}


def active(fleet: Fleet, unit: str) -> dict[str, str]:
    return {name: host.run(["systemctl", "is-active", unit], check=False).stdout.strip()
            for name, host in fleet.hosts.items()}


FINGERPRINT = r"""
find /etc/hostctl /var/lib/hostctl -xdev -printf '%p %y %m %s\n' 2>/dev/null | sort
find /etc/hostctl /var/lib/hostctl/storage -xdev -type f -exec sha256sum {} + 2>/dev/null | sort
stat -c '%n %y' /run/systemd/generator /run/systemd/generator/*.service 2>/dev/null
systemctl show -p ActiveState -p MainPID -p ExecMainStartTimestamp -p NRestarts app1 app2
"""


def fingerprint(fleet: Fleet) -> dict[str, str]:
    """Everything a change would touch: declarations, store, generated units, units."""
    return {name: host.sh(FINGERPRINT).stdout for name, host in fleet.hosts.items()}


@pytest.fixture(scope="module")
def wheels() -> Iterator[tuple[Path, Path]]:
    """A hostctl wheel built from this tree, and a wheelhouse with its dependencies (under
    /var/tmp: the guests have their own /tmp but see the machine's /var/tmp)."""
    out = Path(tempfile.mkdtemp(prefix="hostctl-wheels-", dir="/var/tmp"))
    try:
        yield _build_wheels(out)
    finally:
        shutil.rmtree(out)


def _build_wheels(out: Path) -> tuple[Path, Path]:
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-w", str(out / "house"), str(REPO)], check=True,
                   capture_output=True)
    wheel = out / "hostctl"
    wheel.mkdir()
    built = next((out / "house").glob("hostctl-*.whl"))
    built.rename(wheel / built.name)
    return wheel / built.name, out / "house"


@pytest.fixture(scope="module")
def fleet(wheels: tuple[Path, Path], busybox_ref: str) -> Iterator[Fleet]:
    # The wheelhouse must exist before boot: the guests see the machine's / as it was.
    with Fleet(3) as booted:
        for host in booted.hosts.values():
            host.run(["useradd", "--create-home", "alice"])
        booted.image = busybox_ref  # type: ignore[attr-defined]
        booted.wheels = wheels  # type: ignore[attr-defined]
        yield booted


def install(fleet: Fleet) -> PlayRun:
    wheel, house = fleet.wheels  # type: ignore[attr-defined]
    return run_ok(fleet, INSTALL,
                  extra_vars={"wheel": str(wheel), "wheelhouse": str(house)})


def deploy(fleet: Fleet, **extra: object) -> PlayRun:
    return fleet.playbook(DEPLOY, extra_vars={"image": fleet.image, **extra})  # type: ignore[attr-defined]


def test_install_role_prepares_plain_hosts(fleet: Fleet) -> None:
    first = install(fleet)
    assert all(count > 0 for count in first.changed.values()), first.stdout
    for host in fleet.hosts.values():
        # hostctl runs from the role's venv, not from the machine's checkout.
        done = host.run([f"{VENV}/bin/python", "-c", "import hostctl; print(hostctl.__file__)"])
        assert done.stdout.startswith(f"{VENV}/lib/")
        # the compiled generator (genfast.c: the guests have the machine's gcc), which execs
        # the venv's generator script when its fast cache does not answer
        for kind in ("system", "user"):
            program = f"/etc/systemd/{kind}-generators/hostctl-generator"
            magic = host.run(["head", "-c", "4", program])
            assert magic.stdout == "\x7fELF"
        script = host.run(["head", "-1", "/usr/local/lib/hostctl/hostctl-generator.py"])
        assert script.stdout.strip() == f"#!{VENV}/bin/python -sSE"
        assert host.run(["test", "-e", "/var/lib/systemd/linger/alice"], check=False)\
            .returncode == 0
    again = install(fleet)
    assert set(again.changed.values()) == {0}, again.stdout


def test_play_deploys_two_containers_to_every_host(fleet: Fleet) -> None:
    run = deploy(fleet).check()
    assert set(run.changed.values()) == {1}, run.stdout  # one task, changed on each host
    for app in APPS:
        assert set(active(fleet, f"{app}.service").values()) == {"active"}
    for host in fleet.hosts.values():
        deadline = time.monotonic() + 10
        while "hello from app1" not in host.journal("app1.service"):
            assert time.monotonic() < deadline, host.journal("app1.service")
            time.sleep(0.2)


def test_second_run_reports_no_change_anywhere(fleet: Fleet) -> None:
    pids = main_pids(fleet, "app1.service")
    run = deploy(fleet).check()
    assert set(run.changed.values()) == {0}, run.stdout
    assert main_pids(fleet, "app1.service") == pids


def test_check_mode_reports_the_change_and_touches_nothing(fleet: Fleet) -> None:
    before = fingerprint(fleet)
    run = fleet.playbook(DEPLOY, check=True, diff=True,
                         extra_vars={"image": fleet.image, "app1_greeting": "howdy"}).check()  # type: ignore[attr-defined]
    assert set(run.changed.values()) == {1}, run.stdout
    assert "-  GREETING: hello" in run.stdout and "+  GREETING: howdy" in run.stdout, \
        run.stdout
    assert fingerprint(fleet) == before


def test_changing_one_env_restarts_only_that_unit(fleet: Fleet) -> None:
    app1, app2 = main_pids(fleet, "app1.service"), main_pids(fleet, "app2.service")
    run = deploy(fleet, app1_greeting="howdy").check()
    assert set(run.changed.values()) == {1}, run.stdout
    now1, now2 = main_pids(fleet, "app1.service"), main_pids(fleet, "app2.service")
    assert all(now1[name] != app1[name] for name in app1), (app1, now1)
    assert now2 == app2
    assert set(active(fleet, "app1.service").values()) == {"active"}


def test_bad_value_fails_naming_the_key(fleet: Fleet) -> None:
    play = DEPLOY.replace("stop_timeout: 2", "stop_timeout: 2\n        memory: lots")
    run = fleet.playbook(play, extra_vars={"image": fleet.image})  # type: ignore[attr-defined]
    assert run.returncode != 0 and set(run.failed.values()) == {1}
    assert "memory" in run.stdout and "lots" in run.stdout, run.stdout


ABSENT = DEPLOY.replace('"{{ state | default(\'started\') }}"', "absent")


def test_absent_stops_and_removes_then_reports_no_change(fleet: Fleet) -> None:
    run = fleet.playbook(ABSENT, extra_vars={"image": fleet.image}).check()  # type: ignore[attr-defined]
    assert set(run.changed.values()) == {1}, run.stdout
    for app in APPS:
        assert set(active(fleet, f"{app}.service").values()) == {"inactive"}
    for host in fleet.hosts.values():
        left = host.sh("ls /etc/hostctl/containers/ 2>/dev/null || true").stdout
        assert "app1" not in left and "app2" not in left, left
    again = fleet.playbook(ABSENT, extra_vars={"image": fleet.image}).check()  # type: ignore[attr-defined]
    assert set(again.changed.values()) == {0}, again.stdout


LISTED = """\
- hosts: fleet
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - name: Two containers in one task, the task's options shared
      hostctl.hostctl.container:
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; echo $GREETING from $APP; sleep 1d & wait"]
        stop_timeout: 2
        state: "{{ state | default('started') }}"
        containers:
          - {name: list1, env: {APP: list1, GREETING: "{{ greeting | default('hi') }}"}}
          - {name: list2, env: {APP: list2, GREETING: hi}}
""".replace("@VENV@", VENV)
LISTED_UNITS = ("list1.service", "list2.service")


def listed(fleet: Fleet, *, check: bool = False, **extra: str) -> PlayRun:
    return fleet.playbook(LISTED, check=check, diff=check,
                          extra_vars={"image": fleet.image, **extra}).check()  # type: ignore[attr-defined]


# A generator of the test's own: systemd runs every generator at each daemon-reload, so
# the lines it appends count the reloads (systemd 252 does not log them at info level).
RELOAD_COUNTER = "#!/bin/sh\necho reload >> /run/reload-count\n"


def reload_counter(fleet: Fleet) -> None:
    for host in fleet.hosts.values():
        host.write_file("/etc/systemd/system-generators/zz-reload-count", RELOAD_COUNTER,
                        mode=0o755)
        host.run(["rm", "-f", "/run/reload-count"])


def reloads(fleet: Fleet) -> dict[str, int]:
    """daemon-reloads on each host since reload_counter()."""
    return {name: len(host.run(["sh", "-c", "cat /run/reload-count 2>/dev/null || true"])
                      .stdout.split()) for name, host in fleet.hosts.items()}


def journal_cursors(fleet: Fleet) -> dict[str, str]:
    """Where each host's journal ends now."""
    return {name: host.sh("journalctl -n0 --show-cursor -o cat | sed -n 's/^-- cursor: //p'")
            .stdout.strip() for name, host in fleet.hosts.items()}


def manager_lines(fleet: Fleet, cursors: dict[str, str]) -> dict[str, list[str]]:
    """What systemd (PID 1) logged on each host since CURSORS."""
    return {name: host.run(["journalctl", "_PID=1", f"--after-cursor={cursors[name]}",
                            "-o", "cat"]).stdout.splitlines()
            for name, host in fleet.hosts.items()}


def test_one_task_with_a_list_of_containers(fleet: Fleet) -> None:
    try:
        cursors = journal_cursors(fleet)
        reload_counter(fleet)
        assert set(listed(fleet).changed.values()) == {1}
        for unit in LISTED_UNITS:
            assert set(active(fleet, unit).values()) == {"active"}
        # A first deploy: one daemon-reload per host for both declarations and their
        # enable drop-ins, and both start jobs queued before either container is up.
        assert set(reloads(fleet).values()) == {1}
        for name, lines in manager_lines(fleet, cursors).items():
            starting = [i for i, line in enumerate(lines) if line.startswith("Starting list")]
            started = [i for i, line in enumerate(lines) if line.startswith("Started list")]
            assert len(starting) == len(started) == 2, (name, lines)
            assert max(starting) < min(started), (name, lines)
        assert "hi from list1" in fleet.hosts["fleet1"].journal("list1.service")
        pids = {unit: main_pids(fleet, unit) for unit in LISTED_UNITS}
        assert set(listed(fleet).changed.values()) == {0}
        # Check mode with --diff: each container's declaration diff; nothing moves.
        run = listed(fleet, check=True, greeting="yo")
        assert set(run.changed.values()) == {1}
        assert "-  GREETING: hi" in run.stdout and "+  GREETING: yo" in run.stdout, run.stdout
        assert {unit: main_pids(fleet, unit) for unit in LISTED_UNITS} == pids
        assert set(reloads(fleet).values()) == {1}  # no-op and check runs reload nothing
        # The change restarts only the container whose declaration changed.
        assert set(listed(fleet, greeting="yo").changed.values()) == {1}
        assert all(main_pids(fleet, "list1.service")[n] != pids["list1.service"][n]
                   for n in fleet.hosts)
        assert main_pids(fleet, "list2.service") == pids["list2.service"]
    finally:
        gone = listed(fleet, state="absent")
        for host in fleet.hosts.values():
            host.run(["rm", "-f", "/etc/systemd/system-generators/zz-reload-count"])
    assert set(gone.changed.values()) == {1}
    for unit in LISTED_UNITS:
        assert set(active(fleet, unit).values()) == {"inactive"}


BROKEN = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - hostctl.hostctl.container:
        name: broken
        image: "{{ image }}"
        network: host
        state: "{{ state }}"
""".replace("@VENV@", VENV)


def test_failed_start_fails_the_task_with_the_journal(fleet: Fleet) -> None:
    missing = fleet.image.replace("demo/busybox:1", "demo/nothing-here:1")  # type: ignore[attr-defined]
    run = fleet.playbook(BROKEN, extra_vars={"image": missing, "state": "started"})
    try:
        assert run.failed == {"fleet1": 1}, run.stdout
        # The unit's own journal lines, where the launcher said why it could not start.
        assert "broken.service" in run.stdout and "nothing-here" in run.stdout, run.stdout
    finally:
        fleet.playbook(BROKEN, extra_vars={"image": missing, "state": "absent"}).check()


IMAGE = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - hostctl.hostctl.image:
        name: "{{ ref }}"
        state: "{{ state | default('present') }}"
        pull: "{{ pull | default('missing') }}"
      register: result
    - ansible.builtin.debug:
        msg: "DIGEST={{ result.digest or 'none' }} BEFORE={{ result.digest_before or 'none' }}"
""".replace("@VENV@", VENV)


def image_task(fleet: Fleet, ref: str, *, check: bool = False, **extra: str
               ) -> tuple[int, str, str]:
    """Run the image module on fleet1: (changed, digest, digest_before) it reported."""
    run = fleet.playbook(IMAGE, check=check, extra_vars={"ref": ref, **extra}).check()
    found = re.search(r"DIGEST=(\S+) BEFORE=([^\s\"]+)", run.stdout)
    assert found, run.stdout
    return run.changed["fleet1"], found.group(1), found.group(2)


def stored(fleet: Fleet, ref: str) -> str | None:
    """The digest REF has in fleet1's store, asked of hostctl there (None: not stored)."""
    done = fleet.hosts["fleet1"].run([f"{VENV}/bin/hostctl", "image", "inspect", ref,
                                      "--format", "json"], check=False)
    return json.loads(done.stdout)["digest"] if done.returncode == 0 else None


def small(text: str) -> ImageSpec:
    return ImageSpec((Layer((File("etc/hello", f"{text}\n"),)),), {"Cmd": ["sh"]})


def test_image_module_pulls_pins_and_removes(fleet: Fleet, registry: Registry) -> None:
    ref = f"{registry.host}/ansible/img:1"
    first = push(registry.host, "ansible/img", "1", small("one"))
    assert image_task(fleet, ref) == (1, first, "none")
    assert stored(fleet, ref) == first
    assert image_task(fleet, ref) == (0, first, first)
    digest = push(registry.host, "ansible/pinned", "1", small("pinned"))
    pinned = f"{registry.host}/ansible/pinned@{digest}"
    assert image_task(fleet, pinned) == (1, digest, "none")
    assert stored(fleet, pinned) == digest
    assert image_task(fleet, pinned, pull="always")[0] == 0  # a digest never moves
    assert image_task(fleet, pinned, check=True, state="absent")[0] == 1
    assert stored(fleet, pinned) == digest  # check mode removed nothing
    assert image_task(fleet, pinned, state="absent") == (1, "none", digest)
    assert stored(fleet, pinned) is None
    assert image_task(fleet, pinned, state="absent")[0] == 0


def test_pull_always_picks_up_a_moved_tag(fleet: Fleet, registry: Registry) -> None:
    ref = f"{registry.host}/ansible/moving:1"
    old = push(registry.host, "ansible/moving", "1", small("old"))
    image_task(fleet, ref)
    new = push(registry.host, "ansible/moving", "1", small("new"))
    assert image_task(fleet, ref) == (0, old, old)  # pull: missing keeps what is stored
    # Check mode asks the registry for the digest only: the change shows, nothing moves.
    assert image_task(fleet, ref, check=True, pull="always") == (1, new, old)
    assert stored(fleet, ref) == old
    assert image_task(fleet, ref, pull="always") == (1, new, old)
    assert stored(fleet, ref) == new
    assert image_task(fleet, ref, pull="always") == (0, new, new)


INFO = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - hostctl.hostctl.container:
        name: shown
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1d & wait"]
        labels: {tier: web}
        stop_timeout: 2
        state: "{{ state }}"
    - hostctl.hostctl.container_info:
        name: [shown, never-declared]
      register: info
    - ansible.builtin.debug:
        msg: "INFO={{ info.containers | to_json }}"
""".replace("@VENV@", VENV)


def test_container_info_reports_what_runs(fleet: Fleet) -> None:
    image = fleet.image  # type: ignore[attr-defined]
    host = fleet.hosts["fleet1"]
    try:
        run = fleet.playbook(INFO, extra_vars={"image": image, "state": "started"}).check()
        found = re.search(r"INFO=(\[.*\])\"", run.stdout)
        assert found, run.stdout
        rows = json.loads(found.group(1).replace('\\"', '"'))
        assert [row["name"] for row in rows] == ["shown"]  # undeclared names are left out
        row = rows[0]
        pid = host.run(["systemctl", "show", "-P", "MainPID", "shown.service"]).stdout.strip()
        assert (row["active_state"], str(row["main_pid"])) == ("active", pid)
        assert row["image"] == image and row["labels"] == {"tier": "web"}
        assert row["health"] is None  # no check declared, no HEALTHCHECK in the image
        assert row["source"] == "/etc/hostctl/containers/shown.yaml"
        stopped = fleet.playbook(INFO, extra_vars={"image": image, "state": "stopped"}).check()
        found = re.search(r"INFO=(\[.*\])\"", stopped.stdout)
        assert found, stopped.stdout
        row = json.loads(found.group(1).replace('\\"', '"'))[0]
        assert (row["active_state"], row["main_pid"]) == ("inactive", 0)
    finally:
        fleet.playbook(INFO, extra_vars={"image": image, "state": "absent"})


ROOTLESS = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
  tasks:
    - hostctl.hostctl.container:
        name: notes
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; echo notes up as $(id -u); sleep 1d & wait"]
        stop_timeout: 2
        scope: user
        owner: alice
""".replace("@VENV@", VENV)


def user_unit_active(host: object, unit: str, timeout: float) -> str:
    uid = host.run(["id", "-u", "alice"]).stdout.strip()  # type: ignore[attr-defined]
    argv = ["runuser", "-u", "alice", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
            "systemctl", "--user", "is-active", unit]
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = host.run(argv, check=False).stdout.strip()  # type: ignore[attr-defined]
        if state == "active":
            break
        time.sleep(0.5)
    return state


def test_user_container_runs_after_a_reboot(fleet: Fleet) -> None:
    run = fleet.playbook(ROOTLESS, extra_vars={"image": fleet.image}).check()  # type: ignore[attr-defined]
    assert run.changed == {"fleet1": 1}, run.stdout
    host = fleet.hosts["fleet1"]
    assert user_unit_active(host, "notes.service", 5) == "active"
    again = fleet.playbook(ROOTLESS, extra_vars={"image": fleet.image}).check()  # type: ignore[attr-defined]
    assert again.changed == {"fleet1": 0}, again.stdout
    host.reboot()
    assert user_unit_active(host, "notes.service", 60) == "active", \
        host.journal("notes.service", user=True)


NETWORK_AND_VOLUME = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
    state: present
  tasks:
    - hostctl.hostctl.network:
        name: qnet
        subnet: 10.90.77.0/24
        internal: true
        mtu: "{{ mtu | default(omit) }}"
        state: "{{ state }}"
        scope: user
        owner: alice
    - hostctl.hostctl.volume:
        name: qdata
        copy: false
        state: "{{ state }}"
        scope: user
        owner: alice
    - hostctl.hostctl.container:
        name: member
        image: "{{ image }}"
        network: qnet
        ip: 10.90.77.50
        volumes: ["qdata:/data"]
        command: ["sh", "-c", "ip -4 -o addr show eth0 > /data/addr; trap 'exit 0' TERM;
                   sleep 1d & wait"]
        stop_timeout: 2
        state: "{{ 'started' if state == 'present' else 'absent' }}"
        scope: user
        owner: alice
""".replace("@VENV@", VENV)


def test_network_and_volume_modules_declare_what_a_container_uses(fleet: Fleet) -> None:
    """alice's internal network and volume, declared by their modules; her container on
    them (at a static address) writes its address into the volume."""
    host = fleet.hosts["fleet1"]
    image = fleet.image  # type: ignore[attr-defined]
    home = "/home/alice/.config/hostctl"
    addr = "/home/alice/.local/share/hostctl/volumes/qdata/_data/addr"
    # A user network's pasta opens /dev/net/tun, which udev leaves 0666 on a real host
    # (nspawn makes it 0600). The network is internal: pasta forwards no port.
    host.run(["chmod", "0666", "/dev/net/tun"])
    try:
        run = fleet.playbook(NETWORK_AND_VOLUME, extra_vars={"image": image}).check()
        assert run.changed == {"fleet1": 3}, run.stdout
        assert user_unit_active(host, "member.service", 10) == "active"
        deadline = time.monotonic() + 10
        while host.run(["test", "-s", addr], check=False).returncode != 0:
            assert time.monotonic() < deadline, host.journal("member.service", user=True)
            time.sleep(0.2)
        assert "inet 10.90.77.50/24" in host.run(["cat", addr]).stdout
        assert "internal: true" in host.run(["cat", f"{home}/networks/qnet.yaml"]).stdout
        # Run again in check mode with the network's MTU changed: only the network task
        # would change (the volume and the container are as declared); nothing is written.
        before = host.run(["cat", f"{home}/networks/qnet.yaml"]).stdout
        checked = fleet.playbook(NETWORK_AND_VOLUME, check=True, diff=True,
                                 extra_vars={"image": image, "mtu": 1400}).check()
        assert checked.changed == {"fleet1": 1} and "+mtu: 1400" in checked.stdout, \
            checked.stdout
        for task in ("volume", "container"):
            part = checked.stdout.split(f"TASK [hostctl.hostctl.{task}]")[1]
            assert "ok: [fleet1]" in part.split("TASK [")[0].split("PLAY RECAP")[0], part
        assert host.run(["cat", f"{home}/networks/qnet.yaml"]).stdout == before
    finally:
        gone = fleet.playbook(NETWORK_AND_VOLUME,
                              extra_vars={"image": image, "state": "absent"}).check()
    assert gone.changed == {"fleet1": 3}, gone.stdout
    left = host.sh(f"ls {home}/networks {home}/volumes {home}/containers 2>/dev/null; true")
    assert "qnet" not in left.stdout and "qdata" not in left.stdout, left.stdout
    assert host.run(["test", "-e", addr], check=False).returncode == 0  # the data stays


POD_AND_KUBE = """\
- hosts: fleet1
  gather_facts: false
  vars:
    ansible_python_interpreter: @VENV@/bin/python
    state: started
  tasks:
    - hostctl.hostctl.pod:
        name: duo
        network: none
        labels: {app: "{{ label | default('duo') }}"}
        scope: user
        owner: alice
      when: state != 'absent'
    - hostctl.hostctl.container:
        name: "duo-{{ item.name }}"
        image: "{{ image }}"
        pod: duo
        command: ["sh", "-c", "trap 'exit 0' TERM; {{ item.run }}; sleep 1d & wait"]
        stop_timeout: 2
        state: "{{ 'started' if state != 'absent' else 'absent' }}"
        scope: user
        owner: alice
      loop:
        - {name: web, run: "mkdir /www; echo duo-web > /www/index.html; httpd -p 80 -h /www"}
        - name: client
          run: >-
            until [ -n "$w" ]; do sleep 0.2;
            w=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 80 | tail -n 1); done;
            echo got $w
    - hostctl.hostctl.pod:
        name: duo
        state: absent
        scope: user
        owner: alice
      when: state == 'absent'
    - hostctl.hostctl.kube:
        name: hello
        definition: "{{ kube }}"
        state: "{{ 'present' if state != 'absent' else 'absent' }}"
        scope: user
        owner: alice
""".replace("@VENV@", VENV)

HELLO = """\
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: IMAGE
    command: [sh, -c, 'trap "exit 0" TERM; echo TEXT > /tmp/index.html;
              httpd -f -p 8080 -h /tmp & wait']
    ports: [{containerPort: 8080, hostPort: 18437}]
"""


def pod_and_kube(fleet: Fleet, *, check: bool = False, text: str = "hello-kube",
                 **extra: str) -> PlayRun:
    image = fleet.image  # type: ignore[attr-defined]
    kube = HELLO.replace("IMAGE", image).replace("TEXT", text)
    return fleet.playbook(POD_AND_KUBE, check=check, diff=check,
                          extra_vars={"image": image, "kube": kube, **extra}).check()


def user_show(host: Any, prop: str, unit: str) -> str:
    """PROP of alice's UNIT, as `systemctl --user show` says it."""
    uid = host.run(["id", "-u", "alice"]).stdout.strip()
    return host.run(["runuser", "-u", "alice", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
                     "systemctl", "--user", "show", "-P", prop, unit]).stdout.strip()


def test_pod_and_kube_modules(fleet: Fleet) -> None:
    """alice's pod of two members reaching each other on the pod's own localhost (its
    network none: nothing but lo, the members in one network namespace), and her
    Kubernetes Pod answering on its hostPort (pasta); a re-run changes nothing; check
    mode with diff shows the pod's and the app's change and touches nothing; absent
    stops and removes both. (Rootful pods need a network namespace of their own, which
    the fleet's guests, on the machine's network, cannot make.)"""
    host = fleet.hosts["fleet1"]
    host.run(["chmod", "0666", "/dev/net/tun"])  # see the network test: pasta's tun
    config = "/home/alice/.config/hostctl"
    files = f"cat {config}/pods/duo.yaml; find {config}/kube -type f | sort | xargs cat"
    client = ["journalctl", "--no-pager", "-o", "cat", "SYSLOG_IDENTIFIER=duo-client"]
    try:
        run = pod_and_kube(fleet)
        assert run.changed == {"fleet1": 3}, run.stdout  # pod, members (one loop), kube
        assert user_unit_active(host, "duo-pod.service", 5) == "active"
        deadline = time.monotonic() + 15
        while "got duo-web" not in host.run(client).stdout:
            assert time.monotonic() < deadline, host.run(client).stdout + host.sh(
                "journalctl -b --no-pager -n 60").stdout
            time.sleep(0.2)
        deadline = time.monotonic() + 20  # the pod's unit is up; its member starting
        while (got := host.run(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:18437/"],
                               check=False)).stdout != "hello-kube\n":
            assert time.monotonic() < deadline, got.stderr + host.sh(
                "journalctl -b --no-pager -n 60").stdout
            time.sleep(0.2)
        assert user_unit_active(host, "hello-pod.service", 5) == "active"
        pid = user_show(host, "MainPID", "duo-web.service")
        again = pod_and_kube(fleet)
        assert again.changed == {"fleet1": 0}, again.stdout
        before = host.sh(files).stdout
        checked = pod_and_kube(fleet, check=True, label="duo2", text="changed")
        assert checked.changed == {"fleet1": 2}, checked.stdout
        assert "-  app: duo" in checked.stdout and "+  app: duo2" in checked.stdout
        assert "changed > /tmp/index.html" in checked.stdout, checked.stdout
        assert host.sh(files).stdout == before
        assert user_show(host, "MainPID", "duo-web.service") == pid
        assert host.run(["curl", "-sS", "http://127.0.0.1:18437/"]).stdout == "hello-kube\n"
    finally:
        gone = pod_and_kube(fleet, state="absent")
    assert gone.changed == {"fleet1": 3}, gone.stdout
    assert user_show(host, "ActiveState", "duo-pod.service") == "inactive"
    left = host.sh(f"ls {config}/pods {config}/containers {config}/kube 2>/dev/null; true")
    assert "duo" not in left.stdout and "hello" not in left.stdout, left.stdout
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:18437/"],
                    check=False).returncode != 0
