"""Pure normalization of what feeds say: links, HTML, text, dates, ids, titles.

Every function here takes strings (or date-like values) and returns strings (or datetimes);
none raises on hostile input, because feed content is hostile input. ``make_entry`` puts them
together so that every parser tier and source adapter builds ``Entry`` values the same way.
"""

from __future__ import annotations

import calendar
import hashlib
import html as html_lib
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import nh3

from newsletter.models import Engagement, Entry

__all__ = [
    "canonical_link",
    "clean_author",
    "clean_title",
    "engagement_from_text",
    "entry_id",
    "html_to_text",
    "make_entry",
    "parse_datetime",
    "sanitize_html",
    "text_to_html",
]

# -- links --------------------------------------------------------------------------------

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "igshid",
        "igsh",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "wt.mc_id",
        "s_cid",
        "rb_clickid",
        "spm",
    }
)
"""Query parameters that only identify a click, never the page (matched case-insensitively,
plus every ``utm_*``)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
# urljoin is slow and leaves absolute http(s) URLs as they are: skip it for those.
_ABSOLUTE = re.compile(r"^https?://", re.IGNORECASE)
# An absolute http(s) URL that canonical_link would return unchanged: lowercase scheme and
# host, no port, user, query or fragment, only ASCII URL characters in the path.
_CLEAN_URL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
)
# An absolute http(s) URL with nothing a browser or urlsplit would strip, squeeze or
# reject (whitespace, control characters, brackets, non-ASCII): kept as it is.
_PLAIN_ABSOLUTE = re.compile(r"https?://[\x21-\x5a\x5c\x5e-\x7e]*", re.IGNORECASE)


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k.startswith("utm_") or k in TRACKING_PARAMS


def canonical_link(url: str, base: str | None = None) -> str:
    """The canonical form of ``url``: resolved against ``base``, scheme and host lowercased,
    default port, fragment and tracking parameters dropped, other parameters kept in order.

    Anything that cannot be parsed comes back stripped, unchanged otherwise.
    """
    stripped = url.strip() if isinstance(url, str) else ""
    if not stripped:
        return ""
    clean = _CLEAN_URL.fullmatch(stripped)
    if clean:
        # Most feed links are already canonical; splitting and rebuilding them would only
        # return the same text (with "/" for an empty path).
        return stripped if clean.group(1) else stripped + "/"
    try:
        joined = (
            urljoin(base.strip(), stripped) if base and not _ABSOLUTE.match(stripped) else stripped
        )
        parts = urlsplit(joined)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            # tag:, urn:, mailto: ... have no host or tracking conventions to normalize.
            return joined
        host = parts.hostname or ""
        if not host:
            return joined
        if ":" in host:  # IPv6 literal: urlsplit removed the brackets
            host = f"[{host}]"
        port = parts.port
        netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        if parts.username is not None:
            userinfo = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{userinfo}@{netloc}"
        # Keep the raw text of kept parameters: re-encoding would change links that work.
        kept = [
            p
            for p in parts.query.split("&")
            if p and not _is_tracking(unquote_plus(p.split("=", 1)[0]))
        ]
        return urlunsplit((scheme, netloc, parts.path or "/", "&".join(kept), ""))
    except (ValueError, TypeError, UnicodeError):
        return stripped


# -- HTML ---------------------------------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "sub",
        "sup",
        "strong",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_CONTROL_IN_URL = re.compile(r"[\x00-\x20\x7f]+")


def _keep_url(tag: str, attr: str, value: str) -> str | None:
    """nh3's attribute filter: URLs resolved against the base of the fragment being
    sanitized (``_current.base``), unsafe schemes dropped."""
    if attr not in _URL_ATTRIBUTES:
        return value
    if _PLAIN_ABSOLUTE.fullmatch(value):
        return value  # the common case: nothing to resolve, squeeze or reject
    base: str | None = getattr(_current, "base", None)
    # Browsers ignore whitespace and control characters inside a scheme
    # ("java\tscript:"), so judge the scheme on the squeezed value.
    squeezed = _CONTROL_IN_URL.sub("", value)
    try:
        value = value.strip()
        resolved = urljoin(base, value) if base and not _ABSOLUTE.match(value) else value
        scheme = urlsplit(_CONTROL_IN_URL.sub("", resolved)).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in ALLOWED_URL_SCHEMES:
        return None
    if not scheme and ":" in squeezed.split("/", 1)[0]:
        return None
    return resolved


# The sanitizer is built once (building it per call costs as much as a short fragment's
# cleaning); the base URL its filter resolves against is per call and per thread.
_current = threading.local()
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_keep_url,
    url_schemes=set(ALLOWED_URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


# What the sanitizer changes in text outside tags: markup and entities are parsed, ">"
# escaped, CR LF made LF, NUL dropped.
_MARKUP_CHARS = re.compile(r"[<>&\r\x00]")


def sanitize_html(html: str, base: str | None = None) -> str:
    """``html`` reduced to a safe allowlist of tags and attributes (no scripts, styles,
    event handlers or ``javascript:`` URLs); links get ``rel="noopener noreferrer"`` and,
    when ``base`` is given, relative URLs become absolute."""
    if not html or not html.strip():
        return ""
    if html.isascii() and not _MARKUP_CHARS.search(html):
        # Plain ASCII text: nothing for the sanitizer to drop, escape or normalize.
        return html.strip()
    _current.base = base
    try:
        return _CLEANER.clean(html).strip()
    finally:
        _current.base = None


_DROP_BLOCKS = re.compile(
    r"<(script|style|head|template|noscript)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<![^>]*>|<\?[^>]*>")
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>|<![^>]*>|<\?[^>]*>")
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "pre", "blockquote",
        "table", "thead", "tbody", "tfoot", "section", "article", "header", "footer", "aside",
        "nav", "figure", "hr", "address", "main", "details", "summary",
    }
)  # fmt: skip
# Only opening tags break lines, so that "</li><li>" makes one line break, not two.
_LINE_TAGS = frozenset(["br", "tr", "li", "dt", "dd", "figcaption", "caption"])
_CELL_TAGS = frozenset(("td", "th"))


def _tag_break(match: re.Match[str]) -> str:
    name = (match.group(2) or "").lower()
    if name in _PARAGRAPH_TAGS:
        return "\n\n"
    if name in _LINE_TAGS and (not match.group(1) or name == "br"):
        return "\n"
    if name in _CELL_TAGS and match.group(1):
        return " "
    return ""


# What each tag becomes, by lowercase name with "/" for closing tags (absent: nothing):
# the same as _tag_break, looked up without a Python call and a match object per tag.
_TAG_BREAKS: dict[str, str] = {
    **{name: "\n\n" for name in _PARAGRAPH_TAGS},
    **{"/" + name: "\n\n" for name in _PARAGRAPH_TAGS},
    **{name: "\n" for name in _LINE_TAGS},
    "/br": "\n",
    **{"/" + name: " " for name in _CELL_TAGS},
}


def _tags_to_breaks(s: str) -> str:
    # split() cuts the text at exactly the tags sub() would replace, leaving [text,
    # slash, name, text, slash, name, ..., text]; slash and name are None for <!...>
    # and <?...>.
    parts: list[str | None] = _ANY_TAG.split(s)
    parts[2::3] = [
        _TAG_BREAKS.get((slash or "") + name.lower(), "") if name else ""
        for slash, name in zip(parts[1::3], parts[2::3], strict=True)
    ]
    parts[1::3] = [""] * (len(parts) // 3)
    return "".join(parts)  # type: ignore[arg-type]  # every None was replaced


_SPACES = re.compile(r"[^\S\n]+")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed;
    block elements become paragraph breaks (blank lines), ``<br>`` and list items line breaks.
    """
    if not html:
        return ""
    # Regexes rather than a DOM: several times faster on feed-sized fragments, and the
    # input is either sanitized already or only used for display text.
    s = _COMMENT.sub("", html) if "<!" in html else html
    if "<" in s:
        s = _DROP_BLOCKS.sub("", s)
        s = _tags_to_breaks(s)
    if "&" in s:
        s = html_lib.unescape(s)
    if not (s.isascii() and "\t" not in s and "\r" not in s and s.replace("\n", "").isprintable()):
        # (Printable ASCII and newlines, most text, has no character to remove.)
        s = _BAD_CHARS.sub("", s)
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    # Whitespace runs become one space. ASCII text whose only whitespace is single spaces
    # and newlines (most of it) has nothing to collapse, and scanning it costs more than
    # the rest of this function.
    if not s.isascii() or "\t" in s or "  " in s:
        s = _SPACES.sub(" ", s)
    # Then lines lose their edge spaces (once collapsed, at most one each side) and the
    # lines that were blank, now empty, make one paragraph break.
    if " \n" in s or "\n " in s:
        s = "\n".join([line.strip(" ") for line in s.split("\n")])
    # Runs of three or more newlines become two; str.replace is several times faster
    # than the equivalent regex (each pass shortens every run, down to two).
    while "\n\n\n" in s:
        s = s.replace("\n\n\n", "\n\n")
    return s.strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines split paragraphs, line breaks kept)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r", "")) if p.strip()]
    return "".join(
        "<p>" + html_lib.escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paragraphs
    )


# -- titles -------------------------------------------------------------------------------

_ANY_WHITESPACE = re.compile(r"\s+")


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
    s = _BAD_CHARS.sub("", s)
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
) -> Entry:
    """One normalized ``Entry`` from raw fields as a parser found them.

    Links are made canonical (relative ones resolved against ``base``), HTML is sanitized and
    given a text form (``content_text`` is used when there is no HTML), dates become aware
    UTC (``published`` and ``updated`` each fall back to the other, so that every parser
    agrees on them), a
    missing title is taken from the text, and the id is a guid, canonical link or hash.
    """
    canonical = canonical_link(link, base) if link else ""
    if guid is not None and link is not None and guid.strip() == link.strip():
        guid = None  # a guid that is only the link: let the canonical link be the id
    if content_html.strip():
        safe_html = sanitize_html(content_html, canonical or base)
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
    )
