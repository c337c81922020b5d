"""Ad-hoc verbs: run, exec, logs, inspect, kill."""

from __future__ import annotations
