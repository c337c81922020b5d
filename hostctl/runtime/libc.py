"""The libc calls on the start path, through _ctypes (ctypes' C half): mount(2),
umount2(2), syscall(2), setns(2) and unshare(2).

`import ctypes` costs every container start about 3 ms: its Python half builds all the
C type classes and imports struct and types. These calls take only strings, pointers
and integers, which _ctypes passes by itself; the two integer types are declared here.
"""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_libc = _ctypes.dlopen(None, 2)  # type: ignore[arg-type]  # NULL, RTLD_NOW: this process


class _Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class _ULong(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


_mount = _Function(_ctypes.dlsym(_libc, "mount"))
_umount2 = _Function(_ctypes.dlsym(_libc, "umount2"))
_syscall = _Function(_ctypes.dlsym(_libc, "syscall"))


def errno() -> int:
    """errno as the last call through this module left it."""
    return int(_ctypes.get_errno())


def mount(source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
          data: bytes | None) -> int:
    return int(_mount(source, target, fstype, _ULong(flags), data))


def umount2(target: bytes, flags: int) -> int:
    return int(_umount2(target, flags))


def syscall(number: int) -> int:
    """A system call without arguments, by NUMBER (what libc has no wrapper for)."""
    return int(_syscall(_ULong(number)))


_setns = _Function(_ctypes.dlsym(_libc, "setns"))
_unshare = _Function(_ctypes.dlsym(_libc, "unshare"))


_prctl = _Function(_ctypes.dlsym(_libc, "prctl"))
PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> int:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants (a container's init once
    runc create has exited) become this process's children, so it can wait for them."""
    return int(_prctl(PR_SET_CHILD_SUBREAPER, _ULong(1), _ULong(0), _ULong(0), _ULong(0)))


def unshare(flags: int) -> int:
    """unshare(2) for the calling thread (a network namespace: that thread's alone)."""
    return int(_unshare(flags))


def setns(fd: int, nstype: int) -> int:
    """setns(2): move this (single-threaded) process into the namespace open at FD."""
    return int(_setns(fd, nstype))


_prctl = _Function(_ctypes.dlsym(_libc, "prctl"))
_capset = _Function(_ctypes.dlsym(_libc, "capset"))


def prctl(option: int, arg2: int | bytes = 0, arg3: int | bytes = 0, arg4: int = 0,
          arg5: int = 0) -> int:
    """prctl(2); a bytes argument is passed as a pointer to its data."""
    args = [a if isinstance(a, bytes) else _ULong(a) for a in (arg2, arg3, arg4, arg5)]
    return int(_prctl(option, *args))


def capset(header: bytes, data: bytes) -> int:
    """capset(2) with a packed __user_cap_header_struct and __user_cap_data_struct[2]."""
    return int(_capset(header, data))


def syscall_args(number: int, *args: int | bytes) -> int:
    """A system call by NUMBER with integer (or, for bytes, pointer) arguments."""
    return int(_syscall(_ULong(number),
                        *[a if isinstance(a, bytes) else _ULong(a) for a in args]))


class _Char(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "c"


class Buffer:
    """DATA copied into memory that stays put, for a structure that points at it."""

    __slots__ = ("_array", "address")

    def __init__(self, data: bytes) -> None:
        array_type: Any = type("_Bytes", (_ctypes.Array,), {"_type_": _Char, "_length_": len(data)})
        self._array = array_type.from_buffer_copy(data)
        self.address: int = _ctypes.addressof(self._array)
