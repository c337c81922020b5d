#!/usr/bin/env bash
# The whole test suite: installs what it needs (apt packages, the virtualenv), then lint,
# type checks, unit tests and integration tests (real runc, registry and systemd test host).
# Run as root on Debian 12:  sudo scripts/test.sh   (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint: ruff"
.venv/bin/ruff check hostctl tests scripts bench
echo "== types: mypy --strict hostctl"
.venv/bin/mypy --strict hostctl
echo "== tests"
exec .venv/bin/python -m pytest tests "$@"
