"""Automatic updates and rollback: what is compared (compare.py), how a restarted
container is judged (judge.py), restarting it and its dependents (restart.py).
hostctl.api.update ties them to the store and systemd."""
