"""Automatic updates and rollback as an API, for `hostctl auto-update`, `hostctl
rollback` and the Ansible module.

auto_update(): for each running container whose declaration has `auto_update`, compare
this platform's image manifest of what it runs (its bundle's digest) with the registry's
(one manifest request) or the store's (local); when they differ, pull, pin the running
image in a rollback record (hostctl.images.pins: prune keeps it), restart the unit over
D-Bus and judge it (hostctl.updates.judge). A restart that fails is rolled back: the
store's tag goes back to the pinned digest and the unit is restarted again; the release
is remembered as rejected so the next run does not try it again. Units that required
or were bound to the container and were active come back afterwards. One container's
failure (registry down, pull error, not running) is its own row; the others go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError, ImageError
from hostctl.images import pins
from hostctl.images.manage import DIGEST_ANNOTATION
from hostctl.images.pins import ImageId, Pin, Rejected
from hostctl.images.store import Store
from hostctl.paths import Paths, Scope, for_scope
from hostctl.updates.compare import Decision, Updated, decide, image_id, stored_image_id
from hostctl.updates.judge import GRACE, Verdict
from hostctl.updates.restart import RUNNING, active_dependents, restart_and_judge, start_again

if TYPE_CHECKING:
    from hostctl.declarations.model import Container
    from hostctl.images.manifest import Platform
    from hostctl.images.regconf import RegistriesConf
    from hostctl.images.registry import RegistryClient
    from hostctl.systemd.dbus import Systemd

_RUNNING = RUNNING
CHECKS = 8  # containers compared at once (registry requests in flight)
Log = Callable[[str], None]


@dataclass(frozen=True)
class UpdateResult:
    """One container's row: UNIT CONTAINER IMAGE POLICY UPDATED, digests and why."""

    unit: str
    container: str
    image: str
    policy: str  # registry | local ("" when the declaration has no auto_update)
    updated: Updated
    running_digest: str | None = None  # this platform's manifest it ran before
    available_digest: str | None = None  # the one the registry or store offers
    digest: str | None = None  # what it runs now
    reason: str = ""
    dependents: tuple[str, ...] = ()  # units started again after the restart
    dependents_failed: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.updated is Updated.FAILED or bool(self.dependents_failed)

    @property
    def changed(self) -> bool:
        return self.updated in (Updated.TRUE, Updated.ROLLED_BACK)

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit, "container": self.container, "image": self.image,
            "policy": self.policy, "updated": str(self.updated),
            "running_digest": self.running_digest, "available_digest": self.available_digest,
            "digest": self.digest, "reason": self.reason,
            "dependents": list(self.dependents),
            "dependents_failed": list(self.dependents_failed),
        }


@dataclass
class _Run:
    """What one auto-update or rollback works with."""

    scope: Scope
    paths: Paths
    store: Store
    grace: float
    log: Log
    _systemd: Systemd | None = None
    _registries: RegistriesConf | None = None
    _client: RegistryClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def systemd(self) -> Systemd:
        """The manager over pydbus, connected when first needed (a dry run never does)."""
        if self._systemd is None:
            from hostctl.systemd.dbus import Systemd

            self._systemd = Systemd(self.scope)
        return self._systemd

    def registry(self) -> tuple[RegistriesConf, RegistryClient]:
        """registries.conf and the one client, made by the first comparison that needs
        them (the comparisons run in threads)."""
        with self._lock:
            return self._registry()

    def _registry(self) -> tuple[RegistriesConf, RegistryClient]:
        if self._registries is None or self._client is None:
            from hostctl.images.pull import load_registries
            from hostctl.images.registry import RegistryClient

            self._registries = load_registries()
            self._client = RegistryClient(insecure=self._registries.insecure)
        return self._registries, self._client


def auto_update(
    names: Sequence[str] = (),
    *,
    scope: Scope = Scope.SYSTEM,
    dry_run: bool = False,
    rollback: bool = True,
    grace: float = GRACE,
    log: Log | None = None,
) -> list[UpdateResult]:
    """Update the running containers of SCOPE that declare auto_update (only NAMES, when
    given: a named one that cannot be updated is reported so). DRY_RUN reports `pending`
    and changes nothing (no pull, no restart, no store write).

    The read-only part comes first for all of them: the units' states in one D-Bus call,
    then the comparisons side by side (at most CHECKS at once: registry requests share
    one client, its connections and tokens); the updates follow one at a time, in name
    order."""
    from hostctl.systemd.dbus import unit_states

    paths = for_scope(scope)
    store = Store(paths.store)
    with contextlib.nullcontext() if dry_run else _one_at_a_time(store):
        run = _Run(scope, paths, store, grace, log or (lambda _m: None))
        targets = list(_targets(names, scope))
        states = unit_states([c.unit_name for _, c, _ in targets
                              if c is not None and c.auto_update], scope)
        screened = [_screen(name, container, error, bool(names), states)
                    for name, container, error in targets]
        due = [item for item in screened if not isinstance(item, UpdateResult | None)]
        compared = dict(zip(map(id, due), _compare_all(run, due), strict=True))
        results = []
        for item in screened:
            if isinstance(item, UpdateResult | None):
                result = item
            else:
                result = _after_compare(run, item, compared[id(item)], dry_run, rollback)
            if result is not None:
                results.append(result)
        return results


def rollback(name: str, *, scope: Scope = Scope.SYSTEM, grace: float = GRACE,
             log: Log | None = None) -> UpdateResult:
    """Put container NAME back on the image its last update replaced (its rollback
    record) and restart it (a stopped one is only switched; a failed one is started);
    the image left is then recorded as rejected (auto-update skips it) and pinned, so a
    second rollback returns to it."""
    from hostctl.declarations.search import load_declaration
    from hostctl.systemd.dbus import Systemd

    paths = for_scope(scope)
    store = Store(paths.store)
    container = load_declaration(name, scope)
    with _one_at_a_time(store):
        run = _Run(scope, paths, store, grace, log or (lambda _m: None), Systemd(scope))
        return _rollback(run, container)


# -- choosing the containers -----------------------------------------------------------


def _targets(names: Sequence[str], scope: Scope
             ) -> Iterator[tuple[str, Container | None, HostctlError | None]]:
    from hostctl.declarations.search import declaration_dirs, load_file, scan_declarations

    dirs = declaration_dirs(scope)
    found = scan_declarations(scope, dirs).found
    for name in dict.fromkeys(names) if names else sorted(found):
        path = found.get(name)
        if path is None:
            yield name, None, HostctlError(f"no declaration named {name!r}",
                                           hint="hostctl ps lists them")
            continue
        try:
            yield name, load_file(path, name, dirs), None
        except HostctlError as err:
            yield name, None, err


def _screen(name: str, container: Container | None, error: HostctlError | None,
            named: bool, states: dict[str, tuple[str, str]]
            ) -> UpdateResult | Container | None:
    """NAME's row when it is not to be compared (None: not a candidate and not asked for
    by name), else its declaration."""
    if container is None:
        assert error is not None
        return _row(name, "", "", Updated.FAILED, reason=_line(error)) if named else None
    policy = str(container.auto_update) if container.auto_update else ""
    if not policy:
        return _row(name, container.image, "", Updated.FALSE,
                    reason="its declaration has no auto_update") if named else None
    active, sub = states.get(container.unit_name, ("inactive", "dead"))
    if active not in _RUNNING:
        return _row(name, container.image, policy, Updated.FAILED,
                    reason=f"not running (unit {active}/{sub})") if named else None
    return container


def _failed(container: Container, err: Exception) -> UpdateResult:
    """CONTAINER's row for ERR: one container's failure (the registry down, the store not
    writable) is its row only."""
    reason = _line(err) if isinstance(err, HostctlError) else str(err)
    return _row(container.name, container.image, str(container.auto_update), Updated.FAILED,
                reason=reason)


def _compare_all(run: _Run, containers: Sequence[Container]
                 ) -> list[_Comparison | UpdateResult]:
    """Each of CONTAINERS compared (or its failed row), side by side."""
    if len(containers) < 2:
        return [_compare_or_row(run, c) for c in containers]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(CHECKS, len(containers))) as pool:
        return list(pool.map(lambda c: _compare_or_row(run, c), containers))


def _compare_or_row(run: _Run, container: Container) -> _Comparison | UpdateResult:
    try:
        return _compare(run, container)
    except (HostctlError, OSError) as err:
        return _failed(container, err)


def _after_compare(run: _Run, container: Container, compared: _Comparison | UpdateResult,
                   dry_run: bool, rollback: bool) -> UpdateResult:
    if isinstance(compared, UpdateResult):
        return compared
    if not compared.decision.update:
        return compared.row
    if dry_run:
        return replace(compared.row, updated=Updated.PENDING)
    try:
        return _update(run, container, compared.reference, compared.running,
                       compared.candidate, compared.row, rollback)
    except (HostctlError, OSError) as err:
        return _failed(container, err)


def _row(name: str, image: str, policy: str, updated: Updated, **more: Any) -> UpdateResult:
    return UpdateResult(f"{name}.service", name, image, policy, updated, **more)


def _line(err: HostctlError) -> str:
    return " ".join(str(err).split())


# -- comparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    """What a container runs and what it could run (the read-only part)."""

    reference: str
    running: ImageId
    candidate: ImageId
    decision: Decision
    row: UpdateResult


def _compare(run: _Run, container: Container) -> _Comparison:
    reference = _reference(run, container)
    wanted = _platform(container)
    running = _running_image(run, container, wanted)
    if container.auto_update == "registry":
        candidate = _registry_image(run, reference, wanted)
    else:
        candidate = _stored_image(run, reference)
    pin = pins.read(run.store, container.name)
    decision = decide(running, candidate, pin, reference)
    row = _row(container.name, container.image, str(container.auto_update), Updated.FALSE,
               running_digest=running.manifest, available_digest=candidate.manifest,
               digest=running.manifest, reason=decision.reason)
    return _Comparison(reference, running, candidate, decision, row)


def _reference(run: _Run, container: Container) -> str:
    """The store's name for CONTAINER's image (what the launcher resolves)."""
    from hostctl.images.reference import is_short_name, parse_reference

    image = container.image
    if image.startswith(("oci:", "oci-archive:")):
        raise ImageError("auto_update needs a registry image, not a local layout",
                         where=container.where("image"))
    if is_short_name(image):
        if container.auto_update == "registry":
            raise ImageError(
                f"auto_update: registry needs a fully qualified image name, not {image!r}",
                where=container.where("image"),
                hint=f"name the registry, e.g. docker.io/library/{image}")
        registries, _ = run.registry()
        stored = run.store.images()
        for candidate in registries.resolve_short(image):
            if str(candidate) in stored:
                return str(candidate)
        raise ImageError(f"no stored image for {image!r}", where=container.where("image"))
    ref = parse_reference(image)
    if ref.digest is not None:
        raise ImageError("the image is pinned by digest: there is nothing to update",
                         where=container.where("image"),
                         hint="remove the @sha256:... part or the auto_update setting")
    return str(ref)


def _platform(container: Container) -> Platform:
    from hostctl.images.manifest import host_platform, parse_platform

    return parse_platform(container.platform) if container.platform else host_platform()


def _running_image(run: _Run, container: Container, wanted: Platform) -> ImageId:
    """What the running container was made from (its bundle's annotation)."""
    bundle = run.paths.containers / container.name / "config.json"
    try:
        spec = json.loads(bundle.read_text())
        top = (spec.get("annotations") or {}).get(DIGEST_ANNOTATION)
    except (OSError, ValueError, AttributeError):
        top = None
    if not isinstance(top, str):
        raise HostctlError("cannot tell which image the running container was made from",
                           where=str(bundle),
                           hint=f"restart it once (hostctl restart {container.name})")
    return stored_image_id(run.store, top, wanted, container.image)


def _registry_image(run: _Run, reference: str, wanted: Platform) -> ImageId:
    """The registry's image for REFERENCE now: one manifest request (mirrors first)."""
    from hostctl.images.reference import parse_reference

    registries, client = run.registry()
    failure: ImageError | None = None
    for endpoint in registries.endpoints(parse_reference(reference)):
        try:
            data, content_type, top = client.get_manifest(endpoint.reference)
            return image_id(data, content_type, top, wanted, reference)
        except ImageError as exc:
            failure = exc
    assert failure is not None
    raise failure


def _stored_image(run: _Run, reference: str) -> ImageId:
    entry = run.store.lookup(reference)
    if entry is None:
        raise ImageError("the image is no longer in the store", where=reference,
                         hint=f"pull it: hostctl pull {reference}")
    return ImageId(entry.digest, entry.manifest)


# -- updating ----------------------------------------------------------------------------


def _update(run: _Run, container: Container, reference: str, running: ImageId,
            candidate: ImageId, row: UpdateResult, rollback: bool) -> UpdateResult:
    name = container.name
    if container.auto_update == "registry":
        _pull(run, reference, container.platform)
        candidate = _stored_image(run, reference)
        if candidate.manifest == running.manifest:
            return replace(row, reason="the registry serves the running image again")
    row = replace(row, available_digest=candidate.manifest)
    pins.write(run.store, Pin(name, reference, running=candidate, previous=running))
    dependents = active_dependents(run.systemd, container.unit_name)
    run.log(f"{name}: restarting on {candidate.manifest}")
    verdict = restart_and_judge(run.systemd, run.paths, container, run.grace)
    if verdict.ok:
        return _with_dependents(run, replace(row, updated=Updated.TRUE,
                                             digest=candidate.manifest), dependents)
    if not rollback:
        return replace(row, updated=Updated.FAILED, digest=candidate.manifest,
                       reason=f"the new image {verdict.reason}; not rolled back "
                       f"(hostctl rollback {name} returns to {running.manifest})")
    run.log(f"{name}: {verdict.reason}; rolling back to {running.manifest}")
    rejected = Rejected(candidate, pins.now(), verdict.reason)
    # Recorded before the restart: a launcher that asks the registry at each start
    # (pull: always|newer) must find the release rejected, or it starts it again.
    pins.write(run.store, Pin(name, reference, running=running, previous=running,
                              rejected=rejected))
    back = _put_back(run, container, reference, running)
    if not back.ok:
        pins.write(run.store, Pin(name, reference, running=running, previous=running,
                                  rejected=rejected))
        return replace(row, updated=Updated.FAILED, digest=None,
                       reason=f"the new image {verdict.reason}; the rollback to "
                       f"{running.manifest} failed too: {back.reason}")
    pins.write(run.store, Pin(name, reference, running=running, previous=None,
                              rejected=rejected))
    return _with_dependents(run, replace(
        row, updated=Updated.ROLLED_BACK, digest=running.manifest,
        reason=f"the new image {verdict.reason}; rolled back to {running.manifest}"),
        dependents)


def _pull(run: _Run, reference: str, platform: str | None) -> None:
    """Pull REFERENCE into the store. A user's pull runs in a child process: layers are
    applied inside a user namespace, which this process can no longer enter once D-Bus
    (GLib's threads) is in use."""
    if run.scope is Scope.SYSTEM:
        from hostctl.api.images import pull_image

        pull_image(reference, scope=run.scope, platform=platform, log=run.log)
        return
    import sys

    from hostctl.proc import run as run_process

    argv = [sys.executable, "-m", "hostctl", "pull", "--user", reference]
    done = run_process(argv + (["--platform", platform] if platform else []), check=False)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ImageError(lines[-1].removeprefix("hostctl: ") if lines else
                         f"hostctl pull exited with {done.returncode}", where=reference)


def _put_back(run: _Run, container: Container, reference: str, image: ImageId) -> Verdict:
    """Point REFERENCE at IMAGE again in the store and restart CONTAINER on it."""
    try:
        _restorable(run.store, image, reference)
        run.store.record(reference, image.digest, image.manifest)
    except HostctlError as err:
        return Verdict(False, _line(err))
    return restart_and_judge(run.systemd, run.paths, container, run.grace)


def _restorable(store: Store, image: ImageId, where: str) -> None:
    """ImageError unless IMAGE is complete in STORE (else the launcher would pull the tag,
    which is the image being left)."""
    from hostctl.images.manifest import MAX_DOCUMENT, Manifest, parse_document
    from hostctl.images.pull import is_complete
    from hostctl.images.reference import parse_reference

    complete = False
    if store.has_blob(image.digest) and store.has_blob(image.manifest):
        manifest = parse_document(store.read_blob(image.manifest, MAX_DOCUMENT), None,
                                  where=where)
        complete = isinstance(manifest, Manifest) and is_complete(store, manifest)
    if not complete:
        raise ImageError(f"the previous image {image.manifest} is no longer complete in "
                         "the store", where=where,
                         hint="pull it by digest, then retry: "
                         f"hostctl pull {parse_reference(where).name}@{image.digest}")


def _with_dependents(run: _Run, row: UpdateResult, dependents: list[str]) -> UpdateResult:
    """ROW with DEPENDENTS started again (those no longer active)."""
    started, failed = start_again(run.systemd, dependents)
    if not failed:
        return replace(row, dependents=tuple(started))
    reason = (row.reason + "; " if row.reason else "") + \
        "did not start again: " + ", ".join(failed)
    return replace(row, dependents=tuple(started), dependents_failed=tuple(failed),
                   reason=reason)


# -- rollback by hand --------------------------------------------------------------------


def _rollback(run: _Run, container: Container) -> UpdateResult:
    name = container.name
    pin = pins.read(run.store, name)
    policy = str(container.auto_update or "")
    if pin is None or pin.previous is None:
        why = "no update of it was recorded" if pin is None else (
            f"its last update ({pin.rejected.image.manifest}) was rolled back already"
            if pin.rejected else "its record keeps no previous image")
        raise HostctlError(f"{name}: no previous image to roll back to: {why}",
                           hint="auto-update keeps the image an update replaced")
    reference = _reference(run, container)
    if pin.reference != reference:
        raise HostctlError(f"{name}: the rollback record is for {pin.reference}, the "
                           f"declaration now names {reference}",
                           where=str(pins.pin_path(run.store, name)))
    state = run.systemd.unit(container.unit_name)
    running = state.active_state in _RUNNING
    restart = running or state.active_state == "failed"  # e.g. after --no-rollback
    current = _running_image(run, container, _platform(container)) if running \
        else pin.running
    previous = pin.previous
    dependents = active_dependents(run.systemd, container.unit_name) if running else []
    row = _row(name, container.image, policy, Updated.FAILED,
               running_digest=current.manifest, available_digest=previous.manifest)
    _restorable(run.store, previous, reference)
    run.store.record(reference, previous.digest, previous.manifest)
    rejected = Rejected(current, pins.now(), "rolled back by hand")
    pins.write(run.store, Pin(name, reference, running=previous, previous=current,
                              rejected=rejected))
    if not restart:
        return replace(row, updated=Updated.ROLLED_BACK, digest=previous.manifest,
                       reason="stopped: it starts on the previous image next time")
    verdict = restart_and_judge(run.systemd, run.paths, container, run.grace)
    if not verdict.ok:
        return replace(row, digest=previous.manifest,
                       reason=f"the previous image {verdict.reason}")
    return _with_dependents(run, replace(row, updated=Updated.ROLLED_BACK,
                                         digest=previous.manifest), dependents)


@contextlib.contextmanager
def _one_at_a_time(store: Store) -> Iterator[None]:
    """One auto-update or rollback per store at a time (the timer and a manual run)."""
    store.ensure()
    fd = os.open(store.locks / "auto-update.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HostctlError("another hostctl auto-update or rollback is running",
                               hint="wait for it to finish") from None
        yield
    finally:
        os.close(fd)


# -- the timer ---------------------------------------------------------------------------


def set_timer(enabled: bool, *, scope: Scope = Scope.SYSTEM, check: bool = False
              ) -> list[str]:
    """Turn the daily hostctl-auto-update.timer on (a marker the generator reads; then
    daemon-reload and start it) or off (marker removed, timer stopped). What was done
    (nothing: it already was so)."""
    from pathlib import Path

    from hostctl.units import autoupdate

    marker = Path(autoupdate.marker_path(scope.value))
    if marker.exists() == enabled:
        return []
    verb = "StartUnit" if enabled else "StopUnit"
    actions = [f"{'write' if enabled else 'delete'} {marker}", "daemon-reload",
               f"{'start' if enabled else 'stop'} {autoupdate.TIMER}"]
    if check:
        return actions
    from hostctl.systemd.dbus import Systemd

    systemd = Systemd(scope)
    if enabled:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("# hostctl auto-update --enable-timer: the generator links "
                          f"{autoupdate.TIMER} into timers.target.wants/\n")
    else:
        marker.unlink()
        systemd.run_job(verb, autoupdate.TIMER)
    systemd.reload()
    if enabled:
        result = systemd.run_job(verb, autoupdate.TIMER)
        if result != "done":
            raise HostctlError(f"{autoupdate.TIMER} did not start: job {result}",
                               hint=f"systemctl{' --user' if scope is Scope.USER else ''} "
                               f"status {autoupdate.TIMER}")
    return actions
