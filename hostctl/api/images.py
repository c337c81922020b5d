"""Images: pull, list, inspect, remove, prune, verify, login; for the CLI and Ansible."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.paths import Scope, for_scope

if TYPE_CHECKING:
    from hostctl.images.copy import CopyOptions, CopyResult
    from hostctl.images.manage import ImageSummary, Report
    from hostctl.images.progress import Progress
    from hostctl.images.pull import Image
    from hostctl.images.reference import Reference
    from hostctl.images.registry import RegistryClient
    from hostctl.images.store import Store
    from hostctl.images.sync import SyncResult
    from hostctl.images.trust import TrustConfig


_entered: list[bool] = []


def _store(scope: Scope, *, writing: bool = False) -> Store:
    """The scope's store. A user's store holds files owned by the user's sub-ids (an
    image's other users), as the launcher writes it from inside its user namespace: a
    user's writes go through the same namespace, so owners are applied alike and removal
    is permitted. Where this process cannot enter one (it has threads, as inside some
    Ansible module runs), it goes on without: owners outside the user's own id are then
    kept as the user's, which the layer applier says."""
    from hostctl.images.store import Store

    store = Store(for_scope(scope).store)  # paths first: inside, getuid() says 0
    if writing and scope is Scope.USER and os.geteuid() != 0 and not _entered:
        from hostctl.errors import RuntimeFailure
        from hostctl.runtime.userns import enter, id_maps

        with contextlib.suppress(RuntimeFailure):
            enter(*id_maps(os.getuid(), os.getgid()))
            _entered.append(True)
    return store


def pull_image(
    reference: str,
    *,
    scope: Scope,
    policy: str = "always",
    platform: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    trust: TrustConfig | None = None,
) -> Image:
    """Pull REFERENCE into the scope's store (policy: always | missing | never), checked
    against policy.json (TRUST: other policy / registries.d locations)."""
    from hostctl.images.pull import pull

    return pull(_store(scope, writing=True), reference, platform=platform, policy=policy,
                rootless=scope is Scope.USER, log=log, progress=progress, trust=trust)


def remote_digest(reference: str, *, scope: Scope, platform: str | None = None) -> str:
    """The digest the registry serves now for REFERENCE, asking for the manifest only
    (nothing is stored): the digest `pull_image(policy="always")` would store as the
    image's, or with PLATFORM and a multi-platform index, that platform's manifest's.
    Names resolve as a pull resolves them (registries.conf: short names, mirrors,
    rewrites); of several short-name candidates the one stored in SCOPE is asked first."""
    from hostctl.errors import ImageError
    from hostctl.images.pull import load_registries
    from hostctl.images.registry import RegistryClient

    registries = load_registries()
    candidates = registries.resolve_short(reference)
    stored = set(_stored_names(scope))
    candidates.sort(key=lambda candidate: str(candidate) not in stored)
    client = RegistryClient(insecure=registries.insecure)
    failure: ImageError | None = None
    for candidate in candidates:
        for endpoint in registries.endpoints(candidate):
            try:
                return _served_digest(client, endpoint.reference, platform)
            except ImageError as exc:
                failure = exc
    assert failure is not None  # endpoints() always names at least one location
    raise failure


def _stored_names(scope: Scope) -> list[str]:
    from hostctl.errors import HostctlError

    try:
        return list(_store(scope).images())
    except HostctlError:
        return []


def _served_digest(client: RegistryClient, ref: Reference, platform: str | None) -> str:
    digest = client.manifest_digest(ref)
    if platform is None:
        return digest
    from hostctl.images.manifest import Index, parse_document, parse_platform, select_platform

    data, content_type, _ = client.get_manifest(ref, digest)
    document = parse_document(data, content_type, where=str(ref))
    if not isinstance(document, Index):
        return digest
    return select_platform(document, parse_platform(platform), where=str(ref)).digest


def list_images(*, scope: Scope) -> list[ImageSummary]:
    from hostctl.images.manage import list_images as _list

    return _list(_store(scope))


def stored_digest(name: str, *, scope: Scope) -> str | None:
    """The digest inspect_image(NAME)["digest"] gives, from the store's index alone
    (None where NAME names no stored image, or several)."""
    from hostctl.images.manage import find

    store = _store(scope)
    found = find(store, name)
    return store.images()[found[0]].digest if len(found) == 1 else None


def inspect_image(name: str, *, scope: Scope) -> dict[str, Any]:
    from hostctl.images.manage import inspect

    return inspect(_store(scope), name)


def remove_images(names: list[str], *, scope: Scope) -> Report:
    from hostctl.images.manage import remove

    return remove(_store(scope, writing=True), names, for_scope(scope).containers)


def prune_images(*, scope: Scope) -> Report:
    from hostctl.images.manage import prune

    return prune(_store(scope, writing=True), for_scope(scope).containers)


def verify_images(*, scope: Scope, repair: bool = False,
                  log: Callable[[str], None] | None = None) -> Report:
    from hostctl.images.manage import verify

    def again(reference: str) -> object:
        return pull_image(reference, scope=scope, policy="always", log=log)

    return verify(_store(scope, writing=True), repair=repair, pull=again, log=log)


def login(registry: str, username: str, password: str, *, authfile: Path | None = None,
          verify: bool = True) -> Path:
    """Check the credentials against REGISTRY, then store them in auth.json (0600)."""
    from hostctl.images.auth import Credentials, login_file, save_login
    from hostctl.images.reference import parse_reference

    host = _registry_host(registry)
    creds = Credentials(username, password)
    if verify:
        from hostctl.images.pull import load_registries
        from hostctl.images.registry import RegistryClient

        client = RegistryClient(insecure=load_registries().insecure)
        client.check_login(parse_reference(f"{host}/login/check"), creds)
    path = authfile or login_file()
    save_login(path, host, creds)
    return path


def logout(registry: str, *, authfile: Path | None = None) -> bool:
    from hostctl.images.auth import login_file, remove_login

    return remove_login(authfile or login_file(), _registry_host(registry))


def _registry_host(registry: str) -> str:
    from hostctl.errors import ImageError
    from hostctl.images.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

    host = registry.removeprefix("https://").removeprefix("http://").split("/")[0]
    if not host or any(c.isspace() for c in host):
        raise ImageError(f"invalid registry {registry!r}", hint="give a host[:port]")
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def _client() -> RegistryClient:
    from hostctl.images.pull import load_registries
    from hostctl.images.registry import RegistryClient

    return RegistryClient(insecure=load_registries().insecure)


def copy_image(source: str, destination: str, *, scope: Scope,
               options: CopyOptions | None = None, log: Callable[[str], None] | None = None,
               progress: Progress | None = None, trust: TrustConfig | None = None
               ) -> CopyResult:
    """Copy an image between locations (docker://, oci:, oci-archive:, docker-archive:,
    dir:, store:REF or a bare reference), checking the source against policy.json."""
    from hostctl.images.copy import CopyOptions
    from hostctl.images.copy import copy_image as _copy
    from hostctl.images.trust import check_location

    return _copy(source, destination, store=_store(scope, writing=True), client=_client(),
                 options=options or CopyOptions(), rootless=scope is Scope.USER,
                 log=log or (lambda _m: None), progress=progress,
                 trust=lambda loc, reader, data, digest: check_location(
                     loc, reader, data, digest, config=trust))


def push_image(reference: str, destination: str | None = None, **kwargs: Any) -> CopyResult:
    """Push the stored image REFERENCE to DESTINATION (default docker://REFERENCE; a
    destination without a transport is a registry reference)."""
    from hostctl.errors import ImageError

    if destination is None:
        from hostctl.images.pull import LOCAL_PREFIXES

        if reference.removeprefix("store:").startswith(LOCAL_PREFIXES):
            raise ImageError("an image pulled from a layout needs a destination",
                             where=reference, hint="hostctl push NAME docker://REGISTRY/REPO:TAG")
        destination = f"docker://{reference.removeprefix('store:')}"
    elif not _has_transport(destination):
        destination = f"docker://{destination}"
    return copy_image(f"store:{reference.removeprefix('store:')}", destination, **kwargs)


def _has_transport(text: str) -> bool:
    from hostctl.images.transports import KINDS

    return text.startswith("docker://") or text.split(":", 1)[0] in KINDS


def inspect_remote(reference: str, *, platform: str | None = None, raw: bool = False,
                   config: bool = False) -> dict[str, Any] | bytes:
    """A registry image's manifest, config, platforms and digest, without pulling it;
    RAW: the manifest's exact bytes; CONFIG: the config's bytes."""
    from hostctl.images.remote import inspect

    return inspect(_client(), _docker_ref(reference), platform=platform, raw=raw,
                   config=config)


def remote_tags(repository: str) -> list[str]:
    from hostctl.images.upload import list_tags

    return list_tags(_client(), _docker_ref(repository))


def remote_delete(reference: str) -> str:
    """Delete a tag (where the registry allows it) or, for REPO@DIGEST, a manifest."""
    from hostctl.images.upload import delete

    return delete(_client(), _docker_ref(reference))


def _docker_ref(text: str) -> Reference:
    from hostctl.images.reference import parse_reference

    return parse_reference(text.removeprefix("docker://"))


def sync_images(file: Path, destination: str, *, scope: Scope,
                options: CopyOptions | None = None, dry_run: bool = False,
                log: Callable[[str], None] | None = None,
                trust: TrustConfig | None = None) -> SyncResult:
    """Mirror the images a sync YAML file names to DESTINATION (docker://HOST[/NS],
    dir:DIR or oci:DIR), copying only what changed."""
    from hostctl.images.copy import CopyOptions
    from hostctl.images.pull import load_registries
    from hostctl.images.registry import RegistryClient
    from hostctl.images.sync import load, sync
    from hostctl.images.trust import check_location

    spec = load(file)
    registries = load_registries()
    client = RegistryClient(insecure=lambda r: r in spec.insecure or registries.insecure(r))
    return sync(spec, destination, store=_store(scope, writing=True), client=client,
                options=options or CopyOptions(), dry_run=dry_run,
                log=log or (lambda _m: None),
                trust=lambda loc, reader, data, digest: check_location(
                    loc, reader, data, digest, config=trust))
