#!/usr/bin/env bash
# The whole test suite: installs what it needs (apt packages, the virtualenv), then lint,
# type checks, unit tests and integration tests (real runc, registry and systemd test host).
# Run as root on Debian 12:  sudo scripts/test.sh   (with arguments: one pytest session
# with exactly those; without: two sessions side by side, see below)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint: ruff"
.venv/bin/ruff check hostctl tests scripts bench
echo "== types: mypy --strict hostctl"
.venv/bin/mypy --strict hostctl
if (($# > 0)); then
    echo "== tests: pytest $*"
    exec .venv/bin/python -m pytest "$@"
fi
# Two pytest sessions side by side: the integration modules whose guests share the
# machine's network namespace (marked shared_network in tests/conftest.py) one after
# another in the background, everything else (unit tests, guests with a network of their
# own, image tests without guests) in the foreground. Most of an integration test's time
# is spent waiting on guests, so the two overlap well on two cores.
shared_log="$(mktemp /tmp/hostctl-tests-shared_network.XXXXXX)"
echo "== tests: shared_network in the background (its output follows the other session's)"
.venv/bin/python -m pytest tests -m shared_network --durations=15 >"$shared_log" 2>&1 &
shared_pid=$!
trap 'kill -TERM "$shared_pid" 2>/dev/null || true' EXIT INT TERM
echo "== tests: everything else"
set +e
.venv/bin/python -m pytest tests -m "not shared_network" --durations=15
rest_status=$?
echo "== tests: waiting for the shared_network session (log: $shared_log)"
wait "$shared_pid"
shared_status=$?
trap - EXIT INT TERM
set -e
cat "$shared_log"
rm -f "$shared_log"
echo "== tests: everything else exited $rest_status, shared_network exited $shared_status"
((rest_status == 0 && shared_status == 0))
