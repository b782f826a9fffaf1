"""OPML: reading what feed readers export, writing what they import, round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from newsletter.errors import ConfigError
from newsletter.models import Source, SourceKind
from newsletter.sources.opml import read_opml, slugify, write_opml

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Tech" title="Tech">
      <outline type="rss" text="Hacker News" title="Hacker News"
               xmlUrl="https://news.ycombinator.com/rss" htmlUrl="https://news.ycombinator.com/"/>
      <outline text="Deeper">
        <outline type="rss" text="Daring Fireball" xmlUrl="https://daringfireball.net/feeds/json"/>
      </outline>
    </outline>
    <outline text="Hacker News" xmlurl="https://hnrss.org/frontpage"/>
    <outline text="Caf\xc3\xa9 Cr\xc3\xa8me!" xmlUrl="https://cafe.example.fr/rss"/>
    <outline text="" xmlUrl="https://www.example.org/feed.xml"/>
    <outline text="A folder with no feeds"/>
    <outline text="A web page" type="link" url="https://example.com/"/>
  </body>
</opml>
"""


def test_read_nested_outlines_with_unique_slug_names() -> None:
    sources = read_opml(READER_EXPORT, path="subs.opml")
    assert [(s.name, s.url, s.title) for s in sources] == [
        ("hacker-news", "https://news.ycombinator.com/rss", "Hacker News"),
        ("daring-fireball", "https://daringfireball.net/feeds/json", "Daring Fireball"),
        ("hacker-news-2", "https://hnrss.org/frontpage", "Hacker News"),
        ("cafe-creme", "https://cafe.example.fr/rss", "Café Crème!"),
        ("example-org", "https://www.example.org/feed.xml", None),
    ]
    assert all(s.kind == "auto" and s.weight == 1.0 for s in sources)


def test_round_trip() -> None:
    sources = [
        Source("hn", "https://news.ycombinator.com/rss", title="Hacker News"),
        Source("papers", "https://huggingface.co/api/daily_papers", kind="hf-papers", weight=2.5),
        Source("fireball", "https://daringfireball.net/feeds/json", kind="feed", weight=0.5),
        Source("amp", "https://x.example/rss?a=1&b=<2>", title='Quotes " & <angles>'),
    ]
    data = write_opml(sources, title="demo")
    assert read_opml(data) == sources
    assert write_opml(read_opml(data), title="demo") == data


def test_written_opml_is_opml_2() -> None:
    data = write_opml([Source("hn", "https://news.ycombinator.com/rss", title="Hacker News")])
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "newsletter sources"
    outline = root.find("body/outline")
    assert outline is not None
    assert outline.get("type") == "rss"
    assert outline.get("text") == "Hacker News"
    assert outline.get("xmlUrl") == "https://news.ycombinator.com/rss"


def test_characters_xml_cannot_hold_are_dropped() -> None:
    data = write_opml(
        [Source("x", "https://x.example/", title="bell\x07 and \x00nul")], title="t\x1b"
    )
    assert read_opml(data)[0].title == "bell and nul"


def test_empty_list_round_trips() -> None:
    assert read_opml(write_opml([])) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not well-formed OPML"),
        (b"<opml><body><outline", "not well-formed OPML"),
        (b"<rss version='2.0'><channel/></rss>", "root element is <rss>"),
        (b"\xff\xfe garbage", "not well-formed OPML"),
    ],
    ids=["empty", "truncated", "not-opml", "garbage"],
)
def test_malformed_opml_names_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_opml(data, path="feeds/subs.opml")
    assert str(info.value).startswith("feeds/subs.opml")
    assert message in str(info.value)


def test_syntax_error_gives_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        read_opml(b"<opml>\n<body>\n<outline text='x' xmlUrl='y'>\n</body></opml>", path="a.opml")
    assert info.value.line == 4
    assert str(info.value).startswith("a.opml, line 4: ")


@pytest.mark.parametrize(
    ("attrs", "setting"),
    [('kind="podcast"', "kind"), ('weight="heavy"', "weight"), ('weight="-1"', "weight")],
)
def test_bad_outline_settings_name_file_line_and_setting(attrs: str, setting: str) -> None:
    outline = f'<outline text="X" xmlUrl="https://x/" {attrs}/>'
    data = f'<opml version="2.0"><body>\n{outline}\n</body></opml>'
    with pytest.raises(ConfigError) as info:
        read_opml(data.encode(), path="s.opml")
    assert info.value.path == "s.opml" and info.value.line == 2
    assert info.value.setting == f"outline 'X' {setting}"


def test_entity_bombs_are_refused() -> None:
    entities = "".join(
        f'<!ENTITY l{i} "{(f"&l{i - 1};" * 10) if i else "lol"}">' for i in range(10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE opml [{entities}]><opml version="2.0"><body>'
        '<outline text="&l9;" xmlUrl="https://x/"/></body></opml>'
    ).encode()
    with pytest.raises(ConfigError, match="amplification"):
        read_opml(data, path="bomb.opml")


def test_slugify() -> None:
    assert slugify("Hacker News!") == "hacker-news"
    assert slugify("  Ünïcödé — feed  ") == "unicode-feed"
    assert slugify("日本語") == "source"
    assert slugify("x" * 100) == "x" * 60


XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    max_size=30,
).map(lambda s: re.sub(r"[\x01-\x08\x0b\x0c\x0e-\x1f]", "", s))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            XML_TEXT.map(slugify),
            XML_TEXT.filter(str.strip).map(str.strip),
            st.one_of(st.none(), XML_TEXT.map(str.strip).filter(bool)),
            st.sampled_from(["auto", "feed", "hf-papers"]),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_round_trip_property(
    rows: list[tuple[str, str, str | None, SourceKind, float]],
) -> None:
    sources = [
        Source(name, url, kind=kind, weight=weight, title=title if title != name else None)
        for name, url, title, kind, weight in rows
    ]
    assert read_opml(write_opml(sources)) == sources
