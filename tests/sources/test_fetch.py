"""fetch: concurrent, polite, conditional fetching, tested against a real local HTTP server.

Every test runs twice: on pyreqwest's transport (what fetch_all uses when pyreqwest is
installed) and on httpx's own (the fallback where it is not), so both stay proven.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.sources import fetch
from newsletter.sources.fetch import (
    DEFAULT_USER_AGENT,
    FetchRequest,
    FetchResult,
    FetchSettings,
    fetch_all,
    fetch_all_sync,
    format_size,
    parse_retry_after,
)

FAST = FetchSettings(timeout=2.0)

# The modules fetch imports pyreqwest from; None in sys.modules makes an import fail.
PYREQWEST_MODULES = ("pyreqwest", "pyreqwest.client", "pyreqwest.compatibility.httpx")


def without_pyreqwest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pyreqwest...`` fail, as where it is not installed."""
    for name in PYREQWEST_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(autouse=True, params=["pyreqwest", "httpx"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which transport fetch_all builds its client on, for this run of the test."""
    if request.param == "pyreqwest":
        pytest.importorskip("pyreqwest")
    else:
        without_pyreqwest(monkeypatch)
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    """A real threaded HTTP server on a free port (threaded, so concurrency is real)."""
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def httpserver(server: HTTPServer) -> Iterator[HTTPServer]:
    """The shared server, with no handlers or log left from the previous test."""
    server.clear()
    yield server
    server.clear()


def fetch_one(
    url: str, settings: FetchSettings = FAST, *, etag: str | None = None, lm: str | None = None
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


# -- the transport ----------------------------------------------------------------------------


def test_fetching_runs_on_the_transport_under_test(transport: str) -> None:
    async def reqwest_transport() -> object:
        used = fetch._reqwest_transport(FAST)
        if used is not None:
            await used.aclose()
        return used

    used = asyncio.run(reqwest_transport())

    if transport == "pyreqwest":
        assert isinstance(used, fetch._ReqwestTransport)
    else:
        assert used is None  # fetch_all then uses httpx's own client


# -- success and validators -------------------------------------------------------------------


def test_ok_captures_body_validators_and_content_type(httpserver: HTTPServer) -> None:
    lm = "Wed, 21 Oct 2026 07:28:00 GMT"
    httpserver.expect_request("/feed.xml").respond_with_data(
        b"<rss/>",
        content_type="application/rss+xml; charset=utf-8",
        headers={"ETag": '"v1"', "Last-Modified": lm},
    )
    url = httpserver.url_for("/feed.xml")

    result = fetch_one(url)

    assert result.status == "ok"
    assert result.ok
    assert result.body == b"<rss/>"
    assert result.http_status == 200
    assert result.etag == '"v1"'
    assert result.last_modified == lm
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.final_url == url
    assert result.new_url is None
    assert result.error is None
    assert result.elapsed > 0


def test_every_request_carries_a_user_agent_and_accept_encoding(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ua").respond_with_data(b"x")

    fetch_one(httpserver.url_for("/ua"))
    fetch_one(httpserver.url_for("/ua"), FetchSettings(user_agent="custom/1.0"))

    [(first, _), (second, _)] = logged(httpserver, "/ua")
    assert first.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("newsletter/")
    assert second.headers["User-Agent"] == "custom/1.0"
    assert "gzip" in first.headers["Accept-Encoding"]
    assert "application/rss+xml" in first.headers["Accept"]


def test_conditional_get_sends_validators_and_304_is_not_modified(
    httpserver: HTTPServer,
) -> None:
    lm = "Wed, 21 Oct 2026 07:28:00 GMT"
    # The handler only matches when both validators arrive; otherwise the server answers 500.
    httpserver.expect_request(
        "/cond", headers={"If-None-Match": '"v1"', "If-Modified-Since": lm}
    ).respond_with_data(b"", status=304)

    result = fetch_one(httpserver.url_for("/cond"), etag='"v1"', lm=lm)

    assert result.status == "not_modified"
    assert result.http_status == 304
    assert result.body == b""
    assert result.error is None
    # No fresh validators from the server: the stored ones stay valid.
    assert (result.etag, result.last_modified) == ('"v1"', lm)
    [(request, _)] = logged(httpserver, "/cond")
    assert request.headers["If-None-Match"] == '"v1"'
    assert request.headers["If-Modified-Since"] == lm


def test_no_validators_means_no_conditional_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/plain").respond_with_data(b"x")

    fetch_one(httpserver.url_for("/plain"))

    [(request, _)] = logged(httpserver, "/plain")
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


def test_gzip_body_is_decoded(httpserver: HTTPServer) -> None:
    payload = b"<feed>" + b"entry " * 1000 + b"</feed>"
    httpserver.expect_request("/gz").respond_with_data(
        gzip.compress(payload), headers={"Content-Encoding": "gzip"}
    )

    result = fetch_one(httpserver.url_for("/gz"))

    assert result.status == "ok"
    assert result.body == payload  # decoded, and exactly once
    [(request, _)] = logged(httpserver, "/gz")
    # One Accept-Encoding, httpx's: the transport adds no codings of its own.
    [accept_encoding] = request.headers.getlist("Accept-Encoding")
    assert accept_encoding.split(", ")[:2] == ["gzip", "deflate"]


def test_garbage_bytes_are_returned_as_ok(httpserver: HTTPServer) -> None:
    garbage = bytes(range(256)) * 4
    httpserver.expect_request("/garbage").respond_with_data(
        garbage, content_type="application/octet-stream"
    )

    result = fetch_one(httpserver.url_for("/garbage"))

    assert result.status == "ok"
    assert result.body == garbage


# -- HTTP failures ----------------------------------------------------------------------------


def test_410_is_gone(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data(b"bye", status=410)

    result = fetch_one(httpserver.url_for("/gone"))

    assert result.status == "gone"
    assert result.http_status == 410
    assert result.error == "HTTP 410 Gone"
    assert result.body == b""


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (500, "HTTP 500 Internal Server Error"),
        (404, "HTTP 404 Not Found"),
        (403, "HTTP 403 Forbidden"),
    ],
    ids=["500", "404", "403"],
)
def test_other_http_errors(httpserver: HTTPServer, code: int, reason: str) -> None:
    httpserver.expect_request("/err").respond_with_data(b"oops", status=code)

    result = fetch_one(httpserver.url_for("/err"))

    assert result.status == "error"
    assert result.http_status == code
    assert result.error == reason
    assert result.body == b""


def test_429_with_retry_after_seconds(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/busy").respond_with_data(
        b"", status=429, headers={"Retry-After": "120"}
    )

    before = datetime.now(UTC)
    result = fetch_one(httpserver.url_for("/busy"))
    after = datetime.now(UTC)

    assert result.status == "retry_later"
    assert result.http_status == 429
    assert result.error == "HTTP 429 Too Many Requests"
    assert result.retry_after is not None
    assert before + timedelta(seconds=120) <= result.retry_after <= after + timedelta(seconds=120)


def test_429_with_retry_after_http_date(httpserver: HTTPServer) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    httpserver.expect_request("/busy").respond_with_data(
        b"", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )

    result = fetch_one(httpserver.url_for("/busy"))

    assert result.status == "retry_later"
    assert result.retry_after == when


def test_503_without_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down").respond_with_data(b"", status=503)

    result = fetch_one(httpserver.url_for("/down"))

    assert result.status == "retry_later"
    assert result.http_status == 503
    assert result.retry_after is None
    assert result.error == "HTTP 503 Service Unavailable"


def test_timeout_is_an_error_with_reason(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response(b"too late")

    httpserver.expect_request("/slow").respond_with_handler(slow)

    result = fetch_one(httpserver.url_for("/slow"), FetchSettings(timeout=0.3))

    assert result.status == "error"
    assert result.error == "timed out after 0.3s"
    assert result.elapsed < 0.9


def test_timeout_covers_a_body_that_trickles(httpserver: HTTPServer) -> None:
    # Each chunk arrives well within the timeout, but the whole body does not.
    def trickle() -> Iterator[bytes]:
        for _ in range(20):
            time.sleep(0.1)
            yield b"x"

    httpserver.expect_request("/trickle").respond_with_response(Response(trickle()))

    result = fetch_one(httpserver.url_for("/trickle"), FetchSettings(timeout=0.5))

    assert result.status == "error"
    assert result.error == "timed out after 0.5s"
    assert result.elapsed < 1.5


def test_connection_refused_is_an_error() -> None:
    result = fetch_one(f"http://127.0.0.1:{closed_port()}/feed")

    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("could not connect")
    assert result.http_status is None


def test_unsupported_scheme_is_an_error() -> None:
    result = fetch_one("ftp://example.invalid/feed.xml")

    assert result.status == "error"
    assert (
        result.error == "unsupported URL (use http, https or file): ftp://example.invalid/feed.xml"
    )


def test_a_server_that_never_answers_times_out() -> None:
    # Accepted by the kernel (the listen backlog), never by anyone: the request goes out,
    # nothing comes back.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result = fetch_one(f"http://127.0.0.1:{port}/feed", FetchSettings(timeout=0.3))

    assert result.status == "error"
    assert result.error == "timed out after 0.3s"
    assert result.elapsed < 0.9


def assert_one_line(reason: str | None, starts: str) -> None:
    assert reason is not None
    assert reason.startswith(starts), reason
    assert "\n" not in reason
    assert "causes" not in reason  # not the repr of pyreqwest's details
    assert len(reason) <= 200


@pytest.mark.parametrize(
    "reply",
    [
        b"\x00\x01 garbage, not HTTP\r\n\r\n",
        b"",  # closed before any response
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
        # Cut off while the body streams (past what the transport reads ahead).
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 300_000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"2710\r\n"
        + b"x" * 10_000
        + b"\r\n" * 30,
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nok",
    ],
    ids=["garbage", "closed", "short-body", "cut-off-stream", "bad-chunks", "bad-length"],
)
def test_a_broken_response_is_an_error_with_a_reason(reply: bytes) -> None:
    with raw_server(reply) as base:
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "error"
    assert result.body == b""
    assert_one_line(result.error, "the server broke the connection: ")


def test_header_values_that_are_not_ascii_are_read(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = (
        b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nETag: "v2"\r\n'
        b"X-Latin-1: caf\xe9\r\nX-Utf-8: caf\xc3\xa9\r\n\r\n<rss/>"
    )

    with (
        caplog.at_level(logging.DEBUG, logger="newsletter.sources.fetch"),
        raw_server(reply) as base,
    ):
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "ok"
    assert result.body == b"<rss/>"
    assert result.etag == '"v2"'
    # pyreqwest cannot hand such headers over: httpx's own transport asked again.
    asked_again = "pyreqwest could not represent" in caplog.text
    assert asked_again == (transport == "pyreqwest")


def test_an_unknown_status_is_an_error() -> None:
    with raw_server(b"HTTP/1.1 599 Weird Thing\r\nContent-Length: 0\r\n\r\n") as base:
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "error"
    assert result.http_status == 599
    # httpx's transport keeps the server's phrase ("HTTP 599 Weird Thing"); pyreqwest's
    # hands over none for a status it does not know.
    assert_one_line(result.error, "HTTP 599")


def test_a_port_out_of_range_is_an_error_with_a_reason() -> None:
    result = fetch_one("http://127.0.0.1:99999/feed.xml")

    assert result.status == "error"
    assert result.error is not None
    assert "port" in result.error
    assert_one_line(result.error, "")


# -- TLS and proxies --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a certificate it signed for 127.0.0.1 (made with the openssl
    command): ``ca.pem``, ``leaf.pem``, ``leaf.key``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (folder / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    ca = ["-subj", "/CN=newsletter test CA", "-addext", "basicConstraints=critical,CA:TRUE"]
    ca += ["-addext", "keyUsage=critical,keyCertSign"]
    signed = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "leaf.ext"]
    steps = [
        ["req", "-x509", *ec, *ca, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        ["req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "leaf.csr", *signed, "-out", "leaf.pem", "-days", "2"],
    ]
    try:
        for step in steps:
            subprocess.run([openssl, *step], cwd=folder, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"openssl could not make test certificates: {exc.stderr!r}")
    return folder


def server_tls(tls_files: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "leaf.pem", tls_files / "leaf.key")
    return context


def test_https_to_a_trusted_server(
    tls_files: Path, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if transport == "pyreqwest" and sys.platform != "linux":
        pytest.skip("reqwest reads SSL_CERT_FILE on Linux; elsewhere it asks the OS")
    # Both transports add the CA in SSL_CERT_FILE to what they trust.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files / "ca.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    with recording_server(wrap=server_tls(tls_files)) as (base, _):
        result = fetch_one(f"{base}/secure.xml")

    assert result.status == "ok", result.error
    assert result.body == b"/secure.xml"
    assert result.final_url == f"{base}/secure.xml"


def test_https_to_an_untrusted_server_is_refused(
    tls_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    with recording_server(wrap=server_tls(tls_files)) as (base, seen):
        result = fetch_one(f"{base}/secure.xml")

    assert result.status == "error"
    assert_one_line(result.error, "could not connect: ")
    assert seen == []


def test_https_to_a_plain_http_server_is_an_error() -> None:
    with recording_server() as (base, _):
        result = fetch_one(base.replace("http://", "https://") + "/feed.xml")

    assert result.status == "error"
    assert_one_line(result.error, "could not connect: ")


PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"]


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.usefixtures("no_proxy_settings")
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_proxy_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # The feed's own address is closed: only through the proxy can the fetch succeed.
    feed = f"http://127.0.0.1:{closed_port()}/feed.xml"
    with recording_server() as (proxy, seen):
        monkeypatch.setenv(variable, proxy)
        result = fetch_one(feed)

    assert result.status == "ok", result.error
    assert result.body == feed.encode()  # the proxy saw the absolute URL
    assert [target for target, _ in seen] == [feed]


@pytest.mark.usefixtures("no_proxy_settings")
def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server() as (proxy, through_proxy), recording_server() as (site, direct):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        result = fetch_one(f"{site}/feed.xml")

    assert result.status == "ok", result.error
    assert [target for target, _ in direct] == ["/feed.xml"]
    assert through_proxy == []


# -- size cap ---------------------------------------------------------------------------------


def test_oversized_body_with_content_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 2000)

    result = fetch_one(httpserver.url_for("/big"), FetchSettings(max_bytes=1000))

    assert result.status == "error"
    assert result.error == "body larger than 1 kB"
    assert result.body == b""


def test_oversized_streamed_body_is_cut_off_early(httpserver: HTTPServer) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        # 100 MB if nobody stopped reading.
        for _ in range(100_000):
            sent += 1
            yield b"y" * 1000

    httpserver.expect_request("/stream").respond_with_response(Response(endless()))

    result = fetch_one(httpserver.url_for("/stream"), FetchSettings(max_bytes=50_000))

    assert result.status == "error"
    assert result.error == "body larger than 50 kB"
    [(_, response)] = logged(httpserver, "/stream")
    assert "Content-Length" not in response.headers
    assert sent < 10_000  # the client hung up long before the end


def test_body_exactly_at_the_cap_is_ok(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/exact").respond_with_data(b"z" * 1000)

    result = fetch_one(httpserver.url_for("/exact"), FetchSettings(max_bytes=1000))

    assert result.status == "ok"
    assert len(result.body) == 1000


def test_gzip_bomb_is_capped_on_decoded_size(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})

    result = fetch_one(httpserver.url_for("/bomb"), FetchSettings(max_bytes=100_000))

    assert result.status == "error"
    assert result.error == "body larger than 100 kB"


# -- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize("codes", [(301,), (308,), (301, 308)], ids=["301", "308", "301-308"])
def test_permanent_redirects_set_new_url(httpserver: HTTPServer, codes: tuple[int, ...]) -> None:
    for i, code in enumerate(codes):
        httpserver.expect_request(f"/hop{i}").respond_with_data(
            b"", status=code, headers={"Location": f"/hop{i + 1}"}
        )
    final = f"/hop{len(codes)}"
    httpserver.expect_request(final).respond_with_data(b"moved here", headers={"ETag": '"m"'})

    result = fetch_one(httpserver.url_for("/hop0"))

    assert result.status == "ok"
    assert result.body == b"moved here"
    assert result.final_url == httpserver.url_for(final)
    assert result.new_url == httpserver.url_for(final)
    assert result.etag == '"m"'


@pytest.mark.parametrize("codes", [(302,), (307,), (301, 302)], ids=["302", "307", "301-302"])
def test_temporary_redirects_leave_new_url_unset(
    httpserver: HTTPServer, codes: tuple[int, ...]
) -> None:
    for i, code in enumerate(codes):
        httpserver.expect_request(f"/hop{i}").respond_with_data(
            b"", status=code, headers={"Location": f"/hop{i + 1}"}
        )
    final = f"/hop{len(codes)}"
    httpserver.expect_request(final).respond_with_data(b"visiting")

    result = fetch_one(httpserver.url_for("/hop0"))

    assert result.status == "ok"
    assert result.body == b"visiting"
    assert result.final_url == httpserver.url_for(final)
    assert result.new_url is None


def test_redirect_keeps_user_agent_and_validators(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        b"", status=301, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data(b"", status=304)

    result = fetch_one(httpserver.url_for("/old"), etag='"e"')

    assert result.status == "not_modified"
    assert result.new_url == httpserver.url_for("/new")
    [(request, _)] = logged(httpserver, "/new")
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert request.headers["If-None-Match"] == '"e"'


def test_too_many_redirects_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_data(
        b"", status=302, headers={"Location": "/loop"}
    )

    result = fetch_one(httpserver.url_for("/loop"), FetchSettings(max_redirects=3))

    assert result.status == "error"
    assert result.error == "too many redirects (more than 3)"
    assert len(logged(httpserver, "/loop")) == 4  # the first request and three redirects followed


@pytest.mark.parametrize(
    ("location", "final_path"),
    [
        ("b/feed.xml", "/a/b/feed.xml"),  # relative to the request's path
        ("../top.xml", "/top.xml"),
        ("/c/abs.xml", "/c/abs.xml"),
    ],
)
def test_relative_locations_resolve_against_the_request(
    httpserver: HTTPServer, location: str, final_path: str
) -> None:
    httpserver.expect_request("/a/start.xml").respond_with_data(
        b"", status=302, headers={"Location": location}
    )
    httpserver.expect_request(final_path).respond_with_data(b"<rss>moved</rss>")

    result = fetch_one(httpserver.url_for("/a/start.xml"))

    assert result.status == "ok" and result.body == b"<rss>moved</rss>"
    assert result.final_url == httpserver.url_for(final_path)
    assert result.new_url is None  # 302: temporary


def test_unusable_location_is_an_error_naming_it() -> None:
    reply = b"HTTP/1.1 301 Moved\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"
    with raw_server(reply) as base:
        result = fetch_one(f"{base}/bad")

    assert result.status == "error"
    assert result.error is not None and "location" in result.error.lower()


def test_redirect_to_a_local_file_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    httpserver.expect_request("/sneaky").respond_with_data(
        b"", status=302, headers={"Location": secret.as_uri()}
    )

    result = fetch_one(httpserver.url_for("/sneaky"))

    assert result.status == "error"
    assert result.body == b""


# -- local files ------------------------------------------------------------------------------


def test_file_url_and_plain_path(tmp_path: Path) -> None:
    feed = tmp_path / "my feed.xml"
    feed.write_bytes(b"<rss>local</rss>")

    by_url, by_path = fetch_all_sync(
        [FetchRequest("a", feed.as_uri()), FetchRequest("b", str(feed))]
    )

    for result in (by_url, by_path):
        assert result.status == "ok"
        assert result.body == b"<rss>local</rss>"
        assert result.content_type in ("application/xml", "text/xml")  # per the OS's table
    assert by_url.request.source == "a"
    assert by_path.request.source == "b"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.xml"

    by_url, by_path = fetch_all_sync(
        [FetchRequest("a", missing.as_uri()), FetchRequest("b", str(missing))]
    )

    for result in (by_url, by_path):
        assert result.status == "error"
        assert result.error == f"file not found: {missing}"


def test_directory_is_an_error(tmp_path: Path) -> None:
    result = fetch_one(str(tmp_path))

    assert result.status == "error"
    assert result.error == f"is a directory, not a file: {tmp_path}"


def test_oversized_file_is_an_error(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2001)

    result = fetch_one(str(big), FetchSettings(max_bytes=2000))

    assert result.status == "error"
    assert result.error == "body larger than 2 kB"


# -- many sources -----------------------------------------------------------------------------


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


def test_many_sources_respect_the_per_host_limit_and_keep_order(httpserver: HTTPServer) -> None:
    probe = ConcurrencyProbe(delay=0.05)
    for i in range(50):
        httpserver.expect_request(f"/feed/{i}").respond_with_handler(probe)
    requests = [FetchRequest(f"s{i}", httpserver.url_for(f"/feed/{i}")) for i in range(50)]
    seen: list[FetchResult] = []

    started = time.monotonic()
    results = fetch_all_sync(requests, FetchSettings(per_host=4, timeout=5), on_result=seen.append)
    elapsed = time.monotonic() - started

    assert [r.request for r in results] == requests
    assert [r.body for r in results] == [f"/feed/{i}".encode() for i in range(50)]
    assert all(r.status == "ok" for r in results)
    assert sorted(seen, key=lambda r: r.request.source) == sorted(
        results, key=lambda r: r.request.source
    )
    assert probe.peak == 4  # never more than per_host, and the limit is actually used
    assert elapsed < 50 * 0.05  # ran concurrently, not one after another


def test_global_limit_applies_across_hosts(httpserver: HTTPServer) -> None:
    probe = ConcurrencyProbe(delay=0.05)
    httpserver.expect_request("/g").respond_with_handler(probe)
    requests = [FetchRequest(f"s{i}", httpserver.url_for("/g")) for i in range(12)]

    results = fetch_all_sync(requests, FetchSettings(concurrency=2, per_host=8, timeout=5))

    assert all(r.status == "ok" for r in results)
    assert probe.peak == 2


def test_one_broken_source_does_not_stop_the_others(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/fine").respond_with_data(b"fine")
    httpserver.expect_request("/broken").respond_with_data(b"", status=500)
    requests = [
        FetchRequest("refused", f"http://127.0.0.1:{closed_port()}/"),
        FetchRequest("broken", httpserver.url_for("/broken")),
        FetchRequest("missing", str(tmp_path / "missing.xml")),
        FetchRequest("bad-url", "http://[not a host/"),
        FetchRequest("fine", httpserver.url_for("/fine")),
    ]

    results = fetch_all_sync(requests, FAST)

    assert [r.status for r in results] == ["error", "error", "error", "error", "ok"]
    assert all(r.error for r in results[:4])
    assert results[-1].body == b"fine"


def test_broken_responses_do_not_stop_the_others(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fine").respond_with_data(b"fine")
    with (
        raw_server(b"\x00 garbage\r\n\r\n") as garbage,
        raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort") as short,
        raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Note: \xe9\r\n\r\nok") as odd,
        socket.create_server(("127.0.0.1", 0)) as silent,
    ):
        requests = [
            FetchRequest("garbage", f"{garbage}/"),
            FetchRequest("short", f"{short}/"),
            FetchRequest("silent", f"http://127.0.0.1:{silent.getsockname()[1]}/"),
            FetchRequest("odd", f"{odd}/"),
            FetchRequest("fine", httpserver.url_for("/fine")),
        ]
        results = fetch_all_sync(requests, FetchSettings(timeout=0.3))

    assert [r.status for r in results] == ["error", "error", "error", "ok", "ok"]
    assert results[2].error == "timed out after 0.3s"
    assert [r.body for r in results[3:]] == [b"ok", b"fine"]


def test_the_last_request_to_a_site_asks_to_close_the_connection() -> None:
    # Nothing would reuse that connection; reqwest would keep it open until the run ends.
    with recording_server() as (base, seen), recording_server() as (other, other_seen):
        requests = [FetchRequest(f"s{i}", f"{base}/f{i}.xml") for i in range(3)]
        requests.append(FetchRequest("other", f"{other}/only.xml"))
        results = fetch_all_sync(requests, FetchSettings(per_host=1, timeout=5.0))

    assert [r.status for r in results] == ["ok"] * 4
    # per_host=1: one after the other, in order; only the last one says close.
    assert seen == [("/f0.xml", "keep-alive"), ("/f1.xml", "keep-alive"), ("/f2.xml", "close")]
    assert other_seen == [("/only.xml", "close")]


def test_empty_request_list() -> None:
    assert fetch_all_sync([]) == []


def test_a_given_client_is_used_and_left_open(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/c").respond_with_data(b"c")

    async def go() -> tuple[list[FetchResult], bool]:
        async with httpx.AsyncClient() as client:
            results = await fetch_all([FetchRequest("c", httpserver.url_for("/c"))], client=client)
            return results, client.is_closed

    results, closed = asyncio.run(go())

    assert results[0].status == "ok"
    assert not closed
    [(request, _)] = logged(httpserver, "/c")
    assert request.headers["User-Agent"] == DEFAULT_USER_AGENT


def test_an_error_in_on_result_propagates(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_data(b"p")
    httpserver.expect_request("/p-slow").respond_with_handler(ConcurrencyProbe(delay=0.3))
    requests = [FetchRequest("p", httpserver.url_for("/p"))]
    requests += [FetchRequest(f"slow{i}", httpserver.url_for("/p-slow")) for i in range(3)]

    def boom(result: FetchResult) -> None:
        raise RuntimeError("progress display broke")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="progress display broke"):
        fetch_all_sync(requests, on_result=boom)
    assert time.monotonic() - started < 0.3  # the slow fetches were cancelled, not awaited


# -- pure helpers -----------------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", NOW),
        (" 90 ", NOW + timedelta(seconds=90)),
        ("Fri, 31 Dec 2027 23:59:59 GMT", datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("Fri, 31 Dec 2027 23:59:59 -0000", datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("Sat, 01 Jan 2028 01:59:59 +0200", datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
    ids=["zero", "seconds", "gmt", "minus-zero", "offset", "garbage", "negative", "empty", "none"],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("n", "text"),
    [(10_000_000, "10 MB"), (2_500_000, "2.5 MB"), (1000, "1 kB"), (999, "999 bytes")],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="per_host"):
        FetchSettings(per_host=0)
    with pytest.raises(ValueError, match="timeout"):
        FetchSettings(timeout=0)


def test_not_modified_responses_keep_the_connection_open() -> None:
    """A warm run (every source answers 304) reuses its keep-alive connections instead
    of opening one per source."""
    import http.server
    import threading

    ports: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            ports.append(self.client_address[1])
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<rss/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        requests = [FetchRequest(f"s{i}", f"{base}/f{i}.xml", etag='"v1"') for i in range(20)]
        results = fetch_all_sync(requests, FetchSettings(timeout=5.0, per_host=2))
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.status for r in results] == ["not_modified"] * 20
    assert len(ports) == 20
    assert len(set(ports)) <= 2, f"{len(set(ports))} connections for 20 requests"
