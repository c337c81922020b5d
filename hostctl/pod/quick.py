"""The recorded pod setup: `hostctl pod-setup NAME` made again as its last full run made it.

For a rootful pod on the host's network (nothing of the network to wire), the pod's
start is what hostctl.pod.holder.setup does minus reading the declarations: the IPC and
UTS namespaces pinned, the /dev/shm tmpfs, the hosts file and pod.json. A full setup of
such a pod writes a record (RUN/launch/NAME.pod-setup, as hostctl.launcher.record keeps
a container's: signatures of its inputs, the pod's declaration directories and file,
the host's resolv.conf, hostctl's own code and the environment) with what it wrote; the
next setup checks the signatures and, when all still hold, writes the same again with
only os, ctypes and threading imported. pod.json's text is then the same as the last
one, which is what the members' own start records ask (hostctl.launcher.recording).
Any doubt (no record, a changed input, leftovers of an unclean stop, a failure) means
the full setup, which releases what is there first and writes a new record.
"""

from __future__ import annotations

import os

from hostctl.launcher import record as records

TYPE_CHECKING = False  # typing itself is not imported on the setup path
if TYPE_CHECKING:
    from typing import Any


def record_path(name: str) -> str:
    """Where pod NAME's setup record is (beside the containers' start records)."""
    return records.record_path(name).removesuffix(".record") + ".pod-setup"


def setup_recorded(name: str) -> bool:
    """Set pod NAME up from its record; False when the full setup must run."""
    if not os.environ.get("INVOCATION_ID"):
        return False  # not started by systemd: no record applies
    path = record_path(name)
    record = records.load(path)
    if record is None or not records.is_current(record, _version()):
        return False
    try:
        _make(record)
    except Exception:  # the full setup releases what was made and says what failed
        records.discard(path)
        return False
    return True


def _version() -> str:
    from hostctl import __version__

    return __version__


def _make(record: dict[str, Any]) -> None:
    from hostctl.pod import pins

    folder = record["folder"]
    os.makedirs(folder)
    lib = pins.libc()
    pins.namespaces(lib, folder, record["hostname"])
    pins.shm(lib, folder, record["shm_size"])
    os.makedirs(os.path.dirname(record["hosts_file"]), exist_ok=True)
    _write(record["hosts_file"], record["hosts"])
    _write(os.path.join(folder, ".pod.json.tmp"), record["pod_json"])
    os.replace(os.path.join(folder, ".pod.json.tmp"), os.path.join(folder, "pod.json"))


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
