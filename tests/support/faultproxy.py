"""An HTTP proxy in front of a registry that injects faults into chosen responses.

proxy.fault("/blobs/", "cut", times=1) makes the next blob GET send its headers and half
its body, then close the connection. Kinds: "500" and "503" (error status), "429" (with
Retry-After: 1), "cut" (connection closed mid-body), "wrong" (the body's first byte
flipped), "wrong-late" (a byte three quarters into the body flipped: found only once a
reader has used most of it), "norange" (the Range header dropped: the whole body again,
as from a server that cannot resume), "stall" (half the body, then silence until
proxy.released is set: a transfer in flight).
Range requests are forwarded, so resumption can be tested. `seen` records (path, fault).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_PASS = ("Content-Type", "Content-Range", "Docker-Content-Digest", "WWW-Authenticate",
         "Location", "Accept-Ranges")


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[list[object]] = []  # [path part, kind, times left]
        self.seen: list[tuple[str, str]] = []
        # "stall": set once a response stalls mid-body; it ends when released is set.
        self.stalled = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def fault(self, path_part: str, kind: str, times: int = 1) -> None:
        with self._lock:
            self.faults.append([path_part, kind, times])

    def _take(self, path: str) -> str:
        with self._lock:
            for fault in self.faults:
                if str(fault[0]) in path and int(fault[2]) > 0:  # type: ignore[call-overload]
                    fault[2] = int(fault[2]) - 1  # type: ignore[call-overload]
                    self.seen.append((path, str(fault[1])))
                    return str(fault[1])
            self.seen.append((path, ""))
        return ""

    def __enter__(self) -> FaultProxy:
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

            def do_GET(self) -> None:
                kind = proxy._take(self.path)
                if kind in ("500", "503", "429"):
                    self.send_response(int(kind))
                    if kind == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                forwarded = ("accept", "authorization") if kind == "norange" else \
                    ("accept", "authorization", "range")
                headers = {k: v for k, v in self.headers.items() if k.lower() in forwarded}
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                conn.close()
                self.send_response(response.status)
                for name in _PASS:
                    if response.getheader(name):
                        self.send_header(name, response.getheader(name) or "")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if kind == "stall":  # half the body, then nothing until release()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    proxy.stalled.set()
                    proxy.released.wait(timeout=120)
                    self.close_connection = True
                    return
                if kind == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if kind == "wrong" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                if kind == "wrong-late" and body:
                    at = len(body) * 3 // 4
                    body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1:]
                self.wfile.write(body)

        return Handler
