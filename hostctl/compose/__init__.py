"""Compose projects: a docker-compose project run as systemd units.

The loader (project.py and the modules behind it) turns compose files into the resolved
canonical model; translate.py turns that model into container declarations, networks and
volumes; units.py is the generator's part, installed.py where projects live.
"""
