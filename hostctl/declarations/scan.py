"""Finding a scope's quadlet files of one type (.volume, .image, .pod, .kube ...).

The first of the searched directories holding NAME.SUFFIX wins, as in quadlet; a file
that is a link to /dev/null masks NAME (it and every later one are ignored); a type with
a YAML form then takes YAML_DIR/NAME.yaml (or .yml) for the names still free.
"""

from __future__ import annotations

import os
from pathlib import Path

_MASK = Path("/dev/null")


def typed_files(dirs: list[Path], suffix: str, yaml_dir: Path | None = None
                ) -> dict[str, Path]:
    """name -> its SUFFIX file in the first of DIRS holding one (hidden files skipped;
    masked: none), else YAML_DIR/NAME.yaml or NAME.yml."""
    found: dict[str, Path] = {}
    for directory in dirs:
        try:
            entries = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.endswith(suffix) and not entry.startswith("."):
                path = directory / entry
                masked = os.path.realpath(path) == str(_MASK)
                found.setdefault(entry.removesuffix(suffix), _MASK if masked else path)
    if yaml_dir is not None:
        for pattern in ("*.yaml", "*.yml"):
            for path in sorted(yaml_dir.glob(pattern)):
                found.setdefault(path.name.rsplit(".", 1)[0], path)
    return {name: path for name, path in found.items() if path != _MASK}
