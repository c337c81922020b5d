"""Running a build: each stage's instructions in order, layers into the store, the target
committed and tagged.

A step that changes files (RUN, COPY, ADD, WORKDIR) gets a fresh overlay of the stage's
snapshots; what it changed is the overlay's upper directory, written as the step's layer
and then kept as that layer's snapshot (hostctl.build.layer). A step found in the cache
(hostctl.build.cache) reuses the stored layer and its snapshot (re-applied from the blob
if the snapshot was removed). Config-only instructions change the image config and the
history. Nothing is tagged unless the whole build succeeds.
"""

from __future__ import annotations

import errno
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hostctl.build import config_steps
from hostctl.build.cache import Cache, Material, material_key
from hostctl.build.context import Context, Source
from hostctl.build.copy import CopyOptions, copy_sources
from hostctl.build.image import Layer, Pending, StageImage, from_scratch, iso_time
from hostctl.build.layer import prepare_upper, write_layer
from hostctl.build.lexer import Lexer, LexError
from hostctl.build.parser import Instruction
from hostctl.build.run import cache_mount_dir, resolve_in, run_step
from hostctl.build.stages import PROXY_ARGS, Plan, Stage, find_stage, parse_arg
from hostctl.errors import HostctlError
from hostctl.images.manifest import sha256_digest
from hostctl.images.store import Store, remove_tree
from hostctl.runtime.mount import umount
from hostctl.runtime.rootfs import mount_rootfs

Log = Callable[[str], None]


@dataclass
class Settings:
    build_args: dict[str, str]
    no_cache: bool
    timestamp: int | None
    rootless: bool
    fmt: str
    secrets: dict[str, Path] = field(default_factory=dict)
    explain: bool = False  # say why each step hit or missed the cache
    origin: str = ""  # the Containerfile: where step positions are remembered from


@dataclass
class StageState:
    stage: Stage
    image: StageImage
    args: dict[str, str] = field(default_factory=dict)  # ARGs in scope with values
    declared: set[str] = field(default_factory=set)  # ARGs declared so far, valued or not
    position: str = ""  # Containerfile, stage and step: what --explain-cache compares


class Builder:
    def __init__(self, store: Store, plan: Plan, context: Context, settings: Settings,
                 log: Log) -> None:
        self.store = store
        self.plan = plan
        self.context = context
        self.settings = settings
        self.log = log
        self.cache = Cache(store, not settings.no_cache)
        self.done: dict[int, StageImage] = {}
        self.work: Path | None = None
        self.counter = 0
        self.images: dict[str, StageImage] = {}
        self.extra_mounts: list[Path] = []  # source images mounted during a step
        self._writer = ThreadPoolExecutor(max_workers=1)  # layers, written in step order
        self._renames = threading.Lock()  # a pending snapshot's path is named or moved

    # -- the whole build ---------------------------------------------------------------

    def build(self) -> StageImage:
        """Build the plan's target stage (and the stages it needs); its image."""
        self.work = self.store.root / f".tmp-build-{os.getpid()}-{secrets.token_hex(4)}"
        self.work.mkdir(mode=0o700)
        try:
            total = len(self.plan.order)
            for number, stage in enumerate(self.plan.order, 1):
                self.done[stage.index] = self._stage(stage, number, total)
            for layer in self.done[self.plan.target.index].layers:
                if isinstance(layer, Pending):
                    layer.future.result()  # a layer that failed to be written fails here
        finally:
            self._writer.shutdown(wait=True)
            remove_tree(self.work)
        unused = set(self.settings.build_args) - self.plan.declared - PROXY_ARGS
        for name in sorted(unused):
            self.log(f"warning: build argument {name} was not consumed by any ARG")
        return self.done[self.plan.target.index]

    def created(self) -> str:
        return iso_time(self.settings.timestamp if self.settings.timestamp is not None
                        else time.time())

    def _stage(self, stage: Stage, number: int, total: int) -> StageImage:
        steps = [stage.source, *stage.instructions]
        self.log(f"[{number}/{total}] STEP 1/{len(steps)}: {stage.source.original}")
        state = StageState(stage, self._base(stage))
        onbuild = state.image.config.pop("OnBuild", None) or []
        triggers = self._triggers(onbuild, stage)
        for index, instruction in enumerate([*triggers, *stage.instructions], 2):
            self.log(f"[{number}/{total}] STEP {index}/{len(steps) + len(triggers)}: "
                     f"{instruction.original}")
            state.position = f"{self.settings.origin}\0{stage.index}\0{index}"
            self._step(state, instruction)
        return state.image

    def _triggers(self, onbuild: list[str], stage: Stage) -> list[Instruction]:
        from hostctl.build.parser import parse

        found = []
        for text in onbuild:
            parsed = parse(text, f"{stage.base} (ONBUILD)")
            found += parsed.instructions
        return found

    def _base(self, stage: Stage) -> StageImage:
        if stage.base_stage is not None:
            return self.done[stage.base_stage].copy()
        if stage.base.lower() == "scratch":
            return from_scratch()
        return self._image(stage.base, stage.source).copy()

    def _image(self, reference: str, instruction: Instruction) -> StageImage:
        if reference not in self.images:
            from hostctl.build.base import pull_base

            self.images[reference] = pull_base(self.store, reference, instruction,
                                               rootless=self.settings.rootless, log=self.log)
        return self.images[reference]

    # -- one instruction --------------------------------------------------------------

    def env_for(self, state: StageState) -> dict[str, str]:
        """What variables expand to in STATE: ARGs in scope, then ENV over them."""
        return {**state.args, **state.image.env()}

    def _step(self, state: StageState, instruction: Instruction) -> None:
        """One instruction; any failure is reported at its FILE:LINE."""
        try:
            self._instruction(state, instruction)
        except HostctlError as err:
            if err.where is None:
                err.where = instruction.where
                err.message = f"{instruction.keyword}: {err.message}"
                err.args = (err.message,)
            raise
        except OSError as err:
            detail = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
            raise instruction.error(detail, hint="free some space in the store's file system"
                                    if err.errno == errno.ENOSPC else None) from None

    def _instruction(self, state: StageState, instruction: Instruction) -> None:
        keyword = instruction.keyword
        lexer = Lexer(self.plan.escape)
        if keyword == "ARG":
            self._arg(state, instruction, lexer)
        elif keyword == "RUN":
            self._run(state, instruction, lexer)
        elif keyword in ("COPY", "ADD"):
            self._copy(state, instruction, lexer)
        elif keyword == "WORKDIR":
            self._workdir(state, instruction, lexer)
        elif keyword == "FROM":
            raise instruction.error("FROM inside ONBUILD is not allowed")
        else:
            env = self.env_for(state)
            config_steps.apply(state.image, instruction, lexer, env)
            self.check_names(state, instruction, lexer.referenced)
            self._config_step(state, keyword, [
                ("instruction", instruction.original),
                ("variables it uses", _env_text(env, lexer.referenced))])
            self._history(state, instruction, None, empty=True)

    def _config_step(self, state: StageState, kind: str, material: Material) -> None:
        """Chain the key of a step that only changes the config (it has no cache entry)."""
        parent = state.image.key
        if self.settings.explain:
            why = self.cache.explain(state.position, parent, kind, material)
            if why:
                self.log(f"--> {why}")
        self.cache.remember(state.position, parent, kind, material)
        state.image.key = material_key(parent, kind, material)

    def _history(self, state: StageState, instruction: Instruction, created: str | None,
                 *, empty: bool, text: str | None = None) -> None:
        entry: dict[str, object] = {"created": created or self.created(),
                                    "created_by": text or instruction.original}
        if empty:
            entry["empty_layer"] = True
        state.image.history.append(entry)

    def _arg(self, state: StageState, instruction: Instruction, lexer: Lexer) -> None:
        for name, default in parse_arg(instruction, lexer, self.env_for(state)):
            state.declared.add(name)
            if name in self.settings.build_args:
                value: str | None = self.settings.build_args[name]
            elif default is not None:
                value = default
            else:
                value = self.plan.global_args.get(name) or self.plan.global_env.get(name)
            if value is not None:
                state.args[name] = value
            else:
                state.args.pop(name, None)
        self._config_step(state, "ARG", [("instruction", instruction.original),
                                         ("build arguments", _env_text(state.args,
                                                                       set(state.args)))])

    def check_names(self, state: StageState, instruction: Instruction,
                    names: set[str]) -> None:
        """A build arg used where no ARG has brought it into scope is an error (it would
        silently expand to nothing)."""
        env = self.env_for(state)
        for name in sorted(names):
            if name in env or name in PROXY_ARGS or name in state.declared:
                continue
            if name in self.settings.build_args or name in self.plan.declared:
                raise instruction.error(
                    f"build argument {name} is used before it is declared in this stage",
                    hint=f"add `ARG {name}` before line {instruction.line}")

    def _expand(self, state: StageState, instruction: Instruction, lexer: Lexer,
                text: str, *, split: bool = True) -> list[str]:
        try:
            if split:
                return lexer.words(text, self.env_for(state))
            return [lexer.word(text, self.env_for(state))]
        except LexError as exc:
            raise instruction.error(str(exc)) from None

    # -- steps that change files ------------------------------------------------------

    def fs_step(self, state: StageState, instruction: Instruction, material: Material,
                action: Callable[[Path, Path], None], history: str, *,
                link: bool = False) -> None:
        """Run ACTION(rootfs, step dir) on a fresh overlay unless a step with the same
        state before it and MATERIAL is cached; keep the layer (if anything changed) and
        the history entry. A LINK step (COPY --link) runs on an empty root instead: its
        layer does not depend on the state before it, nor does its cache entry."""
        kind = instruction.keyword
        if self.settings.timestamp is not None:  # its layer's mtimes are clamped to it
            material = [*material, ("the build timestamp", str(self.settings.timestamp))]
        parent = "link" if link else state.image.key
        key = material_key(parent, kind, material)
        hit = self.cache.lookup(key)
        next_key = material_key(state.image.key, "LINK", [("layer", key)]) if link else key
        if self.settings.explain:
            why = self.cache.explain(state.position, parent, kind, material)
            if hit is not None:
                self.log("--> cache hit: the same state before it, instruction and inputs")
            elif not self.cache.enabled:
                self.log("--> cache miss: --no-cache")
            else:
                self.log(f"--> cache miss: {why or 'its earlier result is no longer stored'}")
        self.cache.remember(state.position, parent, kind, material)
        if hit is not None:
            self.log(f"--> Using cache {key.removeprefix('sha256:')[:12]}")
            if hit.layer is not None:
                self._ensure_snapshot(state.image, hit.layer)
                state.image.layers.append(hit.layer)
            state.image.key = next_key
            created = hit.created if self.settings.timestamp is None else None
            self._history(state, instruction, created, empty=hit.layer is None, text=history)
            return
        assert self.work is not None
        self.counter += 1
        step_dir = self.work / f"step{self.counter}"
        rootfs = step_dir / "rootfs"
        below = [] if link else list(state.image.layers)
        self._mount(below, step_dir, rootfs)
        try:
            action(rootfs, step_dir)
        finally:
            while self.extra_mounts:
                umount(str(self.extra_mounts.pop()))
            umount(str(rootfs))
        upper = step_dir / "upper"
        created = self.created()
        with self._renames:  # the layers below keep their paths while it compares
            lowers = self._lower_paths(below)
            changed = prepare_upper(upper, list(reversed(lowers)),
                                    rootless=self.settings.rootless,
                                    clamp=self.settings.timestamp)
        if changed:
            # The layer is written while the next steps run on its upper directory.
            pending = Pending(upper)
            pending.future = self._writer.submit(
                self._write, instruction, pending, list(state.image.layers),
                [] if link else below, key, created)
            state.image.layers.append(pending)
        else:
            self.cache.save(key, None, created)
            remove_tree(step_dir)
        state.image.key = next_key
        self._history(state, instruction, created, empty=not changed, text=history)

    def _mount(self, layers: list[Layer | Pending], scratch: Path, rootfs: Path) -> list[Path]:
        """Mount an overlay of LAYERS' snapshots at ROOTFS; the lower paths, bottom first.

        Layers still being written are mounted from their steps' upper directories; that
        works for the trailing ones only (a stored layer's snapshot name needs the
        DiffIDs below it), so a stored layer above a pending one waits for it."""
        waiting = [i for i, layer in enumerate(layers) if _unadopted(layer)]
        if waiting and not all(_unadopted(layer) for layer in layers[waiting[0]:]):
            for layer in layers:
                if isinstance(layer, Pending):
                    layer.future.result()
        with self._renames:  # no snapshot is renamed between naming and mounting it
            lowers = self._lower_paths(layers)
            mount_rootfs(lowers, self.store.snapshots, scratch, rootfs,
                         rootless=self.settings.rootless)
        return lowers

    def _lower_paths(self, layers: list[Layer | Pending]) -> list[Path]:
        """The snapshot of each layer (a pending one's upper directory until it is
        adopted), bottom first; call with the rename lock held."""
        paths: list[Path] = []
        chain: str | None = None
        for layer in layers:
            if isinstance(layer, Pending) and layer.snapshot is None:
                paths.append(layer.upper)  # only trailing ones are (see _mount)
                continue
            if isinstance(layer, Pending):
                assert layer.chain is not None and layer.snapshot is not None
                chain = layer.chain
                paths.append(layer.snapshot)
                continue
            chain = layer.diff_id if chain is None else sha256_digest(
                f"{chain} {layer.diff_id}".encode())
            paths.append(self.store.snapshot_path(chain))
        return paths

    def _write(self, instruction: Instruction, pending: Pending, below: list[Layer | Pending],
               lowers_of: list[Layer | Pending], key: str, created: str) -> Layer:
        """In the layer thread, in step order: write the step's layer, adopt its upper
        directory as the snapshot, record the cache entry."""
        try:
            with self._renames:
                lowers = self._lower_paths(lowers_of)
            upper = pending.upper
            blob = write_layer(self.store, upper, list(reversed(lowers)),
                               rootless=self.settings.rootless, clamp=self.settings.timestamp)
            if blob is None:
                raise instruction.error("internal: a changed upper directory gave no layer")
            layer = Layer(blob.digest, blob.diff_id, blob.size)
            self._adopt_snapshot(below, layer, pending)
            self.cache.save(key, layer, created)
            return layer
        except HostctlError as err:
            if err.where is None:
                err.where = instruction.where
            raise
        except OSError as err:
            raise instruction.error(f"writing the layer: {err.strerror or err}") from None

    def _adopt_snapshot(self, below: list[Layer | Pending], layer: Layer,
                        pending: Pending) -> None:
        """Make PENDING's upper directory the snapshot of LAYER over BELOW (all written by
        now: layers are written in step order)."""
        from hostctl.images import snaprecord

        chain = StageImage("", [*below, layer]).chains()[-1]
        upper = pending.upper
        with self.store.lock("snapshot-" + chain.removeprefix("sha256:")):
            target = self.store.snapshot_path(chain)
            if not self.store.has_snapshot(chain):
                os.chmod(upper, 0o755)
                snaprecord.write(upper, self.store.record_path(chain),
                                 snaprecord.Header(layer.digest, layer.diff_id,
                                                   self.settings.rootless))
                with self._renames:
                    os.rename(upper, target)
                    pending.snapshot, pending.chain = target, chain
                return
            # The same layer is stored already: later steps mount that one; UPPER (maybe
            # mounted by a step running now) goes with the build's scratch space.
            with self._renames:
                pending.snapshot, pending.chain = target, chain

    def _ensure_snapshot(self, image: StageImage, layer: Layer) -> None:
        chain = StageImage(image.key, [*image.layers, layer]).chains()[-1]
        if self.store.has_snapshot(chain):
            return
        from hostctl.images.pull import apply_snapshot

        apply_snapshot(self.store, chain, layer.diff_id, layer.digest,
                       image.snapshots(self.store), rootless=self.settings.rootless,
                       where=f"build cache: layer {layer.digest}", log=self.log)

    def _workdir(self, state: StageState, instruction: Instruction, lexer: Lexer) -> None:
        path = self._expand(state, instruction, lexer, instruction.args, split=False)[0]
        self.check_names(state, instruction, lexer.referenced)
        if not path:
            raise instruction.error("needs a path")
        current = state.image.config.get("WorkingDir") or "/"
        workdir = os.path.normpath(os.path.join(current, path))
        state.image.config["WorkingDir"] = workdir

        def make(rootfs: Path, _step: Path) -> None:
            resolve_in(rootfs, workdir, create=True)

        self.fs_step(state, instruction, [("instruction", f"WORKDIR {workdir}")], make,
                     f"WORKDIR {workdir}")

    def _run(self, state: StageState, instruction: Instruction, lexer: Lexer) -> None:
        from hostctl.build.runsteps import mounts_for, run_material

        spec, history, material, requests = run_material(self, state, instruction, lexer)

        def run(rootfs: Path, step_dir: Path) -> None:
            spec.mounts = mounts_for(self, requests, instruction, step_dir)
            run_step(rootfs, step_dir / "bundle", step_dir / "runc",
                     f"hostctl-build-{os.getpid()}-{self.counter}", spec, instruction,
                     rootless=self.settings.rootless)

        self.fs_step(state, instruction, material, run, history)

    def _copy(self, state: StageState, instruction: Instruction, lexer: Lexer) -> None:
        from hostctl.build.runsteps import copy_material

        copy_material(self, state, instruction, lexer)

    # helpers used by runsteps

    def stage_image(self, ref: str, instruction: Instruction) -> tuple[StageImage, str]:
        """The image COPY --from / --mount from= REF names: a built stage or an image."""
        found = find_stage(self.plan.stages, ref)
        if found is not None:
            if found.index not in self.done:
                raise instruction.error(f"stage {ref!r} is not built before this step")
            image = self.done[found.index]
            return image, image.key
        image = self._image(ref, instruction)
        return image, image.key

    def mount_image(self, image: StageImage, directory: Path) -> Path:
        """Mount IMAGE's snapshots (read-write scratch, thrown away) under DIRECTORY."""
        rootfs = directory / "rootfs"
        self._mount(list(image.layers), directory, rootfs)
        return rootfs

    def work_dir(self, name: str) -> Path:
        """A directory of this build's scratch space (removed when the build ends)."""
        assert self.work is not None
        path = self.work / name
        path.mkdir(exist_ok=True)
        return path

    def cache_dir(self, ident: str) -> Path:
        return cache_mount_dir(self.store.root, ident)

    def copy_into(self, rootfs: Path, context: Context, sources: list[Source], dest: str,
                  workdir: str, options: CopyOptions, instruction: Instruction, *,
                  as_dir: bool) -> None:
        copy_sources(rootfs, context, sources, dest, workdir, options, instruction, self.log,
                     as_dir=as_dir)


def _unadopted(layer: Layer | Pending) -> bool:
    return isinstance(layer, Pending) and layer.snapshot is None


def _env_text(env: dict[str, str], names: set[str]) -> str:
    return "\n".join(f"{k}={env[k]}" for k in sorted(names) if k in env)
