"""`hostctl image inspect docker://REF`: a registry image described without pulling it.

The keys follow `skopeo inspect` (Name, Digest, RepoTags, Created, Architecture, Os,
Labels, Env, Layers, LayersData) so scripts written for one read the other; hostctl adds MediaType,
ManifestDigest (the platform's manifest under an index), ConfigDigest and Platforms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hostctl.errors import ImageError
from hostctl.images.manifest import (
    Index,
    Manifest,
    host_platform,
    parse_config,
    parse_document,
    parse_platform,
    select_platform,
)

if TYPE_CHECKING:
    from hostctl.images.reference import Reference
    from hostctl.images.registry import RegistryClient


def inspect(client: RegistryClient, ref: Reference, *, platform: str | None = None,
            raw: bool = False, config: bool = False) -> dict[str, Any] | bytes:
    """The description (or with RAW the manifest's bytes, with CONFIG the config's)."""
    data, content_type, digest = client.get_manifest(ref)
    doc = parse_document(data, content_type, where=str(ref))
    if raw and platform is None:
        return data
    platforms: list[str] = []
    manifest_digest, manifest_data = digest, data
    if isinstance(doc, Index):
        platforms = [str(e.platform) for e in doc.manifests if e.platform is not None]
        wanted = parse_platform(platform) if platform else host_platform()
        manifest_digest = select_platform(doc, wanted, where=str(ref)).digest
        manifest_data, content_type, _ = client.get_manifest(ref, manifest_digest)
        doc = parse_document(manifest_data, content_type, where=str(ref))
    if raw:
        return manifest_data
    if not isinstance(doc, Manifest):
        raise ImageError("an index entry points at another index", where=str(ref))
    config_data = client.fetch_bytes(ref, doc.config)
    if config:
        return config_data
    image = parse_config(config_data, len(doc.layers), where=str(ref))
    settings = image.get("config") or {}
    from hostctl.images.upload import list_tags

    try:
        tags = list_tags(client, ref)
    except ImageError:  # a registry may refuse listing; the image is still described
        tags = []
    return {
        "Name": ref.name,
        "Tag": ref.tag,
        "Digest": digest,
        "RepoTags": tags,
        "MediaType": doc.media_type if digest == manifest_digest else
        parse_document(data, None, where=str(ref)).media_type,
        "ManifestDigest": manifest_digest,
        "ConfigDigest": doc.config.digest,
        "Platforms": platforms,
        "Created": image.get("created"),
        "DockerVersion": image.get("docker_version", ""),
        "Labels": settings.get("Labels"),
        "Architecture": image.get("architecture"),
        "Os": image.get("os"),
        "Variant": image.get("variant"),
        "Layers": [layer.digest for layer in doc.layers],
        "LayersData": [{"MIMEType": layer.media_type, "Digest": layer.digest,
                        "Size": layer.size, "Annotations": None} for layer in doc.layers],
        "Env": settings.get("Env"),
        "Entrypoint": settings.get("Entrypoint"),
        "Cmd": settings.get("Cmd"),
    }
