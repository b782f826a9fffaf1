"""Bytes -> entries: read a source's bytes into a ``ParsedSource``.

``parse_source`` is the one entry point. It picks a ``SourceAdapter`` (by the source's
configured kind, or by sniffing the bytes for ``auto``) and lets it parse. Feeds (RSS 0.9x,
1.0 and 2.0, Atom, JSON Feed) are read in two tiers:

1. ``fastfeedparser``: fast, strict enough, reads JSON Feed too;
2. ``feedparser``: slower and forgiving, used whenever the first tier raises or finds no
   entries (ill-formed XML, odd dialects).

Both tiers feed the same normalization (``newsletter.normalize.make_entry``), so an entry
reads the same whichever tier produced it. Everything here is CPU-only and synchronous: the
fetcher runs it in a worker thread or process.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal, Protocol

import fastfeedparser

from newsletter.errors import ParseError, SourceError
from newsletter.models import Engagement, Entry, EntryMedia, FeedInfo, ParsedSource, SourceKind
from newsletter.sources.adapters import HfPapersAdapter, with_arxiv_media
from newsletter.sources.boilerplate import strip_boilerplate
from newsletter.sources.links import ABSOLUTE_URL, canonical_link
from newsletter.sources.markup import html_to_text
from newsletter.sources.normalize import clean_title, make_entry
from newsletter.sources.reasons import safe_reason

__all__ = [
    "ADAPTERS",
    "TIERS",
    "FeedAdapter",
    "SourceAdapter",
    "Tier",
    "adapter_for",
    "parse_feed",
    "parse_feed_with",
    "parse_outcome",
    "parse_source",
    "recode_to_utf8",
    "register_adapter",
]

log = logging.getLogger("newsletter")

Tier = Literal["fastfeedparser", "feedparser"]
TIERS: tuple[Tier, ...] = ("fastfeedparser", "feedparser")
"""The feed parser tiers, in the order they are tried."""


class SourceAdapter(Protocol):
    """Reads one kind of source. ``kind`` is what a ``Source`` names in its config."""

    kind: str

    def sniff(self, data: bytes, content_type: str | None) -> bool:
        """Whether ``data`` looks like this kind of source (cheap; never raises)."""
        ...

    def parse(self, data: bytes, *, source: str, url: str) -> ParsedSource:
        """The entries in ``data``; raises ``ParseError`` when it cannot read them."""
        ...


# -- the feed tiers -----------------------------------------------------------------------

_Raw = Mapping[str, Any]


def _first_str(*values: object) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _link(raw: _Raw) -> str:
    link = _first_str(raw.get("link"))
    if link:
        return link
    for candidate in raw.get("links") or ():
        if isinstance(candidate, Mapping) and candidate.get("rel") in (None, "alternate"):
            href = _first_str(candidate.get("href"))
            if href:
                return href
    return ""


def _content(raw: _Raw, *, video: bool = False) -> tuple[str, str]:
    """(html, text) of an entry: full content preferred over the summary, and for a video
    its ``media:description`` (plain text in Media RSS, whatever type a parser says)."""
    for part in raw.get("content") or ():
        if isinstance(part, Mapping):
            value = _first_str(part.get("value"))
            if value:
                kind = str(part.get("type") or "")
                return ("", value) if kind in ("text", "text/plain") else (value, "")
    summary = _first_str(raw.get("summary"), raw.get("description"))
    detail = raw.get("summary_detail")
    if isinstance(detail, Mapping) and detail.get("type") == "text/plain":
        return "", summary
    if video and summary and "<" not in summary:
        return "", summary  # feedparser gives media:description as the summary
    if not summary:
        # fastfeedparser keeps media:description with the media:content it describes.
        for media in raw.get("media_content") or ():
            if isinstance(media, Mapping) and _first_str(media.get("description")):
                return "", _first_str(media.get("description"))
    return summary, ""


_VIDEO_TYPES = ("video/", "application/x-shockwave-flash")


def _is_video(raw: _Raw) -> bool:
    """Whether an entry is a video: YouTube's ``yt:videoId``, or a ``media:content`` of a
    video type or medium."""
    if _first_str(raw.get("yt_videoid")):
        return True
    for media in raw.get("media_content") or ():
        if isinstance(media, Mapping):
            kind = str(media.get("type") or "").lower()
            if str(media.get("medium") or "").lower() == "video" or kind.startswith(_VIDEO_TYPES):
                return True
    return False


def _size(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _thumbnail(raw: _Raw) -> tuple[str, int | None, int | None] | None:
    """An entry's ``media:thumbnail`` (url, width, height), as either parser gives it."""
    for thumb in raw.get("media_thumbnail") or ():  # feedparser
        if isinstance(thumb, Mapping) and _first_str(thumb.get("url")):
            return (
                _first_str(thumb.get("url")),
                _size(thumb.get("width")),
                _size(thumb.get("height")),
            )
    for media in raw.get("media_content") or ():  # fastfeedparser
        if not isinstance(media, Mapping):
            continue
        if _first_str(media.get("thumbnail_url")):
            return _first_str(media.get("thumbnail_url")), None, None
        kind = str(media.get("type") or "").lower()
        is_image = kind.startswith("image/") or str(media.get("medium") or "").lower() == "image"
        if is_image and _first_str(media.get("url")):
            url = _first_str(media.get("url"))
            return url, _size(media.get("width")), _size(media.get("height"))
    return None


def _media(raw: _Raw, *, base: str) -> EntryMedia | None:
    """A video entry's ``EntryMedia``: its thumbnail (with its size) and its link as the
    "video" link; ``None`` for entries that are not videos."""
    if not _is_video(raw):
        return None
    thumb = _thumbnail(raw)
    image = canonical_link(thumb[0], base or None) if thumb else ""
    link = canonical_link(_link(raw), base or None) if _link(raw) else ""
    if not image and not link:
        return None
    return EntryMedia(
        image=image or None,
        image_width=thumb[1] if thumb and image else None,
        image_height=thumb[2] if thumb and image else None,
        links=(("video", link),) if link else (),
    )


def _author(raw: _Raw) -> str | None:
    names = [
        _first_str(a.get("name"), a.get("email"))
        for a in raw.get("authors") or ()
        if isinstance(a, Mapping)
    ]
    names = [n for n in names if n]
    return ", ".join(dict.fromkeys(names)) if names else (_first_str(raw.get("author")) or None)


def _tags(raw: _Raw) -> list[str]:
    return [
        _first_str(t.get("term"), t.get("label"))
        for t in raw.get("tags") or ()
        if isinstance(t, Mapping)
    ]


def _engagement(raw: _Raw) -> Engagement | None:
    # slash:comments is the common comment-count extension; feedparser exposes it.
    comments = raw.get("slash_comments")
    if isinstance(comments, str) and comments.strip().isdigit():
        return Engagement(comments=int(comments))
    return None  # make_entry then looks for hnrss-style "Points: n" in the text


def _entry(raw: _Raw, *, source: str, base: str) -> Entry:
    media = _media(raw, base=base)
    content_html, content_text = _content(raw, video=media is not None)
    return make_entry(
        source=source,
        title=_first_str(raw.get("title")),
        link=_link(raw) or None,
        base=base or None,
        guid=_first_str(raw.get("id")) or None,
        content_html=content_html,
        content_text=content_text,
        author=_author(raw),
        # feedparser gives *_parsed struct_times (UTC); fastfeedparser gives ISO strings.
        published=raw.get("published_parsed") or raw.get("published"),
        updated=raw.get("updated_parsed") or raw.get("updated"),
        tags=_tags(raw),
        engagement=_engagement(raw),
        comments_url=_first_str(raw.get("comments")) or None,
        media=media,
    )


def _info(feed: _Raw, url: str) -> FeedInfo:
    link = _first_str(feed.get("link"))
    description = _first_str(feed.get("subtitle"), feed.get("description"))
    return FeedInfo(
        title=clean_title(_first_str(feed.get("title"))) or None,
        link=canonical_link(link, url or None) or None,
        description=html_to_text(description) or None,
    )


def _build(
    feed: _Raw, entries: Iterable[_Raw], *, source: str, url: str, tier: str
) -> ParsedSource:
    info = _info(feed, url)
    # Relative links resolve against the feed's own URL; a local file's path is no base
    # for a web link, so those fall back to the site the feed names.
    base = url if ABSOLUTE_URL.match(url) else (info.link or "")
    return ParsedSource(
        info=info,
        entries=tuple(_entry(e, source=source, base=base) for e in entries),
        parser=tier,
    )


_XHTML_TITLE = re.compile(rb"<(?:\w+:)?title\b[^>]*\btype\s*=\s*[\"']xhtml[\"']")


def _with_fastfeedparser(data: bytes, *, source: str, url: str) -> ParsedSource:
    try:
        # Always bytes: given a str that looks like a URL, fastfeedparser would fetch it.
        result = fastfeedparser.parse(bytes(data))
    except Exception as exc:  # it raises ValueError, lxml and JSON errors, and more
        raise ParseError(source, f"fastfeedparser: {safe_reason(exc, data)}") from None
    raw_entries = result.get("entries") or ()
    if any(not _first_str(e.get("title")) for e in raw_entries) and _XHTML_TITLE.search(data):
        # fastfeedparser 0.6 reads Atom type="xhtml" titles as empty; feedparser reads them.
        raise ParseError(source, 'fastfeedparser: cannot read type="xhtml" titles')
    feed, entries = result.get("feed") or {}, result.get("entries") or ()
    return _build(feed, entries, source=source, url=url, tier="fastfeedparser")


def _with_feedparser(data: bytes, *, source: str, url: str) -> ParsedSource:
    # Imported on first use: most feeds never need the second tier, and every fetch
    # would pay for the import.
    import feedparser

    try:
        # A stream, never bytes or str: feedparser opens those as file names or URLs.
        # The feed's URL as Content-Location: the base that a relative xml:base (and
        # a relative link outside any xml:base) resolves against.
        headers = {"content-location": url} if ABSOLUTE_URL.match(url) else None
        result = feedparser.parse(io.BytesIO(data), sanitize_html=False, response_headers=headers)
    except Exception as exc:
        raise ParseError(source, f"feedparser: {safe_reason(exc, data)}") from None
    if not result.get("version") and not result.get("entries"):
        bozo = result.get("bozo_exception")
        reason = safe_reason(bozo, data) if isinstance(bozo, BaseException) else "not a feed"
        raise ParseError(source, f"feedparser: {reason}")
    feed, entries = result.get("feed") or {}, result.get("entries") or ()
    return _build(feed, entries, source=source, url=url, tier="feedparser")


_TIER_PARSERS: dict[str, Callable[..., ParsedSource]] = {
    "fastfeedparser": _with_fastfeedparser,
    "feedparser": _with_feedparser,
}


def parse_feed_with(
    tier: Tier, data: bytes, *, source: str, url: str = "", content_type: str | None = None
) -> ParsedSource:
    """``data`` read as a feed by one parser tier only (for tests and diagnostics), after
    the same charset handling as ``parse_source``.

    Raises ``ParseError`` when that tier cannot read it.
    """
    parser = _TIER_PARSERS.get(tier)
    if parser is None:
        raise ParseError(source, f"unknown parser tier {tier!r} (expected one of {TIERS})")
    return parser(recode_to_utf8(data, content_type), source=source, url=url)


# What fastfeedparser 0.6 reads short: it ignores xml:base (relative links would stay
# relative, or resolve against the wrong URL) and drops the thumbnail of a media:group
# (YouTube's). feedparser reads both, so such feeds go to it first.
_FEEDPARSER_FIRST = re.compile(rb"\bxml:base\s*=|<media:group[\s>]")


def parse_feed(data: bytes, *, source: str, url: str = "") -> ParsedSource:
    """``data`` read as RSS, Atom, RDF or JSON Feed: fastfeedparser first, feedparser when
    the first raises (including on what it would misread, such as Atom ``type="xhtml"``
    titles) or finds no entries. Feeds with ``xml:base`` or ``media:group`` go to
    feedparser first. Raises ``ParseError`` when neither reads it."""
    if _FEEDPARSER_FIRST.search(data):
        try:
            preferred = _with_feedparser(data, source=source, url=url)
        except ParseError:
            pass
        else:
            if preferred.entries:
                return preferred
    first: ParsedSource | None = None
    try:
        first = _with_fastfeedparser(data, source=source, url=url)
    except ParseError as exc:
        first_error = exc.reason
    else:
        if first.entries:
            return first
        first_error = "no entries"
    try:
        second = _with_feedparser(data, source=source, url=url)
    except ParseError as exc:
        if first is not None:
            return first  # a well-formed feed that is empty right now
        raise ParseError(source, f"not a feed we can read ({first_error}; {exc.reason})") from exc
    return second if second.entries or first is None else first


# -- adapters -----------------------------------------------------------------------------

_XML_START = (b"<", b"\xef\xbb\xbf<", b"\xff\xfe", b"\xfe\xff")


class FeedAdapter:
    """RSS 0.9x/1.0/2.0, Atom and JSON Feed, in two parser tiers (see ``parse_feed``)."""

    kind: str = "feed"

    def sniff(self, data: bytes, content_type: str | None) -> bool:
        """Whether ``data`` starts like XML or a JSON object, or is served as a feed."""
        head = data[:512].lstrip()
        if head.startswith(_XML_START) or head.startswith(b"{"):
            return True
        ctype = (content_type or "").lower()
        return any(t in ctype for t in ("xml", "rss", "atom", "json"))

    def parse(self, data: bytes, *, source: str, url: str) -> ParsedSource:
        """The feed's entries (see ``parse_feed``): arXiv papers get their authors and
        links as ``EntryMedia`` (``adapters.with_arxiv_media``), and the lines of the
        feed's own template ("Continue reading…", "Comments") go
        (``boilerplate.strip_boilerplate``), learned from the feed's entries before
        anything is stored or summarized."""
        parsed = with_arxiv_media(parse_feed(data, source=source, url=url), data, url=url)
        return replace(parsed, entries=tuple(strip_boilerplate(parsed.entries)))


ADAPTERS: dict[str, SourceAdapter] = {}
"""Adapters by kind, in sniffing order (specific list formats before generic feeds)."""


def register_adapter(adapter: SourceAdapter, *, first: bool = False) -> None:
    """Make ``adapter`` available under its kind; ``first`` sniffs it before the others."""
    ADAPTERS.pop(adapter.kind, None)
    if first:
        others = dict(ADAPTERS)
        ADAPTERS.clear()
        ADAPTERS[adapter.kind] = adapter
        ADAPTERS.update(others)
    else:
        ADAPTERS[adapter.kind] = adapter


register_adapter(HfPapersAdapter())
register_adapter(FeedAdapter())


def adapter_for(data: bytes, *, content_type: str | None = None) -> SourceAdapter:
    """The first adapter whose sniffer recognizes ``data``; the feed adapter otherwise
    (its forgiving tier reads things no sniffer recognizes)."""
    for adapter in ADAPTERS.values():
        try:
            if adapter.sniff(data, content_type):
                return adapter
        except Exception:  # a broken sniffer must not break parsing
            continue
    return ADAPTERS["feed"]


_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=""")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def recode_to_utf8(data: bytes, content_type: str | None = None) -> bytes:
    """``data`` as UTF-8 when it is neither UTF-8 nor says what it is.

    Bytes that are valid UTF-8, start with a byte-order mark or declare an XML encoding are
    returned as they are. Others are decoded with the charset of ``content_type``, else as
    windows-1252 (what undeclared non-UTF-8 feeds nearly always are, and what browsers
    assume), so that every parser tier sees the same text.
    """
    if data.startswith(_BOMS) or _DECLARED_ENCODING.match(data):
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return data
    match = _CHARSET.search(content_type or "")
    for charset in (match.group(1) if match else None, "windows-1252", "latin-1"):
        if not charset:
            continue
        try:
            return data.decode(charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            continue
    return data  # unreachable: latin-1 decodes any bytes


def parse_source(
    data: bytes,
    *,
    source: str,
    url: str = "",
    kind: SourceKind = "auto",
    content_type: str | None = None,
) -> ParsedSource:
    """The entries in one source's ``data``, read by the adapter for ``kind`` (``auto``
    sniffs the bytes; ``content_type`` is the HTTP header, if any).

    ``source`` is the source's name, put in every ``Entry.source``; ``url`` resolves relative
    links. Raises ``ParseError`` when nothing readable is there (empty body, garbage, an
    HTML page) and never anything else, whatever the bytes.
    """
    if not data or not data.strip():
        raise ParseError(source, "empty response: no feed to read")
    data = recode_to_utf8(data, content_type)
    if kind == "auto":
        adapter = adapter_for(data, content_type=content_type)
    elif kind in ADAPTERS:
        adapter = ADAPTERS[kind]
    else:
        raise ParseError(source, f"unknown source kind {kind!r} (expected one of {list(ADAPTERS)})")
    try:
        return adapter.parse(data, source=source, url=url)
    except ParseError:
        raise
    except Exception as exc:
        # Parsers have bugs too; one odd feed must cost one source, not the whole run.
        raise ParseError(source, f"{adapter.kind}: {safe_reason(exc, data)}") from None


def parse_outcome(
    data: bytes,
    source: str,
    url: str = "",
    kind: SourceKind = "auto",
    content_type: str | None = None,
) -> tuple[ParsedSource | None, str | None]:
    """``parse_source`` for a worker process: ``(parsed, None)``, or ``(None, reason)``
    when the source cannot be read.

    Errors come back as values: ``ParseError`` does not survive pickling (its constructor
    takes two arguments), and a parser bug must cost one source, not the run.
    """
    try:
        parsed = parse_source(data, source=source, url=url, kind=kind, content_type=content_type)
    except SourceError as exc:
        return None, exc.reason
    except Exception as exc:  # parse_source promises not to, but a worker must answer
        reason = safe_reason(exc, data)
        log.error("parser crashed on %s: %s", source, reason)
        return None, f"could not be parsed ({reason})"
    return parsed, None
