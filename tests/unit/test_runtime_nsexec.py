"""The lean exec's plan (what it refuses to reproduce, leaving it to runc exec) and the
seccomp program it loads: compiled from hostctl's default profile and loaded in a child
process, a call the profile refuses fails with the profile's errno."""

from __future__ import annotations

import os
import platform
from typing import Any

import pytest

from hostctl.runtime import libc, nsexec, seccomp, seccomp_bpf

UNSHARE = {"x86_64": 272, "aarch64": 97}.get(platform.machine())
GETPID = {"x86_64": 39, "aarch64": 172}.get(platform.machine())


def config(**process: Any) -> dict[str, Any]:
    return {"process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["A=b"],
                        "args": ["sh"], **process},
            "linux": {"seccomp": seccomp.profile(["CAP_CHOWN"])}}


def in_child(bpf: bytes, number: int) -> tuple[int, int]:
    """(result, errno) of system call NUMBER (no arguments beyond zeros) in a child
    process under no_new_privs and the program BPF."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc.prctl(nsexec.PR_SET_NO_NEW_PRIVS, 1)
            program = libc.Buffer(bpf)
            fprog = (len(bpf) // 8).to_bytes(8, "little") + program.address.to_bytes(8, "little")
            if libc.prctl(nsexec.PR_SET_SECCOMP, nsexec.SECCOMP_MODE_FILTER, fprog) != 0:
                os.write(write_end, b"load failed")
                os._exit(1)
            result = libc.syscall_args(number, 0x40000000)  # CLONE_NEWNET for unshare
            os.write(write_end, f"{result} {libc.errno()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    text = os.read(read_end, 100).decode()
    os.close(read_end)
    result, err = text.split()
    return int(result), int(err)


@pytest.mark.skipif(UNSHARE is None, reason="system call numbers known for x86_64, aarch64")
def test_the_compiled_default_profile_refuses_what_it_refuses() -> None:
    bpf = seccomp_bpf.compile_profile(seccomp.profile(["CAP_CHOWN"]))
    assert bpf and len(bpf) % 8 == 0
    assert UNSHARE is not None and GETPID is not None
    # unshare needs CAP_SYS_ADMIN in the profile: refused with its default ENOSYS.
    assert in_child(bpf, UNSHARE) == (-1, seccomp_bpf.ENOSYS)
    result, _ = in_child(bpf, GETPID)
    assert result > 0


def test_the_plan_carries_the_process_and_the_program() -> None:
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("this machine's /sys/fs/cgroup is not cgroup v2 (the plan says so)")
    planned = nsexec.plan(config(), "web")
    assert planned["why"] == ""
    assert planned["process"]["env"] == ["A=b"] and planned["process"]["args"] == []
    assert planned["keyring"] == "_ses.web" and planned["bpf"]


@pytest.mark.parametrize(("change", "why"), [
    ({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}},
     "process.selinuxLabel is set"),
    ({"process": {"ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}}, "process.ioPriority is set"),
    ({"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}},
     "runc adds an ENOSYS stub to this profile's filter"),
    ({"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                  "flags": ["SECCOMP_FILTER_FLAG_LOG"]}}, "seccomp listener or filter flags"),
    ({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                  "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}},
     "seccomp action SCMP_ACT_NOTIFY"),
])
def test_what_it_cannot_reproduce_is_left_to_runc(change: dict[str, Any], why: str) -> None:
    base = config()
    base["process"].update(change.get("process", {}))
    if "seccomp" in change:
        base["linux"]["seccomp"] = change["seccomp"]
    planned = nsexec.plan(base, "web")
    if planned["why"].startswith(("/sys/fs/cgroup", "no keyctl")):
        pytest.skip(planned["why"])
    assert planned["why"] == why
    assert "process" not in planned


def test_a_rule_testing_one_argument_twice_becomes_one_rule_per_condition() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    either = seccomp_bpf.compile_profile(profile)
    profile["syscalls"][0]["args"] = profile["syscalls"][0]["args"][:1]
    one = seccomp_bpf.compile_profile(profile)
    assert len(either) > len(one)  # two alternatives, not an impossible conjunction
