"""Resolving `user:` (name, uid, name:group, uid:gid) against the image's own files."""

from __future__ import annotations

from dataclasses import dataclass

from hostctl.errors import RuntimeFailure
from hostctl.runtime.inroot import read_file

MAX_ID = 2**32 - 2  # 2**32-1 is (uid_t)-1, "no change" to the kernel


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _numeric(text: str, what: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise RuntimeFailure(
            f"{what} {text} does not fit in 32 bits", hint=f"use a {what} between 0 and {MAX_ID}"
        )
    return value


def _table(rootfs: str, path: str) -> list[list[str]]:
    data = read_file(rootfs, path) or b""
    rows = []
    for line in data.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _lookup_group(rootfs: str, group: str) -> int:
    gid = _numeric(group, "gid")
    if gid is not None:
        return gid
    for row in _table(rootfs, "/etc/group"):
        if len(row) >= 3 and row[0] == group and row[2].isdigit():
            return _numeric(row[2], "gid") or 0
    raise RuntimeFailure(
        f"group {group!r} not found in the image's /etc/group", hint="use a numeric gid"
    )


def _supplementary(rootfs: str, user: str, gid: int) -> tuple[int, ...]:
    found = []
    for row in _table(rootfs, "/etc/group"):
        if len(row) >= 4 and user in row[3].split(",") and row[2].isdigit():
            value = int(row[2])
            if value != gid and value <= MAX_ID:
                found.append(value)
    return tuple(found)


def resolve_user(
    rootfs: str, spec: str | None, *, group: str | None = None, groups: tuple[str, ...] = ()
) -> Identity:
    """The uid/gid/groups for SPEC (the image's User or the declaration's `user:`).

    GROUP (the declaration's `group:`) replaces the primary group; GROUPS (`groups:`) are
    added to the supplementary groups the image's /etc/group gives the user."""
    identity = _resolve(rootfs, spec)
    gid = _lookup_group(rootfs, group) if group else identity.gid
    extra = [g for g in identity.additional_gids if g != gid]
    for name in groups:
        value = _lookup_group(rootfs, name)
        if value != gid and value not in extra:
            extra.append(value)
    return Identity(identity.uid, gid, tuple(extra), identity.home)


def _resolve(rootfs: str, spec: str | None) -> Identity:
    if not spec:
        return Identity(0, 0, home="/root")
    user, _, group = spec.partition(":")
    uid = _numeric(user, "uid")
    name: str | None = None
    gid: int | None = None
    home = "/"
    for row in _table(rootfs, "/etc/passwd"):
        if len(row) < 4:
            continue
        if (uid is None and row[0] == user) or (uid is not None and row[2] == str(uid)):
            name, home = row[0], row[5] if len(row) > 5 else "/"
            uid = _numeric(row[2], "uid")
            gid = _numeric(row[3], "gid")
            break
    if uid is None:
        raise RuntimeFailure(
            f"user {user!r} not found in the image's /etc/passwd", hint="use a numeric uid"
        )
    if group:
        gid = _lookup_group(rootfs, group)
    if gid is None:
        gid = 0  # docker's rule for a uid the image's /etc/passwd does not list
    extra = _supplementary(rootfs, name, gid) if name else ()
    return Identity(uid, gid, extra, home)
