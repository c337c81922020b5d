"""hostctl's own wiring and configuration: D-Bus through pydbus, the generator links, the
files a pull reads (registries.conf, auth.json, policy.json, read with the same parsers
a pull uses), and what the system scope's bridge network runs (CNI plugins, iptables)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hostctl.doctor.finding import Finding, fail, ok, warn
from hostctl.errors import HostctlError
from hostctl.paths import Scope
from hostctl.proc import run, which

# Where the generator can be linked from: `hostctl install` (/etc) or a package (/usr/lib).
GENERATOR_DIRS = {
    Scope.SYSTEM: ("/etc/systemd/system-generators", "/usr/lib/systemd/system-generators"),
    Scope.USER: ("/etc/systemd/user-generators", "/usr/lib/systemd/user-generators"),
}


def check_dbus(scope: Scope) -> Finding:
    try:
        import pydbus  # noqa: F401
    except ImportError as err:
        return fail("D-Bus", f"pydbus cannot be imported ({err})",
                    "apt-get install python3-pydbus; a virtualenv needs"
                    " --system-site-packages to see it")
    from hostctl.systemd.dbus import Systemd

    try:
        version = str(Systemd(scope).manager.Version)
    except HostctlError as err:
        return fail("D-Bus", err.message, err.hint or "start dbus (apt-get install dbus)")
    bus = "your session bus" if scope is Scope.USER else "the system bus"
    return ok("D-Bus", f"systemd {version} answers on {bus} (pydbus)")


def check_generator(scope: Scope) -> Finding:
    from hostctl.api.setup import LINK_NAME, unreachable_hint

    for directory in GENERATOR_DIRS[scope]:
        link = Path(directory) / LINK_NAME
        if not os.path.lexists(link):  # lstat: a target users cannot reach is still a link
            continue
        target = link.resolve()
        # First: a hostctl under /root (mode 0700) is the common reason a user cannot run it.
        hint = unreachable_hint(target) if scope is Scope.USER else None
        if hint:
            return fail("generator", hint.split(" (hint: ")[0],
                        hint.split(" (hint: ", 1)[1].rstrip(")"))
        if not os.access(link, os.X_OK):
            return fail("generator", f"{link} -> {target} cannot be run", "run `hostctl install`"
                        " as root to link the installed hostctl-generator")
        return ok("generator", f"{link} -> {target}")
    return fail("generator", f"no {LINK_NAME} in {' or '.join(GENERATOR_DIRS[scope])}:"
                " declarations do not become units", "run `hostctl install` as root (the"
                " Debian package ships the links)")


def check_registries() -> Finding:
    from hostctl.images.pull import load_registries

    try:
        conf = load_registries()
    except HostctlError as err:
        return fail("registries.conf", str(err), "fix the file named (TOML, as in"
                    " containers-registries.conf(5))")
    files = ", ".join(str(path) for path in conf.sources) or "none (defaults apply)"
    return ok("registries.conf", f"parsed: {files}")


def check_auth() -> Finding:
    from hostctl.images.auth import default_auth_files, load_auth_file

    read = []
    for path in default_auth_files():
        if not path.exists():
            continue
        try:
            entries = load_auth_file(path)
        except HostctlError as err:
            return fail("auth.json", str(err), f"fix or remove {path}, then `hostctl login`"
                        " again")
        read.append(f"{path} ({len(entries)} registries)")
    return ok("auth.json", f"parsed: {', '.join(read)}" if read else "no credentials file")


def check_policy() -> Finding:
    from hostctl.images.trust import load_policy, policy_files

    try:
        policy = load_policy()
    except HostctlError as err:
        return fail("policy.json", str(err), "fix the file named (containers-policy.json(5))")
    if policy is None:
        return ok("policy.json", f"none ({' or '.join(map(str, policy_files()))}): every"
                  " image is accepted")
    found = next(path for path in policy_files() if path.exists())
    return ok("policy.json", f"parsed: {found}")


def check_cni() -> Finding:
    from hostctl.network.cni import PLUGIN_DIR

    missing = [kind for kind in ("bridge", "host-local")
               if not os.access(PLUGIN_DIR / kind, os.X_OK)]
    if missing:
        return warn("CNI plugins", f"{', '.join(missing)} not in {PLUGIN_DIR}: containers on"
                    " a bridge network cannot start (host and none networks work)",
                    "apt-get install containernetworking-plugins")
    return ok("CNI plugins", f"bridge and host-local in {PLUGIN_DIR}")


def check_iptables() -> Finding:
    try:
        binary = which("iptables")
    except HostctlError:
        return warn("iptables", "iptables is not installed: bridge networks get no way out"
                    " and no published ports", "apt-get install iptables")
    version = run([binary, "--version"], check=False).stdout.decode().strip()
    backend = re.search(r"\((\w+)\)", version)
    listed = run([binary, "-w", "-t", "filter", "-S", "FORWARD"], check=False)
    if listed.returncode != 0:
        error = listed.stderr.decode(errors="replace").strip().splitlines()
        other = "legacy" if backend and backend.group(1) == "nf_tables" else "nft"
        return fail("iptables", f"{version} cannot read the filter table:"
                    f" {error[-1] if error else '?'}",
                    f"the kernel may lack this backend: update-alternatives --set iptables"
                    f" /usr/sbin/iptables-{other}")
    return ok("iptables", f"{version}, backend {backend.group(1) if backend else 'unknown'}")
