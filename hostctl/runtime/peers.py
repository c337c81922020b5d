"""Container names on a named network: each member's /etc/hosts lists the others.

The choice (documented in docs/networking.md): no DNS server, because nothing of
hostctl stays resident. Every container on a named network records its addresses under
the run directory; whenever one joins or leaves, the peer section at the end of every
member's hosts file (the bundle's `hosts`, bind-mounted as /etc/hosts) is rewritten in
place (a bind mount pins the inode, so no rename) under a per-network lock. A container
on several networks has one section per network, each from its marker line to the next
marker (or the end), and each network rewrites its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER = "# hostctl: containers on network "


@dataclass(frozen=True)
class Member:
    container: str
    addresses: tuple[str, ...]
    hosts: Path  # the member's hosts file on the host
    aliases: tuple[str, ...] = ()  # more names of it (`network_aliases`: a compose service)


class Members:
    """The member records of one network, under DIRECTORY/NETWORK/."""

    def __init__(self, directory: Path, network: str) -> None:
        self.network = network
        self.folder = directory / network

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def all(self) -> list[Member]:
        members = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            members.append(Member(path.stem, tuple(data["addresses"]), Path(data["hosts"]),
                                  tuple(data.get("aliases", ()))))
        return members

    def add(self, member: Member) -> None:
        record = {"addresses": list(member.addresses), "hosts": str(member.hosts),
                  "aliases": list(member.aliases)}
        (self.folder / f"{member.container}.json").write_text(json.dumps(record))

    def discard(self, container: str) -> None:
        (self.folder / f"{container}.json").unlink(missing_ok=True)


def peer_lines(network: str, members: list[Member], own: str) -> tuple[tuple[str, str], ...]:
    """(address, name) lines for OWN's hosts file: the marker, then every other member."""
    lines = [(f"{MARKER}{network}", "")]
    for member in members:
        if member.container != own:
            known = " ".join((member.container, *member.aliases))
            lines += [(address, known) for address in member.addresses]
    return tuple(lines)


def _render(lines: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"{address}\t{names}\n" for address, names in lines)


def replace_section(text: str, network: str, section: str) -> str:
    """TEXT (a hosts file) with NETWORK's peer section replaced by SECTION (added at the
    end when there is none); the other networks' sections kept."""
    own = f"{MARKER}{network}\t"
    start = text.find(own)
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        return text + section
    end = text.find(MARKER, start + len(own))
    return text[:start] + section + (text[end:] if end >= 0 else "")


def rewrite_peers(member: Member, network: str, members: list[Member]) -> None:
    """Replace NETWORK's peer section of MEMBER's hosts file, in place; no file, nothing
    to do."""
    try:
        with open(member.hosts, "r+") as handle:
            text = handle.read()
            handle.seek(0)
            handle.write(replace_section(
                text, network, _render(peer_lines(network, members, member.container))))
            handle.truncate()
    except FileNotFoundError:
        pass


def refresh_all(members: Members) -> None:
    """Bring every member's hosts file up to date with the current records."""
    current = members.all()
    for member in current:
        rewrite_peers(member, members.network, current)
