"""Health checks: the effective check of a start (spec.py), its state (state.py, with
the lean transitions in status.py), one check run in the container (run.py) and the
launcher's wait for `notify: healthy` (wait.py). See docs/architecture.md, "Health
checks"."""
