"""What a quadlet volume's unit (NAME-volume.service) runs: `hostctl volume-setup NAME`
at start and `hostctl volume-release NAME` at stop (hostctl.declarations.volume_file).

setup makes VOLUME_ROOT/NAME/ and writes volume.json there, the settings the launcher
applies when it makes the volume's `_data` on first use (owner, copy of the image's
content); with Device= it mounts the device on `_data` (once: a mount already there is
kept), owned by UID=/GID=. release unmounts it. The volume's content is never removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostctl.declarations.volume_file import VolumeDecl, load_volume, volume_files
from hostctl.errors import DeclarationError, HostctlError, RuntimeFailure
from hostctl.paths import Paths, Scope, for_scope

SPEC = "volume.json"


def volume_root(paths: Paths) -> Path:
    return paths.state / "volumes"


def find(name: str, scope: Scope) -> VolumeDecl:
    """The volume NAME's .volume file of SCOPE, read."""
    from hostctl.declarations.dirs import declaration_dirs
    from hostctl.declarations.volume_file import volumes_dir

    dirs = declaration_dirs(scope)
    path = volume_files(dirs, volumes_dir(for_scope(scope).config)).get(name)
    if path is None:
        raise DeclarationError(
            f"no volume file {name}.volume", hint="looked in "
            + ", ".join(str(d) for d in dirs))
    return load_volume(path, user=scope is Scope.USER)


def setup(name: str, scope: Scope) -> None:
    """Make volume NAME ready (its unit's ExecStart)."""
    volume = find(name, scope)
    top = volume_root(for_scope(scope)) / volume.name
    top.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = top / f".{SPEC}.{os.getpid()}"
    temp.write_text(volume.spec())
    os.replace(temp, top / SPEC)
    data = top / "_data"
    if volume.device is None:
        if data.is_dir() and (volume.uid is not None or volume.gid is not None):
            os.chown(data, -1 if volume.uid is None else volume.uid,
                     -1 if volume.gid is None else volume.gid)
        return
    data.mkdir(exist_ok=True, mode=0o755)
    if not os.path.ismount(data):
        _mount(volume, data)
    if volume.uid is not None or volume.gid is not None:
        os.chown(data, -1 if volume.uid is None else volume.uid,
                 -1 if volume.gid is None else volume.gid)


def release(name: str, scope: Scope) -> None:
    """Unmount volume NAME's device, if it has one mounted (its unit's ExecStop)."""
    data = volume_root(for_scope(scope)) / name / "_data"
    if os.path.ismount(data):
        from hostctl.proc import run

        run(["umount", str(data)])


def _mount(volume: VolumeDecl, data: Path) -> None:
    from hostctl.proc import run

    argv = ["mount"]
    options = [o for o in (volume.options or "").split(",") if o]
    if volume.fs_type == "bind":
        options.insert(0, "bind")
    elif volume.fs_type:
        argv += ["-t", volume.fs_type]
    elif volume.device == "tmpfs":
        argv += ["-t", "tmpfs"]
    if options:
        argv += ["-o", ",".join(options)]
    argv += [str(volume.device), str(data)]
    try:
        run(argv)
    except HostctlError as err:
        raise RuntimeFailure(f"volume {volume.name}: cannot mount {volume.device}: {err}",
                             where=str(volume.source),
                             hint="check Device=, Type= and Options=") from None
