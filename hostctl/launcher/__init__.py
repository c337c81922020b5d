"""hostctl.launcher: what container units run (see entry.py)."""

import sys


def enable_site() -> None:
    """Load the site module when the launcher was started without it (entry.py): the full
    start and the cleanup import third-party packages (PyYAML, urllib3) from site-packages."""
    if sys.flags.no_site:
        import site

        site.main()
