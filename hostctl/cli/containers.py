"""Container verbs over systemd: apply, rm, start, stop, restart, status, ps, enable, disable."""

from __future__ import annotations
