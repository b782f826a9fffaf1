"""Normalization: links, HTML, text, dates, ids and titles."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from newsletter.models import Engagement
from newsletter.sources.links import canonical_link
from newsletter.sources.markup import html_to_text, sanitize_html, text_to_html
from newsletter.sources.normalize import (
    clean_author,
    clean_title,
    entry_id,
    make_entry,
    parse_datetime,
)

# -- canonical_link -----------------------------------------------------------------------

LINKS = [
    ("https://Example.COM/a", None, "https://example.com/a"),
    ("HTTP://example.com:80/a", None, "http://example.com/a"),
    ("https://example.com:443/a", None, "https://example.com/a"),
    ("https://example.com:8443/a", None, "https://example.com:8443/a"),
    ("https://example.com", None, "https://example.com/"),
    ("https://example.com/a#section", None, "https://example.com/a"),
    (
        "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x&b=2",
        None,
        "https://example.com/a?id=7&b=2",
    ),
    (
        "https://example.com/?gclid=1&mc_cid=2&mc_eid=3&ref=hn&ref_src=t&igshid=4",
        None,
        "https://example.com/",
    ),
    ("https://example.com/?UTM_Campaign=x&z=1&a=2", None, "https://example.com/?z=1&a=2"),
    ("https://example.com/?q=a%20b&flag", None, "https://example.com/?q=a%20b&flag"),
    ("https://example.com/Path/Case", None, "https://example.com/Path/Case"),
    ("/posts/1", "https://blog.example.com/feed.xml", "https://blog.example.com/posts/1"),
    ("post-2", "https://blog.example.com/feeds/", "https://blog.example.com/feeds/post-2"),
    ("//cdn.example.com/x", "https://a.example/", "https://cdn.example.com/x"),
    ("  https://example.com/a  ", None, "https://example.com/a"),
    ("http://[::1]:80/x", None, "http://[::1]/x"),
    ("https://user:pw@Example.com/", None, "https://user:pw@example.com/"),
    # Only http(s) survives (issue 11, finding 3): any other scheme, in any case, after
    # whitespace or control characters, resolved against a base or not.
    ("tag:example.com,2026:1", None, ""),
    ("mailto:a@b.c", None, ""),
    ("javascript:alert(1)", None, ""),
    ("  JaVaScRiPt:alert(1)", "https://a.example/", ""),
    ("\x01\x02javascript:alert(1)", "https://a.example/", ""),
    ("java\tscript:alert(1)", "https://a.example/", ""),
    ("\njavascript:alert(1)", None, ""),
    ("data:text/html;base64,PHNjcmlwdD4=", "https://a.example/", ""),
    ("DATA:text/html,x", None, ""),
    ("vbscript:msgbox", None, ""),
    ("file:///etc/passwd", "https://a.example/", ""),
    ("", None, ""),
    ("   ", "https://a.example/", ""),
    ("http://example.com:bad/", None, ""),
    ("http://[broken/", None, ""),
    ("not a url", None, ""),
]


@pytest.mark.parametrize(("url", "base", "expected"), LINKS, ids=[repr(u) for u, _, _ in LINKS])
def test_canonical_link(url: str, base: str | None, expected: str) -> None:
    assert canonical_link(url, base) == expected


def test_canonical_link_is_idempotent() -> None:
    for url, base, _ in LINKS:
        once = canonical_link(url, base)
        assert canonical_link(once) == once


# -- sanitize_html ------------------------------------------------------------------------


def test_sanitize_keeps_the_allowlist() -> None:
    html = (
        "<h2>Title</h2><p>A <em>b</em> <strong>c</strong> <code>d</code></p>"
        "<ul><li>one</li></ul><ol><li>two</li></ol><blockquote>q</blockquote>"
        "<pre>pre</pre><table><tr><th>h</th><td>d</td></tr></table><hr><br>"
        '<img src="https://x.example/i.png" alt="i" width="10" height="5">'
    )
    out = sanitize_html(html)
    for tag in ("<h2>", "<em>", "<strong>", "<code>", "<ul>", "<ol>", "<li>", "<blockquote>"):
        assert tag in out
    for tag in ("<pre>", "<table>", "<th>", "<td>", "<hr>", "<br>"):
        assert tag in out
    assert '<img src="https://x.example/i.png" alt="i" width="10" height="5">' in out


def test_sanitize_drops_scripts_styles_handlers_and_javascript() -> None:
    html = (
        '<p onclick="evil()" style="color:red" class="x">hi</p>'
        "<script>alert(1)</script><style>p{}</style><iframe src='https://e.vil'></iframe>"
        '<a href="javascript:alert(1)">a</a><a href=" JaVaScRiPt:alert(2)">b</a>'
        '<a href="java&#x09;script:alert(3)">c</a><img src="data:image/png;base64,AA" onerror=x>'
        '<form action="/x"><input value="y"></form>'
    )
    out = sanitize_html(html)
    assert out.startswith("<p>hi</p>")
    for bad in (
        "script",
        "alert",
        "style",
        "onclick",
        "onerror",
        "iframe",
        "data:",
        "form",
        "input",
    ):
        assert bad not in out.lower()


def test_sanitize_links_get_rel_and_absolute_urls() -> None:
    out = sanitize_html(
        '<a href="/about" title="t" target="_blank">x</a><img src="i.png">',
        base="https://blog.example.com/posts/1",
    )
    assert out == (
        '<a href="https://blog.example.com/about" title="t" rel="noopener noreferrer">x</a>'
        '<img src="https://blog.example.com/posts/i.png">'
    )


def test_sanitize_without_base_keeps_relative_urls() -> None:
    assert sanitize_html('<a href="/x">x</a>') == '<a href="/x" rel="noopener noreferrer">x</a>'


def test_sanitize_empty() -> None:
    assert sanitize_html("") == ""
    assert sanitize_html("   ") == ""


# -- html_to_text -------------------------------------------------------------------------


def test_html_to_text_blocks_and_entities() -> None:
    html = (
        "<h1>Title</h1><p>Hello&nbsp;<b>world</b> &amp; &lt;friends&gt; &#8217;</p>"
        "<p>two<br>lines</p><ul><li>a</li><li>b</li></ul><script>x()</script>tail"
    )
    assert (
        html_to_text(html) == "Title\n\nHello world & <friends> ’\n\ntwo\nlines\n\n• a\n• b\ntail"
    )


def test_html_to_text_collapses_whitespace() -> None:
    # In HTML a line break in the source is a space; a block ends a paragraph.
    assert html_to_text("  a \t\n  b   <p>  c  </p>\r\n\r\n\r\n d ") == "a b\n\nc\n\nd"


def test_html_to_text_plain_text_with_angle_brackets() -> None:
    assert html_to_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"


def test_html_to_text_of_a_long_document_is_its_paragraphs() -> None:
    # Its speed on large and hostile input is measured in bench/, not here.
    one = "<div><p>Some <a href='https://x.example/'>linked</a> text &amp; more.</p></div>"
    assert html_to_text(one * 2000) == "\n\n".join(["Some linked text & more."] * 2000)


def test_text_to_html_round_trip() -> None:
    assert text_to_html("a < b\nc\n\nd") == "<p>a &lt; b<br>c</p><p>d</p>"
    assert html_to_text(text_to_html("a < b\nc\n\nd")) == "a < b\nc\n\nd"


# -- parse_datetime -----------------------------------------------------------------------

DATES = [
    ("Tue, 03 Jun 2003 09:39:21 GMT", datetime(2003, 6, 3, 9, 39, 21, tzinfo=UTC)),
    ("Mon, 27 Apr 2026 00:00:00 -0400", datetime(2026, 4, 27, 4, tzinfo=UTC)),
    ("27 Apr 2026 00:00:00 +0200", datetime(2026, 4, 26, 22, tzinfo=UTC)),
    ("2026-01-15T08:30:00+01:00", datetime(2026, 1, 15, 7, 30, tzinfo=UTC)),
    ("2026-01-15T08:30:00Z", datetime(2026, 1, 15, 8, 30, tzinfo=UTC)),
    ("2026-05-30T00:00:00.000Z", datetime(2026, 5, 30, tzinfo=UTC)),
    ("2026-01-15", datetime(2026, 1, 15, tzinfo=UTC)),
    ("2026-01-15 08:30:00", datetime(2026, 1, 15, 8, 30, tzinfo=UTC)),
    (
        time.struct_time((2025, 12, 13, 22, 58, 29, 5, 347, 0)),
        datetime(2025, 12, 13, 22, 58, 29, tzinfo=UTC),
    ),
    (datetime(2026, 1, 1, 12), datetime(2026, 1, 1, 12, tzinfo=UTC)),
    (
        datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 1, 1, 10, tzinfo=UTC),
    ),
    (date(2026, 1, 2), datetime(2026, 1, 2, tzinfo=UTC)),
    (0, datetime(1970, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), DATES, ids=[repr(v) for v, _ in DATES])
def test_parse_datetime(value: object, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo == UTC


GARBAGE = [
    None,
    "",
    "   ",
    "garbage",
    "32 Foo 2026",
    "2026-13-45",
    True,
    [],
    {},
    1e300,
    "9" * 500,
    b"2026",
]


@pytest.mark.parametrize("value", GARBAGE, ids=[repr(v)[:20] for v in GARBAGE])
def test_parse_datetime_garbage_is_none(value: object) -> None:
    assert parse_datetime(value) is None


# -- entry_id, titles, authors --------------------------------------------------------------


def test_entry_id_prefers_guid_then_canonical_link_then_hash() -> None:
    assert entry_id(" guid-1 ", "https://x.example/a", "t", "c") == "guid-1"
    assert entry_id(None, "https://X.example/a?utm_source=1#f", "t", "c") == "https://x.example/a"
    assert entry_id("", "", "t", "c") == entry_id(None, None, "t", "c")
    hashed = entry_id(None, None, "t", "c")
    assert hashed.startswith("sha1:") and len(hashed) == 45
    assert hashed != entry_id(None, None, "t", "d")
    assert entry_id(None, None, "\ud800", "").startswith("sha1:")


def test_clean_title() -> None:
    assert clean_title("  A &amp; <b>B</b>\r\n  C\x00 ") == "A & B C"
    assert clean_title("Don&#x27;t &lt;panic&gt;") == "Don't <panic>"
    assert clean_title("Subject\r\nBcc: evil@example.com") == "Subject Bcc: evil@example.com"
    assert clean_title("") == ""


def test_clean_author() -> None:
    assert clean_author("writer@example.com (Writer)") == "Writer"
    assert clean_author("Jo Bloggs") == "Jo Bloggs"
    assert clean_author("  ") is None
    assert clean_author(None) is None


# -- make_entry -----------------------------------------------------------------------------


def test_make_entry_normalizes_everything() -> None:
    entry = make_entry(
        source="s",
        title=" Hello &amp; <i>bye</i> ",
        link="/p?utm_source=x",
        base="https://Blog.example.com/feed",
        content_html='<p>Body <a href="/q">q</a></p><script>x</script>',
        author="a@b.c (Ann)",
        published="Tue, 03 Jun 2003 09:39:21 GMT",
        tags=["x", " x ", "", "y"],
        comments_url="/p#comments",
    )
    assert entry.title == "Hello & bye"
    assert entry.link == "https://blog.example.com/p"
    assert entry.id == "https://blog.example.com/p"
    assert entry.content_html == (
        '<p>Body <a href="https://blog.example.com/q" rel="noopener noreferrer">q</a></p>'
    )
    assert entry.text == "Body q"
    assert entry.author == "Ann"
    assert entry.published == entry.updated == datetime(2003, 6, 3, 9, 39, 21, tzinfo=UTC)
    assert entry.tags == ("x", "y")
    assert entry.comments_url == "https://blog.example.com/p"
    assert entry.engagement == Engagement()


def test_make_entry_without_link_or_guid_hashes() -> None:
    a = make_entry(source="s", title="t", content_text="body")
    b = make_entry(source="s", title="t", content_text="body")
    assert a.id == b.id and a.id.startswith("sha1:")
    assert a.link == "" and a.published is None and a.content_html == "<p>body</p>"


def test_make_entry_guid_equal_to_link_uses_canonical_link() -> None:
    link = "https://x.example/a?utm_source=rss"
    assert make_entry(source="s", title="t", link=link, guid=link).id == "https://x.example/a"


def test_arxiv_announce_preamble_is_dropped_from_text() -> None:
    from newsletter.sources.normalize import make_entry

    entry = make_entry(
        source="arxiv",
        title="A paper",
        link="https://arxiv.org/abs/2503.10004v1",
        content_text="arXiv:2503.10004v1 Announce Type: replace-cross \nAbstract: We study X.",
    )
    assert entry.text == "We study X."
