"""Start records (hostctl.launcher.record) in a real systemd: a second start reuses what
the first one worked out, and any change to an input is seen at the next start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_e2e import cgroup_processes, declare, prop, wait_journal
from tests.support.imagebuild import File, Layer, busybox_image, push

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
DECLS = "/etc/hostctl/containers"
RECORDS = "/run/hostctl/launch"

BODY = """\
image: {ref}
command:
  - sh
  - -c
  - echo rec {name} $GREETING$EXTRA $(cat /version 2>/dev/null); exec sleep infinity
stop_timeout: 2
"""


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    return test_host


def versioned_image(registry: Any, version: str) -> str:
    """A busybox image with /version holding VERSION, pushed as demo/versioned:1."""
    layer = Layer((File("version", version),))
    push(registry.host, "demo/versioned", "1", busybox_image(extra_layers=(layer,)))
    return f"{registry.host}/demo/versioned:1"


def record_id(host: Any, name: str) -> str:
    """The record's inode and mtime: a full start writes a new one, a recorded start not."""
    out: str = host.run(["stat", "-c", "%i %Y", f"{RECORDS}/{name}.record"]).stdout
    return out.strip()


def restart(host: Any, name: str, line: str) -> str:
    """Stop, start, and wait for LINE from this start in the journal; the record's id."""
    host.run(["systemctl", "stop", name])
    return start(host, name, line)


def start(host: Any, name: str, line: str) -> str:
    """Start, and wait for LINE from this start in the journal; the record's id."""
    cursor = host.run(["journalctl", "-n", "0", "--show-cursor", "-q"]).stdout.split()[-1]
    host.run(["systemctl", "start", name])
    deadline_journal = ""
    for _ in range(50):
        deadline_journal = host.run(["journalctl", "--no-pager", "-u", f"{name}.service",
                                     f"--after-cursor={cursor}"]).stdout
        if line in deadline_journal:
            return record_id(host, name)
        host.run(["sleep", "0.1"])
    raise AssertionError(f"{line!r} not logged by this start of {name}:\n{deadline_journal}")


def test_second_start_reuses_the_record(host: Any, busybox_ref: str) -> None:
    declare(host, "rec1", BODY.format(ref=busybox_ref, name="rec1") + "env:\n  GREETING: hi\n")
    host.run(["systemctl", "start", "rec1"])
    wait_journal(host, "rec1.service", "rec rec1 hi")
    first = record_id(host, "rec1")
    unit_cgroup = prop(host, "rec1.service", "ControlGroup")
    wanted = f'"cgroupsPath": "{unit_cgroup}/container"'
    try:
        # The full start looked for a record first: it still gives runc UNIT/container.
        assert wanted in host.read_file("/run/hostctl/containers/rec1/config.json")
        assert restart(host, "rec1", "rec rec1 hi") == first  # no new record: reused
        assert wanted in host.read_file("/run/hostctl/containers/rec1/config.json")
        assert "hostctl" not in cgroup_processes(host, "rec1.service")
        assert "sleep" in cgroup_processes(host, "rec1.service")
        host.run(["systemctl", "stop", "rec1"])
        # A clean stop leaves nothing but the record.
        for leftover in ("/run/hostctl/containers/rec1", "/var/lib/hostctl/containers/rec1",
                         "/run/hostctl/runc/rec1"):
            assert host.run(["test", "-e", leftover], check=False).returncode == 1, leftover
    finally:
        host.run(["systemctl", "stop", "rec1"], check=False)


def test_changed_declaration_env_file_and_drop_in_are_seen(host: Any, busybox_ref: str,
                                                           tmp_path: Path) -> None:
    body = BODY.format(ref=busybox_ref, name="rec2") + "env_files: [/etc/rec2.env]\n"
    host.write_file("/etc/rec2.env", "GREETING=one\n")
    declare(host, "rec2", body)
    try:
        host.run(["systemctl", "start", "rec2"])
        wait_journal(host, "rec2.service", "rec rec2 one")
        first = record_id(host, "rec2")
        host.write_file("/etc/rec2.env", "GREETING=two\n")  # same size, new content
        second = restart(host, "rec2", "rec rec2 two")
        assert second != first
        host.write_file(f"{DECLS}/rec2.yaml.d/10-greeting.yaml", "env:\n  EXTRA: three\n")
        host.run(["systemctl", "daemon-reload"])
        third = restart(host, "rec2", "rec rec2 twothree")
        assert third != second
        declare(host, "rec2", body.replace("echo rec", "echo REC"))
        restart(host, "rec2", "REC rec2 twothree")
    finally:
        host.run(["systemctl", "stop", "rec2"], check=False)
        host.run(["rm", "-rf", f"{DECLS}/rec2.yaml.d", "/etc/rec2.env"])


def test_new_image_under_the_same_tag_is_used(host: Any, registry: Any) -> None:
    ref = versioned_image(registry, "v1")
    declare(host, "rec3", BODY.format(ref=ref, name="rec3"))
    try:
        host.run(["systemctl", "start", "rec3"])
        wait_journal(host, "rec3.service", "rec rec3 v1")
        restart(host, "rec3", "rec rec3 v1")
        versioned_image(registry, "v2")
        host.run([HOSTCTL, "pull", ref])
        restart(host, "rec3", "rec rec3 v2")
    finally:
        host.run(["systemctl", "stop", "rec3"], check=False)


def test_leftovers_of_a_crash_take_the_full_start(host: Any, busybox_ref: str) -> None:
    declare(host, "rec4", BODY.format(ref=busybox_ref, name="rec4") + "volumes: [rec4data:/data]\n")
    try:
        host.run(["systemctl", "start", "rec4"])
        wait_journal(host, "rec4.service", "rec rec4")
        host.run(["systemctl", "stop", "rec4"])
        first = record_id(host, "rec4")
        # What a power cut between start and stop leaves: a writable layer with a file.
        host.run(["mkdir", "-p", "/var/lib/hostctl/containers/rec4/upper"])
        host.write_file("/var/lib/hostctl/containers/rec4/upper/stale", "x")
        second = restart(host, "rec4", "rec rec4")
        assert second != first
        assert host.run(["test", "-e", "/var/lib/hostctl/containers/rec4/upper/stale"],
                        check=False).returncode == 1
        # A named volume removed while stopped is made again, not bind-mounted from nowhere.
        host.run(["systemctl", "stop", "rec4"])
        host.run(["rm", "-rf", "/var/lib/hostctl/volumes/rec4data"])
        third = restart(host, "rec4", "rec rec4")
        assert third != second
        assert host.run(["test", "-d", "/var/lib/hostctl/volumes/rec4data"],
                        check=False).returncode == 0
    finally:
        host.run(["systemctl", "stop", "rec4"], check=False)


BREAK_RECORD = """\
import marshal, sys
path = sys.argv[1]
with open(path, "rb") as handle:
    record = marshal.load(handle)
record["config"] = record["config"].replace('"args": [', '"args": ["/no/such/program", ', 1)
with open(path, "wb") as handle:
    marshal.dump(record, handle)
"""


def test_a_failed_recorded_start_cleans_up_and_the_next_start_is_full(host: Any,
                                                                      busybox_ref: str) -> None:
    declare(host, "rec5", BODY.format(ref=busybox_ref, name="rec5"))
    try:
        host.run(["systemctl", "start", "rec5"])
        wait_journal(host, "rec5.service", "rec rec5")
        host.run(["systemctl", "stop", "rec5"])
        # A record that still matches every input but whose config cannot start: the
        # Python launcher's recorded start fails as a start does, and undoes itself (the
        # compiled launcher has no fast record to go on: it hands the start over).
        host.write_file("/tmp/break_record.py", BREAK_RECORD)
        host.run(["python3", "/tmp/break_record.py", f"{RECORDS}/rec5.record"])
        host.run(["rm", f"{RECORDS}/rec5.fast"])
        assert host.run(["systemctl", "start", "rec5"], check=False).returncode != 0
        journal = wait_journal(host, "rec5.service", "hostctl launch rec5:")
        assert "Traceback" not in journal
        for leftover in ("/run/hostctl/containers/rec5", "/var/lib/hostctl/containers/rec5",
                         "/run/hostctl/runc/rec5", f"{RECORDS}/rec5.record"):
            assert host.run(["test", "-e", leftover], check=False).returncode == 1, leftover
        host.run(["systemctl", "reset-failed", "rec5"])
        host.run(["systemctl", "start", "rec5"])  # a full start, which records again
        assert host.run(["test", "-e", f"{RECORDS}/rec5.record"], check=False).returncode == 0
    finally:
        host.run(["systemctl", "stop", "rec5"], check=False)


def test_the_compiled_launcher_starts_without_python(host: Any, busybox_ref: str) -> None:
    """ExecStart= is the compiled launcher (hostctl install built it: the guest has the
    machine's gcc). With a fast record whose config cannot start, it hands the start to
    the Python launcher, whose full start cleans up and records again; with the Python
    launcher's record made unreadable, a recorded start still runs from the fast record
    (the Python launcher would have made a full start, and a new record)."""
    declare(host, "rec6", BODY.format(ref=busybox_ref, name="rec6"))
    fast, record = f"{RECORDS}/rec6.fast", f"{RECORDS}/rec6.record"
    try:
        assert "/hostctl-launch." in prop(host, "rec6.service", "ExecStart")
        host.run(["systemctl", "start", "rec6"])
        wait_journal(host, "rec6.service", "rec rec6")
        first = record_id(host, "rec6")
        host.run(["systemctl", "stop", "rec6"])
        host.run(["sed", "-i", r's|"args": \[|"args": ["/no/such/program", |', fast])
        assert "/no/such/program" in host.read_file(fast)
        second = restart(host, "rec6", "rec rec6")  # runc create failed: a full start
        assert second != first
        assert "Traceback" not in host.journal("rec6.service")
        assert "/no/such/program" not in host.read_file(fast)
        host.run(["systemctl", "stop", "rec6"])
        host.run(["sh", "-c", f"printf unreadable > {record}"])  # the same file
        unreadable = record_id(host, "rec6")
        assert start(host, "rec6", "rec rec6") == unreadable
        assert host.read_file(record) == "unreadable"
    finally:
        host.run(["systemctl", "stop", "rec6"], check=False)
