"""Building the compiled generator (genfast.c) for `hostctl install` and the Debian package,
and the compiled launcher (hostctl/launcher/launchfast.c) for `hostctl install`.

The generator is compiled for one Python generator script, whose path it carries (it
execs that script whenever its fast cache does not answer); the launcher for one
interpreter and launcher entry script (hostctl/launcher/entry.py), which it execs on any
doubt. A build is kept under its hash (the source, the paths, the compiler's command),
so a second install reuses it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

SOURCE = Path(__file__).with_name("genfast.c")
LAUNCHER_SOURCE = Path(__file__).parents[1] / "launcher" / "launchfast.c"
CFLAGS = ("-std=c99", "-O2", "-Wall")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-")


def compiler() -> str | None:
    """The C compiler on the search path ($CC first), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def c_string(path: str) -> str:
    """PATH as a C string literal (octal escapes for anything but plain bytes)."""
    raw = os.fsencode(path)
    return '"' + "".join(chr(b) if b in _PLAIN else f"\\{b:03o}" for b in raw) + '"'


def command(cc: str, script: str, output: Path) -> list[str]:
    return [cc, *CFLAGS, f"-DHOSTCTL_PYGEN={c_string(script)}", "-o", str(output),
            str(SOURCE)]


def launcher_command(cc: str, python: str, entry: str, output: Path) -> list[str]:
    return [cc, *CFLAGS, "-pthread", f"-DHOSTCTL_PYTHON={c_string(python)}",
            f"-DHOSTCTL_ENTRY={c_string(entry)}", "-o", str(output), str(LAUNCHER_SOURCE)]


def build(script: str, cache_dir: Path) -> tuple[Path | None, str | None]:
    """The compiled generator for Python generator SCRIPT, built into CACHE_DIR or found
    there; (None, why) when there is no compiler or it fails."""
    return _build(SOURCE, "hostctl-generator", lambda cc, out: command(cc, script, out),
                  cache_dir, "the generator stays the Python script")


def build_launcher(python: str, entry: str, cache_dir: Path) -> tuple[Path | None, str | None]:
    """The compiled launcher for PYTHON running ENTRY, built into CACHE_DIR or found there;
    (None, why) when there is no compiler or it fails."""
    return _build(LAUNCHER_SOURCE, "hostctl-launch",
                  lambda cc, out: launcher_command(cc, python, entry, out), cache_dir,
                  "units run the Python launcher")


def _build(source: Path, prefix: str, argv: Callable[[str, Path], list[str]],
           cache_dir: Path, without: str) -> tuple[Path | None, str | None]:
    """SOURCE built by ARGV(compiler, output) into CACHE_DIR as PREFIX-HASH, or found there
    (earlier builds of PREFIX are removed); (None, why) when it cannot be built."""
    cc = compiler()
    if cc is None:
        return None, f"no C compiler (cc, gcc): {without}"
    digest = hashlib.sha256(source.read_bytes())
    digest.update("\0".join(argv(cc, Path())).encode())
    binary = cache_dir / f"{prefix}-{digest.hexdigest()[:16]}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, None
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = cache_dir / f".{binary.name}.{os.getpid()}.tmp"
    try:
        done = subprocess.run(argv(cc, temp), capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{cc} failed on {source}: {done.stderr.strip()[-500:]}"
        temp.chmod(0o755)
        os.replace(temp, binary)
    finally:
        temp.unlink(missing_ok=True)
    for old in cache_dir.glob(f"{prefix}-*"):  # earlier builds
        if old != binary and old.name[len(prefix) + 1:].isalnum():
            old.unlink(missing_ok=True)
    return binary, None


if __name__ == "__main__":  # debian/rules: python3 -m hostctl.units.gencompile SCRIPT OUT
    import sys

    cc = compiler()
    if cc is None:
        raise SystemExit("no C compiler")
    subprocess.run(command(cc, sys.argv[1], Path(sys.argv[2])), check=True)
