"""A service's `secrets` and `configs` as systemd credentials (the `secrets` setting).

File-based secrets and configs are handed over with LoadCredential= and mounted
read-only: secrets at /run/secrets/SOURCE (or their target), configs at /SOURCE (or
their target), as docker compose mounts them. An `external` one is a credential the
service manager itself holds under that name. Secrets from `environment` or `content`
would have to be written somewhere first: refused with a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hostctl.declarations.model import SECRETS_DIR, Secret
from hostctl.declarations.values import parse_secret

if TYPE_CHECKING:
    from hostctl.compose.servicekeys import ServiceReader

_PREFIX = {"secrets": "secret", "configs": "config"}


def service_secrets(reader: ServiceReader, kind: str, value: object) -> tuple[Secret, ...]:
    """The credentials of a service's KIND (secrets or configs) list VALUE."""
    from hostctl.declarations.checks import Invalid

    if not isinstance(value, list):
        raise reader.error("expected a list", kind)
    declared: Mapping[str, Any] = reader.project.model.get(kind) or {}
    found = []
    for index, entry in enumerate(value):
        spec = entry if isinstance(entry, Mapping) else {"source": entry}
        source = str(spec.get("source") or "")
        top = declared.get(source)
        if top is None:
            raise reader.error(f"{kind[:-1]} {source!r} is not declared at the top level",
                               kind, index, hint=f"add {kind}: {{{source}: {{file: PATH}}}}")
        for key in ("uid", "gid", "mode"):
            if spec.get(key) is not None:
                reader.ignore("credentials are mounted read-only, owned by the container's "
                              "root", kind, index, key)
        try:
            found.append(_secret(kind, source, spec.get("target"), top or {}))
        except Invalid as err:
            raise reader.error(err.message, kind, index, hint=err.hint) from None
        except ValueError as err:
            raise reader.error(str(err), "secrets" if kind == "secrets" else kind, index,
                               hint="give it as a file: {file: ./PATH}") from None
    return tuple(found)


def _secret(kind: str, source: str, target: object, top: Mapping[str, Any]) -> Secret:
    name = f"{_PREFIX[kind]}-{source}"
    if top.get("external"):
        origin = str(top.get("name") or source)
    elif top.get("file"):
        origin = str(top["file"])
    else:
        given = "environment" if top.get("environment") else "content"
        raise ValueError(f"{kind[:-1]} {source!r} comes from {given}, which hostctl cannot "
                         "hand over as a credential")
    path = str(target) if target else (f"{SECRETS_DIR}/{source}" if kind == "secrets"
                                       else f"/{source}")
    if not path.startswith("/"):
        path = f"{SECRETS_DIR}/{path}" if kind == "secrets" else f"/{path}"
    secret = parse_secret(name, origin, path)
    return Secret(secret.name, secret.source, secret.target)
