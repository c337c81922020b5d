"""Applying one layer (a tar, compressed or not) into an empty snapshot directory.

The result is an overlayfs lower directory: whiteouts `.wh.NAME` become 0/0 character
devices, opaque markers `.wh..wh..opq` become the xattr trusted.overlay.opaque=y (or
user.overlay.opaque=y for rootless, used with the `userxattr` mount option).

Every entry is applied here, never by tarfile.extract/extractall (which have had
repeated path-traversal bypasses). Names with ".." are refused, absolute names are taken
relative to the root, parents are resolved inside the root (see resolve.py), hardlinks
may only point at files or symlinks this layer already wrote or copies up from a lower
layer (always resolved inside the root), and no chown/chmod/utime ever goes
through a symlink. Per entry: create, chown, xattrs, chmod (after chown, which clears
setuid bits), times; directory modes and times are set in a final pass so that
read-only directories can still be filled and their mtimes survive.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from hostctl.errors import ImageError
from hostctl.images.resolve import Resolver, is_whiteout, lstat_or_none
from hostctl.images.store import remove_tree
from hostctl.images.streams import DEFAULT_MAX_SIZE, HashingReader, decompressed

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_META = 1024 * 1024  # PAX and GNU long-name headers
_COPY = 1024 * 1024
_MAX_ID = 2**32 - 2
_FORBIDDEN_XATTRS = ("trusted.", "user.overlay.")


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses huge PAX / long-name headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > MAX_META:
            raise ImageError(f"tar metadata header of {self.size} bytes; refusing it")
        result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return result


def apply_layer(
    blob: Path | Streamed,
    dest: Path,
    *,
    diff_id: str,
    lowers: Sequence[Path] = (),
    rootless: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
    where: str = "layer",
    log: Callable[[str], None] | None = None,
) -> None:
    """Apply the layer in BLOB (a stored blob file, or a blob as it downloads: see
    growing.py) into the empty directory DEST and check its DiffID.

    LOWERS are the snapshots this layer sits on, top first (used to resolve parents).
    Raises ImageError for any refused entry, bad data, or a DiffID mismatch; DEST is then
    left half-filled for the caller to delete.
    """
    with contextlib.ExitStack() as stack:
        raw: BinaryIO | Streamed = (stack.enter_context(blob.open("rb"))
                                    if isinstance(blob, Path) else blob)
        stream = stack.enter_context(decompressed(raw))
        if not isinstance(blob, Path):
            # Runs first on the way out: a decompressor thread blocked on bytes that have
            # not arrived is woken, so closing the decompressor does not wait for them.
            stack.callback(blob.abandon)
        reader = HashingReader(stream, max_size, where=where)
        applier = _Applier(dest, lowers, rootless=rootless, where=where, log=log)
        try:
            stream_in = cast(IO[bytes], reader)  # stream mode only calls read()
            with tarfile.open(fileobj=stream_in, mode="r|", tarinfo=_BoundedTarInfo) as tar:
                for member in tar:
                    applier.entry(tar, member)
        except tarfile.TarError as exc:
            raise ImageError(f"not a valid tar archive: {exc}", where=where,
                             hint="the layer is corrupt or truncated") from None
        try:
            applier.finish()
        except OSError as exc:
            raise ImageError(f"cannot set directory attributes: {exc}", where=where) from None
        reader.drain()
    if reader.digest() != diff_id:
        raise ImageError(
            f"uncompressed content hashes to {reader.digest()}, not the DiffID {diff_id}",
            where=where, hint="the layer is corrupt or truncated, or the image config is wrong",
        )


class Streamed(Protocol):
    """A blob read as it downloads (growing.GrowingReader)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def abandon(self) -> None: ...


class _Applier:
    def __init__(
        self, root: Path, lowers: Sequence[Path], *, rootless: bool, where: str,
        log: Callable[[str], None] | None,
    ) -> None:
        self.rootless = rootless
        self._unmapped_said = False
        self.where = where
        self.log = log or (lambda _message: None)
        opaque_key = "user.overlay.opaque" if rootless else "trusted.overlay.opaque"
        self.tree = Resolver(os.fspath(root), [os.fspath(p) for p in lowers],
                             opaque_key=opaque_key, rootless=rootless, where=where)
        self.dirs: dict[str, tuple[int, int]] = {}  # path -> (mode, mtime_ns), final pass

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        try:
            self._entry(tar, member)
        except ImageError as exc:
            if exc.where is None:
                exc.where = self.where
            raise
        except OSError as exc:
            raise ImageError(f"entry {member.name!r}: {exc.strerror or exc}",
                             where=self.where) from None

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = self._split(member.name)
        if not parts:
            if not member.isdir():
                raise self._refuse(member, "the layer root must be a directory")
            self._directory(self.tree.root, member, exists=True)
            return
        *parent_parts, base = parts
        if base.startswith(WHITEOUT):
            self._whiteout(parent_parts, base, member)
            return
        parent = self.tree.directory(parent_parts)
        assert parent is not None
        path = self.tree.path([*parent, base])
        if member.isdir():
            self._directory(path, member, exists=self._replace(path, keep_dir=True))
        elif member.isreg():
            self._replace(path)
            self._file(tar, path, member)
        elif member.issym():
            self._replace(path)
            os.symlink(member.linkname, path)
            self._attrs_nofollow(path, member)
        elif member.islnk():
            self._hardlink(path, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._node(path, member)
        else:
            raise self._refuse(member, f"unsupported tar entry type {member.type!r}")

    def _split(self, name: str) -> list[str]:
        if "\0" in name:
            raise ImageError(f"entry {name!r}: NUL byte in name", where=self.where)
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ImageError(f"entry {name!r}: '..' in a path; refusing it (path traversal)",
                             where=self.where)
        return parts

    def _refuse(self, member: tarfile.TarInfo, why: str) -> ImageError:
        return ImageError(f"entry {member.name!r}: {why}", where=self.where)

    def _replace(self, path: str, *, keep_dir: bool = False) -> bool:
        """Clear PATH for a new entry; True if it is a directory being kept (dir over dir)."""
        st = lstat_or_none(path)
        if st is None:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        if stat.S_ISDIR(st.st_mode):
            self._forget(path)
            remove_tree(Path(path))
        else:
            os.unlink(path)
        if keep_dir and is_whiteout(st):
            os.mkdir(path, 0o700)  # a new directory where a lower one was deleted
            self.tree.set_opaque(path)
            return True
        return False

    def _forget(self, path: str) -> None:
        """Drop final-pass work under a removed directory (its path may become a symlink)."""
        for pending in (self.dirs, self.tree.implicit_dirs):
            for key in [k for k in pending if k == path or k.startswith(path + "/")]:
                del pending[key]

    def _whiteout(self, parent_parts: list[str], base: str, member: tarfile.TarInfo) -> None:
        parent = self.tree.directory(parent_parts)
        assert parent is not None
        if base == OPAQUE:
            self.tree.set_opaque(self.tree.path(parent))
            return
        name = base[len(WHITEOUT):]
        if not name or name.startswith(WHITEOUT):
            raise self._refuse(member, "invalid whiteout name")
        path = self.tree.path([*parent, name])
        if lstat_or_none(path) is not None:
            return  # this layer has NAME itself, which already hides the lower one
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def _directory(self, path: str, member: tarfile.TarInfo, *, exists: bool) -> None:
        if not exists:
            os.mkdir(path, 0o700)
        self.tree.implicit_dirs.pop(path, None)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            self._chown(fd, member)
            self._xattrs(fd, member)
        finally:
            os.close(fd)
        self.dirs[path] = (member.mode & 0o7777, _mtime_ns(member))

    def _file(self, tar: tarfile.TarFile, path: str, member: tarfile.TarInfo) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            source = tar.extractfile(member)
            if source is not None:
                while chunk := source.read(_COPY):
                    _write_all(fd, chunk)
            self._chown(fd, member)
            self._xattrs(fd, member)
            os.fchmod(fd, member.mode & 0o7777)
            mtime = _mtime_ns(member)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        parts = self._split(member.linkname)
        if not parts:
            raise self._refuse(member, "hardlink to the layer root")
        parent = self.tree.directory(parts[:-1], create=False)
        target = self.tree.path([*parent, parts[-1]]) if parent is not None else None
        st = lstat_or_none(target) if target else None
        if st is None:
            target, st = self._copy_up(parts)
        if target is None or st is None or stat.S_ISDIR(st.st_mode) or is_whiteout(st):
            raise self._refuse(
                member, f"hardlink target {member.linkname!r} is not a file or symlink in "
                "this layer or below")
        if target == path:
            return
        self._replace(path)
        os.link(target, path, follow_symlinks=False)

    def _copy_up(self, parts: list[str]) -> tuple[str | None, os.stat_result | None]:
        """A hardlink to a lower layer's file or symlink: copy it into this layer (as
        overlayfs copy-up does) so both names can share one inode here. A symlink is
        copied as a symlink, never followed."""
        lower = self.tree.lower_entry(parts)
        if lower is None or not (stat.S_ISREG(lower[1].st_mode) or stat.S_ISLNK(lower[1].st_mode)):
            return None, None
        source, st = lower
        parent = self.tree.directory(parts[:-1])
        assert parent is not None
        target = self.tree.path([*parent, parts[-1]])
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
            self._own(lambda: os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False),
                      "/".join(parts), st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            return target, os.lstat(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            with open(source, "rb") as handle:
                while chunk := handle.read(_COPY):
                    _write_all(fd, chunk)
            self._own(lambda: os.fchown(fd, st.st_uid, st.st_gid), "/".join(parts),
                      st.st_uid, st.st_gid)
            for name in os.listxattr(source, follow_symlinks=False):
                if not name.startswith(_FORBIDDEN_XATTRS):
                    os.setxattr(fd, name, os.getxattr(source, name, follow_symlinks=False))
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
        return target, os.lstat(target)

    def _node(self, path: str, member: tarfile.TarInfo) -> None:
        if member.isfifo():
            self._replace(path)
            os.mkfifo(path, 0o600)
        elif self.rootless:
            self.log(f"{self.where}: skipped device node {member.name} (rootless)")
            return
        elif member.ischr() and member.devmajor == 0 and member.devminor == 0:
            self.log(f"{self.where}: skipped 0/0 device {member.name} (it would act as a "
                     "whiteout)")
            return
        else:
            self._replace(path)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        self._attrs_nofollow(path, member)
        os.chmod(path, member.mode & 0o7777)  # a node we just made: not a symlink
        mtime = _mtime_ns(member)
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)

    def _attrs_nofollow(self, path: str, member: tarfile.TarInfo) -> None:
        """chown and xattrs on PATH itself (a symlink is never followed)."""
        uid, gid = self._ids(member)
        self._own(lambda: os.chown(path, uid, gid, follow_symlinks=False), member.name, uid, gid)
        self._xattrs(path, member)
        if member.issym():
            mtime = _mtime_ns(member)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)

    def _chown(self, fd: int, member: tarfile.TarInfo) -> None:
        uid, gid = self._ids(member)
        self._own(lambda: os.fchown(fd, uid, gid), member.name, uid, gid)

    def _own(self, chown: Callable[[], None], name: str, uid: int, gid: int) -> None:
        """Give an entry its owner. Rootless, inside the launcher's user namespace, the ids
        the user's sub-id range maps are kept; an id outside it stays the user's own (0 in
        the container), said once per layer. Outside any namespace every id is unmapped."""
        try:
            chown()
        except OSError as exc:
            if not self.rootless or exc.errno not in (errno.EPERM, errno.EINVAL):
                raise
            if not self._unmapped_said:
                self._unmapped_said = True
                self.log(f"{self.where}: owner {uid}:{gid} of {name} is "
                         "outside this user's id range: kept as the user's own (hint: add "
                         "a range to /etc/subuid and /etc/subgid)")

    def _ids(self, member: tarfile.TarInfo) -> tuple[int, int]:
        if not (0 <= member.uid <= _MAX_ID and 0 <= member.gid <= _MAX_ID):
            raise self._refuse(member, f"owner {member.uid}:{member.gid} out of range")
        return member.uid, member.gid

    def _xattrs(self, target: int | str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith(_FORBIDDEN_XATTRS):
                raise self._refuse(member, f"xattr {name} is reserved for the host; refusing it")
            data = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, data)
                else:
                    os.setxattr(target, name, data, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or (
                    self.rootless and exc.errno == errno.EPERM
                ):
                    self.log(f"{self.where}: skipped xattr {name} on {member.name}: "
                             f"{exc.strerror}")
                    continue
                raise

    def finish(self) -> None:
        """Directory modes and times, last, so that filling them did not disturb them."""
        pending = {**self.tree.implicit_dirs, **self.dirs}
        for path, (mode, mtime) in pending.items():
            try:  # O_NOFOLLOW|O_DIRECTORY: a path that is no longer a directory is left alone
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue
                raise
            try:
                os.fchmod(fd, mode)
                if mtime >= 0:
                    os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return max(0, int(member.mtime * 1_000_000_000))


def extract_archive(archive: Path, dest: Path, *, rootless: bool, where: str,
                    log: Callable[[str], None] | None = None) -> None:
    """Unpack the tar ARCHIVE (uncompressed, gzip, bzip2 or xz) into the existing directory
    DEST (ADD of a local archive), with every refusal a layer gets: nothing lands outside
    DEST, whatever the names, links or symlinks in the archive."""
    applier = _Applier(dest, (), rootless=rootless, where=where, log=log)
    try:
        with tarfile.open(archive, mode="r|*", tarinfo=_BoundedTarInfo) as tar:
            for member in tar:
                applier.entry(tar, member)
    except tarfile.TarError as exc:
        raise ImageError(f"not a valid tar archive: {exc}", where=where) from None
    try:
        applier.finish()
    except OSError as exc:
        raise ImageError(f"cannot set directory attributes: {exc}", where=where) from None
