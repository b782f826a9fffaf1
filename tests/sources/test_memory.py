"""MemoryFetcher: a Fetcher answering from a dict of URLs, through the same code as
HttpFetcher (statuses, validators, redirects, size cap), without a network."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path

from newsletter.config import DEFAULT_USER_AGENT, FetchConfig
from newsletter.sources.fetch import Fetcher, FetchRequest, FetchResult
from newsletter.sources.memory import MemoryFetcher, MemoryResponse

FEED = "https://example.org/feed.xml"


def fetch(fetcher: Fetcher, *requests: FetchRequest) -> list[FetchResult]:
    return asyncio.run(fetcher.fetch(list(requests)))


def test_a_body_is_served_200() -> None:
    fetcher = MemoryFetcher({FEED: b"<rss/>"})

    [result] = fetch(fetcher, FetchRequest("a", FEED))

    assert result.status == "ok"
    assert result.body == b"<rss/>"
    assert result.http_status == 200
    assert result.final_url == FEED


def test_an_unknown_url_is_404() -> None:
    [result] = fetch(MemoryFetcher(), FetchRequest("a", FEED))

    assert result.status == "error"
    assert result.error == "HTTP 404 Not Found"


def test_validators_give_304_like_a_server() -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Sat, 28 Nov 2026 06:00:00 GMT"}
    fetcher = MemoryFetcher({FEED: MemoryResponse(b"<rss/>", headers=headers)})

    [cold] = fetch(fetcher, FetchRequest("a", FEED))
    [by_etag] = fetch(fetcher, FetchRequest("a", FEED, etag=cold.etag))
    [by_date] = fetch(fetcher, FetchRequest("a", FEED, last_modified=cold.last_modified))
    [stale] = fetch(fetcher, FetchRequest("a", FEED, etag='"v0"'))

    assert (cold.status, cold.etag, cold.last_modified) == ("ok", '"v1"', headers["Last-Modified"])
    assert by_etag.status == by_date.status == "not_modified"
    assert by_etag.body == b""
    assert stale.status == "ok"  # If-None-Match wins, and it does not match
    sent = [r.headers.get("If-None-Match") for r in fetcher.requests]
    assert sent == [None, '"v1"', None, '"v0"']
    assert all(r.headers["User-Agent"] == DEFAULT_USER_AGENT for r in fetcher.requests)


def test_statuses_redirects_and_encodings_are_read_as_from_a_server() -> None:
    routes = {
        "https://a.test/gone": MemoryResponse(status=410),
        "https://a.test/busy": MemoryResponse(status=429, headers={"Retry-After": "60"}),
        "https://a.test/old": MemoryResponse(status=301, headers={"Location": "/new"}),
        "https://a.test/new": b"moved",
        "https://a.test/gz": MemoryResponse(
            gzip.compress(b"<feed/>"), headers={"Content-Encoding": "gzip"}
        ),
        "https://a.test/big": b"x" * 5000,
    }
    fetcher = MemoryFetcher(routes, FetchConfig(max_bytes=2000))
    before = datetime.now(UTC)

    gone, busy, old, gz, big = fetch(
        fetcher,
        *(FetchRequest(p, f"https://a.test/{p}") for p in ("gone", "busy", "old", "gz", "big")),
    )

    assert gone.status == "gone"
    assert busy.status == "retry_later" and busy.retry_after is not None
    assert busy.retry_after >= before
    assert (old.status, old.body, old.new_url) == ("ok", b"moved", "https://a.test/new")
    assert gz.body == b"<feed/>"
    assert big.error == "body larger than 2 kB"


def test_routes_can_change_between_batches() -> None:
    fetcher = MemoryFetcher({FEED: b"one"})
    [first] = fetch(fetcher, FetchRequest("a", FEED))
    fetcher.routes[FEED] = MemoryResponse(status=503)
    [second] = fetch(fetcher, FetchRequest("a", FEED))

    assert (first.status, second.status) == ("ok", "retry_later")
    assert fetcher.clients_made == 1


def test_local_files_are_still_read_from_disk(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss>local</rss>")

    [result] = fetch(MemoryFetcher(), FetchRequest("f", str(feed)))

    assert (result.status, result.body) == ("ok", b"<rss>local</rss>")
