"""A RUN step: a container on the step's root filesystem, run by runc in the foreground.

The OCI config is the one every hostctl container gets (hostctl.runtime.spec: podman's
capabilities, the seccomp filter, masked and read-only paths), with the build's ENV,
USER, WORKDIR and SHELL; rootless builds run it in the build's user namespace. The step's
output goes straight to the build's stdout and stderr. Mount points runc had to create
in the root filesystem (/proc, /dev, /etc/hosts... in an image without them) are removed
afterwards, so they do not end up in the layer, as buildah does.

RUN --mount: type=bind (from the context, or from=STAGE/IMAGE; read-only unless rw),
type=cache (a directory kept in the store by id, or target), type=tmpfs, type=secret
(a file given with --secret id=ID,src=PATH, at /run/secrets/ID or target).
RUN --network=none gives the step its own network namespace with loopback only;
the default is the host's network.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.build.parser import BuildError, Instruction
from hostctl.errors import HostctlError
from hostctl.runtime.runc import find_binary
from hostctl.runtime.spec import Extras, Process, build_config
from hostctl.runtime.users import resolve_user

BASE_DESTINATIONS = ("/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf",
                     "/etc/hostname")


@dataclass
class RunSpec:
    """What a RUN step runs and with what."""

    args: list[str]
    env: dict[str, str]
    user: str | None
    workdir: str
    network: str = "host"  # host or none
    mounts: list[dict[str, Any]] = field(default_factory=list)


def resolve_in(root: Path, path: str, *, create: bool = False, mode: int = 0o755) -> Path:
    """PATH inside ROOT with symlinks followed the way the container would (absolute
    targets and .. stay inside ROOT); missing directories are made when CREATE."""
    done: list[str] = []
    todo = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        current = root.joinpath(*done, name)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if not create:
                done += [name, *todo]
                break
            os.mkdir(current, mode)
            done.append(name)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise BuildError(f"too many symlinks resolving {path}")
            target = os.readlink(current)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(name)
    return root.joinpath(*done)


def _created_mountpoints(root: Path, destinations: Sequence[str]
                         ) -> list[tuple[Path, Path]]:
    """(mount point, first missing component) for each destination runc will have to
    make in ROOT (the first component missing, and everything below it, is runc's)."""
    missing = []
    for destination in destinations:
        parts = [p for p in destination.split("/") if p]
        for depth in range(1, len(parts) + 1):
            candidate = root.joinpath(*parts[:depth])
            if not os.path.lexists(candidate):
                missing.append((root.joinpath(*parts), candidate))
                break
            if not candidate.is_dir() or candidate.is_symlink():
                break
    return missing


def _remove_mountpoint(point: Path, top: Path) -> None:
    """Remove the mount point runc made at POINT (an empty file or directory) and its
    parents up to TOP while they are empty: nothing the step itself wrote is touched."""
    with contextlib.suppress(OSError):
        st = os.lstat(point)
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            point.unlink()
        elif stat.S_ISDIR(st.st_mode):
            point.rmdir()
    current = point
    while current != top:
        current = current.parent
        try:
            current.rmdir()
        except OSError:
            return


def _etc_files(bundle: Path, hostname: str) -> dict[str, str]:
    files = {
        "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n",
        "/etc/hostname": f"{hostname}\n",
    }
    try:
        files["/etc/resolv.conf"] = Path("/etc/resolv.conf").read_text()
    except OSError:
        files["/etc/resolv.conf"] = ""
    mounts = {}
    for dest, text in files.items():
        host = bundle / Path(dest).name
        host.write_text(text)
        mounts[dest] = str(host)
    return mounts


def run_step(rootfs: Path, bundle: Path, runc_root: Path, cid: str, spec: RunSpec,
             instruction: Instruction, *, rootless: bool) -> None:
    """Run SPEC in a container on ROOTFS (mounted); BuildError when it fails."""
    bundle.mkdir(parents=True, exist_ok=True)
    resolve_in(rootfs, spec.workdir, create=True)  # RUN makes a missing WORKDIR, as docker
    try:
        identity = resolve_user(str(rootfs), spec.user)
    except HostctlError as exc:
        raise instruction.error(f"USER {spec.user}: {exc.message}", hint=exc.hint) from None
    hostname = "buildhost"
    files = _etc_files(bundle, hostname)
    destinations = [*BASE_DESTINATIONS, *(m["destination"] for m in spec.mounts)]
    created = _created_mountpoints(rootfs, destinations)
    env = dict(spec.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOSTNAME", hostname)
    if identity.uid == 0:
        env.setdefault("HOME", "/root")
    else:
        env.setdefault("HOME", identity.home or "/")
    process = Process(tuple(spec.args), tuple(f"{k}={v}" for k, v in env.items()),
                      spec.workdir or "/")
    config = build_config(
        process, identity, rootfs=str(rootfs), hostname=hostname, files=files,
        cgroups_path=None, annotations={"io.hostctl.build": instruction.where},
        network_namespace="new" if spec.network == "none" else None,
        extras=Extras(mounts=tuple(spec.mounts), rootless=rootless))
    import json

    (bundle / "config.json").write_text(json.dumps(config))
    runc_root.mkdir(parents=True, exist_ok=True)
    runc = find_binary("runc")
    log_file = bundle / "runc.log"
    argv = [runc, "--root", str(runc_root), "--log", str(log_file), "--log-format", "json",
            "run", "--bundle", str(bundle), cid]
    env_runc = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS")}
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, env=env_runc, check=False)
    finally:
        subprocess.run([runc, "--root", str(runc_root), "delete", "--force", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        for point, top in created:
            _remove_mountpoint(point, top)
    if done.returncode != 0:
        from hostctl.runtime.runc import _last_error

        detail = _last_error(str(log_file))
        raise instruction.error(
            f"the command failed with exit status {done.returncode}"
            + (f" (runc: {detail})" if detail else ""),
            hint="its output is above; nothing was stored")


def cache_mount_dir(store_root: Path, ident: str) -> Path:
    """The directory kept for RUN --mount=type=cache,id=IDENT."""
    import hashlib

    name = hashlib.sha256(ident.encode()).hexdigest()[:32]
    path = store_root / "build-cache-mounts" / name
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path
