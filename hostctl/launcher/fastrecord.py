"""The fast record: a start record in the form the compiled launcher reads.

The compiled launcher (hostctl/launcher/launchfast.c, built by `hostctl install` where a
C compiler is there) is what a container's ExecStart= runs; it does the recorded start
(hostctl.launcher.quick, or hostctl.launcher.quickuser for a user's container) without
starting Python for the records it can take: no network to replay (`network: host` or
`none`; a user's container: its default network, pasta's, too), not a pod's member, no
health check, no `notify`. For those the full start writes RUN/launch/NAME.fast beside
NAME.record (hostctl.launcher.record.discard drops both); for any other record, or a
doubt, the compiled launcher execs the Python one.

The file is fields, each ended by a NUL byte (no field may hold one: such a record gets
no fast file), in this order:

    MAGIC NAME STORE_LOCK RUNC_ROOT RUNTIME RUNTIME_FILE RUNTIME_NAME BUNDLE SCRATCH
    LAYER_BASE OVERLAY_OPTIONS RUNTIME_ID REFERENCE
    (a user's container only: ROUTE UID_MAP GID_MAP, N, then N map tools, N, then N
    arguments of pasta's command (none: no pasta), PID_FILE)
    N, then N environment entries KEY=VALUE, sorted (the record's env)
    N, then N pairs PATH SIGNATURE (content, the record's text signatures among them as
    content ones: "MODE DEV INO SIZE MTIME_NS CTIME_NS", or "-")
    N, then N pairs PATH SIGNATURE (present: "MODE DEV INO RDEV", or "-")
    N, then N absent paths
    N, then N triples DIRECTORY SUFFIX NAMES (the listing's names joined by "/")
    N, then N pairs FILE_NAME TEXT (the bundle's /etc files)
    CONFIG (config.json's text with the cgroup placeholder)

MAGIC is `hostctl-launchfast 1`, or `hostctl-launchfast-user 1` for a user's container
(another format: the Python launcher); numbers are decimal text. ROUTE is the host's
default route the record was made with ("-": none); a map is its triples' numbers
joined by spaces; pasta's command holds the network namespace's placeholder
(hostctl.launcher.record.NETNS_PLACEHOLDER).
"""

from __future__ import annotations

import os

from hostctl.launcher import record as records
from hostctl.runtime.rootfs import overlay_options
from hostctl.runtime.runc import runtime_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAGIC = "hostctl-launchfast 1"
MAGIC_USER = "hostctl-launchfast-user 1"
# what the compiled launcher cannot do itself: the record's keys that must be "off"
_PYTHON_ONLY = ("pod", "health", "health_timer", "notify", "notify_healthy")


def fast_path(record_path: str) -> str:
    """Where the fast record beside RECORD_PATH (RUN/launch/NAME.record) is."""
    return record_path.removesuffix(".record") + ".fast"


def _signature(value: list[int] | None) -> str:
    return "-" if value is None else " ".join(str(int(v)) for v in value)


def _map(triples: list[list[int]]) -> str:
    return " ".join(str(int(n)) for triple in triples for n in triple)


def _rootless(record: dict[str, Any]) -> list[str] | None:
    """A user's container's own fields (its route, maps, tools and pasta); None when the
    compiled launcher cannot take its network (only pasta's, or none)."""
    rootless, net = record["rootless"], record.get("net")
    if net and "pasta" not in net:
        return None
    pasta = [*net["pasta"], net["pid_file"]] if net else [""]
    return [rootless["route"] or "-", _map(rootless["uid_map"]), _map(rootless["gid_map"]),
            str(len(rootless["tools"])), *rootless["tools"],
            str(len(pasta) - 1), *pasta]


def fields(name: str, record: dict[str, Any]) -> list[str] | None:
    """RECORD of container NAME as the fast record's fields; None when the compiled
    launcher cannot take it (see the module's docstring)."""
    if any(record.get(key) for key in _PYTHON_ONLY) or not record.get("lowerdirs"):
        return None
    user = record.get("rootless") is not None
    own = _rootless(record) if user else None if record.get("net") else []
    if own is None:
        return None
    env = sorted(f"{key}={value}" for key, value in record["env"].items())
    out = [MAGIC_USER if user else MAGIC, name,
           os.path.join(record["store"], "locks", "gc.lock"),
           record["runc_root"], record["runtime"], record["runtime_file"],
           os.path.basename(record["runtime"]), record["bundle"], record["scratch"],
           record["layer_base"],
           overlay_options(record["lowerdirs"], record["layer_base"], record["scratch"],
                           rootless=user),
           runtime_id(name), record["reference"], *own, str(len(env)), *env]
    # the text signatures as content ones: written with the record (or with its copy put
    # back, hostctl.launcher.record.restore, once the texts were found the same), the
    # files' stat data stand for their texts as long as this fast record does
    content = [*record["content"],
               *([path, records.content_signature(path)] for path, _ in record["text"])]
    for signatures in (content, record["present"]):
        out.append(str(len(signatures)))
        for path, signature in signatures:
            out += [path, _signature(signature)]
    out += [str(len(record["absent"])), *record["absent"], str(len(record["listed"]))]
    for directory, suffix, names in record["listed"]:
        out += [directory, suffix, "/".join(names)]
    out.append(str(len(record["files"])))
    for file_name, text in record["files"].items():
        out += [file_name, text]
    out.append(record["config"])
    if any("\0" in text for text in out):
        return None
    return out


def write(name: str, record: dict[str, Any], user: bool = False) -> None:
    """Write container NAME's fast record beside its record (USER: a user's container's),
    when it can have one."""
    found = fields(name, record)
    path = fast_path(records.record_path(name, user))
    if found is None:
        if os.path.lexists(path):  # never one of an earlier start beside this record
            os.unlink(path)
        return
    data = b"".join(os.fsencode(text) + b"\0" for text in found)
    temp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
