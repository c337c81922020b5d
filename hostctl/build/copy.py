"""COPY and ADD into a step's root filesystem.

Docker's rules: the destination is relative to WORKDIR; with several sources or a
destination ending in `/` it is a directory; a source directory's contents (not the
directory itself) are copied; files keep their permission bits (unless --chmod) and
mtimes, and are owned by 0:0 unless --chown; hard links within one copy stay hard links;
symlinks are copied as symlinks. ADD unpacks a local tar archive (plain, gzip, bzip2,
xz) into the destination directory instead of copying it. Missing destination
directories are created (mode 0755, with the --chown owner).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hostctl.build.context import Context, Entry, Source
from hostctl.build.parser import Instruction
from hostctl.build.run import resolve_in


@dataclass(frozen=True)
class CopyOptions:
    chown: tuple[int, int] | None = None
    chmod: int | None = None
    add: bool = False
    rootless: bool = False


class _Copier:
    def __init__(self, root: Path, options: CopyOptions, instruction: Instruction) -> None:
        self.root = root
        self.options = options
        self.instruction = instruction
        self.links: dict[tuple[int, int], Path] = {}
        self.dir_times: list[tuple[Path, int]] = []

    def owner(self) -> tuple[int, int]:
        return self.options.chown or (0, 0)

    def mkdirs(self, path: str) -> Path:
        """PATH inside the root as a directory, made (0755, --chown owner) if missing."""
        parts = [p for p in path.split("/") if p]
        current = self.root
        for index in range(len(parts)):
            current = resolve_in(self.root, "/".join(parts[:index + 1]))
            if not os.path.lexists(current):
                os.mkdir(current, 0o755)
                os.chown(current, *self.owner())
            elif not current.is_dir():
                raise self.instruction.error(f"{'/' + '/'.join(parts[:index + 1])} is not a "
                                             "directory in the image")
        return current

    def entry(self, entry: Entry, dest: Path) -> None:
        st = entry.st
        mode = stat.S_IMODE(st.st_mode) if self.options.chmod is None else self.options.chmod
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(dest) and not dest.is_dir():
                dest.unlink()
            if not os.path.lexists(dest):
                os.mkdir(dest, 0o700)
            os.chown(dest, *self.owner())
            os.chmod(dest, mode)
            self.dir_times.append((dest, st.st_mtime_ns))
            return
        self._clear(dest)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), dest)
            os.chown(dest, *self.owner(), follow_symlinks=False)
            os.utime(dest, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        if not stat.S_ISREG(st.st_mode):
            return  # devices, fifos and sockets in the context are not copied
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            os.link(self.links[key], dest)
            return
        _copy_file(entry.path, dest, self.owner(), mode, st.st_mtime_ns)
        if st.st_nlink > 1:
            self.links[key] = dest

    def _clear(self, dest: Path) -> None:
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self.instruction.error(
                f"cannot replace the directory {'/' + str(dest.relative_to(self.root))} "
                "with a file")
        dest.unlink()

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times):
            os.utime(path, ns=(mtime, mtime))


def copy_sources(root: Path, context: Context, sources: list[Source], dest: str,
                 workdir: str, options: CopyOptions, instruction: Instruction,
                 log: Callable[[str], None], *, as_dir: bool) -> None:
    """Copy SOURCES (found in CONTEXT) to DEST inside the mounted ROOT; AS_DIR when DEST
    is a directory (it ends in / or there are several sources)."""
    target = dest if dest.startswith("/") else os.path.join(workdir or "/", dest)
    as_dir = as_dir or dest in (".", "./") or len(sources) > 1
    copier = _Copier(root, options, instruction)
    for source in sources:
        if options.add and not source.is_dir and _is_archive(source.path):
            directory = copier.mkdirs(target)
            from hostctl.images.layers import extract_archive

            extract_archive(source.path, directory, rootless=options.rootless,
                            where=instruction.where, log=log)
            continue
        if source.is_dir:
            top = "/" + str(copier.mkdirs(target).relative_to(root))
            for entry in context.walk(source):
                copier.entry(entry, _destination(root, os.path.join(top, entry.relative),
                                                 follow=stat.S_ISDIR(entry.st.st_mode)))
            continue
        if as_dir:
            directory = copier.mkdirs(target)
            path = directory / os.path.basename(source.path)
        else:
            existing = resolve_in(root, target)
            if existing.is_dir() and not existing.is_symlink():
                path = existing / os.path.basename(source.path)
            else:
                copier.mkdirs(os.path.dirname(target.rstrip("/")) or "/")
                path = _destination(root, target, follow=False)
        for entry in context.walk(source):
            copier.entry(entry, path)
    copier.finish()


def _copy_file(source: Path, dest: Path, owner: tuple[int, int], mode: int,
               mtime_ns: int) -> None:
    """A new file DEST (never through a symlink) with SOURCE's bytes, then its owner, mode
    (after chown, which clears setuid bits) and mtime, all on the open descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(dest, flags, 0o600)
    try:
        with open(source, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(out, handle.fileno(), offset, min(size - offset, 1 << 30))
                if sent == 0:
                    break
                offset += sent
        os.fchown(out, *owner)
        os.fchmod(out, mode)
        os.utime(out, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(out)


def _destination(root: Path, path: str, *, follow: bool) -> Path:
    """PATH inside ROOT, its directories resolved in the root (symlinks followed there,
    never out of it). A directory follows a symlink at PATH itself (usr/lib -> lib stays a
    link, the files go into lib); a file or symlink replaces it."""
    if follow:
        return resolve_in(root, path)
    parent, _, name = path.rstrip("/").rpartition("/")
    return resolve_in(root, parent or "/") / name


def _is_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False
