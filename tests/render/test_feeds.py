"""What the RSS and Atom feeds of a digest say: authors, dates, counts, source titles and
the link to themselves (each a symptom users found)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import feedparser
import pytest
from lxml import etree

from newsletter.models import Digest, Engagement, Item, Section, Source
from newsletter.render.feeds import counted, render_feed
from tests.factories import NOW, make_entry
from tests.render.feed_rules import ATOM, DC, check_feed

SOURCES = {
    "trending": Source("trending", "https://huggingface.co/papers", title="Trending papers"),
    "arxiv-cs": Source("arxiv-cs", "https://rss.arxiv.org/rss/cs", title="arXiv cs"),
}


def digest_of(*items: Item, **fields: object) -> Digest:
    return Digest(
        name="daily",
        title="Daily",
        generated_at=NOW,
        sections=(Section("Models", items, key="models"),),
        sources=SOURCES,
        **fields,  # type: ignore[arg-type]
    )


def paper(n: int, **fields: object) -> Item:
    entry = make_entry(
        n,
        source="trending",
        title=f"Paper {n}",
        link=f"https://huggingface.co/papers/{n}",
        now=NOW,
        hours_ago=5,
        **fields,
    )
    return Item(entry=entry, summary="What it found.")


def tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_every_entry_has_an_author(fmt: str) -> None:
    named = paper(1, author="Ada Lovelace")
    nameless = paper(2)
    data = render_feed(digest_of(named, nameless, author="The Editors"), fmt)  # type: ignore[arg-type]
    assert check_feed(data) == []
    parsed = feedparser.parse(data)
    authors = {e.title: e.get("author") for e in parsed.entries}
    # The nameless entry is the digest's: Atom says so on it, RSS with dc:creator.
    assert authors["Paper 1"] == "Ada Lovelace"
    assert authors["Paper 2"] == "The Editors"
    if fmt == "rss":
        creators = [el.text for el in tree(data).iter(f"{{{DC}}}creator")]
        assert creators == ["Ada Lovelace", "The Editors"]
        assert tree(data).find(".//item/author") is None  # RSS author must be an email


def test_author_falls_back_to_the_title() -> None:
    data = render_feed(digest_of(paper(1)), "atom")
    assert tree(data).findtext(f"{{{ATOM}}}author/{{{ATOM}}}name") == "Daily"


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_updated_never_before_published(fmt: str) -> None:
    # Feeds in the wild carry a stale <updated> (53 of 60 entries in one edition).
    stale = paper(1, updated=NOW - timedelta(days=30))
    data = render_feed(digest_of(stale), fmt)  # type: ignore[arg-type]
    assert check_feed(data) == []
    if fmt == "atom":
        entry = tree(data).find(f"{{{ATOM}}}entry")
        assert entry is not None
        published = entry.findtext(f"{{{ATOM}}}published")
        updated = entry.findtext(f"{{{ATOM}}}updated")
        assert published is not None and updated is not None
        assert updated >= published


def test_feed_updated_is_not_before_its_entries() -> None:
    future = paper(1, updated=NOW + timedelta(hours=2))
    data = render_feed(digest_of(future), "atom")
    feed_updated = tree(data).findtext(f"{{{ATOM}}}updated")
    entry_updated = tree(data).findtext(f"{{{ATOM}}}entry/{{{ATOM}}}updated")
    assert feed_updated == entry_updated


@pytest.mark.parametrize(
    ("engagement", "expected", "absent"),
    [
        (Engagement(upvotes=1, comments=1), ["1 upvote", "1 comment"], ["1 comments"]),
        (Engagement(points=2, comments=0), ["2 points", "0 comments"], ["2 point "]),
    ],
    ids=["one", "many"],
)
def test_counts_in_the_singular_for_one(
    engagement: Engagement, expected: list[str], absent: list[str]
) -> None:
    data = render_feed(digest_of(paper(1, engagement=engagement)), "rss").decode()
    for text in expected:
        assert text in data
    for text in absent:
        assert text not in data
    assert counted(1, "comment") == "1 comment"
    assert counted(7, "comment") == "7 comments"


def test_sources_by_title_not_name() -> None:
    dup = make_entry(9, source="arxiv-cs", link="https://arxiv.org/abs/9", now=NOW)
    item = replace(paper(1), duplicates=(dup,))
    data = render_feed(digest_of(item), "atom").decode()
    assert "Trending papers" in data and "arXiv cs" in data
    assert "trending" not in data.replace("Trending", "") and "arxiv-cs" not in data


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_links_to_itself(fmt: str) -> None:
    urls = {"rss": "https://news.example.org/daily/feed.xml", "atom": "https://x.org/a.xml"}
    data = render_feed(digest_of(paper(1), feed_urls=urls), fmt)  # type: ignore[arg-type]
    assert check_feed(data) == []
    selfs = [
        link.get("href") for link in tree(data).iter(f"{{{ATOM}}}link") if link.get("rel") == "self"
    ]
    assert selfs == [urls[fmt]]
    parsed = feedparser.parse(data)
    assert parsed.feed.link == "https://example.org/"  # the alternate link stays the site


def test_no_self_link_when_the_url_is_unknown_or_unsafe() -> None:
    bad = {"atom": "javascript:alert(1)"}
    for digest in (digest_of(paper(1)), digest_of(paper(1), feed_urls=bad)):
        data = render_feed(digest, "atom")
        assert not [
            link for link in tree(data).iter(f"{{{ATOM}}}link") if link.get("rel") == "self"
        ]


def test_self_link_may_be_a_file_url() -> None:
    data = render_feed(digest_of(paper(1), feed_urls={"atom": "file:///srv/out/feed.xml"}), "atom")
    assert check_feed(data) == []
    assert b'href="file:///srv/out/feed.xml" rel="self"' in data
