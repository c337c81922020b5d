"""hostctl: containers declared in files, run as plain systemd services with runc."""

__version__ = "0.1.0"
