"""Real local servers for the fetch tests: pytest-httpserver (fixtures in conftest.py),
a raw TCP server that sends bytes no HTTP library would, and a recording HTTP/1.1 server.
Every one binds port 0 and reads the port back."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import FetchConfig
from newsletter.sources.fetch import FetchRequest, FetchResult, fetch_all_sync

FAST = FetchConfig(timeout=2.0)


def fetch_one(
    url: str, settings: FetchConfig = FAST, *, etag: str | None = None, lm: str | None = None
) -> FetchResult:
    [result] = fetch_all_sync([FetchRequest("test", url, etag=etag, last_modified=lm)], settings)
    return result


def logged(server: HTTPServer, path: str) -> list[tuple[Request, Response]]:
    """The requests the server saw for ``path``. Filtering by path matters: a slow handler
    from an earlier test can finish (and log) after the log was cleared."""
    return [(req, resp) for req, resp in server.log if req.path == path]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def raw_server(reply: bytes) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads each request's head, sends ``reply`` byte for
    byte and closes the connection: answers no HTTP server library would give. Yields the
    base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                with suppress(OSError):  # the client may hang up first
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``200 <request target>`` and records what it saw."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None]]  # (request target, Connection header)

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Connection")))
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def recording_server(
    wrap: ssl.SSLContext | None = None,
) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A real HTTP/1.1 server (TLS with ``wrap``) that records each request: yields its
    base URL and the list it records into."""
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (RecordingHandler,), {"seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    scheme = "http"
    if wrap is not None:
        srv.socket = wrap.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


class ConcurrencyProbe:
    """A server handler that counts requests in flight and remembers the peak."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.in_flight -= 1
        return Response(request.path.encode())
