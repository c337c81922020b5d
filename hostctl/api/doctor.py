"""`hostctl doctor`: every check of hostctl.doctor for a scope, in the order a reader
fixes things (the host, the runtime, hostctl's wiring, then rootless needs)."""

from __future__ import annotations

from hostctl.doctor import config, host, rootless, runtimes
from hostctl.doctor.finding import Finding, Status
from hostctl.paths import Scope, for_scope


def diagnose(scope: Scope) -> list[Finding]:
    """The findings for SCOPE (the system, or the calling user's rootless containers)."""
    paths = for_scope(scope)
    table = host.mounts()
    found = [
        host.check_systemd(scope),
        host.check_cgroups(table),
        host.check_controllers(scope),
        host.check_overlay(scope, paths, table),
        host.check_disk(paths),
        runtimes.check_runc(),
        runtimes.check_crun(),
        runtimes.check_init(),
        config.check_dbus(scope),
        config.check_generator(scope),
        config.check_registries(),
        config.check_auth(),
        config.check_policy(),
    ]
    if scope is Scope.USER:
        found += [*rootless.check_subids(), rootless.check_newuidmap(),
                  rootless.check_linger(), rootless.check_pasta()]
    else:
        found += [config.check_cni(), config.check_iptables()]
    return found


def failed(findings: list[Finding]) -> bool:
    """Whether anything FAILed (the exit status of `hostctl doctor` is then 1)."""
    return any(finding.status is Status.FAIL for finding in findings)
