"""fetch in batches: limits per host and in all, order, one failure among many, kept-alive
connections, a given client, errors from on_result; real local servers throughout."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import DEFAULT_USER_AGENT, FetchConfig
from newsletter.sources.fetch import FetchRequest, FetchResult, fetch_all, fetch_all_sync
from tests.sources.servers import (
    FAST,
    ConcurrencyProbe,
    closed_port,
    logged,
    raw_server,
    recording_server,
)


def test_many_sources_respect_the_per_host_limit_and_keep_order(httpserver: HTTPServer) -> None:
    probe = ConcurrencyProbe(delay=0.05)
    for i in range(50):
        httpserver.expect_request(f"/feed/{i}").respond_with_handler(probe)
    requests = [FetchRequest(f"s{i}", httpserver.url_for(f"/feed/{i}")) for i in range(50)]
    seen: list[FetchResult] = []

    results = fetch_all_sync(requests, FetchConfig(per_host=4, timeout=5), on_result=seen.append)

    assert [r.request for r in results] == requests
    assert [r.body for r in results] == [f"/feed/{i}".encode() for i in range(50)]
    assert all(r.status == "ok" for r in results)
    assert sorted(seen, key=lambda r: r.request.source) == sorted(
        results, key=lambda r: r.request.source
    )
    # Never more than per_host at once, and the limit is actually used: concurrent, not
    # one request after another.
    assert probe.peak == 4


def test_global_limit_applies_across_hosts(httpserver: HTTPServer) -> None:
    probe = ConcurrencyProbe(delay=0.05)
    httpserver.expect_request("/g").respond_with_handler(probe)
    requests = [FetchRequest(f"s{i}", httpserver.url_for("/g")) for i in range(12)]

    results = fetch_all_sync(requests, FetchConfig(concurrency=2, per_host=8, timeout=5))

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
        results = fetch_all_sync(requests, FetchConfig(timeout=0.3))

    assert [r.status for r in results] == ["error", "error", "error", "ok", "ok"]
    assert results[2].error == "timed out after 0.3s"
    assert [r.body for r in results[3:]] == [b"ok", b"fine"]


def test_the_last_request_to_a_site_asks_to_close_the_connection() -> None:
    # Nothing in the batch would reuse that connection: it is not left idle in the pool.
    with recording_server() as (base, seen), recording_server() as (other, other_seen):
        requests = [FetchRequest(f"s{i}", f"{base}/f{i}.xml") for i in range(3)]
        requests.append(FetchRequest("other", f"{other}/only.xml"))
        results = fetch_all_sync(requests, FetchConfig(per_host=1, timeout=5.0))

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
    release = threading.Event()
    answered: list[str] = []

    def held(request: Request) -> Response:
        release.wait(timeout=30)  # a hang guard: released as soon as the test has looked
        answered.append(request.path)
        return Response(b"late")

    httpserver.expect_request("/p-slow").respond_with_handler(held)
    requests = [FetchRequest("p", httpserver.url_for("/p"))]
    requests += [FetchRequest(f"slow{i}", httpserver.url_for("/p-slow")) for i in range(3)]

    def boom(result: FetchResult) -> None:
        raise RuntimeError("progress display broke")

    try:
        with pytest.raises(RuntimeError, match="progress display broke"):
            fetch_all_sync(requests, on_result=boom, config=FetchConfig(timeout=60))
        # The error came back before the server answered any slow request: they were
        # cancelled, not awaited (awaiting them would have waited for their answers).
        assert answered == []
    finally:
        release.set()


def test_not_modified_responses_keep_the_connection_open() -> None:
    """A warm run (every source answers 304) reuses its keep-alive connections instead
    of opening one per source."""

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
        results = fetch_all_sync(requests, FetchConfig(timeout=5.0, per_host=2))
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.status for r in results] == ["not_modified"] * 20
    assert len(ports) == 20
    assert len(set(ports)) <= 2, f"{len(set(ports))} connections for 20 requests"
