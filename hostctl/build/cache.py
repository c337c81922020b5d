"""The build cache: a step's result found by the key of its inputs.

A key chains the parent's key with the step's instruction text, the build args and
environment it runs with, and the content digest of what it reads (context files,
another stage's key, an image's digest): key = sha256(parent NUL kind NUL material...).
Content, not mtimes: touching or moving the context keeps every hit.

    STORE/build-cache/KEYHEX.json   {"layer": {digest, diff_id, size} | null, "created"}
    STORE/build-cache/trail/POSHEX.json   what the step at a position (Containerfile,
                                          stage, step) was built from last time

An entry is used only while its layer blob is still in the store (prune removes blobs no
image needs; the entry then misses and the step runs again). The trail is what
`--explain-cache` compares with, to say which input made a step miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hostctl.build.image import Layer
from hostctl.images.store import Store


def step_key(parent: str, kind: str, *material: str) -> str:
    """The key of a step of KIND with MATERIAL (strings) after the state PARENT."""
    digest = hashlib.sha256()
    for part in (parent, kind, *material):
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


Material = list[tuple[str, str]]  # (what it is, its value): the inputs of a step


def material_key(parent: str, kind: str, material: Material) -> str:
    return step_key(parent, kind, *(value for _, value in material))


@dataclass(frozen=True)
class Hit:
    layer: Layer | None
    created: str


class Cache:
    def __init__(self, store: Store, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        self.directory = store.root / "build-cache"

    def _path(self, key: str) -> Path:
        return self.directory / (key.removeprefix("sha256:") + ".json")

    def lookup(self, key: str) -> Hit | None:
        """The stored result of step KEY, if caching is on and its layer is still stored."""
        if not self.enabled:
            return None
        try:
            doc = json.loads(self._path(key).read_bytes())
            raw = doc["layer"]
            layer = None if raw is None else Layer(raw["digest"], raw["diff_id"], raw["size"])
            created = str(doc["created"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if layer is not None and not self.store.has_blob(layer.digest):
            return None
        return Hit(layer, created)

    def save(self, key: str, layer: Layer | None, created: str) -> None:
        """Record step KEY's result (always, so that a --no-cache build refreshes it)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        doc = {"layer": None if layer is None else
               {"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size},
               "created": created}
        path = self._path(key)
        temp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        try:
            temp.write_text(json.dumps(doc))
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    # -- explaining ------------------------------------------------------------------

    def _trail_path(self, position: str) -> Path:
        name = hashlib.sha256(position.encode("utf-8", "surrogateescape")).hexdigest()
        return self.directory / "trail" / f"{name}.json"

    def remember(self, position: str, parent: str, kind: str, material: Material) -> None:
        """Keep what the step at POSITION was built from, for the next explanation."""
        path = self._trail_path(position)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        try:
            temp.write_text(json.dumps({"parent": parent, "kind": kind,
                                        "material": [list(m) for m in material]}))
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def explain(self, position: str, parent: str, kind: str, material: Material) -> str:
        """What differs between this step's inputs and those of its last build at
        POSITION ("" when nothing does)."""
        try:
            doc = json.loads(self._trail_path(position).read_text())
            before = [(str(k), str(v)) for k, v in doc["material"]]
            old_parent, old_kind = str(doc["parent"]), str(doc["kind"])
        except (OSError, ValueError, KeyError, TypeError):
            return "this step was not built here before"
        if old_kind != kind or (before and material and before[0] != material[0]):
            return "the instruction changed"
        if old_parent != parent:
            return "the state before it changed (an earlier step changed)"
        changed = [label for (label, value), (_, old) in zip(material, before, strict=False)
                   if value != old]
        if len(material) != len(before):
            changed.append("the number of inputs")
        return ("changed: " + ", ".join(changed)) if changed else ""
