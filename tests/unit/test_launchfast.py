"""The compiled launcher (hostctl/launcher/launchfast.c) and its fast record
(hostctl.launcher.fastrecord): it goes on with a record only when every check the
Python launcher makes holds, and hands anything else to the Python launcher.

The program is built with a shell script standing in for the interpreter (it writes the
arguments it got), and with a layer base that does not exist: a start whose checks all
hold makes the runtime marker, then cannot mount and hands over. So the marker tells
"the checks held" from "a doubt", without mounting or running runc here."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostctl.launcher import fastrecord
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
    python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {said}\n')
    python.chmod(0o755)
    binary = base / "hostctl-launch"
    argv = gencompile.launcher_command(cc, str(python), "ENTRY", binary)
    # no cgroup.controllers there: the launcher does not move out of its cgroup here
    argv.insert(1, f"-DHOSTCTL_CGROUP_ROOT={gencompile.c_string(str(base / 'cgroup'))}")
    subprocess.run(argv, check=True)
    return binary, said


class Layout:
    """A container's record in TMP, and the launcher run on it."""

    def __init__(self, tmp: Path, binary: Path, said: Path) -> None:
        self.tmp, self.binary, self.said = tmp, binary, said
        self.env = {"PATH": "/usr/bin:/bin", "HOSTCTL_RUN_DIR": str(tmp / "run"),
                    "HOSTCTL_UNIT": f"{NAME}.service"}
        (tmp / "store" / "locks").mkdir(parents=True)
        (tmp / "store" / "locks" / "gc.lock").write_text("")
        self.decl = tmp / "web.yaml"
        self.decl.write_text("image: x\n")
        (tmp / "decls").mkdir()
        (tmp / "decls" / "other.network").write_text("")
        self.runtime_file = tmp / "run" / "runc" / f"{NAME}.runtime"
        self.record: dict[str, Any] = {
            "format": records.FORMAT, "hostctl": "0", "env": dict(self.env),
            "content": [[str(self.decl), records.content_signature(str(self.decl))],
                        [str(tmp / "missing.yaml"), None]],
            "present": [["/bin/sh", records.presence_signature("/bin/sh")]],
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
            fastrecord.write(NAME, self.record)
        finally:
            del os.environ["HOSTCTL_RUN_DIR"]

    def launch(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """Run the launcher with ARGS (default: launch NAME) as systemd would; the
        arguments it handed to the Python launcher."""
        self.said.unlink(missing_ok=True)
        run_env = {**self.env, "INVOCATION_ID": "0123", **(env or {})}
        subprocess.run([str(self.binary), *(args or ("launch", NAME))], env=run_env,
                       check=True, timeout=30)
        return self.said.read_text().splitlines()

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


@pytest.mark.parametrize("change", [_touch, _absent, _listed, _appeared, _replaced, _magic,
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
    assert found[17:18] == ["2"] and found[20:22] == [str(tmp / "missing.yaml"), "-"]
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
