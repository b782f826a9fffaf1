"""fetch: the HttpFetcher's client (made on first use, once, closed by aclose; a given one
left open), local files (read without any HTTP client), and the one-line reasons
exceptions become."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from newsletter.config import FetchConfig
from newsletter.sources.fetch import FetchRequest, HttpFetcher, _exception_reason, fetch_all_sync
from tests.sources.servers import fetch_one

SETTINGS = FetchConfig(timeout=2.0)


# -- the client -------------------------------------------------------------------------------


def test_one_client_serves_every_batch_until_closed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(b"a")
    request = FetchRequest("a", httpserver.url_for("/a"))

    async def go() -> tuple[list[object], int, bool]:
        fetcher = HttpFetcher(SETTINGS)
        first = await fetcher.fetch([request])
        client = fetcher.client
        second = await fetcher.fetch([request])
        same = fetcher.client is client
        await fetcher.aclose()
        assert client.is_closed
        return [r.status for r in first + second], fetcher.clients_made, same

    statuses, made, same = asyncio.run(go())

    assert statuses == ["ok", "ok"]
    assert made == 1 and same


def test_the_client_uses_httpx_own_transport() -> None:
    async def go() -> httpx.AsyncBaseTransport:
        async with HttpFetcher(SETTINGS) as fetcher:
            transport: httpx.AsyncBaseTransport = fetcher.client._transport
            return transport

    assert isinstance(asyncio.run(go()), httpx.AsyncHTTPTransport)


def test_fetch_reads_its_limits_from_fetch_config(httpserver: HTTPServer) -> None:
    # The validated model from the config file is what fetching reads, nothing else.
    httpserver.expect_request("/ua").respond_with_data(b"x" * 5000)
    config = FetchConfig(user_agent="configured/2.0", max_bytes=4096, timeout=3)

    result = fetch_one(httpserver.url_for("/ua"), config)

    assert result.error == "body larger than 4.096 kB"
    [(request, _)] = [(q, r) for q, r in httpserver.log if q.path == "/ua"]
    assert request.headers["User-Agent"] == "configured/2.0"


def test_a_batch_of_local_files_makes_no_client(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")

    async def go() -> tuple[str, int]:
        async with HttpFetcher() as fetcher:
            [result] = await fetcher.fetch([FetchRequest("f", str(feed))])
            return result.status, fetcher.clients_made

    assert asyncio.run(go()) == ("ok", 0)


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

    result = fetch_one(str(big), FetchConfig(max_bytes=2000))

    assert result.status == "error"
    assert result.error == "body larger than 2 kB"


# -- reasons ----------------------------------------------------------------------------------


def test_a_group_of_one_is_unwrapped() -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port 0-65535")])

    assert _exception_reason(group, SETTINGS) == "OverflowError: port 0-65535"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectError("nope"), "could not connect: nope"),
        (httpx.ReadTimeout("slow"), "timed out after 2s"),
        (TimeoutError(), "timed out after 2s"),
        (httpx.RemoteProtocolError("cut"), "the server broke the connection: cut"),
        (RuntimeError("x" * 1000), "RuntimeError: " + "x" * 186),
    ],
    ids=["connect", "httpx-timeout", "timeout", "protocol", "long"],
)
def test_exceptions_become_one_line_reasons(exc: BaseException, reason: str) -> None:
    assert _exception_reason(exc, SETTINGS) == reason
