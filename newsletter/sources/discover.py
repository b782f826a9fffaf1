"""Feed autodiscovery: from a site's address to its feed, as feed readers do.

``discover_feed(url)`` fetches the URL; a feed is returned as it is; an HTML page is
searched for ``<link rel="alternate" type="application/rss+xml">`` (Atom, JSON Feed
too), then the common feed paths of its site are tried (``/feed``, ``/rss.xml``,
``/atom.xml``, ``/index.xml``...). ``feed_links`` and ``looks_like_feed`` are pure.
Paths and ``file://`` URLs are returned unchanged: there is nothing to discover.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from newsletter.errors import SourceError

if TYPE_CHECKING:
    import httpx

    from newsletter.config import FetchConfig

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
    "text/xml",
    "application/xml",
)
"""``type`` values of a ``<link rel="alternate">`` that point to a feed, best first."""

COMMON_PATHS = (
    "/feed",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.xml",
    "/rss",
    "/feed.json",
)
"""Where sites without a ``<link>`` usually keep their feed (tried in order)."""

_PEEK = 2048


@dataclass(frozen=True)
class Discovery:
    """A feed found for ``url``: ``feed_url`` and how (``feed``, ``link``, ``path``)."""

    url: str
    feed_url: str
    how: str
    title: str = ""


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        if tag != "link":
            return
        rels = a.get("rel", "").lower().split()
        kind = a.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and a.get("href"):
            self.links.append((kind, a["href"].strip(), a.get("title", "")))


def feed_links(html: str, base_url: str) -> list[tuple[str, str]]:
    """The feeds an HTML page announces, as (absolute URL, title), RSS/Atom first."""
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    base = urljoin(base_url, parser.base) if parser.base else base_url
    ranked = sorted(parser.links, key=lambda link: FEED_TYPES.index(link[0]))
    seen: dict[str, str] = {}
    for _, href, title in ranked:
        seen.setdefault(urljoin(base, href), title)
    return list(seen.items())


def looks_like_feed(body: bytes, content_type: str = "") -> bool:
    """Whether a response is a feed (RSS, Atom, RDF, JSON Feed or a JSON list), not a page."""
    kind = content_type.lower().split(";")[0].strip()
    head = body[:_PEEK].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if kind in ("text/html", "application/xhtml+xml") or head.startswith(
        (b"<!doctype html", b"<html")
    ):
        return False
    if head.startswith((b"{", b"[")):
        return True
    return any(tag in head for tag in (b"<rss", b"<feed", b"<rdf:rdf", b"<channel"))


def discover_feed(
    url: str, config: FetchConfig, *, client: httpx.Client | None = None
) -> Discovery:
    """The feed of ``url`` (a feed URL, or a site's page). ``SourceError`` when none is
    found or the page cannot be fetched."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        return Discovery(url, url, "feed")
    import httpx

    own = client is None
    http = client or httpx.Client(
        headers={"User-Agent": config.user_agent},
        timeout=config.timeout,
        follow_redirects=True,
        max_redirects=config.max_redirects,
    )
    try:
        try:
            response = http.get(url)
        except httpx.HTTPError as exc:
            raise SourceError(url, f"cannot be fetched ({exc})") from None
        if response.status_code >= 400:
            raise SourceError(url, f"HTTP {response.status_code}")
        final = str(response.url)
        body = response.content[: config.max_bytes]
        if looks_like_feed(body, response.headers.get("content-type", "")):
            return Discovery(url, final, "feed")
        links = feed_links(body.decode(response.encoding or "utf-8", "replace"), final)
        if links:
            return Discovery(url, links[0][0], "link", links[0][1])
        root = urljoin(final, "/")
        for path in COMMON_PATHS:
            candidate = urljoin(root, path.lstrip("/"))
            try:
                r = http.get(candidate)
            except httpx.HTTPError:
                continue
            if r.status_code < 400 and looks_like_feed(
                r.content[:_PEEK], r.headers.get("content-type", "")
            ):
                return Discovery(url, str(r.url), "path")
    finally:
        if own:
            http.close()
    raise SourceError(
        url,
        'is not a feed, names no feed in a <link rel="alternate">, and none of '
        + ", ".join(COMMON_PATHS)
        + " is one",
    )


__all__ = ["COMMON_PATHS", "Discovery", "discover_feed", "feed_links", "looks_like_feed"]
