"""A step's layer: its overlay upper directory written as a tar layer, then kept as the
snapshot of that layer.

The upper directory holds exactly what the step changed, in overlayfs's own format:
0/0 character devices are deletions (written as `.wh.NAME`), directories marked opaque
(trusted.overlay.opaque, or user.overlay.opaque when rootless) replace the lower one
(written with a `.wh..wh..opq` entry), and directories overlayfs only copied up to hold
a changed child are left out unless their owner, mode or xattrs changed. Entries are
sorted, owner names empty, mtimes whole seconds (clamped to the build's timestamp when
one is given) and the gzip deterministic, so the same changes give the same digest.

Afterwards the upper directory is already in the format of a store snapshot (the
overlay lowerdir format): only overlayfs's private xattrs are removed, and with a
timestamp its mtimes are clamped as in the tar, so the snapshot and the layer agree.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hostctl.build.compress import GzipWriter
from hostctl.build.parser import BuildError
from hostctl.images.store import Store

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_COPY_BUFFER = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    digest: str
    diff_id: str
    size: int


def overlay_prefix(rootless: bool) -> str:
    return "user.overlay." if rootless else "trusted.overlay."


class _Writer:
    """Walks an upper directory. Without TAR it prepares it (clamps mtimes, removes
    overlayfs's private xattrs) and counts the entries a layer would have; with TAR it
    only reads, writing those entries."""

    def __init__(self, upper: Path, lowers: Sequence[Path], tar: tarfile.TarFile | None, *,
                 rootless: bool, clamp: int | None) -> None:
        self.upper = str(upper)
        self.lowers = [str(p) for p in lowers]  # top first
        self.tar = tar
        self.prefix = overlay_prefix(rootless)
        self.clamp = clamp
        self.links: dict[tuple[int, int], str] = {}
        self.count = 0

    def walk(self, directory: str, relative: str) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            name = f"{relative}{entry.name}"
            st = entry.stat(follow_symlinks=False)
            self._fix_times(entry.path, st)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                parent, _, base = name.rpartition("/")
                self._add_marker(f"{parent}/{WHITEOUT}{base}" if parent else WHITEOUT + base)
                continue
            xattrs = self._xattrs(entry.path, name, st)
            if stat.S_ISDIR(st.st_mode):
                opaque = xattrs.pop(self.prefix + "opaque", None) in (b"y", b"x")
                if opaque or not self._unchanged_dir(name, st, xattrs):
                    self._add(entry.path, name + "/", st, xattrs)
                if opaque:
                    self._add_marker(f"{name}/{OPAQUE}")
                self.walk(entry.path, name + "/")
            else:
                self._add(entry.path, name, st, xattrs)

    def _fix_times(self, path: str, st: os.stat_result) -> None:
        if self.tar is None and self.clamp is not None and st.st_mtime > self.clamp:
            os.utime(path, (self.clamp, self.clamp), follow_symlinks=False)

    def _xattrs(self, path: str, name: str, st: os.stat_result) -> dict[str, bytes]:
        found = {}
        try:
            keys = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return {}
        for key in keys:
            value = os.getxattr(path, key, follow_symlinks=False)
            if key.startswith(self.prefix):
                if key == self.prefix + "redirect":
                    raise BuildError(f"{name}: a renamed directory (overlay redirect_dir) "
                                     "cannot be written as a layer",
                                     hint="mount overlay with redirect_dir=off")
                if key == self.prefix + "opaque" and stat.S_ISDIR(st.st_mode):
                    found[key] = value
                elif self.tar is None:
                    os.removexattr(path, key, follow_symlinks=False)
                continue
            found[key] = value
        return found

    def _unchanged_dir(self, name: str, st: os.stat_result, xattrs: dict[str, bytes]) -> bool:
        for lower in self.lowers:
            try:
                below = os.lstat(os.path.join(lower, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(below.st_mode):
                return False
            return (below.st_mode, below.st_uid, below.st_gid) == (
                st.st_mode, st.st_uid, st.st_gid) and not xattrs
        return False

    def _mtime(self, st: os.stat_result) -> int:
        mtime = int(st.st_mtime)
        if self.clamp is not None:
            mtime = min(mtime, self.clamp)
        return max(mtime, 0)

    def _info(self, name: str, st: os.stat_result, xattrs: dict[str, bytes]) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self._mtime(st)
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                                for k, v in sorted(xattrs.items())}
        return info

    def _add(self, path: str, name: str, st: os.stat_result, xattrs: dict[str, bytes]) -> None:
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return  # sockets are not kept in layers
        self.count += 1
        if self.tar is None:
            return
        info = self._info(name, st, xattrs)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
            else:
                if st.st_nlink > 1:
                    self.links[key] = name
                info.size = st.st_size
                with open(path, "rb") as handle:
                    self.tar.addfile(info, handle)
                return
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.tar.addfile(info)

    def _add_marker(self, name: str) -> None:
        self.count += 1
        if self.tar is None:
            return
        info = tarfile.TarInfo(name)
        info.mode, info.uname, info.gname = 0o600, "", ""
        info.mtime = self.clamp if self.clamp is not None else 0
        self.tar.addfile(info)


def prepare_upper(upper: Path, lowers: Sequence[Path], *, rootless: bool,
                  clamp: int | None) -> bool:
    """Make UPPER (over LOWERS, top first) a store snapshot: overlayfs's private xattrs
    removed, mtimes clamped to CLAMP; True when it holds a change a layer would carry."""
    writer = _Writer(upper, lowers, None, rootless=rootless, clamp=clamp)
    writer.walk(str(upper), "")
    return writer.count > 0


def write_layer(store: Store, upper: Path, lowers: Sequence[Path], *, rootless: bool,
                clamp: int | None) -> LayerBlob | None:
    """Write the prepared UPPER (over LOWERS, top first; only read here) as a gzip'd tar
    blob in STORE; None when the step changed nothing (no blob is kept then)."""
    with store.ingest_new() as blob:
        gz = GzipWriter(blob.handle)
        try:
            # Mode "w", not the stream mode "w|": tarfile then writes straight to the
            # compressor in large pieces instead of through its own 10 kB buffer.
            with tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[arg-type]
                                 copybufsize=_COPY_BUFFER) as tar:
                writer = _Writer(upper, lowers, tar, rootless=rootless, clamp=clamp)
                writer.walk(str(upper), "")
            gz.close()
        except BaseException:
            gz.abort()
            raise
        if writer.count == 0:
            return None  # an empty diff: no layer (blob.digest unset: the temp file goes)
        blob.digest = gz.digest
    return LayerBlob(gz.digest, gz.diff_id, gz.size)
