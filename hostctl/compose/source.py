"""What the translation reads of a loaded compose project (hostctl.compose.project's
ComposeProject): a structural type, so translation depends on the model, not the loader."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class Project(Protocol):
    """A loaded compose project: its name, directory, files, canonical model, the keys
    the loader found meaningless on one host, and where each key path was written."""

    @property
    def name(self) -> str: ...

    @property
    def directory(self) -> Path: ...

    @property
    def files(self) -> tuple[Path, ...]: ...

    @property
    def model(self) -> Mapping[str, Any]: ...

    @property
    def ignored(self) -> tuple[tuple[str, str], ...]: ...

    def where(self, *path: str | int) -> str: ...
