"""Pure normalization of what feeds say: titles, dates, ids, authors, engagement; links
and HTML are in ``links`` and ``markup``.

Every function here takes strings (or date-like values) and returns strings (or datetimes);
none raises on hostile input, because feed content is hostile input. ``make_entry`` puts them
together so that every parser tier and source adapter builds ``Entry`` values the same way.
"""

from __future__ import annotations

import calendar
import hashlib
import html as html_lib
import re
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

from newsletter.models import Engagement, Entry, EntryMedia
from newsletter.sources.links import canonical_link
from newsletter.sources.markup import (
    BAD_CHARS,
    html_to_text,
    looks_like_markdown,
    markdown_to_html,
    sanitize_html,
    text_to_html,
)

__all__ = [
    "clean_author",
    "clean_title",
    "engagement_from_text",
    "entry_id",
    "make_entry",
    "parse_datetime",
]

# -- titles -------------------------------------------------------------------------------

_ANY_WHITESPACE = re.compile(r"\s+")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>|<![^<>]*>|<\?[^<>]*>")  # no "<" inside: linear


def clean_title(s: str) -> str:
    """A one-line title: tags stripped, entities decoded, whitespace (CR/LF included)
    collapsed to single spaces, control characters removed (titles end up in email
    headers)."""
    if not s:
        return ""
    if s.isascii() and s.isprintable() and "<" not in s and "&" not in s and "  " not in s:
        # Most titles and tags: no tags, entities, control characters or whitespace runs
        # (printable ASCII has no whitespace but the space).
        return s.strip(" ")
    s = _TAG.sub("", s)
    s = html_lib.unescape(s)
    s = BAD_CHARS.sub("", s)
    return _ANY_WHITESPACE.sub(" ", s).strip()


# -- dates --------------------------------------------------------------------------------

_MIN_YEAR, _MAX_YEAR = 1900, 2200
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _aware_utc(dt: datetime) -> datetime | None:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=UTC)  # feeds without an offset mean UTC more often than not
    out = dt.astimezone(UTC)
    return out if _MIN_YEAR <= out.year <= _MAX_YEAR else None


def _from_string(value: str) -> datetime | None:
    s = value.strip()
    if not s or len(s) > 200:
        return None
    iso = s[:-1] + "+00:00" if s[-1:] in "zZ" else s
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        pass
    iso_date = _ISO_DATE.match(s)
    if iso_date:
        try:
            date(*(int(g) for g in iso_date.groups()))
        except ValueError:
            return None  # feedparser would roll "2026-13-45" over into 2027
    try:
        return parsedate_to_datetime(s)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    # feedparser knows a dozen more date dialects (W3C-DTF variants, Korean, Greek, ...);
    # its struct_time results are UTC.
    from feedparser.datetimes import _parse_date

    parsed = _parse_date(s)
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def parse_datetime(value: object) -> datetime | None:
    """``value`` (an RFC 822 or ISO 8601 string, a ``time.struct_time`` in UTC, a datetime
    or date, or epoch seconds) as an aware UTC datetime; ``None`` for anything else.

    Naive values are taken as UTC. Never raises.
    """
    try:
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, datetime):
            return _aware_utc(value)
        if isinstance(value, date):
            return _aware_utc(datetime(value.year, value.month, value.day))
        if isinstance(value, time.struct_time) or (
            isinstance(value, tuple) and len(value) == 9 and all(isinstance(v, int) for v in value)
        ):
            return _aware_utc(datetime.fromtimestamp(calendar.timegm(value), UTC))
        if isinstance(value, int | float):
            return _aware_utc(datetime.fromtimestamp(value, UTC))
        if isinstance(value, str):
            dt = _from_string(value)
            return _aware_utc(dt) if dt else None
    except (ValueError, TypeError, OverflowError, OSError, IndexError, KeyError):
        return None
    return None


# -- ids ----------------------------------------------------------------------------------


def entry_id(guid: str | None, link: str | None, title: str, content: str) -> str:
    """A stable id for an entry: its guid, else its canonical link, else ``sha1:`` and a
    hash of its title and content."""
    if guid and guid.strip():
        return _ANY_WHITESPACE.sub(" ", guid).strip()
    if link and link.strip():
        return canonical_link(link)
    digest = hashlib.sha1(
        f"{title}\x1f{content}".encode("utf-8", "surrogatepass"), usedforsecurity=False
    )
    return "sha1:" + digest.hexdigest()


# -- entries ------------------------------------------------------------------------------

_UNTITLED_LENGTH = 80
_EMAIL_WITH_NAME = re.compile(r"^\s*[^@\s()]+@[^@\s()]+\s*\((?P<name>[^()]+)\)\s*$")
_POINTS = re.compile(r"\bPoints:\s*(\d{1,9})\b")
_COMMENT_COUNT = re.compile(r"#\s*Comments:\s*(\d{1,9})\b")
# arXiv's RSS items start "arXiv:2503.10004v1 Announce Type: new Abstract: ...": keep
# only the abstract, or every summary would open with that line.
_ARXIV_PREAMBLE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*(?:Abstract:\s*)?", re.IGNORECASE
)


def clean_author(author: str | None) -> str | None:
    """An author as a display name: ``"jo@example.com (Jo)"`` (RSS style) becomes ``Jo``."""
    if not author:
        return None
    match = _EMAIL_WITH_NAME.match(author)
    name = clean_title(match.group("name") if match else author)
    return name or None


def _title_from_text(text: str) -> str:
    line = clean_title(text)
    if len(line) <= _UNTITLED_LENGTH:
        return line
    return line[: _UNTITLED_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def engagement_from_text(text: str) -> Engagement:
    """Points and comment counts that some feeds (hnrss.org style) put in the item text."""
    # The substring tests are exact pre-checks (both patterns are case-sensitive) and save
    # two regex scans of every entry's text.
    points = _POINTS.search(text) if "Points:" in text else None
    comments = _COMMENT_COUNT.search(text) if "Comments:" in text else None
    return Engagement(
        points=int(points.group(1)) if points else None,
        comments=int(comments.group(1)) if comments else None,
    )


def make_entry(
    *,
    source: str,
    title: str,
    link: str | None = None,
    base: str | None = None,
    guid: str | None = None,
    content_html: str = "",
    content_text: str = "",
    author: str | None = None,
    published: object = None,
    updated: object = None,
    tags: Iterable[str] = (),
    engagement: Engagement | None = None,
    comments_url: str | None = None,
    media: EntryMedia | None = None,
) -> Entry:
    """One normalized ``Entry`` from raw fields as a parser found them.

    Links are made canonical (relative ones resolved against ``base``), HTML is sanitized and
    given a text form (``content_text`` is used when there is no HTML; text written in
    Markdown, and "HTML" without a tag that is Markdown, is rendered to HTML first: see
    ``markup.looks_like_markdown``), dates become aware
    UTC (``published`` and ``updated`` each fall back to the other, so that every parser
    agrees on them), a
    missing title is taken from the text, and the id is a guid, canonical link or hash.
    """
    canonical = canonical_link(link, base) if link else ""
    if guid is not None and link is not None and guid.strip() == link.strip():
        guid = None  # a guid that is only the link: let the canonical link be the id
    if content_html.strip() and "<" not in content_html and looks_like_markdown(content_html):
        # Markdown sent as HTML (release notes of some forges, JSON Feed generators that
        # copy the source into content_html): without a tag it cannot be HTML that means
        # it, and shown as is it reads "**Fixes**".
        content_text, content_html = html_lib.unescape(content_html), ""
    if content_html.strip():
        safe_html = sanitize_html(content_html, canonical or base)
        text = html_to_text(safe_html)
    elif looks_like_markdown(content_text):
        safe_html = sanitize_html(markdown_to_html(content_text), canonical or base)
        text = html_to_text(safe_html)
    else:
        text = html_to_text(html_lib.escape(content_text, quote=False))
        safe_html = text_to_html(text)
    text = _ARXIV_PREAMBLE.sub("", text, count=1)
    clean = clean_title(title) or _title_from_text(text)
    # Parsers disagree on which of the two a lone date is (feedparser calls RDF dc:date
    # "updated", fastfeedparser calls it "published"), so each falls back to the other.
    published_at = parse_datetime(published)
    updated_at = parse_datetime(updated) or published_at
    published_at = published_at or updated_at
    comments = canonical_link(comments_url, canonical or base) if comments_url else None
    found = engagement_from_text(text) if engagement is None else engagement
    return Entry(
        id=entry_id(guid, canonical or None, clean, text),
        source=source,
        title=clean,
        link=canonical,
        author=clean_author(author),
        published=published_at,
        updated=updated_at,
        tags=tuple(dict.fromkeys(t for t in (clean_title(tag) for tag in tags) if t)),
        content_html=safe_html,
        text=text,
        engagement=found,
        comments_url=comments or None,
        media=media,
    )
