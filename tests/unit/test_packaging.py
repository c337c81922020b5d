"""The wheel holds every package of hostctl (a package missing from pyproject.toml's list
installs fine and fails only where it is imported: the generator, a unit)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "hostctl").rglob("__init__.py")
             if "__pycache__" not in init.parts}
    assert found <= listed, found - listed
