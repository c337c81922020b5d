"""`hostctl doctor`: every check of hostctl.doctor for a scope, in the order a reader
fixes things (the host, the runtime, hostctl's wiring, then rootless needs)."""

from __future__ import annotations

from collections.abc import Callable

from hostctl.doctor import config, host, rootless, runtimes
from hostctl.doctor.finding import Finding, Status, fail
from hostctl.errors import HostctlError
from hostctl.paths import Scope, for_scope


def diagnose(scope: Scope) -> list[Finding]:
    """The findings for SCOPE (the system, or the calling user's rootless containers)."""
    paths = for_scope(scope)
    table = host.mounts()
    checks: list[tuple[str, Callable[[], Finding | list[Finding]]]] = [
        ("systemd", lambda: host.check_systemd(scope)),
        ("cgroup v2", lambda: host.check_cgroups(table)),
        ("cgroup controllers", lambda: host.check_controllers(scope)),
        ("overlay", lambda: host.check_overlay(scope, paths, table)),
        ("disk", lambda: host.check_disk(paths)),
        ("runc", runtimes.check_runc),
        ("crun", runtimes.check_crun),
        ("container init", runtimes.check_init),
        ("D-Bus", lambda: config.check_dbus(scope)),
        ("generator", lambda: config.check_generator(scope)),
        ("registries.conf", config.check_registries),
        ("auth.json", config.check_auth),
        ("policy.json", config.check_policy),
    ]
    if scope is Scope.USER:
        checks += [("subuid", rootless.check_subids), ("newuidmap", rootless.check_newuidmap),
                   ("linger", rootless.check_linger), ("pasta", rootless.check_pasta)]
    else:
        checks += [("CNI plugins", config.check_cni), ("iptables", config.check_iptables)]
    found: list[Finding] = []
    for name, check in checks:
        try:
            result = check()
        except (OSError, HostctlError) as err:  # a check that cannot look is a finding too
            result = fail(name, f"cannot check: {err}", "run `hostctl --debug doctor` and"
                          " fix what stops the check (permissions, a missing tool)")
        found += result if isinstance(result, list) else [result]
    return found


def failed(findings: list[Finding]) -> bool:
    """Whether anything FAILed (the exit status of `hostctl doctor` is then 1)."""
    return any(finding.status is Status.FAIL for finding in findings)
