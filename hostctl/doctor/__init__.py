"""`hostctl doctor`: what hostctl needs from a host, checked, each finding with its fix.

Each module checks one area (host: systemd, cgroups, overlay, disk; runtimes: runc and
crun with known CVEs; rootless: what a user's containers need; config: D-Bus, generator
links, registries.conf, auth.json, policy.json). hostctl.api.doctor runs them.
"""
