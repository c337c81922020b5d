"""Building the compiled generator (genfast.c) for `hostctl install` and the Debian package.

The program is compiled for one Python generator script, whose path it carries (it execs
that script whenever its fast cache does not answer). A build is kept under its hash (the
source, the script's path, the compiler's command), so a second install reuses it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("genfast.c")
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


def build(script: str, cache_dir: Path) -> tuple[Path | None, str | None]:
    """The compiled generator for Python generator SCRIPT, built into CACHE_DIR or found
    there; (None, why) when there is no compiler or it fails."""
    cc = compiler()
    if cc is None:
        return None, "no C compiler (cc, gcc): the generator stays the Python script"
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update("\0".join(command(cc, script, Path())).encode())
    binary = cache_dir / f"hostctl-generator-{digest.hexdigest()[:16]}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, None
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = cache_dir / f".{binary.name}.{os.getpid()}.tmp"
    try:
        done = subprocess.run(command(cc, script, temp), capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{cc} failed on {SOURCE}: {done.stderr.strip()[-500:]}"
        temp.chmod(0o755)
        os.replace(temp, binary)
    finally:
        temp.unlink(missing_ok=True)
    for old in cache_dir.glob("hostctl-generator-*"):  # earlier builds
        if old != binary:
            old.unlink(missing_ok=True)
    return binary, None


if __name__ == "__main__":  # debian/rules: python3 -m hostctl.units.gencompile SCRIPT OUT
    import sys

    cc = compiler()
    if cc is None:
        raise SystemExit("no C compiler")
    subprocess.run(command(cc, sys.argv[1], Path(sys.argv[2])), check=True)
