"""The program systemd runs as hostctl's generator: a script started the lean way.

    #!PYTHON -sSE
    import sys
    sys.path[0] = "DIRECTORY HOLDING THE hostctl PACKAGE"
    from hostctl.units.generator import main
    ...

`hostctl install` writes it into /etc/systemd/system-generators/ and user-generators/
(the Debian package ships it in /usr/lib/hostctl/ and links it from /usr/lib/systemd/).
The `hostctl-generator` console script would cost every daemon-reload about 15 ms more:
the interpreter's site module (the .pth files of every site-packages) and the script's
own `import re`. Without site the cache check imports only builtin modules; a render
runs the site module first (hostctl.launcher.enable_site), as the launcher does.
"""

from __future__ import annotations

import os
import sys

TEMPLATE = """\
#!{python} -sSE
# hostctl-generator, written by hostctl ({version}): hostctl.units.generator started
# without the site module (see hostctl/units/genentry.py).
import sys
sys.path[0] = {path!r}
from hostctl.units.generator import main
sys.exit(main())
"""


def package_parent() -> str:
    """The sys.path entry this hostctl package is imported from."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def script(python: str | None = None, path: str | None = None) -> str:
    """The generator script for interpreter PYTHON (default: this one) importing hostctl
    from PATH (default: where this package is)."""
    from hostctl import __version__

    return TEMPLATE.format(python=python or sys.executable, version=__version__,
                           path=path or package_parent())


if __name__ == "__main__":  # debian/rules: python3 -m hostctl.units.genentry PYTHON PATH
    sys.stdout.write(script(*sys.argv[1:3]))
