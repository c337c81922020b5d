"""registries.conf's `insecure = true` for a registry that speaks plain HTTP: HTTPS
without verification is tried first, then HTTP (containers-registries.conf(5), podman).
A plain-HTTP server of the standard library on loopback stands in for the registry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from hostctl.images.manifest import sha256_digest
from hostctl.images.reference import parse_reference
from hostctl.images.registry import RegistryClient

MANIFEST = (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
            b'"digest":"sha256:' + b"0" * 64 + b'","size":2},"layers":[]}')


class _Registry(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path == "/v2/":
            self._answer(b"{}", "application/json")
        elif self.path == "/v2/demo/app/manifests/1":
            self._answer(MANIFEST, "application/vnd.oci.image.manifest.v1+json")
        else:
            self.send_error(404)

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        """Quiet: the test reads the requests it needs from the server's records."""


@pytest.fixture
def plain_http() -> Iterator[str]:
    """host:port of a plain-HTTP registry on 127.0.0.1."""
    _Registry.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_insecure_loopback_registry_is_tried_over_tls_then_plain_http(
        plain_http: str) -> None:
    client = RegistryClient(attempts=1, insecure=lambda registry: registry == plain_http)
    data, _, digest = client.get_manifest(parse_reference(f"{plain_http}/demo/app:1"))
    assert data == MANIFEST and digest == sha256_digest(MANIFEST)
    assert _Registry.requests == ["/v2/", "/v2/demo/app/manifests/1"]
