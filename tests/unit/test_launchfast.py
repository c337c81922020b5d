"""The compiled launcher (hostctl/launcher/launchfast.c) and its fast record
(hostctl.launcher.fastrecord): it goes on with a record only when every check the
Python launcher makes holds, and hands anything else to the Python launcher.

The program is built with a shell script standing in for the interpreter (it writes the
arguments it got, and the user namespace's maps handed over), and with a layer base that
does not exist: a start whose checks all hold makes the runtime marker, then cannot
mount and hands over. So the marker tells "the checks held" from "a doubt", without
mounting or running runc here. A user's container (rootless) gets that far in a user
namespace of its own (these tests run as root: its map is root's own id)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostctl.launcher import fastrecord, quickuser
from hostctl.launcher import record as records
from hostctl.runtime import cgroups
from hostctl.units import gencompile, generator

NAME = "web"


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The compiled launcher and the file its stand-in interpreter writes its arguments to."""
    cc = gencompile.compiler()
    assert cc, "the compiled launcher needs a C compiler (scripts/setup.sh installs gcc)"
    base = tmp_path_factory.mktemp("launchfast")
    said = base / "python-args"
    python = base / "python"
    python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {said}\n'
                      f'printf "%s" "${quickuser.ENTERED_ENV}" > {said}.entered\n')
    python.chmod(0o755)
    binary = base / "hostctl-launch"
    argv = gencompile.launcher_command(cc, str(python), "ENTRY", binary)
    # no cgroup.controllers there: the launcher does not move out of its cgroup here
    argv.insert(1, f"-DHOSTCTL_CGROUP_ROOT={gencompile.c_string(str(base / 'cgroup'))}")
    subprocess.run(argv, check=True)
    return binary, said


class Layout:
    """A container's record in TMP, and the launcher run on it."""

    user = False  # a user's container (rootless)

    def __init__(self, tmp: Path, binary: Path, said: Path) -> None:
        self.tmp, self.binary, self.said = tmp, binary, said
        self.env = {"PATH": "/usr/bin:/bin", "HOSTCTL_RUN_DIR": str(tmp / "run"),
                    "HOSTCTL_UNIT": f"{NAME}.service"}
        (tmp / "store" / "locks").mkdir(parents=True)
        (tmp / "store" / "locks" / "gc.lock").write_text("")
        self.decl = tmp / "web.yaml"
        self.decl.write_text("image: x\n")
        self.resolv = tmp / "resolv.conf"
        self.resolv.write_text("nameserver 192.0.2.1\n")
        (tmp / "decls").mkdir()
        (tmp / "decls" / "other.network").write_text("")
        self.runtime_file = tmp / "run" / "runc" / f"{NAME}.runtime"
        self.record: dict[str, Any] = {
            "format": records.FORMAT, "hostctl": "0", "env": dict(self.env),
            "content": [[str(self.decl), records.content_signature(str(self.decl))],
                        [str(tmp / "missing.yaml"), None]],
            "present": [["/bin/sh", records.presence_signature("/bin/sh")]],
            "text": [[str(self.resolv), "nameserver 192.0.2.1\n"]],
            "absent": [str(tmp / "run" / "containers" / NAME)],
            "listed": [[str(tmp / "decls"), ".network", ["other.network"]]],
            "store": str(tmp / "store"), "reference": "registry.example/web:1",
            "lowerdirs": [str(tmp / "layers" / "a")], "layer_base": str(tmp / "layers"),
            "scratch": str(tmp / "scratch"), "bundle": str(tmp / "run" / "containers" / NAME),
            "runc_root": str(tmp / "run" / "runc"), "runtime": "/usr/sbin/runc",
            "runtime_file": str(self.runtime_file), "notify": False, "notify_healthy": False,
            "health": None, "health_timer": False, "files": {"hostname": "web\n"},
            "config": '{"linux": {"cgroupsPath": "@hostctl-cgroups-path@"}}', "pod": None,
            "net": None}

    def write(self) -> None:
        records.write(str(self.tmp / "run" / "launch" / f"{NAME}.record"), self.record)
        os.environ["HOSTCTL_RUN_DIR"] = self.env["HOSTCTL_RUN_DIR"]
        try:
            fastrecord.write(NAME, self.record, self.user)
        finally:
            del os.environ["HOSTCTL_RUN_DIR"]

    def launch(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """Run the launcher with ARGS (default: launch NAME) as systemd would; the
        arguments it handed to the Python launcher."""
        self.said.unlink(missing_ok=True)
        run_env = {**self.env, "INVOCATION_ID": "0123", **(env or {})}
        default = ("launch", "--user", NAME) if self.user else ("launch", NAME)
        subprocess.run([str(self.binary), *(args or default)], env=run_env,
                       check=True, timeout=30)
        return self.said.read_text().splitlines()

    def entered(self) -> str:
        """The maps the last launch handed over (it fell back in its user namespace)."""
        return Path(f"{self.said}.entered").read_text()

    def checks_held(self) -> bool:
        """Whether the last launch got past the record's checks (it writes the marker)."""
        held = self.runtime_file.exists()
        self.runtime_file.unlink(missing_ok=True)
        return held


@pytest.fixture
def layout(tmp_path: Path, program: tuple[Path, Path]) -> Layout:
    made = Layout(tmp_path, *program)
    made.write()
    return made


def test_a_current_record_gets_past_the_checks(layout: Layout) -> None:
    assert layout.launch() == ["-sSE", "ENTRY", "launch", NAME]  # no layers: handed over
    assert layout.checks_held()
    assert layout.runtime_file.parent.stat().st_mode & 0o777 == 0o700  # as runc.py makes it


def _touch(layout: Layout) -> None:
    layout.decl.write_text("image: y\n")  # same size, new mtime (and ctime)


def _resolv(layout: Layout) -> None:
    layout.resolv.write_text("nameserver 192.0.2.9\n")  # a text signature, as content's


def _absent(layout: Layout) -> None:
    (layout.tmp / "run" / "containers" / NAME).mkdir(parents=True)


def _listed(layout: Layout) -> None:
    (layout.tmp / "decls" / "new.network").write_text("")


def _appeared(layout: Layout) -> None:
    (layout.tmp / "missing.yaml").write_text("")


def _replaced(layout: Layout) -> None:
    layout.record["present"] = [["/bin/sh", [1, 2, 3, 4]]]
    layout.write()


def _magic(layout: Layout) -> None:
    path = layout.tmp / "run" / "launch" / f"{NAME}.fast"
    path.write_bytes(path.read_bytes().replace(b"launchfast 1", b"launchfast 9", 1))


def _truncated(layout: Layout) -> None:
    path = layout.tmp / "run" / "launch" / f"{NAME}.fast"
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("change", [_touch, _resolv, _absent, _listed, _appeared, _replaced, _magic,
                                    _truncated])
def test_any_doubt_hands_the_start_to_the_python_launcher(
        layout: Layout, change: Callable[[Layout], None]) -> None:
    change(layout)
    assert layout.launch() == ["-sSE", "ENTRY", "launch", NAME]
    assert not layout.checks_held()


@pytest.mark.parametrize("env", [{"EXTRA": "1"}, {"PATH": "/bin"}])
def test_another_environment_is_a_doubt(layout: Layout, env: dict[str, str]) -> None:
    layout.launch(env=env)
    assert not layout.checks_held()


def test_what_systemd_sets_per_start_is_not_an_input(layout: Layout) -> None:
    layout.launch(env={"NOTIFY_SOCKET": "/nonexistent", "JOURNAL_STREAM": "1:2"})
    assert layout.checks_held()


def test_without_systemd_no_record_applies(layout: Layout) -> None:
    layout.said.unlink(missing_ok=True)
    subprocess.run([str(layout.binary), "launch", NAME], env=layout.env, check=True)
    assert layout.said.read_text().splitlines() == ["-sSE", "ENTRY", "launch", NAME]
    assert not layout.checks_held()


@pytest.mark.parametrize("args", [("cleanup", NAME), ("launch", "--user", NAME),
                                  ("health-timer", NAME), ("launch", "other")])
def test_other_verbs_and_containers_go_to_the_python_launcher(
        layout: Layout, args: tuple[str, ...]) -> None:
    assert layout.launch(*args) == ["-sSE", "ENTRY", *args]
    assert not layout.checks_held()


@pytest.mark.parametrize("key, value", [("net", {"netns": "x"}), ("pod", {"name": "p"}),
                                        ("health", ["{}", {}, {}]), ("health_timer", True),
                                        ("notify", True), ("notify_healthy", True),
                                        ("lowerdirs", [])])
def test_records_the_compiled_launcher_cannot_take_get_no_fast_record(
        layout: Layout, key: str, value: object) -> None:
    fast = layout.tmp / "run" / "launch" / f"{NAME}.fast"
    assert fast.exists()
    layout.record[key] = value
    assert fastrecord.fields(NAME, layout.record) is None
    layout.write()
    assert not fast.exists()  # not the one of an earlier start either


def test_a_field_holding_a_nul_byte_gets_no_fast_record(layout: Layout) -> None:
    layout.record["files"] = {"hosts": "a\0b"}
    assert fastrecord.fields(NAME, layout.record) is None


def test_the_fields(layout: Layout) -> None:
    found = fastrecord.fields(NAME, layout.record)
    assert found is not None
    tmp = layout.tmp
    assert found[:13] == [
        fastrecord.MAGIC, NAME, str(tmp / "store" / "locks" / "gc.lock"),
        str(tmp / "run" / "runc"), "/usr/sbin/runc", str(layout.runtime_file), "runc",
        str(tmp / "run" / "containers" / NAME), str(tmp / "scratch"), str(tmp / "layers"),
        f"lowerdir=a,upperdir={tmp}/scratch/upper,workdir={tmp}/scratch/work", NAME,
        "registry.example/web:1"]
    env = sorted(f"{k}={v}" for k, v in layout.env.items())
    assert found[13:17] == ["3", *env]
    assert found[17:18] == ["3"] and found[20:22] == [str(tmp / "missing.yaml"), "-"]
    # the text signature as a content one, made as the fast record is written
    assert found[22:24] == [str(layout.resolv), " ".join(
        str(n) for n in records.content_signature(str(layout.resolv)) or [])]
    assert found[-1] == layout.record["config"]


def test_discarding_a_record_drops_its_fast_record(layout: Layout) -> None:
    run = layout.tmp / "run" / "launch"
    records.discard(str(run / f"{NAME}.record"))
    assert not (run / f"{NAME}.record").exists() and not (run / f"{NAME}.fast").exists()


def test_units_name_the_compiled_launcher_built_for_their_interpreter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "LAUNCHER_DIR", str(tmp_path))
    python_command = generator.launcher_command()
    assert python_command[1:] == ("-sSE", generator.entry_script())
    compiled = Path(generator.compiled_launcher(*python_command[::2]))
    assert compiled.parent == tmp_path
    compiled.write_text("")
    compiled.chmod(0o644)
    assert generator.launcher_command() == python_command  # not a program
    compiled.chmod(0o755)
    assert generator.launcher_command() == (str(compiled),)
    other = generator.compiled_launcher("/other/python", generator.entry_script())
    assert other != str(compiled)


def test_a_launcher_the_compiled_one_moved_takes_its_parent_for_the_unit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOCATION_ID", "0123")
    monkeypatch.setattr(cgroups, "_unit", [])
    monkeypatch.setattr(cgroups, "own_cgroup", lambda: "/system.slice/web.service/supervisor")
    moved: list[str] = []
    monkeypatch.setattr(cgroups, "leave_unit_cgroup", moved.append)
    assert cgroups.unit_cgroup() == "/system.slice/web.service"
    assert moved == []


# ---- a user's container (rootless): hostctl.launcher.quickuser's start ----------------

USER_ARGS = ["-sSE", "ENTRY", "launch", "--user", NAME]


class UserLayout(Layout):
    """A user's container's record: the maps root's own ids (no newuidmap), no network
    unless a test gives it pasta."""

    user = True

    def __init__(self, tmp: Path, binary: Path, said: Path) -> None:
        super().__init__(tmp, binary, said)
        self.record["rootless"] = {"uid_map": [[0, os.getuid(), 1]],
                                   "gid_map": [[0, os.getgid(), 1]], "tools": [],
                                   "route": quickuser.default_route()}
        self.fast = tmp / "run" / "launch" / f"{NAME}.fast"


@pytest.fixture
def user_layout(tmp_path: Path, program: tuple[Path, Path]) -> UserLayout:
    made = UserLayout(tmp_path, *program)
    made.write()
    return made


def test_a_users_current_record_is_started_in_a_user_namespace_of_its_own(
        user_layout: UserLayout) -> None:
    """The checks held, the namespace was entered (the marker was written in it), the
    mount failed: the Python launcher gets the maps, the record is dropped."""
    assert user_layout.launch() == USER_ARGS
    assert user_layout.checks_held()
    uid, gid = os.getuid(), os.getgid()
    assert user_layout.entered() == f"0 {uid} 1;0 {gid} 1"
    assert quickuser.inherited_maps(user_layout.entered()) == {
        "uid_map": [[0, uid, 1]], "gid_map": [[0, gid, 1]]}
    assert not user_layout.fast.exists()
    assert not (user_layout.tmp / "run" / "launch" / f"{NAME}.record").exists()


def _route(layout: Layout) -> None:
    layout.record["rootless"]["route"] = "FE01A8C0"  # made when the host had another
    layout.write()


def _system_magic(layout: Layout) -> None:
    layout.fast.write_bytes(layout.fast.read_bytes().replace(
        fastrecord.MAGIC_USER.encode(), fastrecord.MAGIC.encode(), 1))


def _bad_map(layout: Layout) -> None:
    layout.record["rootless"]["uid_map"] = [[0, -1, 1]]
    layout.write()


def _one_tool(layout: Layout) -> None:
    layout.record["rootless"]["tools"] = ["/usr/bin/newuidmap"]
    layout.write()


@pytest.mark.parametrize("change", [_touch, _absent, _listed, _appeared, _replaced, _truncated,
                                    _route, _system_magic, _bad_map, _one_tool])
def test_any_doubt_about_a_users_record_hands_over_before_entering(
        user_layout: UserLayout, change: Callable[[Layout], None]) -> None:
    change(user_layout)
    assert user_layout.launch() == USER_ARGS
    assert not user_layout.checks_held()
    assert user_layout.entered() == ""  # the Python launcher makes its own start
    assert user_layout.fast.exists()


def test_a_system_launch_does_not_take_a_users_fast_record(user_layout: UserLayout) -> None:
    assert user_layout.launch("launch", NAME) == ["-sSE", "ENTRY", "launch", NAME]
    assert not user_layout.checks_held()


def test_another_environment_is_a_doubt_for_a_users_record(user_layout: UserLayout) -> None:
    user_layout.launch(env={"EXTRA": "1"})
    assert not user_layout.checks_held() and user_layout.entered() == ""


def test_pasta_gets_the_namespace_made_for_it_and_is_waited_for(
        user_layout: UserLayout) -> None:
    """pasta runs with the recorded arguments, the namespace's placeholder its path; a
    fallback waits until its first process ended (its PID file is there for the full
    start's cleanup)."""
    tmp = user_layout.tmp
    said = tmp / "pasta-args"
    script = (f'printf "%s\\n" "$@" > {said}; readlink "$2" >> {said}; '
              f'sleep 0.2; echo $$ > "$1"')
    pid_file = tmp / "run" / "pasta" / f"{NAME}.pid"
    user_layout.record["net"] = {
        "pasta": ["/bin/sh", "-c", script, "pasta", str(pid_file), records.NETNS_PLACEHOLDER],
        "pid_file": str(pid_file)}
    user_layout.write()
    assert user_layout.launch() == USER_ARGS
    assert user_layout.checks_held()
    assert pid_file.exists()  # written before the hand-over
    lines = said.read_text().splitlines()
    assert lines[0] == str(pid_file) and lines[1].startswith("/proc/self/fd/")
    assert lines[2].startswith("net:[")  # a network namespace
    own = os.readlink("/proc/self/ns/net")
    assert lines[2] != own  # not the host's


def test_a_users_fast_record_fields(user_layout: UserLayout) -> None:
    tmp = user_layout.tmp
    user_layout.record["rootless"]["tools"] = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
    user_layout.record["rootless"]["uid_map"] = [[0, 1000, 1], [1, 100000, 65536]]
    user_layout.record["net"] = {"pasta": ["/usr/bin/pasta", "--netns",
                                           records.NETNS_PLACEHOLDER],
                                 "pid_file": "/run/p.pid"}
    found = fastrecord.fields(NAME, user_layout.record)
    assert found is not None
    assert found[0] == fastrecord.MAGIC_USER
    assert found[10].endswith(f"workdir={tmp}/scratch/work,userxattr")
    route = quickuser.default_route() or "-"
    assert found[13:25] == [
        route, "0 1000 1 1 100000 65536", f"0 {os.getgid()} 1", "2", "/usr/bin/newuidmap",
        "/usr/bin/newgidmap", "3", "/usr/bin/pasta", "--netns", records.NETNS_PLACEHOLDER,
        "/run/p.pid", "3"]
    user_layout.record["net"] = None
    found = fastrecord.fields(NAME, user_layout.record)
    assert found is not None and found[19:22] == ["0", "", "3"]


def test_a_users_recorded_start_says_so_in_the_python_launchers_words() -> None:
    assert f'"{quickuser.RECORDED_START}"' in gencompile.LAUNCHER_SOURCE.read_text()


def test_a_users_record_on_a_network_other_than_pastas_gets_no_fast_record(
        user_layout: UserLayout) -> None:
    user_layout.record["net"] = {"netns": "/run/netns/x"}
    assert fastrecord.fields(NAME, user_layout.record) is None
    user_layout.write()
    assert not user_layout.fast.exists()


def test_the_python_launcher_takes_the_maps_the_compiled_one_entered_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It makes the full start in that namespace, with the maps handed over; the variable
    is not part of the environment the full start records."""
    monkeypatch.setattr(quickuser, "_entered", [])
    monkeypatch.setenv(quickuser.ENTERED_ENV, "0 1000 1 1 100000 65536;0 1000 1")
    monkeypatch.setenv("INVOCATION_ID", "0123")
    assert quickuser.launch_recorded(NAME) is None
    assert quickuser.ENTERED_ENV not in os.environ
    assert quickuser.entered()
    uids, gids = quickuser.entered_maps()
    assert uids.triples() == ((0, 1000, 1), (1, 100000, 65536))
    assert gids.triples() == ((0, 1000, 1),)
