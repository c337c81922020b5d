"""hostctl: containers declared in files, run as plain systemd services with runc."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# The Debian package ships the PyPI libraries Debian 12 has too old or not at all (typer,
# urllib3 2, isal, zstandard) in a directory of its own: put it first, but only for the
# packaged hostctl, so a virtualenv's hostctl keeps its own libraries.
_PACKAGED_LIBS = "/usr/lib/hostctl/python"
if (__file__.startswith("/usr/lib/python3/dist-packages/")
        and _PACKAGED_LIBS not in _sys.path and _os.path.isdir(_PACKAGED_LIBS)):
    _sys.path.insert(0, _PACKAGED_LIBS)
