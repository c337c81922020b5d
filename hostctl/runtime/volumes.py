"""The container's own mounts: volumes, tmpfs, secrets, time zone and the init binary.

Each function returns OCI `mounts` entries; the launcher appends them after the base
mounts, in the order the declaration gives them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import RuntimeFailure
from hostctl.proc import run, which
from hostctl.runtime.inroot import resolve_in_root

if TYPE_CHECKING:
    from hostctl.declarations.model import Secret, Tmpfs, Volume

Where = Callable[[str], str]
INIT_BINARIES = ("catatonit", "tini-static")  # static builds: images need no libc
PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable",
               "runbindable"}
PASSED_OPTIONS = {"nosuid", "nodev", "noexec", "suid", "dev", "exec"}
READ_ONLY_TMPFS = ("/tmp", "/var/tmp", "/run")


def _bind(source: str, destination: str, options: Iterable[str]) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": source,
            "options": list(options)}


def bind_options(read_only: bool, written: Iterable[str]) -> list[str]:
    """rbind (unless `bind`), ro, the propagation mode (rprivate by default), and flags."""
    written = list(written)
    options = ["bind" if "bind" in written else "rbind"]
    if read_only:
        options.append("ro")
    options += [o for o in written if o in PASSED_OPTIONS]
    modes = [o for o in written if o in PROPAGATION]
    options.append(modes[-1] if modes else "rprivate")
    return options


def volume_mounts(volumes: Iterable[Volume], volume_root: Path, rootfs: Path, where: Where,
                  owner: tuple[int, int] | None, anonymous_root: Path | None = None
                  ) -> list[dict[str, Any]]:
    """Bind mounts, named and anonymous volumes. A named volume is created on first use
    (see _named_volume), an anonymous one likewise under ANONYMOUS_ROOT (this run's, gone
    with it); `U` chowns the source to OWNER (the container user's uid/gid as seen from
    here)."""
    mounts = []
    for index, vol in enumerate(volumes):
        if vol.kind == "volume":
            source = _named_volume(vol, volume_root, rootfs, owner)
        elif vol.kind == "anonymous":
            if anonymous_root is None:
                raise RuntimeFailure(f"no place for the anonymous volume {vol.destination}",
                                     where=where("volumes"))
            named = dataclasses.replace(vol, source=str(index))
            source = _named_volume(named, anonymous_root, rootfs, owner)
        else:
            source = Path(vol.source)
            if not source.exists():
                raise RuntimeFailure(f"volume source {source} does not exist",
                                     where=where("volumes"),
                                     hint="create it, or use a named volume")
        if "U" in vol.options and owner is not None:
            _chown_tree(source, *owner)
        mounts.append(_bind(str(source), vol.destination,
                            bind_options(vol.read_only, vol.options)))
    return mounts


def _image_dir(rootfs: Path, destination: str) -> Path | None:
    """The image's directory at DESTINATION, resolved inside ROOTFS (a symlink in the
    image never leads out of it), or None when the image has no directory there."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        parts = resolve_in_root(root_fd, destination)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(root_fd)
    inside = rootfs.joinpath(*parts)
    return inside if inside.is_dir() and not inside.is_symlink() else None


def _named_volume(vol: Volume, volume_root: Path, rootfs: Path,
                  owner: tuple[int, int] | None) -> Path:
    """VOLUME_ROOT/NAME/_data, made on first use as podman does: owned by the container's
    user (OWNER), unless the image has a directory at the destination, whose owner, mode
    and (unless `nocopy`) content the new volume takes. Made under a temporary name and
    renamed, so a failed start never leaves a half-filled volume."""
    data = volume_root / vol.source / "_data"
    spec = _volume_spec(volume_root / vol.source)
    copy = "nocopy" not in vol.options and spec.get("copy", True) is not False
    if data.is_dir():
        if spec.get("device") and spec.get("copy") is True and copy:
            _copy_into_mount(data, volume_root / vol.source, rootfs, vol.destination)
        return data
    partial = volume_root / vol.source / "_new"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o755)
    os.chmod(partial, 0o755)  # whatever the umask
    inside = _image_dir(rootfs, vol.destination)
    if inside is not None and copy:
        # cp -a keeps owners, modes and xattrs of the image's content (and of the
        # directory itself, which "DIR/." copies onto PARTIAL).
        run(["cp", "-a", "--no-dereference", f"{inside}/.", str(partial)])
    elif inside is not None:
        st = inside.stat()
        os.chown(partial, st.st_uid, st.st_gid)
        os.chmod(partial, stat.S_IMODE(st.st_mode))
    elif owner is not None:
        os.chown(partial, *owner)
    uid, gid = spec.get("uid"), spec.get("gid")
    if uid is not None or gid is not None:  # a .volume's UID=/GID=: its directory's owner
        os.chown(partial, -1 if uid is None else int(uid), -1 if gid is None else int(gid))
    partial.rename(data)
    return data


def _volume_spec(top: Path) -> dict[str, Any]:
    """TOP/volume.json, the settings of a quadlet .volume (hostctl.volumes), or {}."""
    import json

    try:
        found = json.loads((top / "volume.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _copy_into_mount(data: Path, top: Path, rootfs: Path, destination: str) -> None:
    """A .volume's mounted device (DATA): the image's content is copied in on the first
    use while it is empty (podman's copy-up); TOP/copied records that it was done."""
    marker = top / "copied"
    if marker.exists() or any(data.iterdir()):
        marker.touch()
        return
    inside = _image_dir(rootfs, destination)
    if inside is not None:
        run(["cp", "-a", "--no-dereference", f"{inside}/.", str(data)])
    marker.touch()


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid, follow_symlinks=False)
    for directory, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def tmpfs_mounts(entries: Iterable[Tmpfs]) -> list[dict[str, Any]]:
    """`tmpfs:` entries, nosuid/nodev/noexec unless the entry says suid/dev/exec."""
    mounts = []
    for entry in entries:
        options = list(entry.options)
        for flag, opposite in (("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")):
            if flag not in options and opposite not in options:
                options.append(flag)
        mounts.append({"destination": entry.destination, "type": "tmpfs", "source": "tmpfs",
                       "options": options})
    return mounts


def read_only_tmpfs(taken: set[str]) -> list[dict[str, Any]]:
    """With a read-only root: writable tmpfs on /tmp, /var/tmp and /run, as podman does."""
    return [{"destination": d, "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "nosuid", "nodev", "mode=1777" if d != "/run" else "mode=755"]}
            for d in READ_ONLY_TMPFS if d not in taken]


def secret_mounts(secrets: Iterable[Secret], stage: Path, owner: tuple[int, int],
                  where: Where) -> list[dict[str, Any]]:
    """Each secret read-only at its target, from the unit's $CREDENTIALS_DIRECTORY.

    The credential is copied into STAGE (mode 0700, on /run: memory only) owned by the
    container's user, so a non-root user can read it and nobody else can."""
    secrets = [secret for secret in secrets if secret.env is None]
    if not secrets:
        return []
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise RuntimeFailure("the unit has no credentials ($CREDENTIALS_DIRECTORY is unset)",
                             where=where("secrets"),
                             hint="start the container through its systemd unit")
    stage.mkdir(mode=0o700, exist_ok=True)
    mounts = []
    for secret in secrets:
        source = Path(directory) / secret.name
        copy = stage / secret.name
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
            with os.fdopen(fd, "wb") as out:
                out.write(source.read_bytes())
                os.fchown(out.fileno(), *owner)
        except OSError as exc:
            raise RuntimeFailure(f"secret {secret.name}: {exc.strerror}",
                                 where=where("secrets")) from None
        mounts.append(_bind(str(copy), secret.target,
                            ["bind", "ro", "nosuid", "nodev", "noexec", "rprivate"]))
    return mounts


def secret_env(secrets: Iterable[Secret], where: Where) -> list[tuple[str, str]]:
    """(VARIABLE, value) of each secret given as an environment variable, read from the
    unit's $CREDENTIALS_DIRECTORY."""
    wanted = [secret for secret in secrets if secret.env is not None]
    if not wanted:
        return []
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise RuntimeFailure("the unit has no credentials ($CREDENTIALS_DIRECTORY is unset)",
                             where=where("secrets"),
                             hint="start the container through its systemd unit")
    pairs = []
    for secret in wanted:
        assert secret.env is not None
        try:
            data = (Path(directory) / secret.name).read_bytes()
        except OSError as exc:
            raise RuntimeFailure(f"secret {secret.name}: {exc.strerror}",
                                 where=where("secrets")) from None
        try:
            text = data.decode("utf-8")
            if "\0" in text:
                raise ValueError
        except ValueError:
            raise RuntimeFailure(
                f"secret {secret.name} cannot be the variable {secret.env}",
                where=where("secrets"),
                hint="an environment variable holds UTF-8 text without NUL bytes; "
                "mount it as a file instead") from None
        pairs.append((secret.env, text))
    return pairs


def timezone_mount(zone: str | None, where: Where) -> list[dict[str, Any]]:
    """/etc/localtime from the host's own zone ("local") or its zoneinfo database."""
    if not zone:
        return []
    if zone == "local":
        source = Path("/etc/localtime").resolve()
    else:
        source = Path("/usr/share/zoneinfo") / zone
    if not source.is_file():
        raise RuntimeFailure(f"time zone {zone!r} is not in the host's zoneinfo database",
                             where=where("timezone"), hint="install tzdata, or use local")
    return [_bind(str(source), "/etc/localtime", ["bind", "ro", "rprivate"])]


def init_binary() -> str:
    """The host's static container init (catatonit, else tini-static)."""
    for name in INIT_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return which("catatonit")  # raises ToolMissing naming the package


def init_path(binary: str) -> str:
    """Where the init binary appears in the container (/run/catatonit)."""
    return f"/run/{os.path.basename(binary)}"


def init_mount(binary: str) -> dict[str, Any]:
    return _bind(binary, init_path(binary), ["bind", "ro", "nosuid", "nodev", "rprivate"])


