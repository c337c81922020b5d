"""The `hostctl` entry point.

`launch` and `cleanup` are what every unit runs at each start and stop, `health-timer`
what a container's NAME-healthcheck.service runs for each check: they are dispatched
here without importing typer (35 ms) so a start and a check stay lean, and so are
`auto-update` in its common forms (hostctl.cli.quick_update), `push` / `image copy`
in theirs (hostctl.cli.quick_ship) and `compose up` (hostctl.cli.quick_compose). Every
other verb goes
through the typer application in hostctl.cli.app.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    import subprocess

UNIT_VERBS = ("launch", "cleanup", "health-timer", "network-hold", "network-release",
              "volume-setup", "volume-release", "image-pull", "pod-setup", "pod-release",
              "kube-setup", "kube-release")
NETWORK_VERBS = ("network-hold", "network-release")


def unit_main(argv: list[str]) -> int:
    """`launch|cleanup|health-timer [--user] [--debug] NAME`: what container units and
    their health check units run, and
    `network-hold|network-release --user NAME [--tcp=PORTS --udp=PORTS]`: what a user
    network's unit runs (hostctl.network.holder); the exit status."""
    if not argv or argv[0] not in UNIT_VERBS:
        print("usage: hostctl launch|cleanup|health-timer [--user] NAME", file=sys.stderr)
        return 2
    verb, rest = argv[0], argv[1:]
    user = "--user" in rest
    debug = "--debug" in rest
    options = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in rest
               if a.startswith(("--tcp=", "--udp=")) and verb == "network-hold"}
    rest = [a for a in rest if a not in ("--user", "--debug")
            and not a.startswith(("--tcp=", "--udp="))]
    if len(rest) != 1 or rest[0].startswith("-"):
        usage = "--user NAME [--tcp=PORTS] [--udp=PORTS]" if verb in NETWORK_VERBS \
            else "[--user] NAME"
        print(f"usage: hostctl {verb} {usage}", file=sys.stderr)
        return 2
    try:
        if verb in NETWORK_VERBS:
            return _run_network_verb(verb, rest[0], options)
        return _run_unit_verb(verb, rest[0], user)
    except HostctlError as err:
        if debug:
            raise
        print(f"hostctl {verb} {rest[0]}: {err}", file=sys.stderr)
        return err.exit_code


def _run_network_verb(verb: str, name: str, options: dict[str, str]) -> int:
    from hostctl.launcher import enable_site

    enable_site()
    from hostctl.network import holder
    from hostctl.paths import Scope, for_scope

    paths = for_scope(Scope.USER)
    if verb == "network-release":
        holder.release(name, paths)
        return 0
    forwards = holder.parse_forwards(options.get("--tcp", "none"), options.get("--udp", "none"))
    return holder.hold(name, paths, forwards)


def _run_unit_verb(verb: str, name: str, user: bool) -> int:
    if verb == "image-pull":  # a quadlet image's unit
        from hostctl.launcher import enable_site

        enable_site()
        from hostctl import pull_ahead
        from hostctl.paths import Scope, default_scope

        pull_ahead.pull(name, Scope.USER if user else default_scope())
        return 0
    if verb in ("pod-setup", "pod-release"):  # a pod's unit (hostctl.pod)
        if verb == "pod-setup" and not user:
            from hostctl.pod.quick import setup_recorded

            if setup_recorded(name):  # as the last full setup made it
                return 0
        from hostctl.launcher import enable_site

        enable_site()
        from hostctl.paths import Scope, default_scope, for_scope
        from hostctl.pod import holder

        scope = Scope.USER if user else default_scope()
        if verb == "pod-setup":
            holder.setup(name, scope, for_scope(scope))
        else:
            holder.release(name, scope, for_scope(scope))
        return 0
    if verb in ("volume-setup", "volume-release"):  # a quadlet volume's unit
        from hostctl.launcher import enable_site

        enable_site()
        from hostctl import volumes
        from hostctl.paths import Scope, default_scope

        scope = Scope.USER if user else default_scope()
        (volumes.setup if verb == "volume-setup" else volumes.release)(name, scope)
        return 0
    if verb in ("kube-setup", "kube-release"):  # a quadlet .kube file's unit
        from hostctl.launcher import enable_site

        enable_site()
        from hostctl.kube import quadlet
        from hostctl.paths import Scope, default_scope

        scope = Scope.USER if user else default_scope()
        (quadlet.setup if verb == "kube-setup" else quadlet.release)(name, scope)
        return 0
    if verb == "health-timer":  # lean: no site-packages, no declaration (hostctl.health)
        from hostctl.health.check import timer_main

        return timer_main(name, user or os.environ.get("SYSTEMD_SCOPE") == "user")
    if not user and os.geteuid() == 0 and os.environ.get("SYSTEMD_SCOPE") != "user":
        # A system container started before with the same inputs: no declaration,
        # image or network code needed (hostctl.launcher.record).
        from hostctl.launcher import quick

        if verb == "launch":
            started = quick.launch_recorded(name)
            if started is not None:
                return started
        elif quick.cleanup_recorded(name):
            return 0
    if user and verb == "launch":  # the same for a user's container (rootless)
        from hostctl.launcher import quickuser

        started = quickuser.launch_recorded(name)
        if started is not None:
            return started
    from hostctl.launcher import enable_site

    enable_site()  # started by hostctl.launcher.entry: the full path needs site-packages
    from hostctl.paths import Scope, default_scope

    scope = Scope.USER if user else default_scope()
    if verb == "launch":
        from hostctl.launcher.launch import launch

        return launch(name, scope)
    from hostctl.launcher.launch import cleanup

    cleanup(name, scope)
    return 0


def report_error(err: HostctlError | subprocess.CalledProcessError) -> int:
    """ERR as the one line the CLI prints for it; its exit status."""
    if isinstance(err, HostctlError):
        print(f"hostctl: {err}", file=sys.stderr)
        return err.exit_code
    print(f"hostctl: {' '.join(map(str, err.cmd))} failed (exit {err.returncode})",
          file=sys.stderr)
    return 1


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in UNIT_VERBS:
        sys.exit(unit_main(argv))
    if argv and argv[0] == "auto-update":  # its common forms without typer
        from hostctl.cli import quick_update

        status = quick_update.main(argv[1:])
        if status is not None:
            sys.exit(status)
    if argv[:1] == ["push"] or argv[:2] == ["image", "copy"]:  # the same, for transfers
        from hostctl.cli import quick_ship

        status = quick_ship.main(argv)
        if status is not None:
            sys.exit(status)
    if argv[:2] == ["compose", "up"]:  # and for `compose up`
        from hostctl.cli import quick_compose

        status = quick_compose.main(argv)
        if status is not None:
            sys.exit(status)
    from hostctl.cli.app import run_app

    run_app()
