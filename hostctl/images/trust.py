"""Signature policy: containers-policy.json(5) and registries.d, applied to every pull.

Files, as in the containers ecosystem: ~/.config/containers/policy.json if it exists,
else /etc/containers/policy.json; registries.d: ~/.config/containers/registries.d if it
exists, else /etc/containers/registries.d (YAML: default-docker, docker: SCOPE:
use-sigstore-attachments). With no policy.json every image is accepted (what hostctl
did before it read policies).

A policy has a `default` requirement list and per-transport scopes; for docker the most
specific scope wins (host/repo:tag or @digest, host/repo, its namespaces, host, then
*.domain wildcards, then the transport's "" and the default), and every requirement in it
must pass: insecureAcceptAnything, reject, sigstoreSigned (keyPath, keyPaths, keyData,
keyDatas; cosign's sha256-HEX.sig signatures and cosign v3's referrer bundles;
signedIdentity matchRepoDigestOrExact (default), matchRepository, matchExact,
exactReference, exactRepository, remapIdentity). signedBy (GPG), keyless Fulcio and
Rekor-backed requirements are refused with a message saying they are not supported.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.reference import Reference, parse_reference

if TYPE_CHECKING:
    from hostctl.images.registry import RegistryClient
    from hostctl.images.transports import Location, Reader

KINDS = ("insecureAcceptAnything", "reject", "signedBy", "sigstoreSigned")
IDENTITIES = ("matchRepoDigestOrExact", "matchRepository", "matchExact", "exactReference",
              "exactRepository", "remapIdentity")
_MAX_POLICY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    kind: str = "matchRepoDigestOrExact"
    value: str = ""  # dockerReference / dockerRepository
    prefix: str = ""
    signed_prefix: str = ""


@dataclass(frozen=True)
class Requirement:
    kind: str
    where: str  # FILE: transports.docker."SCOPE"[N]
    keys: tuple[bytes, ...] = ()  # PEM public keys
    identity: Identity = field(default_factory=Identity)


@dataclass(frozen=True)
class Policy:
    path: Path
    default: tuple[Requirement, ...]
    transports: dict[str, dict[str, tuple[Requirement, ...]]]

    def for_docker(self, ref: Reference) -> tuple[str, tuple[Requirement, ...]]:
        """(the scope that applies, its requirements) for REF."""
        scopes = self.transports.get("docker", {})
        for scope in docker_scopes(ref):
            if scope in scopes:
                return scope, scopes[scope]
        return "default", self.default

    def for_path(self, transport: str, path: str) -> tuple[str, tuple[Requirement, ...]]:
        """For oci:, dir: and the archives: the path or a parent directory, then ""."""
        scopes = self.transports.get(transport, {})
        candidate = path
        while True:
            if candidate in scopes:
                return candidate, scopes[candidate]
            parent = os.path.dirname(candidate)
            if parent == candidate:
                break
            candidate = parent
        return "default", self.default


def docker_scopes(ref: Reference) -> list[str]:
    """Scopes from most to least specific, "" last."""
    scopes = []
    if ref.digest:
        scopes.append(f"{ref.name}@{ref.digest}")
    if ref.tag:
        scopes.append(f"{ref.name}:{ref.tag}")
    parts = ref.name.split("/")
    scopes += ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    host = ref.registry.split(":")[0].split(".")
    scopes += ["*." + ".".join(host[n:]) for n in range(1, len(host))]
    return [*scopes, ""]


def policy_files() -> tuple[Path, ...]:
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return (config / "containers/policy.json", Path("/etc/containers/policy.json"))


def registries_dirs() -> tuple[Path, ...]:
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return (config / "containers/registries.d", Path("/etc/containers/registries.d"))


def load_policy(paths: tuple[Path, ...] | None = None) -> Policy | None:
    """The first policy file that exists, parsed; None if there is none."""
    for path in policy_files() if paths is None else paths:
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ImageError(f"cannot read the policy: {exc.strerror}", where=str(path)) \
                from None
        return parse_policy(raw, path)
    return None


def parse_policy(raw: bytes, path: Path) -> Policy:
    where = str(path)
    if len(raw) > _MAX_POLICY:
        raise ImageError("policy file larger than 4 MiB", where=where)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"invalid JSON: {exc}", where=f"{where}:{getattr(exc, 'lineno', '?')}"
                         ) from None
    if not isinstance(doc, dict) or "default" not in doc:
        raise ImageError("the policy has no \"default\" requirement list", where=where,
                         hint='e.g. {"default": [{"type": "insecureAcceptAnything"}]}')
    unknown = set(doc) - {"default", "transports"}
    if unknown:
        raise ImageError(f"unknown key {sorted(unknown)[0]!r}", where=where,
                         hint="a policy has default and transports")
    default = _requirements(doc["default"], f"{where}: default", path)
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    raw_transports = doc.get("transports") or {}
    if not isinstance(raw_transports, dict):
        raise ImageError("transports is not an object", where=f"{where}: transports")
    for transport, scopes in raw_transports.items():
        if not isinstance(scopes, dict):
            raise ImageError("not an object of scopes", where=f"{where}: transports.{transport}")
        transports[transport] = {
            scope: _requirements(reqs, f"{where}: transports.{transport}.{json.dumps(scope)}",
                                 path) for scope, reqs in scopes.items()}
    return Policy(path, default, transports)


def _requirements(value: object, where: str, path: Path) -> tuple[Requirement, ...]:
    if not isinstance(value, list) or not value:
        raise ImageError("requirements must be a non-empty list", where=where)
    return tuple(_requirement(item, f"{where}[{n}]", path) for n, item in enumerate(value))


def _requirement(item: object, where: str, path: Path) -> Requirement:
    if not isinstance(item, dict) or item.get("type") not in KINDS:
        kind = item.get("type") if isinstance(item, dict) else item
        raise ImageError(f"unknown requirement type {kind!r}", where=where,
                         hint="one of " + ", ".join(KINDS))
    kind = str(item["type"])
    if kind != "sigstoreSigned":
        return Requirement(kind, where)
    if "fulcio" in item:
        return Requirement("keyless", where)
    if any(k.startswith("rekorPublicKey") for k in item):  # a Rekor SET hostctl cannot check
        return Requirement("rekor", where)
    keys = _keys(item, where, path)
    return Requirement(kind, where, keys, _identity(item.get("signedIdentity"), where))


def _keys(item: dict[str, Any], where: str, path: Path) -> tuple[bytes, ...]:
    given = [k for k in ("keyPath", "keyPaths", "keyData", "keyDatas") if k in item]
    if len(given) != 1:
        raise ImageError("sigstoreSigned needs exactly one of keyPath, keyPaths, keyData, "
                         "keyDatas", where=where)
    kind = given[0]
    values = item[kind] if kind.endswith("s") else [item[kind]]
    if not isinstance(values, list) or not values or \
            not all(isinstance(v, str) and v for v in values):
        raise ImageError(f"{kind} must be {'a list of ' if kind.endswith('s') else 'a '}"
                         "non-empty string", where=f"{where}.{kind}")
    keys = []
    for value in values:
        if kind.startswith("keyData"):
            try:
                keys.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                raise ImageError("not base64", where=f"{where}.{kind}") from None
        else:
            key_path = Path(value) if os.path.isabs(value) else path.parent / value
            try:
                keys.append(key_path.read_bytes())
            except OSError as exc:
                raise ImageError(f"cannot read the public key {key_path}: {exc.strerror}",
                                 where=f"{where}.{kind}") from None
    return tuple(keys)


def _identity(value: object, where: str) -> Identity:
    if value is None:
        return Identity()
    here = f"{where}.signedIdentity"
    if not isinstance(value, dict) or value.get("type") not in IDENTITIES:
        kind = value.get("type") if isinstance(value, dict) else value
        raise ImageError(f"unknown signedIdentity type {kind!r}", where=here,
                         hint="one of " + ", ".join(IDENTITIES))
    kind = str(value["type"])
    if kind == "exactReference":
        return Identity(kind, value=_text(value, "dockerReference", here))
    if kind == "exactRepository":
        return Identity(kind, value=_text(value, "dockerRepository", here))
    if kind == "remapIdentity":
        return Identity(kind, prefix=_text(value, "prefix", here),
                        signed_prefix=_text(value, "signedPrefix", here))
    return Identity(kind)


def _text(value: dict[str, Any], key: str, where: str) -> str:
    text = value.get(key)
    if not isinstance(text, str) or not text:
        raise ImageError(f"{key} is missing", where=f"{where}.{key}")
    return text


# -- identities ---------------------------------------------------------------------------


def identity_matches(identity: Identity, image: Reference, signed: Reference) -> bool:
    """Whether a signature naming SIGNED (tag/digest as written, or none) is accepted for
    IMAGE (the reference pulled) under IDENTITY."""
    if identity.kind == "matchRepository":
        return signed.name == image.name
    if identity.kind == "exactRepository":
        return signed.name == _canonical_name(identity.value)
    if identity.kind == "exactReference":
        return _full(signed) == _full(parse_reference(identity.value))
    if identity.kind == "matchExact":
        return _full(signed) == _full(image)
    if identity.kind == "remapIdentity":
        image = _remapped(image, identity.prefix, identity.signed_prefix)
    # matchRepoDigestOrExact: by digest, the repository; by tag, exactly that tag
    if image.digest is not None:
        return signed.name == image.name
    return signed.name == image.name and signed.tag == image.tag and signed.digest is None


def _full(ref: Reference) -> str:
    return str(ref)


def _canonical_name(text: str) -> str:
    return parse_reference(text).name


def _remapped(image: Reference, prefix: str, signed_prefix: str) -> Reference:
    name = image.name
    if name == prefix or name.startswith(prefix.rstrip("/") + "/"):
        text = signed_prefix + name[len(prefix):]
        mapped = parse_reference(text)
        return Reference(mapped.registry, mapped.repository, image.tag, image.digest)
    return image


# -- registries.d ------------------------------------------------------------------------


def uses_sigstore_attachments(ref: Reference, dirs: tuple[Path, ...] | None = None) -> bool:
    """registries.d's use-sigstore-attachments for REF (most specific scope wins)."""
    config = _registries_d(dirs)
    scopes = config.get("docker") or {}
    for scope in docker_scopes(ref)[:-1]:
        if scope in scopes:
            return bool((scopes[scope] or {}).get("use-sigstore-attachments", False))
    return bool((config.get("default-docker") or {}).get("use-sigstore-attachments", False))


def _registries_d(dirs: tuple[Path, ...] | None) -> dict[str, Any]:
    import yaml

    for directory in registries_dirs() if dirs is None else dirs:
        if not directory.is_dir():
            continue
        merged: dict[str, Any] = {"docker": {}}
        for path in sorted(directory.glob("*.yaml")):
            try:
                doc = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ImageError(f"cannot read registries.d file: {exc}", where=str(path)) \
                    from None
            if not isinstance(doc, dict):
                raise ImageError("not a mapping", where=str(path))
            if "default-docker" in doc:
                merged["default-docker"] = doc["default-docker"]
            for scope, settings in (doc.get("docker") or {}).items():
                merged["docker"][str(scope)] = settings
        return merged
    return {}


# -- evaluation --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustConfig:
    """Where the policy and registries.d are (None: the default locations)."""

    policy: tuple[Path, ...] | None = None
    registries_d: tuple[Path, ...] | None = None


def check_docker(image: Reference, source: Reference, digest: str, client: RegistryClient,
                 config: TrustConfig | None = None) -> None:
    """ImageError naming the failed requirement unless the policy accepts IMAGE at DIGEST
    (signatures are read from SOURCE's repository: the image's, or its mirror's)."""
    config = config or TrustConfig()
    policy = load_policy(config.policy)
    if policy is None:
        return
    scope, requirements = policy.for_docker(image)
    for requirement in requirements:
        _check(requirement, image, source, digest, client, config, scope)


def _check(requirement: Requirement, image: Reference, source: Reference, digest: str,
           client: RegistryClient, config: TrustConfig, scope: str) -> None:
    where = f"{image} ({requirement.where})"
    if requirement.kind == "insecureAcceptAnything":
        return
    if requirement.kind == "reject":
        label = scope or '""'
        raise ImageError("refused by policy: reject", where=where,
                         hint=f"the policy rejects every image in scope {label}")
    if requirement.kind in ("signedBy", "keyless", "rekor"):
        what = {"signedBy": "signedBy (GPG simple signing)",
                "keyless": "sigstoreSigned with Fulcio (keyless)",
                "rekor": "sigstoreSigned with a Rekor transparency log key"}[requirement.kind]
        raise ImageError(f"refused: the policy requires {what}, which hostctl does not "
                         "support", where=where, hint="use sigstoreSigned with keyPath")
    if not uses_sigstore_attachments(source, config.registries_d):
        raise ImageError("refused: the policy requires sigstoreSigned but sigstore "
                         "signatures are not read for this registry", where=where,
                         hint="set `use-sigstore-attachments: true` for it in "
                         "/etc/containers/registries.d/*.yaml")
    from hostctl.images import signing

    keys = [signing.load_public_key(pem, where=requirement.where) for pem in requirement.keys]
    signatures = signing.fetch_signatures(client, source, digest)
    from hostctl.images import bundles

    attached = bundles.fetch(client, source, digest)  # cosign v3: referrers
    if not signatures and not attached:
        raise ImageError(f"refused: sigstoreSigned: no signature for {digest}", where=where,
                         hint=f"sign it: hostctl push --sign-by-sigstore-key KEY {image}")
    reasons = []
    for number, signature in enumerate(signatures, 1):
        try:
            claims = signing.check(signature, keys, digest)
            signed = signing.identity_of(claims.docker_reference)
        except (ValueError, ImageError) as exc:
            reasons.append(f"signature {number}: {exc}")
            continue
        if identity_matches(requirement.identity, image, signed):
            return
        reasons.append(f"signature {number}: signed for {claims.docker_reference}, which "
                       f"{requirement.identity.kind} does not accept for {image}")
    for number, bundle in enumerate(attached, 1):
        try:
            bundles.check(bundle, keys, digest)
        except (ValueError, ImageError) as exc:
            reasons.append(f"bundle {number}: {exc}")
            continue
        # the statement names only the digest: its identity is the repository it is in
        if identity_matches(requirement.identity, image, Reference(
                image.registry, image.repository, None, None)):
            return
        reasons.append(f"bundle {number}: names no reference (only {image.name}'s digest), "
                       f"which {requirement.identity.kind} does not accept for {image}")
    raise ImageError("refused: sigstoreSigned: no valid signature: " + "; ".join(reasons),
                     where=where)


def check_location(location: Location, reader: Reader, data: bytes, digest: str, *,
                   config: TrustConfig | None = None) -> None:
    """The policy check of a copy's source (registries by signature, local paths by
    their transport's scopes)."""
    if location.kind == "store":
        return  # checked when it was pulled
    if location.kind == "docker":
        from hostctl.images.transports import RegistryReader

        assert isinstance(reader, RegistryReader) and location.reference is not None
        check_docker(location.reference, location.reference, digest, reader.client, config)
        return
    check_path(location.kind, str(location.path), config)


def check_path(transport: str, path: str, config: TrustConfig | None = None) -> None:
    """oci:, oci-archive:, docker-archive:, dir: carry no signatures hostctl reads: only
    insecureAcceptAnything can pass for them."""
    policy = load_policy((config or TrustConfig()).policy)
    if policy is None:
        return
    scope, requirements = policy.for_path(transport, path)
    for requirement in requirements:
        if requirement.kind != "insecureAcceptAnything":
            allow = '[{"type": "insecureAcceptAnything"}]'
            raise ImageError(f"refused by policy: {requirement.kind} (a {transport}: image "
                             "carries no signatures hostctl reads)",
                             where=f"{transport}:{path} ({requirement.where})",
                             hint=f'if you trust these files, allow them with '
                             f'transports.{transport}."{path if scope == "default" else scope}"'
                             f": {allow}")
