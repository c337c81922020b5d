"""A client for the OCI distribution API on urllib3: auth, manifests, verified blob streams.

Imported only when an image must come from the network (urllib3 costs ~50 ms of start-up).
One PoolManager per client; urllib3's own retries and redirects are off because both
need registry-specific handling: Authorization must never follow a redirect to another
host, and retries honour Retry-After and resume broken blob downloads with Range.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Protocol

import urllib3
from urllib3.exceptions import (
    HTTPError,
    NameResolutionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)

from hostctl.errors import ImageError
from hostctl.images.auth import Challenge, Credentials, find_credentials, parse_challenge
from hostctl.images.manifest import ACCEPT, MAX_DOCUMENT, Descriptor, sha256_digest
from hostctl.images.reference import Reference, is_loopback, validate_digest

MAX_TOKEN = 1024 * 1024
CHUNK = 1024 * 1024
_BLOCK = 1024 * 1024  # an uploaded file is sent in pieces of this size
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5


class BlobSink(Protocol):
    """Where a blob's bytes go while they are verified; reset() restarts from byte 0."""

    def write(self, data: bytes, /) -> object: ...

    def reset(self) -> None: ...


class _BytesSink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes, /) -> object:
        self.chunks.append(data)
        return None

    def reset(self) -> None:
        self.chunks.clear()


class RegistryClient:
    """Talks to registries for one pull (or many); caches challenges and tokens."""

    def __init__(
        self,
        *,
        auth_files: tuple[Path, ...] | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 10.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        certs_dirs: tuple[Path, ...] | None = None,
        insecure: Callable[[str], bool] = lambda _registry: False,
    ) -> None:
        self._timeout = urllib3.Timeout(connect=10.0, read=timeout)
        self._http = urllib3.PoolManager(retries=False, timeout=self._timeout, maxsize=8,
                                         blocksize=_BLOCK)
        self._pools: dict[str, urllib3.PoolManager] = {}
        self._certs_dirs = default_certs_dirs() if certs_dirs is None else certs_dirs
        self._cert_dirs: dict[str, Path] = {}
        self._insecure = insecure
        self._schemes: dict[str, str] = {}
        self._auth_files = auth_files
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_wait = max_wait
        self._sleep = sleep
        self._challenges: dict[str, Challenge | None] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._credentials: dict[str, Credentials | None] = {}
        self._registry_credentials: dict[str, Credentials] = {}
        self._token_lock = threading.Lock()
        self._ping_lock = threading.Lock()  # comparisons side by side ping a registry once

    # -- public API -------------------------------------------------------------------

    def get_manifest(self, ref: Reference, target: str | None = None) -> tuple[bytes, str, str]:
        """(exact bytes, Content-Type, digest) of the manifest or index for TARGET.

        TARGET is a tag or digest (default: the reference's digest, else its tag). The
        digest is computed over the bytes received; when asked by digest it must match.
        """
        target = target or ref.target
        if target.startswith("sha256:"):
            validate_digest(target, where=str(ref))
        response = self._request(ref, f"manifests/{target}", {"Accept": ACCEPT})
        try:
            self._check_status(ref, response, f"manifest {target}")
            data = _read_capped(response, MAX_DOCUMENT, where=str(ref), what=f"manifest {target}")
        finally:
            response.release_conn()
        digest = sha256_digest(data)
        expected = target if target.startswith("sha256:") else None
        header = response.headers.get("Docker-Content-Digest", "")
        if expected is None and header.startswith("sha256:"):
            expected = header
        if expected is not None and expected != digest:
            raise ImageError(
                f"manifest {expected}: digest mismatch (content hashes to {digest})",
                where=str(ref), hint="the registry or a proxy served corrupt data",
            )
        return data, response.headers.get("Content-Type", ""), digest

    def manifest_digest(self, ref: Reference, target: str | None = None) -> str:
        """The digest of the manifest or index TARGET names, without its body when the
        registry says it: a HEAD's Docker-Content-Digest, else a GET's bytes hashed."""
        target = target or ref.target
        if target.startswith("sha256:"):
            validate_digest(target, where=str(ref))
        response = self._request(ref, f"manifests/{target}", {"Accept": ACCEPT}, method="HEAD")
        try:
            if response.status != 405:  # a registry without HEAD gets the GET below
                self._check_status(ref, response, f"manifest {target}")
            header = response.headers.get("Docker-Content-Digest", "")
        finally:
            _discard(response)
        if header.startswith("sha256:"):
            return validate_digest(header, where=str(ref))
        return self.get_manifest(ref, target)[2]

    def fetch_bytes(self, ref: Reference, desc: Descriptor, limit: int = MAX_DOCUMENT) -> bytes:
        """A small blob (an image config) in memory, verified."""
        if desc.size > limit:
            raise ImageError(f"blob {desc.digest}: {desc.size} bytes is over the {limit} limit",
                             where=str(ref))
        sink = _BytesSink()
        self.fetch_blob(ref, desc, sink)
        return b"".join(sink.chunks)

    def fetch_blob(self, ref: Reference, desc: Descriptor, sink: BlobSink) -> None:
        """Stream a blob into SINK, verifying size and digest as it arrives.

        A download that breaks off is resumed with Range (a 206 with a matching
        Content-Range), or restarted from byte 0 when the server ignores the Range.
        """
        digest = validate_digest(desc.digest, where=str(ref))
        hasher, received = hashlib.sha256(), 0
        for attempt in range(self._attempts):
            headers = {"Range": f"bytes={received}-"} if received else {}
            response = self._request(ref, f"blobs/{digest}", headers)
            try:
                if not (received and _resumes(response, received)):
                    self._check_status(ref, response, f"blob {digest}")
                    if received:
                        sink.reset()
                        hasher, received = hashlib.sha256(), 0
                try:
                    for chunk in response.stream(CHUNK, decode_content=False):
                        received += len(chunk)
                        if received > desc.size:
                            raise ImageError(
                                f"blob {digest}: larger than the {desc.size} bytes the "
                                "manifest declares", where=str(ref))
                        hasher.update(chunk)
                        sink.write(chunk)
                except (ProtocolError, ReadTimeoutError, SSLError) as exc:
                    if attempt + 1 == self._attempts:
                        raise ImageError(
                            f"blob {digest}: download broke off after {received} bytes: "
                            f"{_reason(exc)}", where=str(ref)) from None
                    self._sleep(self._delay(attempt, None))
                    continue
            finally:
                response.release_conn()
            break
        _verify_stream(ref, desc, received, "sha256:" + hasher.hexdigest())

    # -- requests, auth, redirects, retries -------------------------------------------

    def _request(
        self, ref: Reference, path: str, headers: Mapping[str, str], method: str = "GET",
        *, body: bytes | IO[bytes] | None = None, scope: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """METHOD /v2/REPO/PATH with auth; a 401 renews the token (new scope) once.

        PATH may also be an absolute URL or path (an upload's Location). SCOPE is the
        token scope to ask for (default: pull access to REF's repository).
        """
        challenge = self._challenge(ref)
        base = f"{self._schemes[ref.registry]}://{ref.api_host}/v2/{ref.repository}/"
        url = urllib.parse.urljoin(base, path)
        scope = scope or f"repository:{ref.repository}:pull"
        auth = self._authorization(ref, challenge, scope, renew=False)
        response = self._follow(ref, url, {**headers, **auth}, method, body)
        if response.status != 401:
            return response
        new = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        _discard(response)
        if new is None:
            return self._follow(ref, url, {**headers, **auth}, method, body)
        self._challenges[ref.registry] = new
        if new.params.get("error") == "insufficient_scope" and new.params.get("scope"):
            scope = new.params["scope"]
        auth = self._authorization(ref, new, scope, renew=True)
        return self._follow(ref, url, {**headers, **auth}, method, body)

    def send(
        self, ref: Reference, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] | None = None, scope: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """One authenticated request for the push and remote-inspection code: METHOD on
        /v2/REPO/PATH (or PATH if absolute), retried on connection errors, 408, 429 and 5xx
        (Retry-After honoured). The caller reads and releases the response."""
        return self._request(ref, path, headers or {}, method, body=body, scope=scope)

    def check_status(self, ref: Reference, response: urllib3.BaseHTTPResponse, what: str,
                     ok: tuple[int, ...] = (200,)) -> None:
        """ImageError naming WHAT and the registry's own message unless the status is OK."""
        if response.status not in ok:
            self._check_status(ref, response, what)

    def _challenge(self, ref: Reference) -> Challenge | None:
        """Ping /v2/ once per registry and keep its challenge."""
        if ref.registry in self._challenges:
            return self._challenges[ref.registry]
        with self._ping_lock:
            return self._first_challenge(ref)

    def _first_challenge(self, ref: Reference) -> Challenge | None:
        if ref.registry not in self._challenges:
            response = self._ping(ref)
            try:
                if response.status == 401:
                    header = response.headers.get("WWW-Authenticate", "")
                    self._challenges[ref.registry] = parse_challenge(header)
                elif response.status == 200:
                    self._challenges[ref.registry] = None
                else:
                    raise ImageError(
                        f"registry {ref.registry} answered HTTP {response.status} to GET /v2/",
                        where=str(ref), hint="is this address an OCI registry?")
            finally:
                _discard(response)
        return self._challenges[ref.registry]

    def _ping(self, ref: Reference) -> urllib3.BaseHTTPResponse:
        """GET /v2/, choosing the scheme: https; plain http for a loopback registry without
        a CA configured; and for an insecure one (registries.conf's `insecure = true`, as
        containers-registries.conf(5) and podman read it: TLS without verification, or
        HTTP), https without verification first, then http."""
        insecure = self._insecure(ref.registry)
        if insecure:
            schemes = ["https", "http"]
        elif is_loopback(ref.registry):  # plain HTTP unless a CA is configured for it
            schemes = ["https"] if self._tls_pool(ref.api_host) is not self._http else ["http"]
        else:
            schemes = ["https"]
        for scheme in schemes:
            self._schemes[ref.registry] = scheme
            try:
                return self._follow(ref, f"{scheme}://{ref.api_host}/v2/", {})
            except ImageError:
                if scheme == schemes[-1]:
                    raise
        raise AssertionError("unreachable")

    def check_login(self, ref: Reference, creds: Credentials) -> None:
        """Raise ImageError unless CREDS are accepted by REF's registry."""
        self._credentials[ref.name] = creds
        challenge = self._challenge(ref)
        if challenge is None:
            return
        base = f"{self._schemes[ref.registry]}://{ref.api_host}/v2/"
        if challenge.scheme == "bearer":
            token, _ = self._fetch_token(ref, challenge, "", creds)
            auth = {"Authorization": f"Bearer {token}"}
        else:
            auth = {"Authorization": creds.basic()}
        response = self._follow(ref, base, auth)
        status = response.status
        _discard(response)
        if status != 200:
            raise ImageError(f"registry {ref.registry} refused the credentials (HTTP {status})",
                             where=ref.registry, hint="check the user name and password")

    def _pool(self, url: str) -> urllib3.PoolManager:
        """The connection pool for URL's host: its own CA files, or unverified if insecure."""
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.lower()
        if parts.scheme != "https":
            return self._http
        if host not in self._pools:
            self._pools[host] = self._tls_pool(host)
        return self._pools[host]

    def _tls_pool(self, host: str) -> urllib3.PoolManager:
        if self._insecure(host):
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            return urllib3.PoolManager(retries=False, timeout=self._timeout, maxsize=8,
                                       blocksize=_BLOCK, cert_reqs="CERT_NONE")
        directories = [self._cert_dirs[host]] if host in self._cert_dirs else []
        for directory in [*directories, *(base / host for base in self._certs_dirs)]:
            cas = sorted(directory.glob("*.crt")) if directory.is_dir() else []
            if cas:
                import ssl

                context = ssl.create_default_context()
                for ca in cas:
                    context.load_verify_locations(cafile=str(ca))
                cert, key = directory / "client.cert", directory / "client.key"
                if cert.is_file() and key.is_file():
                    context.load_cert_chain(str(cert), str(key))
                return urllib3.PoolManager(retries=False, timeout=self._timeout, maxsize=8,
                                           blocksize=_BLOCK, ssl_context=context)
        return self._http

    def _authorization(
        self, ref: Reference, challenge: Challenge | None, scope: str, *, renew: bool
    ) -> dict[str, str]:
        if challenge is None:
            return {}
        creds = self._creds(ref)
        if challenge.scheme == "basic":
            return {"Authorization": creds.basic()} if creds else {}
        key = (ref.registry, scope)
        with self._token_lock:  # parallel blob transfers share one token request
            cached = self._tokens.get(key)
            if cached and not renew and cached[1] > time.monotonic():
                return {"Authorization": f"Bearer {cached[0]}"}
            token, lifetime = self._fetch_token(ref, challenge, scope, creds)
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))
        return {"Authorization": f"Bearer {token}"}

    def use_cert_dir(self, registry: str, directory: Path) -> None:
        """CA files (*.crt, and client.cert/client.key) for REGISTRY from DIRECTORY, ahead
        of the certs.d directories (a sync file's cert-dir)."""
        self._cert_dirs[registry.lower()] = directory
        self._pools.pop(registry.lower(), None)

    def use_credentials(self, registry: str, creds: Credentials) -> None:
        """Use CREDS for every repository of REGISTRY (a sync file's own credentials)."""
        self._registry_credentials[registry] = creds

    def _creds(self, ref: Reference) -> Credentials | None:
        if ref.registry in self._registry_credentials:
            return self._registry_credentials[ref.registry]
        if ref.name not in self._credentials:
            self._credentials[ref.name] = find_credentials(ref, self._auth_files)
        return self._credentials[ref.name]

    def _fetch_token(
        self, ref: Reference, challenge: Challenge, scope: str, creds: Credentials | None
    ) -> tuple[str, int]:
        realm = challenge.params.get("realm", "")
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ImageError(f"registry {ref.registry} sent an unusable token realm {realm!r}",
                             where=str(ref))
        query = [("scope", s) for s in scope.split(" ") if s]
        if challenge.params.get("service"):
            query.insert(0, ("service", challenge.params["service"]))
        url = realm + ("&" if parsed.query else "?") + urllib.parse.urlencode(query)
        headers = {}
        if creds and (parsed.scheme == "https" or _loopback_url(realm)):
            headers["Authorization"] = creds.basic()
        response = self._follow(ref, url, headers)
        try:
            if response.status != 200:
                raise ImageError(
                    f"token request to {parsed.netloc} refused: HTTP {response.status}",
                    where=str(ref), hint="check the credentials in auth.json"
                    if creds else "the image may need credentials (auth.json)")
            body = _read_capped(response, MAX_TOKEN, where=str(ref), what="token")
        finally:
            response.release_conn()
        return _parse_token(body, where=str(ref))

    def _follow(
        self, ref: Reference, url: str, headers: Mapping[str, str], method: str = "GET",
        body: bytes | IO[bytes] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """METHOD URL, following redirects; Authorization goes only to the original origin."""
        origin = _origin(url)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._retrying(ref, url, headers, method, body)
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                return response
            _discard(response)
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ImageError(f"registry redirected to unsupported URL {url}", where=str(ref))
            if _origin(url) != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise ImageError(f"more than {_MAX_REDIRECTS} redirects for {url}", where=str(ref))

    def _retrying(
        self, ref: Reference, url: str, headers: Mapping[str, str], method: str = "GET",
        body: bytes | IO[bytes] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """One request with retries: connection errors, 408, 429 and 5xx, with backoff.
        A TLS failure (a certificate, or a plain-HTTP server answering the handshake)
        fails at once: trying again gives the same answer."""
        for attempt in range(self._attempts):
            last = attempt + 1 == self._attempts
            try:
                response = self._pool(url).request(
                    method, url, headers=dict(headers), body=body, preload_content=False,
                    redirect=False, retries=False, decode_content=False)
            except HTTPError as exc:
                # A broken PATCH may have left part of its bytes with the registry: the
                # uploader asks the upload's state rather than sending the same bytes again.
                if last or isinstance(exc, SSLError) or method == "PATCH" or \
                        not isinstance(body, bytes | None):
                    raise _unreachable(ref, exc) from None
                self._sleep(self._delay(attempt, None))
                continue
            if last or not (response.status in (408, 429) or response.status >= 500) or \
                    not isinstance(body, bytes | None):  # a stream is not sent twice
                return response
            wait = self._delay(attempt, response.headers.get("Retry-After"))
            _discard(response)
            self._sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def pause(self, retry_after: str | None) -> None:
        """Wait as a registry's Retry-After asks (else one backoff step)."""
        self._sleep(self._delay(0, retry_after))

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self._max_wait)
        return min(self._backoff * (2.0**attempt), self._max_wait)

    def _check_status(self, ref: Reference, response: urllib3.BaseHTTPResponse, what: str) -> None:
        status = response.status
        if status == 200:
            return
        detail = _error_detail(response)
        if status == 404:
            raise ImageError(f"{what} not found{detail}", where=str(ref),
                             hint="check the image name and tag")
        if status in (401, 403):
            raise ImageError(f"{what}: access denied (HTTP {status}){detail}", where=str(ref),
                             hint="the image may not exist or may need credentials in auth.json")
        raise ImageError(f"{what}: registry answered HTTP {status}{detail}", where=str(ref))


def default_certs_dirs() -> tuple[Path, ...]:
    """Per-registry CA directories (HOST[:PORT]/*.crt): hostctl's, containers', docker's."""
    import os

    own = Path(os.environ.get("HOSTCTL_CONFIG_DIR", "/etc/hostctl")) / "certs.d"
    return (own, Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


def _verify_stream(ref: Reference, desc: Descriptor, received: int, got: str) -> None:
    if received != desc.size:
        raise ImageError(f"blob {desc.digest}: received {received} of {desc.size} bytes",
                         where=str(ref), hint="the download was cut short; try again")
    if got != desc.digest:
        raise ImageError(
            f"blob {desc.digest}: digest mismatch (content hashes to {got})",
            where=str(ref), hint="the registry or a proxy served corrupt data; nothing was stored",
        )


def _resumes(response: urllib3.BaseHTTPResponse, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")
    return response.status == 206 and content_range.startswith(f"bytes {offset}-")


def _read_capped(response: urllib3.BaseHTTPResponse, limit: int, *, where: str, what: str) -> bytes:
    chunks, total = [], 0
    try:
        for chunk in response.stream(64 * 1024, decode_content=False):
            total += len(chunk)
            if total > limit:
                raise ImageError(f"{what} larger than {limit} bytes", where=where)
            chunks.append(chunk)
    except (ProtocolError, ReadTimeoutError, SSLError) as exc:
        raise ImageError(f"{what}: connection broke off: {_reason(exc)}", where=where) from None
    return b"".join(chunks)


def _parse_token(body: bytes, *, where: str) -> tuple[str, int]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(token, str) or not token:
        raise ImageError("token server answered without a token", where=where)
    expires = doc.get("expires_in")
    return token, expires if isinstance(expires, int) and expires > 0 else 60


def _error_detail(response: urllib3.BaseHTTPResponse) -> str:
    """The registry's own error message, if it sent a JSON error body."""
    try:
        body = response.read(64 * 1024, decode_content=False)
        errors = json.loads(body).get("errors") or []
        message = errors[0].get("message") or errors[0].get("code")
    except (ValueError, AttributeError, IndexError, TypeError, HTTPError):
        return ""
    return f": {message}" if isinstance(message, str) else ""


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _loopback_url(url: str) -> bool:
    return is_loopback(urllib.parse.urlsplit(url).netloc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NameResolutionError):
        return "host name does not resolve"
    if isinstance(exc, SSLError):
        return f"TLS error: {exc}"
    cause: BaseException | None = exc
    while cause is not None:  # NewConnectionError wraps e.g. ConnectionRefusedError
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, Urllib3Timeout):
        return "timed out"
    return str(exc)


def _unreachable(ref: Reference, exc: BaseException) -> ImageError:
    scheme = ref.scheme.upper()
    return ImageError(
        f"registry {ref.registry} unreachable: {_reason(exc)}",
        where=str(ref),
        hint=f"check that the registry is running and reachable over {scheme} at "
        f"{ref.api_host}, and that the network is up",
    )
