"""The OCI runtimes: runc (required) with its known CVEs, crun and the container init.

How a version is judged: upstream runc fixes a CVE in a release of each maintained branch
(CVE-2024-21626 in 1.1.12); a runc older than the fix on its branch is affected. Debian
backports fixes without changing the upstream part of the version (bookworm's
1.1.5+ds1-1+deb12u1 fixes CVE-2024-21626), so for a runc that a Debian package installed
the package's own changelog (/usr/share/doc/PACKAGE/changelog.Debian.gz) decides: a CVE it
names is fixed, whatever the upstream version says.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from hostctl.doctor.finding import Finding, fail, ok, warn
from hostctl.errors import HostctlError
from hostctl.proc import run, which

_LATEST_2025 = ("1.2.8", "1.3.3", "1.4.0-rc.3")


@dataclass(frozen=True)
class Cve:
    id: str
    what: str
    fixed: tuple[str, ...]  # the first fixed release of each branch, oldest first
    severe: bool = False  # a container breakout a hostile image alone can trigger


RUNC_CVES = (
    Cve("CVE-2019-5736", "a container can overwrite the host's runc binary", ("1.0.0-rc7",),
        severe=True),
    Cve("CVE-2021-30465", "a symlink race in mounts reaches the host's filesystem",
        ("1.0.0-rc95",)),
    Cve("CVE-2022-29162", "exec gives processes inheritable capabilities", ("1.1.2",)),
    Cve("CVE-2023-27561", "an image's /proc symlinks bypass AppArmor", ("1.1.5",)),
    Cve("CVE-2024-21626", "a leaked descriptor (e.g. an image's WORKDIR) reaches the host's"
        " filesystem", ("1.1.12",), severe=True),
    Cve("CVE-2024-45310", "an image makes runc create empty files on the host",
        ("1.1.14", "1.2.0-rc.3")),
    Cve("CVE-2025-31133", "a raced /dev/null mask lets a container write host /proc files",
        _LATEST_2025),
    Cve("CVE-2025-52565", "a raced /dev/console mount lets a container write host /proc files",
        _LATEST_2025),
    Cve("CVE-2025-52881", "writes to /proc redirected past the container's LSM labels",
        _LATEST_2025),
)

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?")


def version_key(text: str) -> tuple[int, int, int, int, int]:
    """A sortable key of an upstream version: 1.1.5+ds1 -> (1, 1, 5, 1, 0); a release
    candidate sorts before its release: 1.0.0-rc95 -> (1, 0, 0, 0, 95)."""
    found = _VERSION.match(text.strip().lstrip("v"))
    if found is None:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch, rc = found.groups()
    return (int(major), int(minor), int(patch), 0 if rc else 1, int(rc or 0))


def affected(version: str, cve: Cve) -> bool:
    """Whether upstream VERSION lacks CVE's fix on its branch (an older branch than every
    fixed one lacks it; a newer one has it)."""
    key = version_key(version)
    fixes = [version_key(fixed) for fixed in cve.fixed]
    same_branch = [fix for fix in fixes if fix[:2] == key[:2]]
    if same_branch:
        return key < same_branch[0]
    return key < fixes[0]


def first_fix(version: str, cve: Cve) -> str:
    """The oldest release newer than VERSION with CVE's fix."""
    key = version_key(version)
    return next((fixed for fixed in cve.fixed if version_key(fixed) > key), cve.fixed[-1])


def judge(version: str, backported: frozenset[str]) -> list[Cve]:
    """The CVEs runc VERSION is open to, leaving out the ones its package BACKPORTED."""
    return [cve for cve in RUNC_CVES if affected(version, cve) and cve.id not in backported]


def runc_finding(cves: list[Cve], version: str, origin: str) -> Finding:
    """The runc line from the CVEs it is open to (see judge)."""
    if not cves:
        return ok("runc", f"runc {version} {origin}, no known CVE open")
    newest = max((first_fix(version, cve) for cve in cves), key=version_key)
    listed = "; ".join(f"{cve.id}: {cve.what}" for cve in cves)
    fix = (f"upgrade runc to {newest} or newer (Debian: apt-get install --only-upgrade runc;"
           " its changelog names the CVEs it fixes)")
    if any(cve.severe for cve in cves):
        return fail("runc", f"runc {version} {origin} is open to {listed}", fix)
    return warn("runc", f"runc {version} {origin} is open to {listed}", fix)


def debian_package(binary: str) -> tuple[str, str, frozenset[str]] | None:
    """(package, version, CVEs its changelog names) of the Debian package that installed
    BINARY; None when dpkg does not know it."""
    try:
        owner = run(["dpkg-query", "-S", str(Path(binary).resolve())], check=False)
    except HostctlError:
        return None
    if owner.returncode != 0:
        return None
    package = owner.stdout.decode().split(":", 1)[0].strip()
    shown = run(["dpkg-query", "-W", "-f=${Version}", package], check=False)
    changelog = Path("/usr/share/doc") / package / "changelog.Debian.gz"
    try:
        text = gzip.decompress(changelog.read_bytes()).decode("utf-8", "replace")
    except (OSError, EOFError):
        text = ""
    return package, shown.stdout.decode().strip(), frozenset(re.findall(r"CVE-\d+-\d+", text))


def _version_of(binary: str, name: str) -> str:
    out = run([binary, "--version"], check=False).stdout.decode()
    found = re.search(rf"{name} version (\S+)", out)
    return found.group(1) if found else "unknown"


def check_runc() -> Finding:
    try:
        binary = which("runc")
    except HostctlError as err:
        return fail("runc", str(err.message), err.hint or "install the runc package")
    version = _version_of(binary, "runc")
    try:
        version_key(version)
    except ValueError:
        return warn("runc", f"{binary} reports no version ({version})",
                    "reinstall runc (apt-get install --reinstall runc)")
    package = debian_package(binary)
    if package is None:
        return runc_finding(judge(version, frozenset()), version, f"at {binary}")
    name, package_version, backported = package
    return runc_finding(judge(version, backported), version,
                        f"at {binary} (Debian {name} {package_version}, judged with its changelog)")


def check_crun() -> Finding:
    try:
        binary = which("crun")
    except HostctlError:
        return ok("crun", "not installed (optional: only `runtime: crun` needs it)")
    return ok("crun", f"crun {_version_of(binary, 'crun')} at {binary}")


def check_init() -> Finding:
    from hostctl.runtime.volumes import INIT_BINARIES

    for name in INIT_BINARIES:
        try:
            return ok("container init", f"{name} at {which(name)} (for `init: true`)")
        except HostctlError:
            continue
    return warn("container init", f"none of {', '.join(INIT_BINARIES)} is installed",
                "apt-get install catatonit (declarations with `init: true` need it)")
