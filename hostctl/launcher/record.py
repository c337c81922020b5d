"""Start records: what a full start worked out, kept so the next start can skip it.

A full start (hostctl.launcher.launch) reads the declaration, resolves the image in the
store, reads the image's passwd and group, the host's resolv.conf, and composes
config.json. Nothing of that changes between two starts unless one of its inputs does,
so after a successful start it writes a record: the finished config.json and /etc files,
the overlay's lower directories, and a signature of every input. The next start
(hostctl.launcher.quick) checks the signatures and, when all still hold, mounts, writes
and hands off without importing the declaration readers, the image code or the network
code. Any doubt means the full start, which cleans up and writes a new record.

Signatures:
- content: a file or directory whose bytes or entries decided the config (declaration
  files and drop-ins, env files, resolv.conf): mode, device, inode, size, mtime, ctime;
- present: a path that must still be the same object (layer snapshots, bind-mount
  sources, the runtime binary, device nodes): mode, device, inode, rdev;
- the environment the launcher ran with, minus what systemd sets anew for each start;
- the store's image index among the content signatures: a pull or an untag anywhere
  in the store means a full start (and a new record);
- a pod's member: the text of its pod's record (hostctl.pod.holder.PodRecord), the same
  at each start of an unchanged pod (its namespaces, /dev/shm and hosts file are made
  anew at the same paths), so the pod's start does not invalidate its members' records.
- listed: the names in a directory with a given suffix (a network file added to a
  declaration directory, whose own mtime changes with every bundle made in it);
- network: what hostctl.network.replay needs (the bridge, the plugins, the restore
  tools, the network files), and the address the last start had, asked for again;
- rootless (a user's container, hostctl.launcher.quickuser): /etc/subuid and
  /etc/subgid among the content signatures, newuidmap, newgidmap and pasta among the
  present ones, the id maps and pasta's command line as the last start had them;
- text: a file compared by its bytes (the host's resolv.conf and systemd-resolved's
  upstream one, which many hosts write anew at each boot with the same lines).

A record lives in the run directory (a tmpfs), and a copy of it in the state directory
(STATE/launch/NAME.record, hostctl.paths' state dir), which outlives a reboot: the first
start after a boot takes the copy when its signatures still hold (what the last boot's
full start read is on disk, unchanged; a file in the run directory it names is made
anew, a leftover of an unclean stop fails the absent check) and puts it back in the run
directory. Both are written and dropped together (save(), drop()). They are written
with marshal, and config.json is kept as finished JSON text with a
placeholder for the cgroup: this module imports only os and marshal, as it is on every
start's path (the json package alone would cost it more than the rest of its imports).
"""

from __future__ import annotations

import marshal
import os

TYPE_CHECKING = False  # typing itself is not imported on the start path
if TYPE_CHECKING:
    from typing import Any

FORMAT = 6  # 2: the health check (healthcheck.json text, notify: healthy); 3: "pod";
# 4: networks (hostctl.network.replay); 5: rootless containers ("rootless":
# hostctl.launcher.quickuser); 6: "text" signatures, records kept across reboots
# What a recorded start says in the journal (the compiled launcher says the same).
RECORDED_START = "starting as the last full start did (its start record)"
# In the recorded config.json text, replaced by each start's own cgroup (a JSON string).
CGROUP_PLACEHOLDER = "@hostctl-cgroups-path@"
# A user's container with pasta: its network namespace's path, in config.json's text and
# pasta's command line (hostctl.launcher.quickuser puts its own descriptor's path there).
NETNS_PLACEHOLDER = "@hostctl-netns@"
# Set by systemd for each start (or stop) of a unit: not inputs of the container's config.
VOLATILE_ENV = frozenset({
    "INVOCATION_ID", "NOTIFY_SOCKET", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "MANAGERPID",
    "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
    "MAINPID", "SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS", "MONITOR_SERVICE_RESULT",
    "MONITOR_EXIT_CODE", "MONITOR_EXIT_STATUS", "MONITOR_INVOCATION_ID", "MONITOR_UNIT",
    "TRIGGER_UNIT", "TRIGGER_PATH", "TRIGGER_TIMER_REALTIME_USEC",
    "TRIGGER_TIMER_MONOTONIC_USEC",
})

Signature = list[int] | None


def record_path(name: str, user: bool = False) -> str:
    """Where the record for container NAME is: RUN/launch/NAME.record, with RUN as
    hostctl.paths.for_scope(Scope.SYSTEM).run, or Scope.USER's with USER (a unit test
    holds them equal)."""
    if user:
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
        run = os.environ.get("HOSTCTL_RUN_DIR", os.path.join(runtime, "hostctl"))
    else:
        run = os.environ.get("HOSTCTL_RUN_DIR", "/run/hostctl")
    return os.path.join(run, "launch", f"{name}.record")


def kept_path(name: str, user: bool = False) -> str:
    """Where the copy of container NAME's record that outlives a reboot is:
    STATE/launch/NAME.record, with STATE as hostctl.paths.for_scope(...).state (a unit
    test holds them equal)."""
    if user:
        home = os.environ.get("HOME") or os.path.expanduser("~")
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local/share")
        state = os.environ.get("HOSTCTL_STATE_DIR", os.path.join(data, "hostctl"))
    else:
        state = os.environ.get("HOSTCTL_STATE_DIR", "/var/lib/hostctl")
    return os.path.join(state, "launch", f"{name}.record")


def content_signature(path: str) -> Signature:
    """What changes when PATH (followed if a symlink) is written, replaced or removed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mode, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def presence_signature(path: str) -> Signature:
    """What changes when PATH (followed if a symlink) is replaced or removed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mode, st.st_dev, st.st_ino, st.st_rdev]


def listing(directory: str, suffix: str) -> list[str]:
    """The names in DIRECTORY ending with SUFFIX, sorted; [] when it cannot be read. (For
    a directory that changes for other reasons too, as the run directory's containers/,
    which holds both transient declarations and the bundles.)"""
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(suffix))
    except OSError:
        return []


def text_signature(path: str) -> str | None:
    """PATH's text (None when it cannot be read): for a small file that is written anew
    with the same lines, as resolv.conf is at each boot on many hosts."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except OSError:
        return None


def start_environment() -> dict[str, str]:
    """The launcher's environment, minus what systemd sets anew for each start."""
    return {k: v for k, v in os.environ.items() if k not in VOLATILE_ENV}


def load(path: str) -> dict[str, Any] | None:
    """The record at PATH, or None when there is none (or it is unreadable)."""
    try:
        with open(path, "rb") as handle:
            return _parsed(handle.read())
    except OSError:
        return None


def _parsed(data: bytes) -> dict[str, Any] | None:
    """DATA (a record file's bytes) as a record of this FORMAT; None when it is not one."""
    try:
        record = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    return record


def load_for_start(name: str, user: bool = False) -> tuple[dict[str, Any] | None, bool]:
    """Container NAME's record for a start: the run directory's, else (the first start
    since a boot, or since the run directory was emptied) the kept copy; and whether it
    is the kept copy, which the start puts back (restore()) once it holds."""
    try:
        with open(record_path(name, user), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return load(kept_path(name, user)), True
    except OSError:
        return None, False
    # one this boot wrote: never the copy instead (a broken run record means a full start)
    return _parsed(data), False


def restore(name: str, record: dict[str, Any], user: bool = False) -> None:
    """Write RECORD as container NAME's run-directory record, with its fast record beside
    it: a kept copy found current goes back there, for this boot's stop and next starts."""
    from hostctl.launcher import fastrecord

    write(record_path(name, user), record)
    fastrecord.write(name, record, user)


def is_current(record: dict[str, Any], version: str) -> bool:
    """True when every input of RECORD still has the signature it had when written."""
    return stale_input(record, version) is None


def stale_input(record: dict[str, Any], version: str) -> str | None:
    """What of RECORD's inputs no longer has the signature it had when written (the
    first found, in words for the journal); None when none."""
    try:
        if record["hostctl"] != version:
            return "another hostctl version"
        environment = start_environment()
        if record["env"] != environment:
            changed = {key for key, _ in set(record["env"].items()) ^ set(environment.items())}
            return f"the environment ({', '.join(sorted(changed))})"
        for kind, signature, pairs in (("changed", content_signature, record["content"]),
                                       ("replaced", presence_signature, record["present"]),
                                       ("changed", text_signature, record["text"])):
            for path, recorded in pairs:
                if signature(path) != recorded:
                    return f"{path} {kind}" if recorded is not None else f"{path} appeared"
        for path in record["absent"]:
            if os.path.lexists(path):  # leftovers of a start that did not stop cleanly
                return f"{path} left by the last run"
        pod = record.get("pod")
        if pod is not None and _text(pod["record"]) != pod["text"]:
            return f"pod {pod['name']} not running as recorded"
        for directory, suffix, names in record["listed"]:
            if listing(directory, suffix) != names:
                return f"the {suffix} files in {directory}"
    except (KeyError, TypeError, ValueError):
        return "a record of another layout"
    return None


def _text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def json_string(text: str) -> str:
    """TEXT as a JSON string literal (what json.dumps gives, without importing json)."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def write(path: str, record: dict[str, Any]) -> None:
    """Store RECORD at PATH atomically, readable by root only (config.json holds env)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(marshal.dumps(record))
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def discard(path: str) -> None:
    """Remove the record at PATH, if any, and the fast record beside it
    (hostctl.launcher.fastrecord)."""
    for made in (path, path.removesuffix(".record") + ".fast"):
        try:
            os.unlink(made)
        except FileNotFoundError:
            continue


def save(name: str, record: dict[str, Any], user: bool = False) -> None:
    """Write container NAME's RECORD: the kept copy, then the run directory's and its
    fast record (restore())."""
    write(kept_path(name, user), record)
    restore(name, record, user)


def drop(name: str, user: bool = False) -> None:
    """Remove container NAME's records: the run directory's (and its fast record) and the
    kept copy."""
    discard(record_path(name, user))
    try:
        os.unlink(kept_path(name, user))
    except FileNotFoundError:
        return
