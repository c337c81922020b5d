"""What a snapshot held when it was applied, recorded so that `image verify` can tell a
damaged snapshot from a sound one without re-applying the layer.

    ROOT/snapshot-records/HEX.gz    one per snapshot (by ChainID), gzip'd JSON lines

The first line is a header (format version, the layer's digest and DiffID, rootless);
then one line per entry in walk order (depth first, children sorted by name, which is
the order of the paths' component lists): [path, type, mode, uid, gid, size, mtime_ns,
extra], where size is a file's size (or a symlink's target length), extra a symlink's
target, a device's "major:minor", a directory's overlay opaque flag, or a file's link
count. Contents are not hashed: the record is a walk of lstat() results, cheap enough to
make after every apply, and it catches what damage looks like in practice (files
truncated, removed, added, re-moded or re-owned, links broken). Re-hashing contents
would cost as much as applying the layer again.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hostctl.errors import ImageError

VERSION = 1
SHOWN = 5  # differences named in a report; the rest are counted
_TYPES = ((stat.S_ISDIR, "d"), (stat.S_ISREG, "f"), (stat.S_ISLNK, "l"), (stat.S_ISCHR, "c"),
          (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"), (stat.S_ISSOCK, "s"))
Entry = tuple[str, str, int, int, int, int, int, str]


@dataclass(frozen=True)
class Header:
    layer: str  # the compressed blob's digest, from which the snapshot can be re-applied
    diff_id: str
    rootless: bool


def _kind(mode: int) -> str:
    for test, letter in _TYPES:
        if test(mode):
            return letter
    return "?"


def _entry(path: str, relative: str, opaque_key: str) -> Entry:
    st = os.lstat(path)
    kind = _kind(st.st_mode)
    size, extra = 0, ""
    if kind == "f":
        size, extra = st.st_size, str(st.st_nlink)
    elif kind == "l":
        extra = os.readlink(path)
        size = len(os.fsencode(extra))
    elif kind in ("c", "b"):
        extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    elif kind == "d":
        try:
            extra = os.getxattr(path, opaque_key, follow_symlinks=False).decode(
                "utf-8", "replace")
        except OSError:
            extra = ""
    return (relative, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size,
            st.st_mtime_ns, extra)


def walk(root: Path, *, rootless: bool) -> Iterator[Entry]:
    """Every entry under ROOT (ROOT itself as "."), in walk order; never follows links."""
    opaque_key = "user.overlay.opaque" if rootless else "trusted.overlay.opaque"
    yield _entry(os.fspath(root), ".", opaque_key)
    stack = [("", iter(_names(os.fspath(root))))]
    while stack:
        relative, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        child = f"{relative}/{name}" if relative else name
        path = os.path.join(root, child)
        found = _entry(path, child, opaque_key)
        yield found
        if found[1] == "d":
            stack.append((child, iter(_names(path))))


def _names(directory: str) -> list[str]:
    with os.scandir(directory) as listing:
        return sorted(entry.name for entry in listing)


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
_BATCH = 2000  # entries per gzip write


def _encode(value: object) -> str:
    return _ENCODER.encode(value)


def write(root: Path, record: Path, header: Header) -> None:
    """Record what ROOT holds now into RECORD (written atomically)."""
    temp = record.with_name(".tmp-" + record.name)
    try:
        record.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(temp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
                _write_lines(out, root, header)
            raw.flush()
            os.fsync(raw.fileno())  # a power cut leaves the old record or the whole new one
        os.replace(temp, record)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ImageError(f"cannot record the applied snapshot: {exc.strerror or exc}",
                         where=str(record), hint="free some space in the store's file system"
                         if exc.errno == errno.ENOSPC else None) from None


def _write_lines(out: gzip.GzipFile, root: Path, header: Header) -> None:
    lines = [_encode({"version": VERSION, "layer": header.layer, "diff_id": header.diff_id,
                      "rootless": header.rootless})]
    for entry in walk(root, rootless=header.rootless):
        lines.append(_encode(entry))
        if len(lines) >= _BATCH:
            out.write(("\n".join(lines) + "\n").encode())
            lines.clear()
    if lines:
        out.write(("\n".join(lines) + "\n").encode())


def read_header(record: Path) -> Header:
    with gzip.open(record, "rb") as lines:
        return _header(lines.readline(), record)


def _header(line: bytes, record: Path) -> Header:
    try:
        doc = json.loads(line)
        if doc["version"] != VERSION:
            raise ValueError(f"format version {doc['version']}")
        return Header(str(doc["layer"]), str(doc["diff_id"]), bool(doc["rootless"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"snapshot record is unreadable: {exc}", where=str(record)) from None


def compare(root: Path, record: Path) -> list[str]:
    """How ROOT differs from RECORD: a few named differences and a count of the rest.

    Both sides come in walk order, so they are merged like sorted lists: memory stays
    flat however many files the snapshot has.
    """
    differences: list[str] = []
    try:
        with gzip.open(record, "rb") as lines:
            header = _header(lines.readline(), record)
            recorded = (tuple(json.loads(line)) for line in lines)
            _merge(recorded, walk(root, rootless=header.rootless), differences)
    except ImageError as exc:
        differences.append(exc.message)
    except (EOFError, ValueError, gzip.BadGzipFile) as exc:
        differences.append(f"its record is unreadable ({exc})")
    except OSError as exc:
        differences.append(f"cannot read it: {exc.strerror or exc}")
    if len(differences) > SHOWN:
        rest = len(differences) - SHOWN
        differences = [*differences[:SHOWN], f"and {rest} more"]
    return differences


def _key(path: object) -> tuple[str, ...]:
    return () if path == "." else tuple(str(path).split("/"))


def _merge(recorded: Iterator[tuple[object, ...]], present: Iterator[Entry],
           differences: list[str]) -> None:
    was, now = next(recorded, None), next(present, None)
    while was is not None or now is not None:
        if now is None or (was is not None and _key(was[0]) < _key(now[0])):
            assert was is not None
            differences.append(f"{was[0]}: missing")
            was = next(recorded, None)
        elif was is None or _key(now[0]) < _key(was[0]):
            differences.append(f"{now[0]}: not in the layer")
            now = next(present, None)
        else:
            if was != now:
                differences.append(f"{now[0]}: {_changed(was, now)}")
            was, now = next(recorded, None), next(present, None)


def _changed(was: tuple[object, ...], now: Entry) -> str:
    names = ("path", "type", "mode", "uid", "gid", "size", "mtime", "detail")
    parts = []
    for name, old, new in zip(names, was, now, strict=True):
        if old != new:
            shown = (oct(old), oct(new)) if name == "mode" and isinstance(old, int) \
                and isinstance(new, int) else (old, new)
            parts.append(f"{name} {shown[0]} -> {shown[1]}")
    return ", ".join(parts)
