"""A container's OCI `linux.seccomp` compiled into the BPF program runc would load.

runc 1.1 builds its filter with libseccomp: seccomp_init(defaultAction), each listed
architecture added, one rule per system call name that libseccomp knows (unknown names
are skipped), a rule's conditions ANDed in one rule unless two of them test the same
argument (then one rule per condition), rules whose action is the default left out, and
the program exported as BPF. This module does the same through libseccomp (by _ctypes,
as hostctl.runtime.libc does) so a health check can load the program itself
(hostctl.runtime.nsexec) instead of running runc.

compile_profile() raises Unsupported for what it cannot reproduce exactly, and the
caller then leaves the check to `runc exec`: a listener (SCMP_ACT_NOTIFY), filter
flags, and a deny-by-default profile whose defaultErrnoRet is not ENOSYS (runc then
prepends a stub answering ENOSYS for system calls newer than the profile knows).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EPERM, ENOSYS = 1, 38
ACT_KILL_THREAD, ACT_KILL_PROCESS, ACT_TRAP = 0x00000000, 0x80000000, 0x00030000
ACT_ERRNO, ACT_TRACE, ACT_LOG, ACT_ALLOW = 0x00050000, 0x7FF00000, 0x7FFC0000, 0x7FFF0000
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
NR_SCMP_ERROR = -1


class Unsupported(Exception):
    """A profile (or a system) this module cannot turn into runc's exact filter."""


def action(name: str, errno_ret: int | None) -> int:
    """The libseccomp action for an OCI action NAME (runc's mapping)."""
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return ACT_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return ACT_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return ACT_TRAP
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if name == "SCMP_ACT_LOG":
        return ACT_LOG
    raise Unsupported(f"seccomp action {name}")


def _library() -> Any:
    import _ctypes

    try:
        return _ctypes.dlopen("libseccomp.so.2", 2)
    except OSError as err:
        raise Unsupported(f"libseccomp is not available: {err}") from None


def compile_profile(profile: dict[str, Any]) -> bytes:
    """The BPF program (struct sock_filter[]) runc would load for PROFILE."""
    import _ctypes

    if profile.get("listenerPath") or profile.get("flags"):
        raise Unsupported("seccomp listener or filter flags")
    default_errno = profile.get("defaultErrnoRet")
    default = action(str(profile.get("defaultAction")), default_errno)
    if default not in (ACT_ALLOW, ACT_LOG) and (default & 0xFFFF0000) != ACT_TRACE \
            and default_errno != ENOSYS:
        raise Unsupported("runc adds an ENOSYS stub to this profile's filter")

    class UInt(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "I"

    class Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "i"

    class Pointer(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "P"

    lib = _library()

    def function(name: str, result: type) -> Any:
        kind = type(name, (_ctypes.CFuncPtr,), {
            "_flags_": _ctypes.FUNCFLAG_CDECL, "_restype_": result})
        return kind(_ctypes.dlsym(lib, name))

    seccomp_init = function("seccomp_init", Pointer)
    arch_resolve = function("seccomp_arch_resolve_name", UInt)
    arch_add = function("seccomp_arch_add", Int)
    resolve = function("seccomp_syscall_resolve_name", Int)
    rule_add = function("seccomp_rule_add_array", Int)
    export = function("seccomp_export_bpf", Int)
    release = function("seccomp_release", Int)

    ctx = seccomp_init(UInt(default))
    if not ctx:
        raise Unsupported("seccomp_init failed")
    context = Pointer(ctx)
    try:
        for arch in profile.get("architectures") or ():
            token = arch_resolve(str(arch).removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise Unsupported(f"seccomp architecture {arch}")
            code = arch_add(context, UInt(token))
            if code not in (0, -17):  # -EEXIST: the native one is there from the start
                raise Unsupported(f"seccomp_arch_add {arch}: {os.strerror(-code)}")
        for rule in profile.get("syscalls") or ():
            act = action(str(rule.get("action")), rule.get("errnoRet"))
            if act == default:
                continue
            conditions = [_condition(arg) for arg in rule.get("args") or ()]
            indexes = [int(arg["index"]) for arg in rule.get("args") or ()]
            groups = ([[c] for c in conditions] if len(set(indexes)) < len(indexes)
                      else [conditions])
            for name in rule.get("names") or ([rule["name"]] if rule.get("name") else []):
                number = resolve(str(name).encode())
                if number == NR_SCMP_ERROR:
                    continue  # unknown to libseccomp: runc skips it too
                for group in groups:
                    code = rule_add(context, UInt(act), Int(number), UInt(len(group)),
                                    b"".join(group))
                    if code != 0:
                        raise Unsupported(f"seccomp rule for {name}: {os.strerror(-code)}")
        memory = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            code = export(context, Int(memory))
            if code != 0:
                raise Unsupported(f"seccomp_export_bpf: {os.strerror(-code)}")
            size = os.lseek(memory, 0, os.SEEK_END)
            return os.pread(memory, size, 0)
        finally:
            os.close(memory)
    finally:
        release(context)


def _condition(arg: dict[str, Any]) -> bytes:
    """struct scmp_arg_cmp {unsigned int arg; enum scmp_compare op; u64 a, b}."""
    op = OPERATORS.get(str(arg.get("op")))
    if op is None:
        raise Unsupported(f"seccomp operator {arg.get('op')}")
    second = int(arg.get("valueTwo") or 0) if op == 7 else 0
    return (int(arg["index"]).to_bytes(4, sys.byteorder) + op.to_bytes(4, sys.byteorder)
            + (int(arg.get("value") or 0) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, sys.byteorder)
            + (second & 0xFFFFFFFFFFFFFFFF).to_bytes(8, sys.byteorder))
