"""fetch: concurrent, polite, conditional fetching, tested against a real local HTTP server
(pytest-httpserver on a port the kernel picked, or a raw socket server): one request at a
time, HTTP statuses, timeouts, size caps, redirects and local files. Broken servers, TLS
and proxies are in test_fetch_network.py, batches and fetchers in test_fetch_batch.py."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import DEFAULT_USER_AGENT, FetchConfig
from newsletter.sources.fetch import format_size, parse_retry_after
from tests.sources.servers import closed_port, fetch_one, logged, raw_server

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
    fetch_one(httpserver.url_for("/ua"), FetchConfig(user_agent="custom/1.0"))

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

    result = fetch_one(httpserver.url_for("/slow"), FetchConfig(timeout=0.3))

    assert result.status == "error"
    assert result.error == "timed out after 0.3s"


def test_timeout_covers_a_body_that_trickles(httpserver: HTTPServer) -> None:
    # Each chunk arrives well within the timeout, but the whole body does not.
    def trickle() -> Iterator[bytes]:
        for _ in range(20):
            time.sleep(0.1)
            yield b"x"

    httpserver.expect_request("/trickle").respond_with_response(Response(trickle()))

    result = fetch_one(httpserver.url_for("/trickle"), FetchConfig(timeout=0.5))

    assert result.status == "error"
    assert result.error == "timed out after 0.5s"


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
        result = fetch_one(f"http://127.0.0.1:{port}/feed", FetchConfig(timeout=0.3))

    assert result.status == "error"
    assert result.error == "timed out after 0.3s"


# -- size cap ---------------------------------------------------------------------------------


def test_oversized_body_with_content_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 4000)

    result = fetch_one(httpserver.url_for("/big"), FetchConfig(max_bytes=2000))

    assert result.status == "error"
    assert result.error == "body larger than 2 kB"
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

    result = fetch_one(httpserver.url_for("/stream"), FetchConfig(max_bytes=50_000))

    assert result.status == "error"
    assert result.error == "body larger than 50 kB"
    [(_, response)] = logged(httpserver, "/stream")
    assert "Content-Length" not in response.headers
    assert sent < 10_000  # the client hung up long before the end


def test_body_exactly_at_the_cap_is_ok(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/exact").respond_with_data(b"z" * 2000)

    result = fetch_one(httpserver.url_for("/exact"), FetchConfig(max_bytes=2000))

    assert result.status == "ok"
    assert len(result.body) == 2000


def test_gzip_bomb_is_capped_on_decoded_size(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})

    result = fetch_one(httpserver.url_for("/bomb"), FetchConfig(max_bytes=100_000))

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

    result = fetch_one(httpserver.url_for("/loop"), FetchConfig(max_redirects=3))

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
    # FetchConfig is the validated model the config file is read into.
    with pytest.raises(ValueError, match="per_host"):
        FetchConfig(per_host=0)
    with pytest.raises(ValueError, match="timeout"):
        FetchConfig(timeout=0)
    with pytest.raises(ValueError, match="max_redirects"):
        FetchConfig(max_redirects=-1)
