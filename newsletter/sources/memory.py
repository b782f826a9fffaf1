"""``MemoryFetcher``: a ``Fetcher`` that answers from a dict of URLs instead of the network.

For tests and for users (a dry run, a demo, a source kept in memory), the way httpx's
``MockTransport`` is for httpx: requests go through the very code ``HttpFetcher`` runs
(redirects, size cap, statuses, validators), only the answers come from ``routes``::

    fetcher = MemoryFetcher({
        "https://example.org/feed.xml": b"<rss>...</rss>",
        "https://example.org/old.xml": MemoryResponse(
            status=301, headers={"Location": "/feed.xml"}
        ),
        "https://example.org/gone.xml": MemoryResponse(status=410),
    })
    results = await fetcher.fetch([FetchRequest("a", "https://example.org/feed.xml")])

A URL that is not in ``routes`` answers ``404``. A ``200`` route with an ``ETag`` or a
``Last-Modified`` header answers ``304`` to a request that sends the same validator, as a
server would. ``routes`` can be changed between batches; ``requests`` lists every request
received, in order. ``file://`` URLs and plain paths are still read from disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from newsletter.config import FetchConfig
from newsletter.sources.fetch import HttpFetcher


@dataclass(frozen=True)
class MemoryResponse:
    """One canned answer: a status, headers and a body."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Route = bytes | MemoryResponse
"""A route's answer: a body (served ``200``) or a whole response."""


class MemoryFetcher(HttpFetcher):
    """``HttpFetcher`` whose HTTP answers come from ``routes`` (URL -> answer)."""

    def __init__(
        self, routes: Mapping[str, Route] | None = None, config: FetchConfig | None = None
    ) -> None:
        super().__init__(config)
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[httpx.Request] = []
        """Every request received, in order (headers included)."""

    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.MockTransport(self._answer),
            headers={"User-Agent": self.config.user_agent},
            follow_redirects=False,
        )

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(str(request.url))
        if route is None:
            return httpx.Response(404, content=b"not found")
        answer = route if isinstance(route, MemoryResponse) else MemoryResponse(route)
        headers = dict(answer.headers)
        if answer.status == 200 and _not_modified(request.headers, headers):
            kept = {k: v for k, v in headers.items() if k.lower() in ("etag", "last-modified")}
            return httpx.Response(304, headers=kept)
        return httpx.Response(answer.status, headers=headers, content=answer.body)


def _not_modified(asked: httpx.Headers, headers: Mapping[str, str]) -> bool:
    """Whether the request's validators match the route's (If-None-Match wins)."""
    have = httpx.Headers(headers)
    etag = have.get("ETag")
    if "If-None-Match" in asked:
        tags = {t.strip() for t in asked["If-None-Match"].split(",")}
        return etag is not None and (etag in tags or "*" in tags)
    modified = have.get("Last-Modified")
    return modified is not None and asked.get("If-Modified-Since") == modified


__all__ = ["MemoryFetcher", "MemoryResponse", "Route"]
