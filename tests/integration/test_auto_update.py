"""`hostctl auto-update` and `hostctl rollback` in a real systemd test host against real
registries: versions v1, v2, v3 of an image pushed under one tag, and what the containers
run afterwards, read from their bundles (`hostctl ps --format json` digests) and units.

Covered: dry run (pending, nothing changed), update, prune keeping the pinned image,
rollback by hand (and forward again), a release that exits at once (rolled back, not
retried), one that cannot start (rolled back, its Requires= dependent back), one that
never becomes healthy (needs the health checks), --no-rollback, a multi-platform index,
registry down and bad credentials for one container, a user's containers, the Ansible
module in check mode, and the timer.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.imagebuild import (
    BuiltImage,
    File,
    ImageSpec,
    Layer,
    busybox_image,
    push,
    push_index,
)
from tests.support.registry import Registry
from tests.support.registryvariants import htpasswd_auth, htpasswd_line
from tests.support.registryvariants import registry as variant_registry

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
DECLS = "/etc/hostctl/containers"
GRACE = "2"
LOOP = "trap 'exit 0' TERM; echo {word}; while :; do sleep 1 & wait; done"


def spec(word: str, *, cmd: str | None = None, healthy: bool = True,
         **config: Any) -> ImageSpec:
    """A busybox image whose /version says WORD, with /ok unless not HEALTHY."""
    files = [File("version", f"{word}\n".encode())]
    if healthy:
        files.append(File("ok", b"ok\n"))
    return busybox_image(extra_layers=[Layer(tuple(files))],
                         Cmd=["sh", "-c", cmd or LOOP.format(word=word)], **config)


def version(word: str, **options: Any) -> BuiltImage:
    return spec(word, **options).build()


V1, V2 = version("v1"), version("v2")
V3_EXITS = version("v3", cmd="echo v3 is broken; exit 3")
V3_UNHEALTHY = version("v3u", healthy=False)
V3_NO_USER = version("v3n", User="nosuchuser")


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """This module's own registry (tags here move; the session's busybox stays put)."""
    with Registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def host(test_host: Any) -> Any:
    test_host.run([HOSTCTL, "install"])
    return test_host


def declare(host: Any, name: str, ref: str, extra: str = "") -> None:
    host.write_file(f"{DECLS}/{name}.yaml", f"image: {ref}\nauto_update: registry\n"
                    f"network: host\nstop_timeout: 2\n{extra}")
    host.run(["systemctl", "daemon-reload"])
    host.run([HOSTCTL, "start", name])


def remove(host: Any, *names: str) -> None:
    for name in names:
        host.run(["systemctl", "stop", f"{name}.service"], check=False)
        host.run(["systemctl", "reset-failed", f"{name}.service"], check=False)
        host.run(["rm", "-rf", f"{DECLS}/{name}.yaml",
                  f"/var/lib/hostctl/storage/pins/{name}.json"])
    host.run(["systemctl", "daemon-reload"])


def digest_of(host: Any, name: str) -> str | None:
    rows = json.loads(host.run([HOSTCTL, "ps", "--format", "json"]).stdout)
    return next(row["digest"] for row in rows if row["name"] == name)


def unit(host: Any, name: str, prop: str = "ActiveState") -> str:
    out: str = host.run(["systemctl", "show", "-P", prop, f"{name}.service"]).stdout
    return out.strip()


def auto_update(host: Any, *args: str, check: bool = True) -> Any:
    return host.run([HOSTCTL, "auto-update", "--grace", GRACE, *args], check=check,
                    timeout=180)


def rows(done: Any) -> dict[str, dict[str, Any]]:
    return {row["container"]: row for row in json.loads(done.stdout)}


def test_dry_run_then_update_then_rollback_by_hand(host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/web:latest"
    push(registry.host, "app/web", "latest", V1)
    try:
        declare(host, "web", ref)
        assert digest_of(host, "web") == V1.digest
        push(registry.host, "app/web", "latest", V2)
        store = host.sh("cat /var/lib/hostctl/storage/images.json; "
                        "ls /var/lib/hostctl/storage/blobs/sha256").stdout
        pid = unit(host, "web", "MainPID")

        dry = auto_update(host, "--dry-run", "--format", "json")
        row = rows(dry)["web"]
        assert (row["updated"], row["available_digest"]) == ("pending", V2.digest)
        assert host.sh("cat /var/lib/hostctl/storage/images.json; "
                       "ls /var/lib/hostctl/storage/blobs/sha256").stdout == store
        assert unit(host, "web", "MainPID") == pid
        assert host.run(["test", "-e", "/var/lib/hostctl/storage/pins/web.json"],
                        check=False).returncode != 0

        done = auto_update(host)
        line = next(line for line in done.stdout.splitlines() if "web.service" in line)
        assert line.split()[1:] == ["web", ref, "registry", "true"], done.stdout
        assert digest_of(host, "web") == V2.digest
        assert unit(host, "web") == "active"
        again = auto_update(host, "--format", "json")
        assert rows(again)["web"]["updated"] == "false"

        # The image the update replaced survives a prune, and rollback returns to it.
        host.run([HOSTCTL, "image", "prune"])
        back = host.run([HOSTCTL, "rollback", "web", "--grace", GRACE, "--format", "json"])
        assert rows(back)["web"]["updated"] == "rolled back"
        assert digest_of(host, "web") == V1.digest
        assert unit(host, "web") == "active"
        # The release left by hand is not re-applied by the next run ...
        skipped = rows(auto_update(host, "--format", "json"))["web"]
        assert skipped["updated"] == "false" and "rolled back" in skipped["reason"]
        assert digest_of(host, "web") == V1.digest
        # ... and a second rollback goes forward to it again.
        host.run([HOSTCTL, "rollback", "web", "--grace", GRACE])
        assert digest_of(host, "web") == V2.digest
    finally:
        remove(host, "web")


def test_a_release_that_exits_at_once_is_rolled_back_and_not_retried(
        host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/crash:latest"
    push(registry.host, "app/crash", "latest", V2)
    try:
        declare(host, "crash", ref)
        push(registry.host, "app/crash", "latest", V3_EXITS)
        done = auto_update(host)
        assert "rolled back" in done.stdout
        assert "crash: rolled back: the new image exited" in done.stderr
        assert digest_of(host, "crash") == V2.digest
        assert unit(host, "crash") == "active"
        assert "v2" in host.journal("crash.service").split("v3 is broken")[-1]
        pid = unit(host, "crash", "MainPID")
        second = rows(auto_update(host, "--format", "json"))["crash"]
        assert second["updated"] == "false"
        assert V3_EXITS.digest in second["reason"]
        assert unit(host, "crash", "MainPID") == pid
        # No rollback record keeps anything to return to after a rollback.
        fail = host.run([HOSTCTL, "rollback", "crash"], check=False)
        assert fail.returncode != 0 and "no previous image" in fail.stderr
    finally:
        remove(host, "crash")


def test_an_index_is_compared_by_this_platforms_image(host: Any, registry: Registry) -> None:
    arm = [dataclasses.replace(spec(word), architecture="arm64") for word in ("a1", "a2")]
    push_index(registry.host, "app/multi", "latest", [spec("v1"), arm[0]])
    try:
        declare(host, "multi", f"{registry.host}/app/multi:latest")
        pid = unit(host, "multi", "MainPID")
        # Another arm64 image under the tag: the index changed, this host's image did not.
        push_index(registry.host, "app/multi", "latest", [spec("v1"), arm[1]])
        row = rows(auto_update(host, "--format", "json"))["multi"]
        assert (row["updated"], row["running_digest"], row["available_digest"]) == (
            "false", V1.digest, V1.digest)
        assert unit(host, "multi", "MainPID") == pid
        push_index(registry.host, "app/multi", "latest", [spec("v2"), arm[1]])
        row = rows(auto_update(host, "--format", "json"))["multi"]
        assert (row["updated"], row["digest"]) == ("true", V2.digest)
        assert unit(host, "multi") == "active"
    finally:
        remove(host, "multi")


def test_without_rollback_a_failed_release_stays_until_rolled_back_by_hand(
        host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/manual:latest"
    push(registry.host, "app/manual", "latest", V2)
    try:
        declare(host, "manual", ref)
        push(registry.host, "app/manual", "latest", V3_EXITS)
        done = auto_update(host, "--no-rollback", "--format", "json", check=False)
        assert done.returncode == 1
        row = rows(done)["manual"]
        assert row["updated"] == "failed" and "hostctl rollback manual" in row["reason"]
        assert unit(host, "manual") != "active"
        back = host.run([HOSTCTL, "rollback", "manual", "--grace", GRACE])
        assert "rolled back" in back.stdout
        assert unit(host, "manual") == "active" and digest_of(host, "manual") == V2.digest
        assert rows(auto_update(host, "--format", "json"))["manual"]["updated"] == "false"
        # hostctl rm forgets the rollback record (and with it the pin on v3).
        pin = "/var/lib/hostctl/storage/pins/manual.json"
        assert host.run(["test", "-e", pin], check=False).returncode == 0
        host.run([HOSTCTL, "rm", "manual"])
        assert host.run(["test", "-e", pin], check=False).returncode != 0
    finally:
        remove(host, "manual")


def test_a_release_that_cannot_start_is_rolled_back_and_its_dependent_comes_back(
        host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/dep:latest"
    push(registry.host, "app/dep", "latest", V2)
    host.write_file("/etc/systemd/system/consumer.service", textwrap.dedent("""\
        [Unit]
        Requires=dep.service
        After=dep.service
        [Service]
        ExecStart=/bin/sleep infinity
        """))
    try:
        declare(host, "dep", ref)
        host.run(["systemctl", "start", "consumer.service"])
        push(registry.host, "app/dep", "latest", V3_NO_USER)
        row = rows(auto_update(host, "dep", "--format", "json"))["dep"]
        assert row["updated"] == "rolled back", row
        assert "did not start" in row["reason"]
        assert row["dependents"] == ["consumer.service"]
        assert digest_of(host, "dep") == V2.digest
        assert unit(host, "dep") == "active"
        assert unit(host, "consumer") == "active"
    finally:
        host.run(["systemctl", "stop", "consumer.service"], check=False)
        host.run(["rm", "-f", "/etc/systemd/system/consumer.service"])
        remove(host, "dep")


def test_a_release_that_never_becomes_healthy_is_rolled_back(
        host: Any, registry: Registry) -> None:
    pytest.importorskip("hostctl.health.state",
                        reason="health checks (branch health) are not merged yet")
    ref = f"{registry.host}/app/checked:latest"
    push(registry.host, "app/checked", "latest", V2)
    try:
        declare(host, "checked", ref, "health_cmd: test -e /ok\nhealth_interval: 1s\n"
                "health_retries: 2\nhealth_timeout: 2s\n")
        push(registry.host, "app/checked", "latest", V3_UNHEALTHY)
        row = rows(auto_update(host, "checked", "--format", "json"))["checked"]
        assert row["updated"] == "rolled back", row
        assert "became unhealthy" in row["reason"] or "not healthy within" in row["reason"]
        assert digest_of(host, "checked") == V2.digest
        assert unit(host, "checked") == "active"
    finally:
        remove(host, "checked")


def test_registry_down_fails_that_container_only(host: Any, registry: Registry) -> None:
    other = Registry()
    other.__enter__()
    try:
        far = other.host
        push(far, "app/far", "latest", V1)
        push(registry.host, "app/near", "latest", V1)
        declare(host, "far", f"{far}/app/far:latest")
        declare(host, "near", f"{registry.host}/app/near:latest")
        other.close()
        push(registry.host, "app/near", "latest", V2)
        done = auto_update(host, check=False)
        assert done.returncode == 1
        lines = [line for line in done.stderr.splitlines() if line.startswith("far:")]
        assert len(lines) == 1 and "unreachable" in lines[0], done.stderr
        assert f"registry {far} unreachable" in lines[0]
        assert unit(host, "far") == "active" and digest_of(host, "far") == V1.digest
        assert digest_of(host, "near") == V2.digest
    finally:
        other.close()
        remove(host, "far", "near")


def test_bad_credentials_fail_that_container_and_good_ones_update_it(
        host: Any, tmp_path: Path) -> None:
    pytest.importorskip("bcrypt", reason="htpasswd needs python3-bcrypt")
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("alice", "s3cret-pass"))
    authfile = "/root/.config/containers/auth.json"  # read by the launcher and the CLI
    storage = tmp_path / "storage"
    with variant_registry(storage=storage) as (plain, _), \
            variant_registry(htpasswd_auth(users), storage=storage) as (private, _):
        push(plain, "app/private", "latest", V1)
        ref = f"{private}/app/private:latest"
        try:
            host.run([HOSTCTL, "login", private, "-u", "alice", "--password-stdin",
                      "--authfile", authfile], input="s3cret-pass\n")
            declare(host, "private", ref)
            push(plain, "app/private", "latest", V2)
            wrong = base64.b64encode(b"alice:wrong").decode()
            host.write_file(authfile, json.dumps({"auths": {private: {"auth": wrong}}}),
                            mode=0o600)
            done = auto_update(host, check=False)
            assert done.returncode == 1
            line = next(line for line in done.stderr.splitlines()
                        if line.startswith("private: failed:"))
            assert ref in line and "access denied" in line, line
            assert "s3cret" not in done.stdout + done.stderr
            assert unit(host, "private") == "active" and digest_of(host, "private") == V1.digest
            host.run([HOSTCTL, "login", private, "-u", "alice", "--password-stdin",
                      "--authfile", authfile], input="s3cret-pass\n")
            assert rows(auto_update(host, "--format", "json"))["private"]["updated"] == "true"
            assert digest_of(host, "private") == V2.digest
        finally:
            host.run(["rm", "-f", authfile], check=False)
            remove(host, "private")


def test_the_timer_is_off_until_enabled_survives_a_reboot_and_its_service_runs(host: Any) -> None:
    timer = "hostctl-auto-update.timer"
    assert host.run(["systemctl", "is-active", timer], check=False).stdout.strip() \
        == "inactive"
    try:
        out = host.run([HOSTCTL, "auto-update", "--enable-timer"]).stdout
        assert "hostctl-auto-update.timer: enabled" in out
        text = host.run(["systemctl", "cat", timer]).stdout
        assert "OnCalendar=daily" in text and "Persistent=true" in text
        host.run(["systemctl", "daemon-reload"])
        assert host.run(["systemctl", "is-active", timer]).stdout.strip() == "active"
        wants = host.run(["systemctl", "show", "-P", "Wants", "timers.target"]).stdout
        assert timer in wants.split()
        host.run(["systemctl", "start", "hostctl-auto-update.service"], timeout=120)
        assert unit(host, "hostctl-auto-update", "Result") == "success"
        host.reboot()  # enabled means: the generator links it again at every boot
        host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=120)
        assert host.run(["systemctl", "is-active", timer]).stdout.strip() == "active"
    finally:
        host.run([HOSTCTL, "auto-update", "--disable-timer"], check=False)
    assert host.run(["systemctl", "is-active", timer], check=False).stdout.strip() \
        == "inactive"
    wants = host.run(["systemctl", "show", "-P", "Wants", "timers.target"]).stdout
    assert timer not in wants.split()


PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Update the containers that declare auto_update
      hostctl.hostctl.auto_update:
        grace: 2
      register: update
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ update | to_json }}"
        dest: /tmp/auto-update-result.json
      check_mode: false
"""


def playbook(host: Any, *args: str) -> dict[str, Any]:
    """Run PLAY in the guest (connection local, this checkout's collection); the
    auto_update task's registered result."""
    bin_dir = Path(sys.executable).parent
    collection = Path(__file__).resolve().parents[2] / "ansible_collection"
    host.run(["mkdir", "-p", "/tmp/coll/ansible_collections/hostctl"])
    host.run(["ln", "-sfn", str(collection), "/tmp/coll/ansible_collections/hostctl/hostctl"])
    host.write_file("/tmp/auto-update.yml", PLAY)
    env = {"ANSIBLE_COLLECTIONS_PATH": "/tmp/coll", "ANSIBLE_NOCOLOR": "1", "HOME": "/root",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    done = host.run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                     "-e", f"ansible_python_interpreter={sys.executable}",
                     "/tmp/auto-update.yml", *args], env=env, check=False, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(host.read_file("/tmp/auto-update-result.json"))
    return result


def test_the_ansible_module_reports_pending_in_check_mode_then_updates(
        host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/fleet:latest"
    push(registry.host, "app/fleet", "latest", V1)
    try:
        declare(host, "fleet", ref)
        push(registry.host, "app/fleet", "latest", V2)
        index = host.read_file("/var/lib/hostctl/storage/images.json")
        check = playbook(host, "--check")
        assert check["changed"] and check["updated"] == ["fleet"], check
        row = next(r for r in check["results"] if r["container"] == "fleet")
        assert (row["updated"], row["available_digest"]) == ("pending", V2.digest)
        assert digest_of(host, "fleet") == V1.digest
        assert host.read_file("/var/lib/hostctl/storage/images.json") == index
        done = playbook(host)
        assert done["changed"] and done["updated"] == ["fleet"], done
        assert digest_of(host, "fleet") == V2.digest and unit(host, "fleet") == "active"
        again = playbook(host)
        assert not again["changed"] and again["updated"] == []
    finally:
        host.run(["rm", "-rf", "/tmp/coll", "/tmp/auto-update.yml",
                  "/tmp/auto-update-result.json"], check=False)
        remove(host, "fleet")


def test_a_users_container_is_updated_and_rolled_back_by_its_own_manager(
        host: Any, registry: Registry) -> None:
    uid = host.lingering_user("bob")
    env = f"XDG_RUNTIME_DIR=/run/user/{uid}"

    def as_bob(*argv: str, check: bool = True) -> Any:
        return host.run(["runuser", "-u", "bob", "--", "env", env, *argv], check=check,
                        timeout=180)

    ref = f"{registry.host}/app/mine:latest"
    push(registry.host, "app/mine", "latest", V1)
    decls = "/home/bob/.config/hostctl/containers"
    as_bob("mkdir", "-p", decls)
    host.run(["runuser", "-u", "bob", "--", "sh", "-c", f"cat > {decls}/mine.yaml"],
             input=f"image: {ref}\nauto_update: registry\nnetwork: host\nstop_timeout: 2\n")
    try:
        as_bob("systemctl", "--user", "daemon-reload")
        as_bob(HOSTCTL, "start", "--user", "mine")
        push(registry.host, "app/mine", "latest", V2)
        done = as_bob(HOSTCTL, "auto-update", "--user", "--grace", GRACE, "--format", "json")
        assert rows(done)["mine"]["updated"] == "true", done.stderr
        ps = json.loads(as_bob(HOSTCTL, "ps", "--user", "--format", "json").stdout)
        assert [r["digest"] for r in ps if r["name"] == "mine"] == [V2.digest]
        push(registry.host, "app/mine", "latest", V3_EXITS)
        back = as_bob(HOSTCTL, "auto-update", "--user", "--grace", GRACE, "--format", "json")
        assert rows(back)["mine"]["updated"] == "rolled back", back.stderr
        ps = json.loads(as_bob(HOSTCTL, "ps", "--user", "--format", "json").stdout)
        assert [(r["digest"], r["active_state"]) for r in ps if r["name"] == "mine"] == [
            (V2.digest, "active")]
        # The user's timer, from the user's generator.
        as_bob(HOSTCTL, "auto-update", "--user", "--enable-timer")
        state = as_bob("systemctl", "--user", "is-active", "hostctl-auto-update.timer",
                       check=False).stdout.strip()
        assert state == "active"
        wants = as_bob("systemctl", "--user", "show", "-P", "Wants", "timers.target").stdout
        assert "hostctl-auto-update.timer" in wants.split()
        service = as_bob("systemctl", "--user", "cat", "hostctl-auto-update.service").stdout
        assert "auto-update --user" in service
    finally:
        as_bob(HOSTCTL, "auto-update", "--user", "--disable-timer", check=False)
        as_bob("systemctl", "--user", "stop", "mine.service", check=False)
        host.run(["loginctl", "disable-linger", "bob"], check=False)


def test_pull_policies_are_honoured_at_each_start(host: Any, registry: Registry) -> None:
    far = Registry()
    far.__enter__()
    try:
        push(registry.host, "app/always", "latest", V1)
        push(far.host, "app/newer", "latest", V1)
        declare(host, "always", f"{registry.host}/app/always:latest", "pull: always\n")
        declare(host, "newer", f"{far.host}/app/newer:latest", "pull: newer\n")
        push(registry.host, "app/always", "latest", V2)
        host.run([HOSTCTL, "restart", "always"])
        assert digest_of(host, "always") == V2.digest  # asked the registry at the start
        far.close()
        host.run([HOSTCTL, "restart", "newer"])  # registry gone: the stored image
        assert unit(host, "newer") == "active" and digest_of(host, "newer") == V1.digest
        assert "pull: newer starts the stored image" in host.journal("newer.service")
        host.write_file(f"{DECLS}/never.yaml", f"image: {registry.host}/app/unpulled:1\n"
                        "pull: never\nnetwork: host\n")
        host.run(["systemctl", "daemon-reload"])
        failed = host.run([HOSTCTL, "start", "never"], check=False)
        assert failed.returncode != 0
        assert "app/unpulled:1" in host.journal("never.service")
    finally:
        far.close()
        remove(host, "always", "newer", "never")


def test_pull_always_does_not_start_a_release_that_was_rolled_back(
        host: Any, registry: Registry) -> None:
    ref = f"{registry.host}/app/again:latest"
    push(registry.host, "app/again", "latest", V2)
    try:
        declare(host, "again", ref, "pull: always\n")
        push(registry.host, "app/again", "latest", V3_EXITS)
        assert "rolled back" in auto_update(host).stdout
        host.run([HOSTCTL, "restart", "again"])  # pulls the tag: v3 is still there
        assert unit(host, "again") == "active" and digest_of(host, "again") == V2.digest
        assert "which was rolled back from" in host.journal("again.service")
    finally:
        remove(host, "again")
