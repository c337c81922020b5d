#!/usr/bin/env bash
# The main job: a declared container started as a systemd service.
# Installs what it needs, serves a demo image from a local registry, declares
# app-container and starts it with systemctl: on this machine when PID 1 is systemd,
# in a throwaway systemd test host otherwise.  Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
