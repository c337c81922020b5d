"""hostctl doctor's pure judgements: runc versions against CVEs (with Debian's backports),
mount tables, sub-id ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.doctor import host, rootless, runtimes
from hostctl.doctor.finding import Status

BY_ID = {cve.id: cve for cve in runtimes.RUNC_CVES}


@pytest.mark.parametrize(("version", "cve", "open_"), [
    ("1.1.11", "CVE-2024-21626", True),
    ("1.1.12", "CVE-2024-21626", False),
    ("1.1.5+ds1", "CVE-2024-21626", True),
    ("1.2.0", "CVE-2024-21626", False),
    ("1.0.0-rc94", "CVE-2021-30465", True),
    ("1.0.0-rc95", "CVE-2021-30465", False),
    ("1.0.0-rc10", "CVE-2019-5736", False),
    ("1.1.15", "CVE-2025-31133", True),  # no fix on the 1.1 branch
    ("1.2.7", "CVE-2025-31133", True),
    ("1.2.8", "CVE-2025-31133", False),
    ("1.3.2", "CVE-2025-52881", True),
    ("1.3.3", "CVE-2025-52881", False),
    ("1.4.0-rc.2", "CVE-2025-52565", True),
    ("1.4.0", "CVE-2025-52565", False),
    ("1.1.14", "CVE-2024-45310", False),
    ("1.2.0-rc.2", "CVE-2024-45310", True),
])
def test_a_runc_version_is_judged_on_its_own_branch(version: str, cve: str, open_: bool) -> None:
    assert runtimes.affected(version, BY_ID[cve]) is open_


def test_debian_backports_count_as_fixed_and_decide_the_status() -> None:
    plain = runtimes.judge("1.1.5", frozenset())
    assert "CVE-2024-21626" in [cve.id for cve in plain]
    finding = runtimes.runc_finding(plain, "1.1.5", "at /usr/sbin/runc")
    assert finding.status is Status.FAIL and "CVE-2024-21626" in finding.detail
    assert "1.1.12" in finding.fix or "1.2.8" in finding.fix
    debian = runtimes.judge("1.1.5", frozenset({"CVE-2024-21626", "CVE-2019-5736"}))
    assert "CVE-2024-21626" not in [cve.id for cve in debian]
    assert runtimes.runc_finding(debian, "1.1.5", "x").status is Status.WARN
    assert runtimes.runc_finding([], "1.4.0", "x").status is Status.OK


def test_the_fix_names_the_oldest_release_that_closes_every_open_cve() -> None:
    finding = runtimes.runc_finding(runtimes.judge("1.2.5", frozenset()), "1.2.5", "x")
    assert "upgrade runc to 1.2.8 or newer" in finding.fix


def test_an_unparsable_version_is_refused() -> None:
    with pytest.raises(ValueError, match="not a version"):
        runtimes.version_key("unknown")


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw
40 22 0:40 / /var/lib/hostctl rw - overlay overlay rw,lowerdir=/x
41 22 0:41 / /srv/my\\040data rw - xfs /dev/sdb rw
"""


def test_mount_table_and_the_filesystem_a_path_is_on() -> None:
    table = host.parse_mountinfo(MOUNTINFO)
    assert ("/srv/my data", "xfs") in table
    assert host.filesystem_of(Path("/var/lib/hostctl/storage"), table) == (
        "/var/lib/hostctl", "overlay")
    assert host.filesystem_of(Path("/var/lib/hostctlx"), table) == ("/", "ext4")
    assert host.check_cgroups(table).status is Status.OK
    hybrid = host.check_cgroups([("/", "ext4"), ("/sys/fs/cgroup", "tmpfs")])
    assert hybrid.status is Status.FAIL and "unified_cgroup_hierarchy=1" in hybrid.fix


def test_sub_ids_missing_or_short_are_warned_with_the_usermod_fix(tmp_path: Path) -> None:
    name = rootless.user_name()
    (tmp_path / "subuid").write_text(f"{name}:100000:65536\n")
    (tmp_path / "subgid").write_text(f"{name}:100000:1000\n")
    subuid, subgid = rootless.check_subids(tmp_path)
    assert subuid.status is Status.OK
    assert subgid.status is Status.WARN and "usermod --add-subuids" in subgid.fix
    (tmp_path / "subgid").unlink()
    assert rootless.check_subids(tmp_path)[1].status is Status.WARN
