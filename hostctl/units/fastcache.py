"""The fast cache: what the compiled generator (genfast.c) needs to answer without Python.

systemd runs the compiled hostctl-generator when `hostctl install` (or the Debian
package) could build it. It reads SCOPE.fast beside the render cache, compares the stat
data of every input with the lines stored here, and on a hit writes the stored units and
links and reports the stored messages; on any miss, doubt or unreadable file it execs the
Python generator with the same arguments, telling it so in $_HOSTCTL_GENFAST (a name
outside the context's HOSTCTL_ prefix). Only then does Python write this file, after it
has written the units: a run of the Python generator alone pays nothing for it.

The inputs are the render cache's own (gencache.inputs_stamp lines: one source of truth,
the C side produces the same lines and compares them byte for byte), plus what the
Python generator's run depends on beyond the render: hostctl's code (gencache's context),
the script the compiled program execs, the interpreter, the hostctl program the timer's
service runs (hostctl_program) and the auto-update marker. Format, version 1, one record
a line, names and texts in hex:

    hostctl-genfast 1
    G SCRIPT                     the Python generator's path (the compiled one's fallback)
    C SCOPE UID EUID GID
    V KEY=VALUE                  every HOSTCTL_*, XDG_*, HOME, USER, LOGNAME, SYSTEMD_SCOPE
    P PATH DEPTH  (stamp lines)  each input tree (gencache.tree_stamp)
    R STDERR KMSG                a message: the bytes for stderr, those for /dev/kmsg
    U NAME SIZE\\n(SIZE bytes)\\n  a unit file of the normal output directory
    K LINK TARGET                a link in it (LINK relative, TARGET NAME or ../NAME)
    Z                            the end: a file without it is truncated, a miss
"""

from __future__ import annotations

import os
import sys

from hostctl.units import gencache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hostctl.units.gencache import Tree, Unit

ENV_MISS = "_HOSTCTL_GENFAST"  # set by the compiled generator when it falls back
MAGIC = b"hostctl-genfast 1\n"
_ENV_PREFIXES = (b"HOSTCTL_", b"XDG_")
_ENV_NAMES = (b"HOME", b"USER", b"LOGNAME", b"SYSTEMD_SCOPE")


def fast_file(scope: str) -> str | None:
    """SCOPE's fast cache beside its render cache, or None when caching is off."""
    cache = gencache.cache_file(scope)
    return None if cache is None else os.path.join(os.path.dirname(cache), f"{scope}.fast")


def _hex(text: str) -> str:
    return os.fsencode(text).hex()


def context_lines(scope: str, script: str) -> list[str]:
    """The records the compiled generator compares with its own context: the script it
    execs, scope and ids, the environment gencache.context_stamp reads."""
    env = sorted(key + b"=" + value for key, value in os.environb.items()
                 if key.startswith(_ENV_PREFIXES) or key in _ENV_NAMES)
    ids = f"{os.getuid()} {os.geteuid()} {os.getgid()}"
    return [f"G {_hex(script)}", f"C {scope} {ids}", *(f"V {line.hex()}" for line in env)]


def run_trees(scope: str, programs: list[str]) -> list[Tree]:
    """What a run depends on beyond the render's inputs and hostctl's code: the script
    (sys.argv[0]), the interpreter (stat follows its links: a venv's python pointed at
    another one is a miss, as sys.version is for the render cache), the PROGRAMS
    hostctl_program looked at, the marker."""
    from hostctl.units import autoupdate

    files = [sys.argv[0], sys.executable, *programs,
             autoupdate.marker_path(scope)]
    return [(path, -1) for path in files]


def message_record(message: str, program: str) -> str:
    """What generator._report writes for MESSAGE: to stderr, and to /dev/kmsg."""
    err = f"{program}: {message}\n".encode("utf-8", "backslashreplace")
    kmsg = "".join(f"<3>{program}: {line}\n" for line in message.splitlines())
    return f"R {err.hex()} {kmsg.encode('utf-8', 'replace').hex()}"


def content(checks: list[str], messages: list[str], units: list[Unit]) -> bytes:
    """The fast cache's bytes: CHECKS (context and stamp lines), then the MESSAGES
    records, then UNITS as generator.write_units writes them."""
    parts = [MAGIC, "\n".join(checks).encode("ascii"), b"\n"]
    parts += [f"{message}\n".encode("ascii") for message in messages]
    for name, text, links in units:
        data = text.encode("utf-8")
        parts += [f"U {_hex(name)} {len(data)}\n".encode("ascii"), data, b"\n"]
        for link in links:
            target = f"../{name}" if link.rpartition("/")[0] else name  # as write_units
            parts.append(f"K {_hex(link)} {_hex(target)}\n".encode("ascii"))
    parts.append(b"Z\n")
    return b"".join(parts)


def save(path: str | None, data: bytes) -> None:
    """DATA at PATH, replaced atomically; silently nothing when it cannot."""
    if path is None:
        return
    directory = os.path.dirname(path)
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except OSError:
        import contextlib  # only on this failure path

        with contextlib.suppress(OSError):
            os.unlink(temp)
