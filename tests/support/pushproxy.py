"""An HTTP proxy in front of a registry that records every request and can break pushes.

Unlike faultproxy (GETs only), it forwards every method with its body, so pushes go
through it: `requests` holds (method, path, status, request body length, Content-Range)
for counting uploads and mounts. The registry builds upload Locations from the Host
header, which the proxy passes on as its own address, so uploads stay on the proxy.

Faults (`fault(method, path part, kind, times)`): "cut" reads half the request body and
closes the connection without forwarding anything (the registry never sees that chunk);
"cut-forward" sends the registry the request with half its body, then closes both
connections (the registry keeps part of the bytes); "429" answers Too Many Requests with
Retry-After: 1; "503" Service Unavailable.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_PASS = ("Content-Type", "Content-Range", "Docker-Content-Digest", "WWW-Authenticate",
         "Location", "Range", "Docker-Upload-UUID", "Link", "Accept-Ranges")
_FORWARD = ("accept", "authorization", "range", "content-type", "content-range")


class PushProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, str, int, int, str]] = []
        self.faults: list[list[object]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def fault(self, method: str, path_part: str, kind: str, times: int = 1) -> None:
        with self._lock:
            self.faults.append([method, path_part, kind, times])

    def _take(self, method: str, path: str) -> str:
        with self._lock:
            for fault in self.faults:
                left = int(str(fault[3]))
                if fault[0] == method and str(fault[1]) in path and left > 0:
                    fault[3] = left - 1
                    return str(fault[2])
        return ""

    def _record(self, entry: tuple[str, str, int, int, str]) -> None:
        with self._lock:
            self.requests.append(entry)

    def __enter__(self) -> PushProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _forward(self) -> None:
                method = self.command
                length = int(self.headers.get("Content-Length") or 0)
                content_range = self.headers.get("Content-Range") or ""
                kind = proxy._take(method, self.path)
                if kind in ("cut", "cut-forward"):
                    half = self.rfile.read(length // 2)
                    if kind == "cut-forward":
                        self._send_half(method, length, half)
                    proxy._record((method, self.path, 0, length // 2, content_range))
                    self.close_connection = True
                    self.connection.close()
                    return
                body = self.rfile.read(length) if length else b""
                if kind in ("429", "503"):
                    proxy._record((method, self.path, int(kind), len(body), content_range))
                    self.send_response(int(kind))
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARD}
                headers["Host"] = proxy.host
                if length or method in ("PUT", "PATCH", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                conn.request(method, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                conn.close()
                proxy._record((method, self.path, response.status, len(body), content_range))
                self.send_response(response.status)
                for name in _PASS:
                    if response.getheader(name):
                        self.send_header(name, response.getheader(name) or "")
                if method == "HEAD":
                    self.send_header("Content-Length",
                                     response.getheader("Content-Length") or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _send_half(self, method: str, length: int, half: bytes) -> None:
                host, _, port = proxy.upstream.partition(":")
                lines = [f"{method} {self.path} HTTP/1.1", f"Host: {proxy.host}",
                         f"Content-Length: {length}"]
                lines += [f"{k}: {v}" for k, v in self.headers.items()
                          if k.lower() in _FORWARD]
                with socket.create_connection((host, int(port)), timeout=10) as upstream:
                    upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + half)
                    time.sleep(0.2)  # the registry writes what it got, then sees the close

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler
