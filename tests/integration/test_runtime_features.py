"""Runtime features a user notices from inside the container, in a real systemd with runc:
`notify`, `runtime: crun`, `devices`, `sysctls`, `timezone`, named volumes and `init`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_e2e import DECLS, HOSTCTL, prop, wait_journal
from tests.support.imagebuild import Dir, File, Layer, Symlink, busybox_image, push
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

VOLUMES = "/var/lib/hostctl/volumes"


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    # systemd-nspawn gives its guest no /dev/fuse: make the node (the machine's driver).
    test_host.sh("[ -e /dev/fuse ] || mknod -m 600 /dev/fuse c 10 229")
    return test_host


@pytest.fixture(scope="module")
def feature_ref(registry: Registry) -> str:
    """busybox plus what the features need: /lib and /lib64 pointing into /usr (so the
    host's /usr, mounted read-only, runs there: systemd-notify), and a directory of
    files owned by app for a named volume to copy."""
    extra = Layer((
        Symlink("lib", "usr/lib"),
        Symlink("lib64", "usr/lib64"),
        Dir("srv"),
        Dir("srv/seed", mode=0o750, uid=1000, gid=1000),
        File("srv/seed/hello.txt", "seeded by the image\n", uid=1000, gid=1000),
    ))
    push(registry.host, "demo/features", "1", busybox_image(extra_layers=[extra]))
    return f"{registry.host}/demo/features:1"


def declare(host: Any, name: str, body: str, network: str = "host") -> None:
    host.write_file(f"{DECLS}/{name}.yaml", f"{body}network: {network}\n")
    host.run(["systemctl", "daemon-reload"])


@pytest.fixture
def units(host: Any) -> Iterator[list[str]]:
    """Names of containers a test declares: stopped and removed after it, even on failure."""
    names: list[str] = []
    yield names
    for name in names:
        host.run(["systemctl", "stop", name], check=False)
        host.run(["systemctl", "reset-failed", name], check=False)
        host.run(["rm", "-f", f"{DECLS}/{name}.yaml"], check=False)
    host.run(["systemctl", "daemon-reload"], check=False)


def wait_prop(host: Any, unit: str, name: str, values: tuple[str, ...],
              timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while (value := prop(host, unit, name)) not in values:
        assert time.monotonic() < deadline, f"{unit} {name}={value}:\n{host.journal(unit)}"
        time.sleep(0.1)
    return value


def leftovers(host: Any, name: str) -> str:
    """Per-start state of container NAME still on the host (none after a stop)."""
    out: str = host.sh(f"ls -d /run/hostctl/containers/{name} /run/hostctl/runc/{name} "
                       f"/var/lib/hostctl/containers/{name} 2>/dev/null || true").stdout
    return out.strip()


# ---- notify ---------------------------------------------------------------------------

GATED_NOTIFY = (
    "echo notify-socket=$NOTIFY_SOCKET; "
    "until [ -e /gate/open ]; do sleep 0.1; done; "
    "systemd-notify --ready && echo told-ready; exec sleep 600"
)


def test_notify_unit_becomes_active_only_when_the_container_says_ready(
    host: Any, feature_ref: str, units: list[str]
) -> None:
    units.append("notifier")
    host.sh("rm -rf /srv/gate && mkdir -p /srv/gate")
    declare(host, "notifier", f"""\
image: {feature_ref}
command: ["sh", "-c", {GATED_NOTIFY!r}]
notify: true
volumes: ["/usr:/usr:ro", "/srv/gate:/gate:ro"]
stop_timeout: 1
""")
    host.run(["systemctl", "start", "--no-block", "notifier"])
    journal = wait_journal(host, "notifier.service", "notify-socket=/")
    time.sleep(1.5)  # the container runs, but has not said READY=1
    assert prop(host, "notifier.service", "ActiveState") == "activating", journal
    host.sh("touch /srv/gate/open")
    try:
        wait_prop(host, "notifier.service", "ActiveState", ("active",))
    except AssertionError as err:  # show whether systemd dropped the forwarded READY=1
        dropped = host.sh("journalctl -b --no-pager | grep 'notify message' || true").stdout
        raise AssertionError(f"{err}\nsystemd's journal:\n{dropped}") from None
    assert "told-ready" in wait_journal(host, "notifier.service", "told-ready")
    # systemd supervises the container's init (sleep, after the exec), not a helper.
    main_pid = prop(host, "notifier.service", "MainPID")
    assert host.read_file(f"/proc/{main_pid}/comm").strip() == "sleep"


def test_notify_container_that_never_says_ready_times_out(
    host: Any, feature_ref: str, units: list[str]
) -> None:
    units.append("silent")
    declare(host, "silent", f"""\
image: {feature_ref}
command: ["sh", "-c", "echo silent-up; exec sleep 600"]
notify: true
stop_timeout: 1
service: {{TimeoutStartSec: 3}}
""")
    started = time.monotonic()
    failed = host.run(["systemctl", "start", "silent"], check=False)
    took = time.monotonic() - started
    assert failed.returncode != 0
    assert 3 <= took < 3 + 5, took
    assert prop(host, "silent.service", "Result") == "timeout"
    assert "silent-up" in host.journal("silent.service")
    assert leftovers(host, "silent") == ""


# ---- runtime: crun --------------------------------------------------------------------

CAP_SYS_RESOURCE = 24


def has_capability(host: Any, number: int) -> bool:
    """Whether the test host's processes can hold capability NUMBER at all."""
    for line in host.read_file("/proc/1/status").splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> number & 1)
    raise AssertionError("no CapBnd line in /proc/1/status")



def test_runtime_crun_runs_the_container_under_crun(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units.append("oncrun")
    declare(host, "oncrun", f"""\
image: {busybox_ref}
command: ["sh", "-c", "trap 'exit 0' TERM; echo on-crun pid=$$; while :; do sleep 0.2; done"]
runtime: crun
stop_timeout: 2
""")
    if not has_capability(host, CAP_SYS_RESOURCE):
        # crun 1.8 raises RLIMIT_MEMLOCK to infinity before it loads its device filter,
        # which needs CAP_SYS_RESOURCE; this machine's bounding set (and so the test
        # host's) lacks it. The start must then fail, and say why.
        assert host.run(["systemctl", "start", "oncrun"], check=False).returncode != 0
        journal = host.journal("oncrun.service")
        assert "crun create oncrun failed" in journal and "RLIM_MEMLOCK" in journal
        assert leftovers(host, "oncrun") == ""
        pytest.skip("crun cannot set up a device cgroup without CAP_SYS_RESOURCE, which "
                    "this machine does not have: the start failed with a clear error")
    host.run(["systemctl", "start", "oncrun"])
    wait_journal(host, "oncrun.service", "on-crun pid=1")
    listed = json.loads(host.run(["crun", "--root", "/run/hostctl/runc", "list",
                                  "--format", "json"]).stdout)
    mine = [c for c in listed if c["id"] == "oncrun"]
    assert mine and mine[0]["status"] == "running"
    assert str(mine[0]["pid"]) == prop(host, "oncrun.service", "MainPID")
    # runc cannot read crun's state: the container is not runc's.
    assert host.run(["runc", "--root", "/run/hostctl/runc", "state", "oncrun"],
                    check=False).returncode != 0
    done = host.run([HOSTCTL, "exec", "oncrun", "sh", "-c", "echo exec-under-crun"])
    assert done.stdout.strip() == "exec-under-crun"
    host.run(["systemctl", "stop", "oncrun"])
    assert prop(host, "oncrun.service", "Result") == "success"
    assert leftovers(host, "oncrun") == ""


# ---- devices --------------------------------------------------------------------------

DEVICE_PROBE = (
    "stat -c 'fuse=%F %t:%T' /dev/fuse; stat -c 'alias=%F %t:%T' /dev/mynull; "
    "echo data > /dev/mynull && echo alias-writable; "
    "cat /dev/mynull && echo alias-readable; "
    "(exec 3</dev/fuse) && echo fuse-opens-for-read; "
    "(exec 3<>/dev/fuse) 2>/dev/null && echo fuse-opens-for-write || echo fuse-write-denied; "
    "[ -e /dev/kmsg ] || echo no-kmsg; echo devices-done"
)


def test_devices_appear_with_their_numbers_and_the_declared_access(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units.append("devs")
    declare(host, "devs", f"""\
image: {busybox_ref}
command: ["sh", "-c", {DEVICE_PROBE!r}]
devices: ["/dev/fuse:/dev/fuse:r", "/dev/null:/dev/mynull", "-/dev/hostctl-absent"]
""")
    host.run(["systemctl", "start", "devs"], check=False)
    journal = wait_journal(host, "devs.service", "devices-done")
    assert "fuse=character special file a:e5" in journal  # 10:229
    assert "alias=character special file 1:3" in journal
    assert "alias-writable" in journal and "alias-readable" in journal
    assert "fuse-opens-for-read" in journal
    assert "fuse-write-denied" in journal  # the declared access is r only
    assert "no-kmsg" in journal


def test_missing_device_fails_the_start_naming_the_declaration(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units.append("nodev")
    declare(host, "nodev", f"""\
image: {busybox_ref}
command: ["true"]
devices: ["/dev/hostctl-absent"]
""")
    assert host.run(["systemctl", "start", "nodev"], check=False).returncode != 0
    journal = host.journal("nodev.service")
    assert f"{DECLS}/nodev.yaml:3:devices" in journal
    assert "/dev/hostctl-absent" in journal
    assert leftovers(host, "nodev") == ""


# ---- sysctls --------------------------------------------------------------------------

SYSCTL_PROBE = (
    "echo ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\\t' ' '); "
    "echo msgmax=$(cat /proc/sys/kernel/msgmax); echo sysctls-done"
)


def test_namespaced_sysctls_are_set_in_the_container_only(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units.append("tuned")
    before = host.sh("cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/msgmax").stdout
    declare(host, "tuned", f"""\
image: {busybox_ref}
command: ["sh", "-c", {SYSCTL_PROBE!r}]
sysctls: {{net.ipv4.ping_group_range: "0 2000", kernel.msgmax: "12345"}}
""", network="none")
    host.run(["systemctl", "start", "tuned"], check=False)
    journal = wait_journal(host, "tuned.service", "sysctls-done")
    assert "ping=0 2000" in journal
    assert "msgmax=12345" in journal
    after = host.sh("cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/msgmax").stdout
    assert after == before  # the host's own values are untouched


@pytest.mark.parametrize(("setting", "network", "says"), [
    ("kernel.panic", "host", "not namespaced"),
    ("net.ipv4.ip_forward", "host", "shares the host's network"),
])
def test_sysctl_that_would_change_the_host_is_refused(
    host: Any, busybox_ref: str, units: list[str], setting: str, network: str, says: str
) -> None:
    units.append("hostwide")
    before = host.read_file(f"/proc/sys/{setting.replace('.', '/')}")
    declare(host, "hostwide", f"""\
image: {busybox_ref}
command: ["sh", "-c", "echo should-not-run"]
sysctls:
  {setting}: "1"
""", network=network)
    assert host.run(["systemctl", "start", "hostwide"], check=False).returncode != 0
    journal = host.journal("hostwide.service")
    assert f"{DECLS}/hostwide.yaml:3:sysctls" in journal
    assert setting in journal and says in journal
    assert "should-not-run" not in journal
    assert host.read_file(f"/proc/sys/{setting.replace('.', '/')}") == before


# ---- timezone -------------------------------------------------------------------------


def test_timezone_sets_the_containers_local_time(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units += ["tokyo", "plain"]
    probe = ("echo zone=$(date +%Z) offset=$(date +%z) file=$(md5sum < /etc/localtime); "
             "echo tz-done")
    declare(host, "tokyo", f"""\
image: {busybox_ref}
command: ["sh", "-c", {probe!r}]
timezone: Asia/Tokyo
""")
    declare(host, "plain", f"""\
image: {busybox_ref}
command: ["sh", "-c", {probe!r}]
""")
    host.run(["systemctl", "start", "tokyo", "plain"], check=False)
    tokyo = host.sh("md5sum < /usr/share/zoneinfo/Asia/Tokyo").stdout.split()[0]
    assert f"zone=JST offset=+0900 file={tokyo} -" in wait_journal(host, "tokyo.service",
                                                                  "tz-done")
    assert "zone=UTC offset=+0000" in wait_journal(host, "plain.service", "tz-done")


def test_unknown_timezone_fails_the_start_naming_the_declaration(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units.append("nowhere")
    declare(host, "nowhere", f"""\
image: {busybox_ref}
command: ["true"]
timezone: Mars/Olympus_Mons
""")
    assert host.run(["systemctl", "start", "nowhere"], check=False).returncode != 0
    journal = host.journal("nowhere.service")
    assert f"{DECLS}/nowhere.yaml:3:timezone" in journal and "Mars/Olympus_Mons" in journal


# ---- named volumes --------------------------------------------------------------------

COUNTER = (
    "n=$(cat /data/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/count; "
    "echo run=$n owner=$(stat -c %u:%g /data) seed=$(cat /srv/seed/hello.txt); "
    "echo >> /srv/seed/hello.txt appended-by-$n; echo volume-done"
)


def test_named_volume_is_created_kept_and_owned_by_the_container_user(
    host: Any, feature_ref: str, units: list[str]
) -> None:
    units += ["counter", "reader"]
    host.sh(f"rm -rf {VOLUMES}/counts {VOLUMES}/seeded")
    declare(host, "counter", f"""\
image: {feature_ref}
command: ["sh", "-c", {COUNTER!r}]
user: app
volumes: ["counts:/data", "seeded:/srv/seed"]
""")
    host.run(["systemctl", "start", "counter"], check=False)
    journal = wait_journal(host, "counter.service", "volume-done")
    assert "run=1 owner=1000:1000 seed=seeded by the image" in journal
    # On the host, under the store: owned by the container's user, content kept.
    assert host.sh(f"stat -c %u:%g:%a {VOLUMES}/counts/_data").stdout.strip() == "1000:1000:755"
    assert host.sh(f"stat -c %u:%g:%a {VOLUMES}/seeded/_data").stdout.strip() == "1000:1000:750"
    assert host.read_file(f"{VOLUMES}/counts/_data/count").strip() == "1"
    host.run(["systemctl", "restart", "counter"], check=False)
    wait_journal(host, "counter.service", "run=2 ")
    # Another container from a declaration naming the same volumes sees the data.
    declare(host, "reader", f"""\
image: {feature_ref}
command: ["sh", "-c", "echo count=$(cat /d/count); cat /s/hello.txt; echo reader-done"]
volumes: ["counts:/d:ro", "seeded:/s:ro"]
""")
    host.run(["systemctl", "start", "reader"], check=False)
    journal = wait_journal(host, "reader.service", "reader-done")
    assert "count=2" in journal
    assert "appended-by-1" in journal and "appended-by-2" in journal


# ---- init -----------------------------------------------------------------------------

# An orphan (the subshell's sleep) is re-parented to PID 1; PID 1 then becomes `sleep`,
# which never waits for children: without an init the orphan stays a zombie.
ORPHAN = (
    "trap 'echo got-INT; exit 0' INT; (sleep 0.2 &); echo orphaned; "
    "while :; do sleep 0.2; done"
)
ZOMBIES = "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l"


def zombies(host: Any, name: str) -> int:
    time.sleep(1)  # the orphan's sleep 0.2 is over
    return int(host.run([HOSTCTL, "exec", name, "sh", "-c", ZOMBIES]).stdout.strip())


def test_init_reaps_zombies_and_forwards_the_stop_signal(
    host: Any, busybox_ref: str, units: list[str]
) -> None:
    units += ["reaper", "noreaper"]
    declare(host, "reaper", f"""\
image: {busybox_ref}
command: ["sh", "-c", {ORPHAN!r}]
init: true
stop_signal: SIGINT
stop_timeout: 20
""")
    orphan_no_init = ORPHAN.replace("while :; do sleep 0.2; done", "exec sleep 600")
    declare(host, "noreaper", f"""\
image: {busybox_ref}
command: ["sh", "-c", {orphan_no_init!r}]
stop_timeout: 1
""")
    host.run(["systemctl", "start", "reaper", "noreaper"])
    wait_journal(host, "reaper.service", "orphaned")
    wait_journal(host, "noreaper.service", "orphaned")
    assert zombies(host, "noreaper") == 1  # what happens without an init
    assert zombies(host, "reaper") == 0
    started = time.monotonic()
    host.run(["systemctl", "stop", "reaper"])
    assert time.monotonic() - started < 5  # the shell got SIGINT: no wait for SIGKILL
    assert "got-INT" in host.journal("reaper.service")
    assert prop(host, "reaper.service", "Result") == "success"
