"""Network verbs: network ls, network inspect."""

from __future__ import annotations
