"""Where a layer entry really lands: path resolution inside the snapshot root.

A layer is applied into its own empty directory, and overlayfs later stacks the
directories. Entry names are resolved the way the kernel would resolve them on the
merged tree, but never outside it (openat2 RESOLVE_IN_ROOT semantics):

- A parent component that is a symlink made by THIS layer is followed, with absolute
  targets and ".." taken relative to the root and clamped at it: `d -> /tmp/x` then
  `d/f` writes ROOT/tmp/x/f, never /tmp/x/f on the host.
- A parent component missing from this layer is looked up in the lower snapshots (top
  first, honouring whiteouts and opaque directories): a lower symlink is followed the same
  way (usr-merged images: `lib/x` over `lib -> usr/lib` lands in usr/lib/x); a lower
  directory is recreated here with the lower's owner, mode and mtime, so the merged view
  keeps its attributes.
- The kernel is never asked to follow a symlink: each component is lstat()ed, and
  symlink targets are interpreted here. Only this process writes into the snapshot
  directory (a private temp dir), so checks and uses cannot be raced by anyone else.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Sequence

from hostctl.errors import ImageError

MAX_LINK_HOPS = 40


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


class Resolver:
    """Resolves relative paths inside ROOT; LOWERS are the snapshots below, top first."""

    def __init__(
        self, root: str, lowers: Sequence[str], *, opaque_key: str, rootless: bool, where: str
    ) -> None:
        self.root = root
        self.lowers = tuple(lowers)
        self.opaque_key = opaque_key
        self.rootless = rootless
        self.where = where
        self.implicit_dirs: dict[str, tuple[int, int]] = {}  # path -> (mode, mtime_ns)

    def path(self, parts: Sequence[str]) -> str:
        return os.path.join(self.root, *parts)

    def directory(self, parts: Sequence[str], *, create: bool = True) -> list[str] | None:
        """The real components of directory PARTS inside the root, created if missing.

        With create=False, None when it does not exist in this layer.
        """
        resolved: list[str] = []
        queue = deque(parts)
        hops = 0
        while queue:
            part = queue.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            here = [*resolved, part]
            target = self._step(here, create=create)
            if target is False:
                return None
            if isinstance(target, str):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise ImageError(f"too many symlinks resolving {'/'.join(parts)}",
                                     where=self.where)
                if target.startswith("/"):
                    resolved = []
                queue.extendleft(reversed(target.split("/")))
                continue
            resolved.append(part)
        return resolved

    def _step(self, here: list[str], *, create: bool) -> str | bool:
        """True if HERE is (now) a directory; a symlink target to follow; False if absent."""
        path = self.path(here)
        st = lstat_or_none(path)
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                return True
            if stat.S_ISLNK(st.st_mode):
                return os.readlink(path)
            if is_whiteout(st) and create:
                os.unlink(path)  # a directory replacing one deleted from below: opaque
                self.make_dir(path, None)
                self.set_opaque(path)
                return True
            raise ImageError(f"{'/'.join(here)} is not a directory but has entries below it",
                             where=self.where)
        lower = self.lower_entry(here)
        if lower is not None and stat.S_ISLNK(lower[1].st_mode):
            return os.readlink(lower[0])
        if not create:
            return False
        self.make_dir(path, lower[1] if lower and stat.S_ISDIR(lower[1].st_mode) else None)
        return True

    def make_dir(self, path: str, like: os.stat_result | None) -> None:
        """mkdir PATH, with the owner, mode and mtime of LIKE (a lower directory) if given."""
        os.mkdir(path, 0o700)
        if like is None:
            self.implicit_dirs[path] = (0o755, -1)
            return
        if not self.rootless:
            os.chown(path, like.st_uid, like.st_gid, follow_symlinks=False)
        self.implicit_dirs[path] = (stat.S_IMODE(like.st_mode), like.st_mtime_ns)

    def set_opaque(self, path: str) -> None:
        os.setxattr(path, self.opaque_key, b"y", follow_symlinks=False)

    def lower_entry(self, parts: Sequence[str]) -> tuple[str, os.stat_result] | None:
        """The topmost entry for PARTS in the lower snapshots, as the merged view shows it."""
        if self._hidden_here(parts):
            return None
        for lower in self.lowers:
            found, stop = self._lookup(lower, parts)
            if found is not None or stop:
                return found
        return None

    def _hidden_here(self, parts: Sequence[str]) -> bool:
        """True if this layer made a parent of PARTS opaque (lowers do not show through)."""
        for depth in range(len(parts)):
            path = self.path(parts[:depth])
            try:
                if os.getxattr(path, self.opaque_key, follow_symlinks=False) == b"y":
                    return True
            except OSError as exc:
                if exc.errno not in (errno.ENODATA, errno.ENOENT, errno.ENOTDIR,
                                     errno.ENOTSUP):
                    raise
        return False

    def _lookup(self, lower: str, parts: Sequence[str]) -> tuple[
        tuple[str, os.stat_result] | None, bool
    ]:
        """(entry, stop): stop is True when this lower hides everything below it."""
        opaque = False
        for depth in range(1, len(parts) + 1):
            path = os.path.join(lower, *parts[:depth])
            st = lstat_or_none(path)
            if st is None:
                return None, opaque
            if is_whiteout(st):
                return None, True
            if depth < len(parts):
                if not stat.S_ISDIR(st.st_mode):
                    return None, True  # a file or symlink here hides lower directories
                opaque = opaque or _is_opaque(path, self.opaque_key)
            else:
                return (path, st), True
        return None, opaque


def _is_opaque(path: str, key: str) -> bool:
    try:
        return os.getxattr(path, key, follow_symlinks=False) == b"y"
    except OSError:
        return False
