"""Capabilities, devices, rlimits, sysctls and the seccomp profile a container gets."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from hostctl.declarations.model import Device, Ulimit
from hostctl.errors import RuntimeFailure
from hostctl.runtime import seccomp
from hostctl.runtime.security import (
    ALL_CAPABILITIES,
    capability_sets,
    device_entries,
    rlimits,
    sysctls,
)
from hostctl.runtime.spec import DEFAULT_CAPABILITIES


def where(key: str) -> str:
    return f"/etc/hostctl/containers/app.yaml:3:{key}"


def test_cap_add_and_drop_change_podmans_defaults_for_root() -> None:
    sets = capability_sets(DEFAULT_CAPABILITIES, ["CAP_NET_ADMIN"], ["CAP_CHOWN"], root=True)
    assert "CAP_NET_ADMIN" in sets.held and "CAP_CHOWN" not in sets.bounding
    assert sets.held == sets.bounding and sets.ambient == ()


def test_drop_all_then_add_one() -> None:
    sets = capability_sets(DEFAULT_CAPABILITIES, ["CAP_KILL"], ["ALL"], root=True)
    assert sets.bounding == ("CAP_KILL",)


def test_add_all_gives_every_capability() -> None:
    assert capability_sets((), ["ALL"], [], root=True).bounding == ALL_CAPABILITIES


def test_non_root_holds_only_what_cap_add_named_as_ambient() -> None:
    sets = capability_sets(DEFAULT_CAPABILITIES, ["CAP_NET_BIND_SERVICE"], [], root=False)
    assert sets.held == ("CAP_NET_BIND_SERVICE",) == sets.ambient
    assert set(DEFAULT_CAPABILITIES) <= set(sets.bounding)
    assert capability_sets(DEFAULT_CAPABILITIES, [], [], root=False).held == ()


def test_a_device_becomes_a_node_and_an_allow_rule() -> None:
    nodes, rules = device_entries([Device("/dev/null", "/dev/mynull", "rw")], where)
    assert nodes == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                      "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]


def test_missing_device_fails_with_where_unless_optional(tmp_path: Path) -> None:
    absent = str(tmp_path / "nodev")
    with pytest.raises(RuntimeFailure) as err:
        device_entries([Device(absent, absent)], where)
    assert err.value.where == where("devices") and err.value.hint
    assert device_entries([Device(absent, absent, optional=True)], where) == ([], [])
    with pytest.raises(RuntimeFailure, match="not a device node"):
        device_entries([Device(str(tmp_path), "/dev/x")], where)


def test_ulimits_become_rlimits() -> None:
    assert rlimits([Ulimit("nofile", 1024, 4096)]) == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}]


def test_only_namespaced_sysctls_are_accepted() -> None:
    ok = sysctls([("kernel.shmmax", "1"), ("fs.mqueue.msg_max", "20")], own_network=False,
                 where=where)
    assert ok == {"kernel.shmmax": "1", "fs.mqueue.msg_max": "20"}
    with pytest.raises(RuntimeFailure, match="not namespaced"):
        sysctls([("vm.swappiness", "1")], own_network=True, where=where)
    with pytest.raises(RuntimeFailure, match="host's network") as err:
        sysctls([("net.ipv4.ip_forward", "1")], own_network=False, where=where)
    assert err.value.where == where("sysctls")
    assert sysctls([("net.ipv4.ip_forward", "1")], own_network=True, where=where)


def _action(profile: dict, name: str) -> tuple[str, int | None, bool]:  # type: ignore[type-arg]
    for rule in profile["syscalls"]:
        if name in rule["names"]:
            return rule["action"], rule.get("errnoRet"), bool(rule.get("args"))
    return profile["defaultAction"], profile["defaultErrnoRet"], False


def test_seccomp_unknown_calls_get_enosys_and_refused_ones_eperm() -> None:
    profile = seccomp.profile(DEFAULT_CAPABILITIES, "x86_64")
    assert profile["architectures"][0] == "SCMP_ARCH_X86_64"
    assert _action(profile, "no_such_call") == ("SCMP_ACT_ERRNO", seccomp.ENOSYS, False)
    assert _action(profile, "kexec_load") == ("SCMP_ACT_ERRNO", seccomp.EPERM, False)
    assert _action(profile, "read") == ("SCMP_ACT_ALLOW", None, False)


def test_seccomp_mount_and_namespaces_need_cap_sys_admin() -> None:
    plain = seccomp.profile(DEFAULT_CAPABILITIES, "x86_64")
    assert _action(plain, "mount")[0] == "SCMP_ACT_ERRNO"
    assert _action(plain, "clone") == ("SCMP_ACT_ALLOW", None, True)  # flags restricted
    assert _action(plain, "clone3") == ("SCMP_ACT_ERRNO", seccomp.ENOSYS, False)
    admin = seccomp.profile([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], "x86_64")
    assert _action(admin, "mount") == ("SCMP_ACT_ALLOW", None, False)
    assert _action(admin, "clone") == ("SCMP_ACT_ALLOW", None, False)


def test_seccomp_rules_never_name_a_call_twice_with_different_verdicts() -> None:
    profile = seccomp.profile(["CAP_SYS_PTRACE"], "x86_64")
    plain = [r for r in profile["syscalls"] if not r.get("args")]
    seen: dict[str, str] = {}
    for rule in plain:
        for name in rule["names"]:
            assert seen.setdefault(name, rule["action"]) == rule["action"], name


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the x32 ABI is x86_64's")
def test_x32_is_in_the_profile_only_where_the_kernel_runs_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "_x32", False)
    assert seccomp.profile(DEFAULT_CAPABILITIES)["architectures"] == [
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    monkeypatch.setattr(seccomp, "_x32", True)
    assert "SCMP_ARCH_X32" in seccomp.profile(DEFAULT_CAPABILITIES)["architectures"]
    # a profile for a named machine is podman's list, whatever this kernel runs
    monkeypatch.setattr(seccomp, "_x32", False)
    assert "SCMP_ARCH_X32" in seccomp.profile(DEFAULT_CAPABILITIES, "x86_64")["architectures"]

