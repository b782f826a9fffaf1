"""Past editions as web pages and as a feed of editions (RSS 2.0 / Atom, with feedgen).

Pure: the caller passes the editions and their digests in. An edition's page is its
digest rebuilt from the entries recorded with it (``services.editions.edition_digest``:
built with the edition's own creation time, so it reads the same every time), rendered
with ``web/edition.html.j2``: every story of the edition, with the cards the email
shows for its highlights. The feed has one item per edition: the edition's full HTML, a
guid that is the edition's archive URL (stable forever), and the edition's date.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import jinja2
from feedgen.feed import FeedGenerator

from newsletter.models import Digest, Edition
from newsletter.render.digest import digest_context
from newsletter.render.feeds import feed_bytes, strip_xml_illegal
from newsletter.render.mail_layout import plan_layout
from newsletter.render.templates import render_template

FeedFormat = Literal["rss", "atom"]
EDITION_TEMPLATE = "web/edition.html.j2"
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What the feed says about itself (from the digest's configuration)."""

    name: str
    title: str
    description: str = ""
    base_url: str = "http://127.0.0.1:8025"
    author: str = ""
    """The feed's author (the digest's from name); the title when empty."""


@dataclass(frozen=True, slots=True)
class ArchivedEdition:
    """One edition ready to show: the stored edition, its digest and its HTML page."""

    edition: Edition
    digest: Digest
    html: str

    @property
    def fragment(self) -> str:
        """The page's ``<body>`` content (what a feed item carries)."""
        return body_of(self.html)


def edition_path(digest: str, period: str) -> str:
    """``/archive/<digest>/<period>`` (URL-quoted)."""
    return f"/archive/{quote(digest, safe='')}/{quote(period, safe='')}"


def edition_url(base_url: str, digest: str, period: str) -> str:
    """The absolute URL of an edition's page: also its feed guid, so it never changes."""
    return base_url.rstrip("/") + edition_path(digest, period)


def feed_path(digest: str, fmt: FeedFormat) -> str:
    """``/<digest>/feed.xml`` (RSS 2.0) or ``/<digest>/atom.xml``."""
    return f"/{quote(digest, safe='')}/{'feed' if fmt == 'rss' else 'atom'}.xml"


def edition_html(digest: Digest, *, env: jinja2.Environment, highlights: int = 3) -> str:
    """The web edition of a digest: every story in it, the ``highlights`` best in full at
    the top (as the email has them), then each section's others as cards."""
    layout = plan_layout(digest, highlights=highlights, screens=math.inf, max_items=1 << 30)
    context = digest_context(
        digest, highlights=layout.highlights, compact=layout.sections, left_out=0
    )
    return render_template(env, EDITION_TEMPLATE, context)


def archive_page(
    edition: Edition, digest: Digest, *, env: jinja2.Environment, highlights: int = 3
) -> ArchivedEdition:
    """An edition's page: its full digest (``services.editions.archived_edition``: every
    story of the edition, not only what an email had room for) as ``edition_html``."""
    return ArchivedEdition(edition, digest, edition_html(digest, env=env, highlights=highlights))


def body_of(page: str) -> str:
    """The content of ``<body>`` of an HTML page (the whole text when there is none)."""
    m = _BODY.search(page)
    return (m.group(1) if m else page).strip()


def editions_feed(meta: FeedMeta, editions: Sequence[ArchivedEdition], fmt: FeedFormat) -> bytes:
    """The feed of a digest's editions, newest first: one item per edition with its full
    HTML, the edition's archive URL as a permanent guid, and its creation date."""
    base = meta.base_url.rstrip("/")
    index_url = f"{base}/archive/{quote(meta.name, safe='')}/"
    fg = FeedGenerator()
    if fmt == "rss":
        fg.load_extension("dc", atom=False, rss=True)
    fg.id(index_url)
    fg.title(strip_xml_illegal(meta.title) or meta.name)
    author = strip_xml_illegal(meta.author).strip() or strip_xml_illegal(meta.title) or meta.name
    fg.author(name=author)
    # feedgen gives RSS the last link added: the alternate one must come last.
    fg.link(href=base + feed_path(meta.name, fmt), rel="self")
    fg.link(href=index_url, rel="alternate")
    description = strip_xml_illegal(meta.description) or strip_xml_illegal(meta.title)
    fg.description(description or meta.name)
    fg.subtitle(description or meta.name)
    fg.language("en")
    fg.generator("newsletter")
    ordered = sorted(editions, key=lambda a: (a.edition.created_at, a.edition.id), reverse=True)
    if ordered:
        fg.updated(ordered[0].edition.created_at)
        fg.lastBuildDate(ordered[0].edition.created_at)
    # feedgen prepends each new entry: add oldest first so the newest ends up on top.
    for item in reversed(ordered):
        e = item.edition
        url = edition_url(base, e.digest, e.period)
        fe = fg.add_entry()
        fe.id(url)
        fe.guid(url, permalink=True)
        title = strip_xml_illegal(e.title or meta.title or meta.name)
        fe.title(f"{title} — {e.period}")
        fe.link(href=url)
        fe.published(e.created_at)
        fe.updated(e.created_at)
        if fmt == "rss":
            fe.dc.dc_creator(author)  # RSS's own <author> must be an email address
        count = item.digest.item_count
        fe.description(f"{count} item{'s' if count != 1 else ''} ({e.period})")
        # Escaped rather than CDATA: a "]]>" in an entry cannot break the feed.
        fe.content(strip_xml_illegal(item.fragment), type="html")
    return feed_bytes(fg, fmt, what=meta.name)


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One line of the archive index."""

    digest: str
    title: str
    period: str
    path: str
    created_at: Any


def archive_index(
    editions: Sequence[Edition], titles: Mapping[str, str]
) -> list[tuple[str, str, list[IndexRow]]]:
    """Editions grouped by digest for the index page: ``(name, title, rows)`` in the
    order of ``titles`` (the configured digests), newest edition first; editions of
    digests no longer configured are left out."""
    groups: list[tuple[str, str, list[IndexRow]]] = []
    for name, title in titles.items():
        rows = [
            IndexRow(
                e.digest, e.title or title, e.period, edition_path(e.digest, e.period), e.created_at
            )
            for e in sorted(
                (x for x in editions if x.digest == name),
                key=lambda x: (x.created_at, x.id),
                reverse=True,
            )
        ]
        groups.append((name, title, rows))
    return groups


__all__ = [
    "ArchivedEdition",
    "FeedMeta",
    "IndexRow",
    "archive_index",
    "archive_page",
    "body_of",
    "edition_html",
    "edition_path",
    "edition_url",
    "editions_feed",
    "feed_path",
]
