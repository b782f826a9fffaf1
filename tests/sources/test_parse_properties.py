"""Property tests: feed bytes and feed content are hostile input."""

from __future__ import annotations

import json
import re
from datetime import UTC
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import ParseError
from newsletter.models import ParsedSource
from newsletter.sources.links import canonical_link
from newsletter.sources.markup import html_to_text, sanitize_html
from newsletter.sources.normalize import clean_title, parse_datetime
from newsletter.sources.parse import parse_source

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Each example of these runs both parser tiers: fewer examples keep the suite at seconds.
PARSES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_parse_error(data: bytes, **kwargs: object) -> ParsedSource | None:
    """Parse; the only exception allowed is ParseError. Check what comes out."""
    try:
        parsed = parse_source(data, source="prop", **kwargs)  # type: ignore[arg-type]
    except ParseError as exc:
        assert exc.source == "prop"
        return None
    for entry in parsed.entries:
        assert entry.source == "prop"
        assert entry.id
        assert "\n" not in entry.title and "\r" not in entry.title
        for when in (entry.published, entry.updated):
            assert when is None or when.tzinfo == UTC
        assert "<script" not in entry.content_html.lower()
    return parsed


@PARSES
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    parses_or_parse_error(data)


@settings(max_examples=100, deadline=None)  # four parses per example
@given(st.binary(max_size=300))
def test_bytes_after_a_feed_prefix_raise_only_parse_error(tail: bytes) -> None:
    for prefix in (
        b'<?xml version="1.0"?><rss version="2.0"><channel>',
        b"<feed ",
        b'{"items":',
        b"[",
    ):
        parses_or_parse_error(prefix + tail)


# Text that may or may not be escaped: raw text makes ill-formed XML on purpose.
field = st.one_of(st.text(max_size=80), st.text(max_size=80).map(escape))


@PARSES
@given(title=field, link=field, description=field, date=field, guid=field, category=field)
def test_text_inside_an_rss_skeleton(
    title: str, link: str, description: str, date: str, guid: str, category: str
) -> None:
    data = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><link>{link}</link><description>{description}"
        f"</description><pubDate>{date}</pubDate><guid>{guid}</guid>"
        f"<category>{category}</category><comments>{link}</comments></item></channel></rss>"
    ).encode("utf-8", "surrogatepass")
    parses_or_parse_error(data)


@PARSES
@given(title=field, link=field, content=field, date=field, entry_id=field, author=field)
def test_text_inside_an_atom_skeleton(
    title: str, link: str, content: str, date: str, entry_id: str, author: str
) -> None:
    data = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>t</title><entry><title type='html'>{title}</title>"
        f'<link href="{escape(link, {chr(34): "&quot;"})}"/><id>{entry_id}</id>'
        f"<updated>{date}</updated><author><name>{author}</name></author>"
        f'<content type="html">{content}</content></entry></feed>'
    ).encode("utf-8", "surrogatepass")
    parses_or_parse_error(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["paper", "id", "title", "summary", "upvotes", "authors", "name", "publishedAt",
             "numComments", "items", "url", "content_html", "date_published", "version",
             "ai_keywords", "submittedOnDailyAt"]
        ),
        children,
        max_size=6,
    ),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_arbitrary_json_as_papers_or_feed(value: object) -> None:
    data = json.dumps(value).encode()
    for kind in ("auto", "hf-papers", "feed"):
        parses_or_parse_error(data, kind=kind)
    parses_or_parse_error(json.dumps([{"paper": value}]).encode())
    items = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [value]}
    parses_or_parse_error(json.dumps(items).encode())


# -- sanitize_html ------------------------------------------------------------------------

tags = st.sampled_from(
    ["a", "img", "p", "script", "style", "iframe", "svg", "math", "div", "object", "form",
     "SCRIPT", "ScRiPt", "body", "template", "noscript", "textarea", "xmp", "title"]
)  # fmt: skip
attr_names = st.sampled_from(
    ["href", "src", "onclick", "onerror", "ONLOAD", "style", "title", "xlink:href", "action",
     "formaction", "srcdoc", "data", "on", "onmouseover"]
)  # fmt: skip
attr_values = st.one_of(
    st.sampled_from(
        ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:x", "java&#x09;script:x",
         "&#106;avascript:x", "jav&#x0A;ascript:x", "vbscript:x", "data:text/html,<script>x",
         "https://ok.example/", "/relative", "#frag", "\x01javascript:x"]
    ),
    st.text(max_size=20),
)  # fmt: skip
quotes = st.sampled_from(['"', "'", ""])


@st.composite
def html_fragments(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            parts.append(draw(st.text(max_size=20)))
        elif choice == 1:
            parts.append(f"</{draw(tags)}>")
        else:
            q = draw(quotes)
            attrs = " ".join(
                f"{draw(attr_names)}={q}{draw(attr_values)}{q}"
                for _ in range(draw(st.integers(0, 3)))
            )
            parts.append(f"<{draw(tags)} {attrs}>")
    return "".join(parts)


# In sanitized output any "<" starts a real tag (text "<" is escaped), so these look at tags.
TAG = re.compile(r"<[^>]*>")
HANDLER = re.compile(r"\son[a-z]*\s*=", re.IGNORECASE)
BAD_URL = re.compile(
    r"""(href|src|action|data|srcdoc)\s*=\s*["']?\s*(javascript|vbscript|data):""", re.I
)


@FAST
@given(html_fragments(), st.sampled_from([None, "https://base.example/dir/", "javascript:x"]))
def test_sanitize_html_output_is_safe(html: str, base: str | None) -> None:
    out = sanitize_html(html, base)
    assert "<script" not in out.lower()
    for tag in TAG.findall(out):
        assert not HANDLER.search(tag), tag
        assert not BAD_URL.search(tag), tag


@FAST
@given(st.text(max_size=200))
def test_sanitize_html_arbitrary_text(text: str) -> None:
    out = sanitize_html(text)
    assert "<script" not in out.lower()
    for tag in TAG.findall(out):
        assert not HANDLER.search(tag)


# -- the other normalizers never raise ------------------------------------------------------


@FAST
@given(st.text(max_size=100), st.one_of(st.none(), st.text(max_size=50)))
def test_canonical_link_never_raises(url: str, base: str | None) -> None:
    assert isinstance(canonical_link(url, base), str)


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
hosts = st.builds(
    "{}.{}".format,
    st.text(ALNUM, min_size=1, max_size=10),
    st.sampled_from(["com", "ORG", "co.uk"]),
)
paths = st.lists(st.text(ALNUM + "._~-", max_size=8), max_size=3)
params = st.lists(
    st.tuples(
        st.sampled_from(["utm_source", "id", "fbclid", "q", "ref", "page", "UTM_X"]),
        st.text("abcxyz0129", max_size=5),
    ),
    max_size=4,
)


@FAST
@given(
    st.sampled_from(["http", "https", "HTTPS"]),
    hosts,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    paths,
    params,
    st.sampled_from(["", "#x"]),
)
def test_canonical_link_on_urls(
    scheme: str, host: str, port: str, path: list[str], query: list[tuple[str, str]], frag: str
) -> None:
    url = f"{scheme}://{host}{port}/{'/'.join(path)}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    url += frag
    out = canonical_link(url)
    assert canonical_link(out) == out, "idempotent"
    assert out.startswith(scheme.lower() + "://" + host.lower())
    assert "#" not in out and "utm_" not in out.lower() and "fbclid" not in out
    kept = [f"{k}={v}" for k, v in query if k in ("id", "q", "page")]
    assert out.endswith("?" + "&".join(kept) if kept else "")


@FAST
@given(
    st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.none(), st.binary(max_size=10))
)
def test_parse_datetime_never_raises(value: object) -> None:
    parsed = parse_datetime(value)
    assert parsed is None or parsed.tzinfo == UTC


@FAST
@given(st.text(max_size=200))
def test_clean_title_is_one_line(text: str) -> None:
    title = clean_title(text)
    assert "\n" not in title and "\r" not in title
    assert title == title.strip()
    assert clean_title(title) == title or "&" in title or "<" in title


@FAST
@given(st.text(max_size=300))
def test_html_to_text_never_raises(text: str) -> None:
    assert isinstance(html_to_text(text), str)
