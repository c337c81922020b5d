"""The registry client against a scripted HTTP registry on 127.0.0.1.

Covers what docker-registry's default config does not exercise: Bearer tokens with
credentials from auth.json, retries on 429/503 with Retry-After, redirects to another
origin (Authorization must not follow), resuming a broken blob with Range, and
refusing inconsistent manifests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.manifest import OCI_INDEX, OCI_MANIFEST, Descriptor
from hostctl.images.reference import parse_reference
from hostctl.images.registry import RegistryClient

pytestmark = pytest.mark.integration

BLOB = bytes(range(256)) * 4096  # 1 MiB
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {},
                       "layers": []}).encode()


@dataclass
class Script:
    """What the fake registry does; every request is recorded."""

    bearer: bool = False
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    redirect_blobs_to: str | None = None
    break_first_blob: bool = False
    content_type: str = OCI_MANIFEST
    digest_header: str | None = None
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)


def make_handler(script: Script, port_of: dict[str, int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  length: int | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            script.requests.append((self.path, auth, self.headers.get("Range")))
            if self.path.startswith("/token"):
                expected = "Basic " + base64.b64encode(b"alice:secret").decode()
                if auth != expected:
                    return self.reply(401)
                return self.reply(200, json.dumps({"token": "T0K", "expires_in": 300}).encode())
            if script.bearer and auth != "Bearer T0K" and not self.path.startswith("/other"):
                realm = f"http://127.0.0.1:{port_of['main']}/token"
                challenge = f'Bearer realm="{realm}",service="fake",scope="repository:a/b:pull"'
                return self.reply(401, b"{}", {"WWW-Authenticate": challenge})
            if self.path == "/v2/":
                return self.reply(200, b"{}")
            if script.faults:
                status, headers = script.faults.pop(0)
                return self.reply(status, b"busy", headers)
            if self.path.startswith("/v2/a/b/manifests/"):
                headers = {"Content-Type": script.content_type}
                if script.digest_header:
                    headers["Docker-Content-Digest"] = script.digest_header
                return self.reply(200, MANIFEST, headers)
            if self.path == f"/v2/a/b/blobs/{BLOB_DIGEST}" and script.redirect_blobs_to:
                return self.reply(307, b"", {"Location": script.redirect_blobs_to})
            if self.path.endswith(f"/blobs/{BLOB_DIGEST}") or self.path.startswith("/other"):
                return self.blob()
            return self.reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"nope"}]}')

        def blob(self) -> None:
            requested = self.headers.get("Range")
            if requested:
                start = int(requested.removeprefix("bytes=").rstrip("-"))
                rng = f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"
                return self.reply(206, BLOB[start:], {"Content-Range": rng})
            if script.break_first_blob:
                script.break_first_blob = False
                self.reply(200, BLOB[: len(BLOB) // 3], length=len(BLOB))
                self.close_connection = True
                return None
            return self.reply(200, BLOB)

    return Handler


@pytest.fixture
def fake() -> Iterator[tuple[Script, int, int]]:
    script = Script()
    ports: dict[str, int] = {}
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script, ports))
               for _ in range(2)]
    ports["main"], ports["other"] = (s.server_address[1] for s in servers)
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield script, ports["main"], ports["other"]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def client(tmp_path: Path, port: int, *, creds: bool = True) -> RegistryClient:
    auth = tmp_path / "auth.json"
    secret = base64.b64encode(b"alice:secret").decode()
    auth.write_text(json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": secret}}}
                               if creds else {}))
    return RegistryClient(auth_files=(auth,), sleep=lambda _s: None)


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.resets = 0

    def write(self, chunk: bytes, /) -> object:
        self.data += chunk
        return None

    def reset(self) -> None:
        self.data.clear()
        self.resets += 1


def desc() -> Descriptor:
    return Descriptor("application/octet-stream", BLOB_DIGEST, len(BLOB))


def test_bearer_token_from_credentials_is_cached(fake: tuple[Script, int, int],
                                                 tmp_path: Path) -> None:
    script, port, _ = fake
    script.bearer = True
    registry = client(tmp_path, port)
    ref = parse_reference(f"127.0.0.1:{port}/a/b:1")
    data, _, digest = registry.get_manifest(ref)
    assert data == MANIFEST and digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    sink = Sink()
    registry.fetch_blob(ref, desc(), sink)
    assert bytes(sink.data) == BLOB
    token_requests = [r for r in script.requests if r[0].startswith("/token")]
    assert len(token_requests) == 1
    assert "scope=repository%3Aa%2Fb%3Apull" in token_requests[0][0]
    assert "service=fake" in token_requests[0][0]


def test_bearer_without_credentials_is_refused_clearly(fake: tuple[Script, int, int],
                                                       tmp_path: Path) -> None:
    script, port, _ = fake
    script.bearer = True
    with pytest.raises(ImageError, match=r"token request .* refused: HTTP 401") as err:
        client(tmp_path, port, creds=False).get_manifest(
            parse_reference(f"127.0.0.1:{port}/a/b:1"))
    assert "credentials" in str(err.value)


def test_retries_honour_retry_after(fake: tuple[Script, int, int], tmp_path: Path) -> None:
    script, port, _ = fake
    script.faults = [(429, {"Retry-After": "7"}), (503, {})]
    waits: list[float] = []
    registry = RegistryClient(auth_files=(), sleep=waits.append)
    data, _, _ = registry.get_manifest(parse_reference(f"127.0.0.1:{port}/a/b:1"))
    assert data == MANIFEST and waits == [7.0, 1.0]


def test_retries_give_up(fake: tuple[Script, int, int]) -> None:
    script, port, _ = fake
    script.faults = [(503, {})] * 10
    registry = RegistryClient(auth_files=(), sleep=lambda _s: None, attempts=3)
    with pytest.raises(ImageError, match="registry answered HTTP 503"):
        registry.get_manifest(parse_reference(f"127.0.0.1:{port}/a/b:1"))


def test_redirect_to_other_origin_drops_authorization(fake: tuple[Script, int, int],
                                                      tmp_path: Path) -> None:
    script, port, other = fake
    script.bearer = True
    script.redirect_blobs_to = f"http://127.0.0.1:{other}/other/{BLOB_DIGEST}"
    sink = Sink()
    client(tmp_path, port).fetch_blob(parse_reference(f"127.0.0.1:{port}/a/b:1"), desc(), sink)
    assert bytes(sink.data) == BLOB
    redirected = [r for r in script.requests if r[0].startswith("/other")]
    assert redirected and all(auth is None for _, auth, _ in redirected)


def test_broken_blob_resumes_with_range(fake: tuple[Script, int, int]) -> None:
    script, port, _ = fake
    script.break_first_blob = True
    sink = Sink()
    RegistryClient(auth_files=(), sleep=lambda _s: None).fetch_blob(
        parse_reference(f"127.0.0.1:{port}/a/b:1"), desc(), sink)
    assert bytes(sink.data) == BLOB and sink.resets == 0
    ranges = [rng for path, _, rng in script.requests if "blobs" in path and rng]
    assert ranges == [f"bytes={len(BLOB) // 3}-"]


def test_blob_size_and_digest_are_checked(fake: tuple[Script, int, int]) -> None:
    _, port, _ = fake
    ref = parse_reference(f"127.0.0.1:{port}/a/b:1")
    registry = RegistryClient(auth_files=(), sleep=lambda _s: None)
    with pytest.raises(ImageError, match="larger than the 10 bytes"):
        registry.fetch_blob(ref, Descriptor("x", BLOB_DIGEST, 10), Sink())
    with pytest.raises(ImageError, match="not found: nope"):
        registry.fetch_blob(ref, Descriptor("x", "sha256:" + "0" * 64, 1), Sink())


def test_inconsistent_manifests_are_refused(fake: tuple[Script, int, int]) -> None:
    script, port, _ = fake
    ref = parse_reference(f"127.0.0.1:{port}/a/b:1")
    registry = RegistryClient(auth_files=(), sleep=lambda _s: None)
    script.digest_header = "sha256:" + "1" * 64
    with pytest.raises(ImageError, match="digest mismatch"):
        registry.get_manifest(ref)
    script.digest_header = None
    with pytest.raises(ImageError, match="digest mismatch"):
        registry.get_manifest(ref, "sha256:" + "2" * 64)
    script.content_type = OCI_INDEX
    from hostctl.images.manifest import parse_document

    data, content_type, _ = registry.get_manifest(ref)
    with pytest.raises(ImageError, match="served as"):
        parse_document(data, content_type, where=str(ref))
