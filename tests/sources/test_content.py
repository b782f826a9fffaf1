"""What a reader receives, on the way in (issue 10): each symptom found on real feeds,
reproduced on the real captures and on small feeds of the same shape (HANDMADE.md).

Boilerplate ("Comments", "Continue reading…", "Release Notes / Released on…"), bullets
that ran together, tracking parameters, YouTube's description and thumbnail, relative
links under xml:base, and Markdown shown raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from newsletter.models import Entry, ParsedSource
from newsletter.sources.links import canonical_link, strip_tracking
from newsletter.sources.markup import (
    html_to_text,
    looks_like_markdown,
    markdown_to_html,
    sanitize_html,
    text_to_html,
)
from newsletter.sources.parse import parse_feed_with, parse_source
from tests.sources.servers import fetch_one

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"


def parse(name: str, url: str = "") -> ParsedSource:
    return parse_source((FEEDS / name).read_bytes(), source="src", url=url)


def words(entry: Entry) -> str:
    """The entry's text and HTML, lowercased: where boilerplate must not be."""
    return f"{entry.text}\n{entry.content_html}".lower()


# -- boilerplate on the real captures ---------------------------------------------------------


def test_hacker_news_items_are_not_summarized_as_comments() -> None:
    entries = parse("hackernews-frontpage.rss.xml").entries
    assert len(entries) == 30
    for entry in entries:
        assert entry.text == "" and entry.content_html == ""
        # The discussion is still there, as the comments link.
        assert entry.comments_url and "news.ycombinator.com/item?id=" in entry.comments_url


def test_github_releases_lose_release_notes_released_on_and_the_download_table() -> None:
    entries = parse("github-releases-astral-sh-ty.atom.xml").entries
    assert len(entries) == 10
    for entry in entries:
        assert not entry.text.startswith(("Release Notes", "Released on")), entry.title
        assert "<h2>Release Notes</h2>" not in entry.content_html
        assert "checksum" not in words(entry)
        assert "Install prebuilt binaries" not in entry.text
        # The release's own content stays: its contributors and its sections' headings.
        assert "@" in entry.text and "<li>" in entry.content_html
    first = entries[0]
    assert first.text.startswith("Bug fixes\n\n• Improve solving of a type variable")
    assert first.content_html.startswith("<h3>Bug fixes</h3>")
    assert first.text.endswith("• @Gankra")


def test_a_common_heading_after_the_template_stays() -> None:
    """ "Bug fixes" opens 8 of the 10 releases once the template is gone: common, but not
    the template, so every release keeps its first heading."""
    entries = parse("github-releases-astral-sh-ty.atom.xml").entries
    firsts = [e.text.split("\n")[0] for e in entries]
    assert firsts.count("Bug fixes") == 8
    assert {"LSP server", "Bug Fix"} <= set(firsts)


def test_daring_fireball_star_signature_goes() -> None:
    entries = parse("jsonfeed-v1-daringfireball.json").entries
    assert len(entries) == 48
    assert not any(e.text.endswith("★") for e in entries)
    assert not any(e.content_html.rstrip().endswith("★</p>") for e in entries)
    # The posts themselves are whole.
    assert entries[1].text.endswith("But it is intriguing.")


def test_papers_keep_their_text() -> None:
    before = [
        e.text
        for e in parse_feed_with(
            "fastfeedparser", _read("arxiv-api-query.atom.xml"), source="src"
        ).entries
    ]
    assert [e.text for e in parse("arxiv-api-query.atom.xml").entries] == before


def _read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


# -- boilerplate and text on feeds of the same shape -------------------------------------------


def test_guardian_bullets_stay_apart_and_continue_reading_goes() -> None:
    entries = parse("guardian-world-handmade.rss.xml").entries
    for entry in entries:
        assert "continue reading" not in words(entry)
    first = entries[0]
    assert first.text == (
        "Relief agencies say roads are open again but thousands remain cut off\n\n"
        "• Flood maps: where the water rose\n"
        "• What we know so far\n\n"
        "The first aid convoys reached the valley on Monday, a week after floods closed the "
        "only road."
    )
    assert first.content_html.endswith("closed the only road.</p>")
    assert entries[2].text.splitlines()[-2:] == [
        "• Vienna to Zurich three nights a week",
        "• Munich to Milan from the spring",
    ]


def test_medium_continue_reading_and_source_parameter_go() -> None:
    parsed = parse("medium-handmade.rss.xml")
    assert parsed.info.link == "https://medium.com/@ada.example"
    for entry in parsed.entries:
        assert "continue reading" not in words(entry)
        assert "source=rss" not in entry.link and "source=rss" not in entry.content_html
    first = parsed.entries[0]
    assert (
        first.text == "We cached the dependency layer and stopped rebuilding what had not changed."
    )
    # The image is content: it stays, with its link cleaned.
    assert '<img src="https://cdn-images-1.medium.com/max/1024/1*build.png"' in first.content_html
    assert 'href="https://medium.com/@ada.example/why-our-build-got-3x-faster-5c1d2e3f4a5b"' in (
        first.content_html
    )


def test_wordpress_appeared_first_on_and_cut_excerpts() -> None:
    garlic, seed = parse("wordpress-handmade.rss.xml").entries
    assert "appeared first on" not in words(garlic)
    assert garlic.text.endswith("Mulch them with straw once the shoots show.")
    assert garlic.link == "https://gardennotes.example/2026/11/planting-garlic/"
    assert seed.text == "Ferment the pulp for three days, rinse and dry the seed on a plate…"
    assert "[" not in seed.content_html


# -- YouTube ----------------------------------------------------------------------------------


def test_youtube_description_is_the_text_and_thumbnail_the_media() -> None:
    parsed = parse("youtube-handmade.atom.xml")
    first, second = parsed.entries
    assert first.text == (
        "We open the new console and find a bigger fan, a second SSD slot and a redesigned "
        "power supply.\nParts list: https://tinkerbench.example/parts"
    )
    assert first.media is not None
    assert (first.media.image, first.media.image_width, first.media.image_height) == (
        "https://i3.ytimg.com/vi/Xk3aP9tB2cQ/hqdefault.jpg",
        480,
        360,
    )
    assert first.media.link("video") == "https://www.youtube.com/watch?v=Xk3aP9tB2cQ"
    assert second.text == "A hot-swap board, switches and keycaps: the whole build at speed."
    assert second.media is not None and second.media.image_width == 480


def test_youtube_description_from_the_fast_tier_too() -> None:
    """If feedparser cannot read a video feed, fastfeedparser's reading still has the
    description (it keeps it with the media:content) and the video link."""
    parsed = parse_feed_with("fastfeedparser", _read("youtube-handmade.atom.xml"), source="yt")
    first = parsed.entries[0]
    assert first.text.startswith("We open the new console")
    assert first.media is not None
    assert first.media.link("video") == "https://www.youtube.com/watch?v=Xk3aP9tB2cQ"


def test_entries_that_are_not_videos_have_no_media() -> None:
    assert all(e.media is None for e in parse("guardian-world-handmade.rss.xml").entries)


# -- tracking parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://medium.com/@a/post-5c1d?source=rss----5517fd7b58a6---4",
            "https://medium.com/@a/post-5c1d",
        ),
        ("https://medium.com/p/1?source=rss-3f2a------2&x=1", "https://medium.com/p/1?x=1"),
        ("https://shop.example/a?source=homepage", "https://shop.example/a?source=homepage"),
        (
            "https://x.example/?utm_source=a&mc_cid=1&mc_eid=2&gclid=3&fbclid=4&q=5",
            "https://x.example/?q=5",
        ),
        ("https://x.example/a?ref=rss", "https://x.example/a"),
    ],
    ids=["medium-collection", "medium-user", "other-source", "mail-and-ads", "ref"],
)
def test_tracking_parameters_leave_links(url: str, expected: str) -> None:
    assert canonical_link(url) == expected


def test_tracking_parameters_leave_links_inside_content() -> None:
    html = '<a href="https://x.example/a?utm_medium=rss&amp;id=2#part">a</a>'
    assert 'href="https://x.example/a?id=2#part"' in sanitize_html(html)
    assert strip_tracking("https://x.example/a?b=1#frag") == "https://x.example/a?b=1#frag"
    assert strip_tracking("/a?source=rss-x#f") == "/a#f"


# -- relative links ---------------------------------------------------------------------------


def test_nested_xml_base_makes_every_link_absolute() -> None:
    first, second = parse("atom-xml-base-handmade.xml").entries
    assert first.link == "https://dbnotes.example/blog/2012/07/10/utf8mb4"
    assert 'href="https://dbnotes.example/blog/2012/07/09/collations"' in first.content_html
    assert 'src="https://dbnotes.example/img/utf8mb4.png"' in first.content_html
    assert second.link == "https://dbnotes.example/blog/2012/06/01/collations"
    assert 'href="https://dbnotes.example/blog/2012/07/10/utf8mb4"' in second.content_html


def test_the_fast_tier_ignores_xml_base() -> None:
    """Why feeds with xml:base go to feedparser first (fails if fastfeedparser learns it)."""
    fast = parse_feed_with("fastfeedparser", _read("atom-xml-base-handmade.xml"), source="s")
    assert fast.entries[1].link != "https://dbnotes.example/blog/2012/06/01/collations"


RELATIVE_BASE_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/">
  <title>Relative</title><id>urn:x</id><updated>2012-07-10T00:00:00Z</updated>
  <entry><title>utf8mb4</title><link href="/blog/2012/07/10/utf8mb4"/><id>urn:x:1</id>
    <updated>2012-07-10T00:00:00Z</updated>
    <content type="html">&lt;p&gt;See &lt;a href="notes/x"&gt;this&lt;/a&gt;&lt;/p&gt;</content>
  </entry>
</feed>"""


def test_a_relative_xml_base_resolves_against_the_url_the_feed_came_from(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/feeds/atom.xml").respond_with_data(
        RELATIVE_BASE_FEED, content_type="application/atom+xml"
    )
    result = fetch_one(httpserver.url_for("/feeds/atom.xml"))
    assert result.body is not None and result.final_url
    parsed = parse_source(result.body, source="s", url=result.final_url)
    origin = httpserver.url_for("/").rstrip("/")
    [entry] = parsed.entries
    assert entry.link == f"{origin}/blog/2012/07/10/utf8mb4"
    assert f'href="{origin}/notes/x"' in entry.content_html


def test_relative_links_of_a_local_file_resolve_against_the_feeds_site(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(
        b'<rss version="2.0"><channel><title>t</title><link>https://site.example/</link>'
        b"<item><title>a</title><link>/posts/1</link>"
        b"<description>&lt;a href=&quot;/about&quot;&gt;about&lt;/a&gt;</description>"
        b"</item></channel></rss>"
    )
    [entry] = parse_source(feed.read_bytes(), source="s", url=str(feed)).entries
    assert entry.link == "https://site.example/posts/1"
    assert 'href="https://site.example/about"' in entry.content_html


# -- Markdown ---------------------------------------------------------------------------------


def test_json_feed_markdown_content_text_is_rendered() -> None:
    parsed = parse(
        "jsonfeed-v1.1-de-markdown-handmade.json", url="https://werkstatt.example/feed.json"
    )
    release, plain = parsed.entries
    assert release.content_html.startswith("<h2>Neu in 0.0.1</h2>")
    assert "<strong>PDF</strong>" in release.content_html
    assert "<code>CSV</code>" in release.content_html
    assert 'href="https://werkstatt.example/anleitung/export"' in release.content_html
    for raw in ("**", "](", "\\[", "## "):
        assert raw not in release.text
    assert "• Die Suche findet jetzt auch Umlaute (Dank an @renovate[bot])" in release.text
    # Plain text is not Markdown: it stays text, line break and all.
    assert plain.content_html == (
        "<p>Die Bank ist 1,20 m lang und klappt an die Wand.<br>"
        "Maße und Holzliste folgen nächste Woche.</p>"
    )


def test_release_notes_in_markdown_are_rendered() -> None:
    notes, plain = parse("releases-markdown-handmade.atom.xml").entries
    assert notes.content_html.startswith("<h2>What's Changed</h2>\n<ul>")
    assert "<code>--dry-run</code>" in notes.content_html
    assert "<strong>Full Changelog</strong>" in notes.content_html
    assert notes.text.splitlines()[2].startswith("• Add a --dry-run flag by @octo")
    assert plain.content_html == "<p>A plain note: this release only updates dependencies.</p>"


def test_markdown_is_sanitized_like_html() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {
                "id": "1",
                "url": "https://x.example/1",
                "title": "t",
                "content_text": "## Hi\n\n[click](javascript:alert(1)) <script>alert(2)</script>"
                "\n\n- a\n- b",
            }
        ],
    }
    [entry] = parse_source(json.dumps(feed).encode(), source="s").entries
    assert entry.content_html.startswith("<h2>Hi</h2>")
    for bad in ("javascript:", "<script"):
        assert bad not in entry.content_html
    # Raw HTML in text is text: shown, never run.
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in entry.content_html


@pytest.mark.parametrize(
    "text",
    ["#hashtag day", "1 * 2 = 2", "- one dash line", "Price: $5 (or less)", "snake_case_name"],
)
def test_plain_text_is_not_taken_for_markdown(text: str) -> None:
    assert not looks_like_markdown(text)


@pytest.mark.parametrize(
    "text",
    ["## Fixes", "see [docs](https://x.example/d)", "**bold** claim", "run `make`", "- a\n- b"],
)
def test_markdown_is_recognized(text: str) -> None:
    assert looks_like_markdown(text)


# -- HTML to text -----------------------------------------------------------------------------


def test_html_to_text_numbers_ordered_lists_and_nests_bullets() -> None:
    html = "<p>Steps:</p><ol><li>one</li><li>two<ul><li>inner</li></ul></li></ol><p>End.</p>"
    assert html_to_text(html) == "Steps:\n\n1. one\n2. two\n• inner\n\nEnd."


def test_html_to_text_tables_read_by_row() -> None:
    html = (
        "<table><tr><th>File</th><th>Platform</th></tr><tr><td>a.zip</td><td>x64</td></tr></table>"
    )
    assert html_to_text(html) == "File Platform\na.zip x64"


@pytest.mark.parametrize(
    "text",
    [
        "## h\n" + "[![*_`" * 3000,  # unclosed brackets: Python-Markdown is quadratic on them
        "## h\n" + "[](<" * 3000,  # an unclosed "](": the same
        "## h\n" + "".join("    " * depth + "- item\n" for depth in range(400)),  # recursion
        "## h\n" + "x" * 30_000,  # longer than MAX_MARKDOWN
    ],
    ids=["brackets", "parentheses", "nesting", "long"],
)
def test_markdown_that_python_markdown_cannot_render_quickly_stays_text(text: str) -> None:
    assert not looks_like_markdown(text)
    assert markdown_to_html(text) == text_to_html(text)


# -- the fast path of html_to_text ----------------------------------------------------------

INLINE = [
    "word", "two words", " ", "\n", "  \n\t", "&amp;", "&lt;", "é", "’", ".", ",", "<br>",
    "<a href='https://x.example/'>a link</a>", "<b>bold</b>", "<em>it</em>", "<code>f()</code>",
]  # fmt: skip
BLOCKS = ["<p>{}</p>", "<h2>{}</h2>", "<blockquote><p>{}</p></blockquote>", "<div>{}</div>", "{}"]
inline_runs = st.lists(st.sampled_from(INLINE), max_size=8).map("".join)
flow_html = st.lists(
    st.tuples(st.sampled_from(BLOCKS), inline_runs).map(lambda b: b[0].format(b[1])),
    min_size=1,
    max_size=6,
).map("".join)


def _lines(text: str) -> list[str]:
    """The lines of a text, blank ones left out: inscriptis puts one line break around a
    ``<div>`` or ``<blockquote>`` where the flow path leaves a blank line."""
    return [line for line in text.split("\n") if line]


def _inscriptis(html: str) -> list[str]:
    from newsletter.sources import markup

    return _lines(markup.normalize_text(markup._layout_text(html)))


def _fixture_html() -> list[str]:
    out = []
    for path in sorted(FEEDS.iterdir()):
        if path.suffix not in (".xml", ".json"):
            continue
        out += [e.content_html for e in parse(path.name).entries if "<" in e.content_html]
    return out


def test_the_flow_path_reads_every_fixture_entry_as_inscriptis_does() -> None:
    """The same lines (``_lines``) from the fast path as from inscriptis."""
    from newsletter.sources import markup

    flow = [h for h in _fixture_html() if not markup._LAYOUT_TAG.search(h)]
    assert len(flow) > 50  # most entries take the fast path
    for html in flow:
        assert _lines(html_to_text(html)) == _inscriptis(html), html[:200]


@settings(max_examples=150, deadline=None)
@given(flow_html)
def test_the_flow_path_reads_generated_html_as_inscriptis_does(html: str) -> None:
    # Paragraphs, headings, quotes and divs of inline text, as feeds write them.
    if "<" not in html:
        html = "<p>" + html + "</p>"  # text without a tag is text (line breaks kept)
    assert _lines(html_to_text(html)) == _inscriptis(html)


def test_hnrss_lines_go_but_their_counts_stay() -> None:
    data = (
        b'<rss version="2.0"><channel><title>hnrss</title><item><title>Show HN: x</title>'
        b"<link>https://x.example/</link><description><![CDATA[<p>Article URL: "
        b'<a href="https://x.example/">https://x.example/</a></p><p>Comments URL: '
        b'<a href="https://news.ycombinator.com/item?id=1">https://news.ycombinator.com/'
        b"item?id=1</a></p><p>Points: 120</p><p># Comments: 45</p>]]></description>"
        b"<comments>https://news.ycombinator.com/item?id=1</comments></item></channel></rss>"
    )
    [entry] = parse_source(data, source="s").entries
    assert (entry.text, entry.content_html) == ("", "")
    assert (entry.engagement.points, entry.engagement.comments) == (120, 45)


def test_substack_buttons_go() -> None:
    html = (
        "<p>What I learned this week.</p><p><a href='https://x.substack.com/subscribe'>"
        "<span>Subscribe now</span></a></p><p>Thanks for reading Field Notes! Subscribe for "
        "free to receive new posts and support my work.</p>"
    )
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Field Notes",
        "items": [{"id": "1", "url": "https://x.substack.com/p/1", "content_html": html}],
    }
    [entry] = parse_source(json.dumps(feed).encode(), source="s").entries
    assert entry.text == "What I learned this week."
    assert entry.content_html == "<p>What I learned this week.</p>"
