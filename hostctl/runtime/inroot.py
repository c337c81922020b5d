"""Reading files inside a container's root filesystem without ever leaving it.

Image content is untrusted: /etc/passwd may be a symlink to a host file, a FIFO or
/dev/zero, or gigantic. Paths are resolved component by component with symlinks
re-anchored at the root (openat2's RESOLVE_IN_ROOT semantics), and reads are capped.
"""

from __future__ import annotations

import os
import stat

from hostctl.errors import RuntimeFailure

MAX_SYMLINKS = 40


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve_in_root(root_fd: int, path: str) -> list[str]:
    """The symlink-free component list of PATH inside the root, or FileNotFoundError."""
    todo = _components(path)
    done: list[str] = []
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        parent = os.open("/".join(done) or ".", os.O_PATH | os.O_DIRECTORY, dir_fd=root_fd)
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise RuntimeFailure(f"too many symlinks resolving {path} in the image")
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):
                    done = []
                todo = _components(target) + todo
                continue
        finally:
            os.close(parent)
        done.append(name)
    return done


def read_file(root: str, path: str, *, limit: int = 1 << 20) -> bytes | None:
    """PATH's content read inside ROOT, None when absent; refuses non-regular and huge files."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        try:
            parts = resolve_in_root(root_fd, path)
            fd = os.open("/".join(parts) or ".", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                         dir_fd=root_fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise RuntimeFailure(f"{path} in the image is not a regular file")
            if st.st_size > limit:
                raise RuntimeFailure(f"{path} in the image is larger than {limit} bytes")
            return f.read(limit + 1)[:limit]
    finally:
        os.close(root_fd)
