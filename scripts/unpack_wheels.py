"""Unpack wheels into one library directory (what the Debian package ships in
/usr/lib/hostctl/python): each wheel's files, its .data/purelib and platlib merged in,
console scripts and headers left out.

    python3 scripts/unpack_wheels.py TARGET WHEEL...
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path, PurePosixPath


def unpack(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            parts = PurePosixPath(member.filename).parts
            if member.is_dir() or ".." in parts or member.filename.startswith("/"):
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: not a library's
                parts = parts[2:]
            destination = target.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(member))
            mode = (member.external_attr >> 16) & 0o777
            destination.chmod(0o755 if mode & 0o111 else 0o644)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: unpack_wheels.py TARGET WHEEL...")
    target = Path(sys.argv[1])
    for wheel in sys.argv[2:]:
        unpack(Path(wheel), target)


if __name__ == "__main__":
    main()
