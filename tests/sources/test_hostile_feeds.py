"""Issue 11: hostile feed bodies, through the whole pipeline (Hypothesis).

Random and hostile RSS, Atom and JSON Feed bodies (fields built from adversarial pieces:
unclosed tags, runs of periods, deep nesting, script links in any case, entities, long
words) are parsed, turned into a digest and rendered in every format. Nothing may raise
but ``ParseError``; every link that survives is http(s); no rendering carries a
``javascript:`` or ``data:`` link. Time is bounded only by a generous hang guard
(``HANG_GUARD``), never by a wall-clock assertion on speed.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import DigestConfig
from newsletter.errors import ParseError
from newsletter.models import Entry
from newsletter.render.digest import FORMATS, render_digest
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from tests.support import HANG_GUARD

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
HOSTILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = [
    "<", "<a href='", "<div>", "<b><i>", "</p>", "<!--", "<script>", "]]>", "&amp;", "&#x26;",
    "&lt;script&gt;", ". ", "...", "J. ", "e.g. ", "**", "`", "![", "[", "](", " ", "\n",
    "javascript:alert(1)", " JaVaScRiPt:x", "data:text/html,x", "\x01", "\u2028", "é", "𝔸",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Update", "https://example.org/x?utm_source=y",
]  # fmt: skip
hostile_text = st.builds(
    lambda parts, repeat: "".join(parts) * repeat,
    st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=12),
    st.integers(min_value=1, max_value=4000),
)
links = st.sampled_from(
    ["javascript:alert(1)", "  JAVASCRIPT:alert(1)", "\x01javascript:x", "data:text/html,x",
     "vbscript:x", "file:///etc/passwd", "//evil.example/x", "/relative", "https://ok.example/a",
     "mailto:a@b.c", ""]
)  # fmt: skip


UNSAFE_LINK = re.compile(
    r"(?<!\\)<[a-z][^<>]*\b(?:href|src)\s*=\s*[\"']?\s*(?:javascript|data|vbscript):"
    r"|\]\(\s*<?\s*(?:javascript|data|vbscript):"
)
"""A script or data link that a reader could follow: in an (unescaped) HTML tag, or as
the target of a Markdown link."""


def _xml(value: str, raw: bool) -> str:
    return value if raw else escape(value)


def rss(title: str, text: str, link: str, raw: bool) -> bytes:
    items = "".join(
        f"<item><title>{_xml(title, raw)} {i}</title><link>{escape(link)}</link>"
        f"<guid>{i}</guid><description>{_xml(text, raw)}</description></item>"
        for i in range(3)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode("utf-8", "surrogatepass")


def atom(title: str, text: str, link: str, raw: bool) -> bytes:
    entries = "".join(
        f"<entry><title type='html'>{_xml(title, raw)} {i}</title>"
        f'<link href="{escape(link, {chr(34): "&quot;"})}"/><id>urn:x:{i}</id>'
        f'<updated>2026-11-30T10:00:00Z</updated><content type="html">{_xml(text, raw)}'
        "</content></entry>"
        for i in range(3)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>t</title>{entries}</feed>"
    ).encode("utf-8", "surrogatepass")


def json_feed(title: str, text: str, link: str, raw: bool) -> bytes:
    items = [
        {"id": str(i), "title": f"{title} {i}", "url": link, "content_html": text} for i in range(3)
    ]
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": items}
    return json.dumps(feed, ensure_ascii=raw).encode("utf-8", "surrogatepass")


def _through_the_pipeline(data: bytes) -> None:
    try:
        parsed = parse_source(data, source="hostile", url="https://example.org/feed")
    except ParseError as exc:
        assert exc.source == "hostile"
        return
    entries: list[Entry] = list(parsed.entries)
    for entry in entries:
        assert entry.link == "" or entry.link.startswith(("http://", "https://"))
        assert not entry.comments_url or entry.comments_url.startswith(("http://", "https://"))
    digest = build_digest(entries, now=NOW, config=DigestConfig(name="d"))
    for fmt in FORMATS:
        out = render_digest(digest, fmt)
        text = (out.decode() if isinstance(out, bytes) else out).lower()
        # A script link in a tag or a Markdown link. The same words as text are no link:
        # a title that reads "<a href='javascript:..." is "\<a href='javascript:..." in
        # Markdown (an escaped "<", never a tag).
        # Plain text has no tags: its words are never links.
        assert fmt == "text" or not UNSAFE_LINK.search(text), UNSAFE_LINK.search(text)
        for item in digest.items:
            for url in (item.entry.link, *(d.link for d in item.duplicates)):
                assert url == "" or url.startswith(("http://", "https://"))


@HOSTILE
@given(
    shape=st.sampled_from([rss, atom, json_feed]),
    title=hostile_text,
    text=hostile_text,
    link=links,
    raw=st.booleans(),
)
def test_hostile_feed_bodies_never_crash_or_leak_links(
    shape: object, title: str, text: str, link: str, raw: bool
) -> None:
    data = shape(title, text, link, raw)  # type: ignore[operator]
    started = time.monotonic()
    _through_the_pipeline(data)
    # A hang guard only: far above what any body of this size takes.
    assert time.monotonic() - started < HANG_GUARD


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes_after_feed_prefixes(tail: bytes) -> None:
    for prefix in (b'<?xml version="1.0"?><rss version="2.0"><channel><item>', b"<feed", b"{"):
        _through_the_pipeline(prefix + tail)
