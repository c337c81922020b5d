"""The default seccomp profile, as podman and docker apply it, kept as plain data.

Unknown system calls fail with ENOSYS (so libc falls back from new calls such as clone3
to old ones), a list of known-but-refused calls fail with EPERM, and some calls are
allowed only with a capability (CAP_SYS_ADMIN, CAP_SYS_PTRACE...) or with restricted
arguments (personality, clone without namespace flags). To change the profile, edit
the tables below; profile() assembles the OCI `linux.seccomp` object from them.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from typing import Any

ENOSYS = 38
EPERM = 1


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Always allowed.
ALLOWED = _words("""
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername
getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid
getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open
openat openat2 pause pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min
sched_getaffinity sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
vfork wait4 waitid waitpid write writev arch_prctl modify_ldt socket
""")

# Known calls refused with EPERM instead of ENOSYS (so callers do not try a fallback).
REFUSED = _words("""
bdflush fsconfig fsmount fsopen fspick kexec_file_load kexec_load migrate_pages move_mount
move_pages nfsservctl nice oldfstat oldlstat oldolduname oldstat olduname open_tree
pciconfig_iobase pciconfig_read pciconfig_write perf_event_open quotactl_fd rtas
s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr sgetmask ssetmask swapcontext
swapoff swapon sysfs uselib userfaultfd ustat vm86 vm86old vmsplice
""")

# Allowed only when the container holds the capability (in its bounding set).
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": _words("""
    bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
    mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
    sethostname setns syslog umount umount2 unshare
    """),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

# Namespace flags clone() may not pass without CAP_SYS_ADMIN (CLONE_NEWNS | CLONE_NEWUTS |
# CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP).
CLONE_NAMESPACE_FLAGS = 0x7E020000
# personality(2) values that are harmless: PER_LINUX, PER_LINUX32, UNAME26 variants, query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "ppc64le": ("SCMP_ARCH_PPC64LE",),
    "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
    "riscv64": ("SCMP_ARCH_RISCV64",),
}


X32_SYSCALL_BIT = 0x40000000
X32_GETPID = X32_SYSCALL_BIT | 39


def kernel_runs_x32() -> bool:
    """Whether this kernel accepts system calls of the x32 ABI. Debian's kernels have it
    but refuse it unless booted with syscall.x32=y; many kernels are built without it.

    Where it is refused, listing SCMP_ARCH_X32 in a profile changes nothing a process can
    do (its calls fail with ENOSYS either way) but costs runc about 7 ms of every start to
    compile. Tried in a child process: under a seccomp filter that doesn't know x32 (a
    unit with SystemCallArchitectures=native) the call kills its caller; a child killed
    that way counts as "yes", keeping x32 in the profile.
    """
    global _x32
    if _x32 is None:
        from hostctl.runtime import libc

        pid = os.fork()
        if pid == 0:  # the child only makes the call: no imports, no locks
            os._exit(0 if libc.syscall(X32_GETPID) >= 0 else 1)
        _, status = os.waitpid(pid, 0)
        _x32 = os.waitstatus_to_exitcode(status) != 1
    return _x32


_x32: bool | None = None


def _rule(names: Iterable[str], action: str = "SCMP_ACT_ALLOW", **extra: Any) -> dict[str, Any]:
    return {"names": sorted(set(names)), "action": action, **extra}


def _argument_rules(capabilities: set[str]) -> list[dict[str, Any]]:
    rules = [
        _rule(["personality"], args=[{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}])
        for v in PERSONALITIES
    ]
    if "CAP_SYS_ADMIN" not in capabilities:
        # clone's flags are argument 0 (argument 1 on s390); no namespace may be created.
        rules.append(_rule(["clone"], args=[{"index": 0, "value": CLONE_NAMESPACE_FLAGS,
                                             "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]))
        # clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc use clone.
        rules.append(_rule(["clone3"], "SCMP_ACT_ERRNO", errnoRet=ENOSYS))
    return rules


def profile(capabilities: Iterable[str], machine: str | None = None) -> dict[str, Any]:
    """The OCI linux.seccomp object for a container with CAPABILITIES (its bounding set),
    for MACHINE's ABIs (default: this machine's, those its kernel runs)."""
    held = set(capabilities)
    granted = {name for cap, names in BY_CAPABILITY.items() if cap in held for name in names}
    allowed = set(ALLOWED) | granted
    refused = set(REFUSED) - allowed
    arch = ARCHITECTURES.get(machine or platform.machine(), ())
    if machine is None and "SCMP_ARCH_X32" in arch and not kernel_runs_x32():
        arch = tuple(a for a in arch if a != "SCMP_ARCH_X32")
    syscalls = [_rule(allowed), *_argument_rules(held)]
    if refused:
        syscalls.append(_rule(refused, "SCMP_ACT_ERRNO", errnoRet=EPERM))
    result: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ENOSYS,
        "syscalls": syscalls,
    }
    if arch:
        result["architectures"] = list(arch)
    return result
