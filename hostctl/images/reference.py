"""Image references: the docker grammar, its normalisation, and digest validation.

    busybox                      -> docker.io/library/busybox:latest
    quay.io/podman/hello         -> quay.io/podman/hello:latest
    localhost:5000/demo/hello:1  -> localhost:5000/demo/hello:1
    alpine:3.20@sha256:HEX       -> docker.io/library/alpine:3.20@sha256:HEX (the digest pins)

The first path component is a registry only if it contains "." or ":", is "localhost",
or has an uppercase letter (docker's rule); otherwise the registry is docker.io.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from hostctl.errors import ImageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A normalised image reference; str() gives the canonical form."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def target(self) -> str:
        """What the manifest endpoint is asked for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        """host[:port] the registry API lives at (docker.io's is registry-1.docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def scheme(self) -> str:
        return "http" if is_loopback(self.registry) else "https"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, validate_digest(digest))


def validate_digest(digest: str, *, where: str | None = None) -> str:
    """DIGEST if it is "sha256:" plus 64 lowercase hex digits, else ImageError.

    Call this before building any path or URL from a digest (CVE-2024-3727).
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ImageError(
            f"invalid digest {digest!r}",
            where=where,
            hint='a digest is "sha256:" followed by 64 lowercase hex digits',
        )
    return digest


def is_loopback(registry: str) -> bool:
    """True for localhost, 127.0.0.0/8 and [::1], with or without a port: plain HTTP."""
    host = split_host_port(registry)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host_port(registry: str) -> tuple[str, int | None]:
    """("host", port) from "host:port", "[v6]:port" or "host"."""
    if registry.startswith("["):
        host, _, rest = registry.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host + "]", int(port) if port else None
    host, sep, port = registry.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return registry, None


def parse_reference(text: str) -> Reference:
    """Parse and normalise an image reference, or raise ImageError saying what is wrong."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise _bad(text, "empty or surrounded by whitespace")
    rest, digest = _split_digest(text)
    name, tag = _split_tag(text, rest)
    registry, path = _split_registry(text, name)
    components = path.split("/")
    for component in components:
        if not _PATH_COMPONENT.fullmatch(component):
            raise _bad(text, f"invalid repository component {component!r}",
                       "use lowercase letters, digits and single separators . _ __ -")
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise _bad(text, f"name longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    rest, at, digest = text.partition("@")
    if not at:
        return text, None
    if not _DIGEST.fullmatch(digest):
        raise _bad(text, f"invalid digest {digest!r}",
                   'a digest is "sha256:" followed by 64 lowercase hex digits')
    return rest, digest


def _split_tag(text: str, rest: str) -> tuple[str, str | None]:
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:  # the colon (if any) belongs to host:port
        return rest, None
    name, tag = rest[:colon], rest[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise _bad(text, f"invalid tag {tag!r}",
                   "a tag is up to 128 letters, digits, _ . - and does not start with . or -")
    return name, tag


def _split_registry(text: str, name: str) -> tuple[str, str]:
    if not name:
        raise _bad(text, "no repository name")
    if re.fullmatch(r"[0-9a-f]{64}", name):
        raise _bad(text, "a bare 64-hex string is an image ID, not a reference")
    first, slash, path = name.partition("/")
    is_domain = slash and (
        "." in first or ":" in first or first == "localhost" or first != first.lower()
    )
    if not is_domain:
        return DOCKER_HUB, name
    if not _DOMAIN.fullmatch(first):
        raise _bad(text, f"invalid registry {first!r}")
    if first in DOCKER_HUB_ALIASES:
        first = DOCKER_HUB
    return first, path


def _bad(text: object, what: str, hint: str | None = None) -> ImageError:
    return ImageError(
        f"invalid image reference {text!r}: {what}",
        hint=hint or "write it as [registry[:port]/]name[:tag][@sha256:digest]",
    )


def is_short_name(text: str) -> bool:
    """True when TEXT names no registry (docker would assume docker.io)."""
    first, slash, _ = text.partition("/")
    if not slash:
        return True
    return not ("." in first or ":" in first or first == "localhost" or first != first.lower())
