"""docs/declarations.md is generated from the settings table and must be current."""

from __future__ import annotations

from pathlib import Path

from hostctl.declarations.docs import render
from hostctl.declarations.settings import SETTINGS

DOC = Path(__file__).parents[2] / "docs/declarations.md"


def test_the_reference_is_current() -> None:
    assert DOC.read_text() == render(), "run: python -m hostctl.declarations.docs > " + str(DOC)


def test_every_setting_is_documented_with_its_example() -> None:
    text = DOC.read_text()
    for setting in SETTINGS:
        assert f"## `{setting.key}`" in text and f"{setting.key}: {setting.example}" in text
