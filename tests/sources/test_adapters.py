"""Paper data kept for cards: every field of Hugging Face's daily-papers list, and the
authors and links of arXiv's feeds (``sources/adapters.py``), on the real captures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.models import EntryMedia, ParsedSource
from newsletter.sources.adapters import with_arxiv_media
from newsletter.sources.parse import parse_source
from newsletter.store.database import Store
from tests.pg import on_both_databases

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
database_url = on_both_databases()
HF = FEEDS / "hf-daily-papers-api.json"


def parse(name: str, *, url: str = "") -> ParsedSource:
    return parse_source((FEEDS / name).read_bytes(), source="s", url=url)


def hf_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(HF.read_text(encoding="utf-8"))
    return items


def test_every_hf_field_a_card_needs_is_mapped() -> None:
    """Each paper of the real capture: thumbnail, authors, organization, paper, PDF, code,
    project and discussion links, ai_summary and ai_keywords, as the list gives them."""
    entries = {e.id: e for e in parse("hf-daily-papers-api.json").entries}
    items = hf_items()
    assert len(entries) == len(items) == 30
    for item in items:
        paper = item["paper"]
        pid = paper["id"]
        media = entries[f"arxiv:{pid}"].media
        assert media is not None, pid
        assert media.image == item["thumbnail"]
        assert media.authors == tuple(a["name"] for a in paper["authors"] if not a["hidden"])
        org = paper.get("organization")
        assert media.organization == (org["fullname"] if org else None)
        page = f"https://huggingface.co/papers/{pid}"
        assert media.link("paper") == page
        assert media.link("discussion") == page
        assert media.link("pdf") == f"https://arxiv.org/pdf/{pid}"
        assert media.link("code") == paper.get("githubRepo")
        assert media.link("project") == paper.get("projectPage")
        assert media.ai_summary == paper["ai_summary"]
        assert media.keywords == tuple(paper["ai_keywords"])
        assert entries[f"arxiv:{pid}"].author == ", ".join(media.authors)


def test_one_hf_paper_card_in_full() -> None:
    """One paper read by eye: it has code and a project page, and no organization."""
    entry = next(e for e in parse("hf-daily-papers-api.json").entries if "2606.10423" in e.id)
    media = entry.media
    assert media is not None
    assert media.links == (
        ("paper", "https://huggingface.co/papers/2606.10423"),
        ("pdf", "https://arxiv.org/pdf/2606.10423"),
        ("code", "https://github.com/jayoohwang1/webchallenger"),
        ("project", "https://jayoohwang1.github.io/webchallenger-site/"),
        ("discussion", "https://huggingface.co/papers/2606.10423"),
    )
    assert media.organization is None
    assert media.image == (
        "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2606.10423.png"
    )
    assert entry.comments_url == entry.link == "https://huggingface.co/papers/2606.10423"


def test_hf_media_survives_the_store_format() -> None:
    """What the store keeps (``to_json``) reads back as the same media."""
    for entry in parse("hf-daily-papers-api.json").entries:
        assert entry.media is not None
        assert EntryMedia.from_json(json.loads(json.dumps(entry.media.to_json()))) == entry.media


def test_paper_cards_are_stored_and_read_back(store: Store) -> None:
    """HF and arXiv cards through the real database (SQLite and PostgreSQL)."""
    parsed = [
        *parse("hf-daily-papers-api.json").entries,
        *parse("arxiv-api-query.atom.xml", url="http://export.arxiv.org/api/query").entries,
    ]
    store.add_entries(parsed, now=datetime(2026, 6, 13, tzinfo=UTC))
    got = {e.key: e for e in store.entries()}
    assert len(got) == len(parsed) == 55
    for entry in parsed:
        assert entry.media is not None
        assert got[entry.key].media == entry.media
        assert got[entry.key].author == entry.author


def test_hostile_hf_fields_are_dropped_not_trusted() -> None:
    """Links must be absolute http(s); odd types are ignored; hidden authors stay hidden;
    an organization with only a short name still names it; video URLs become a link."""
    item = {
        "paper": {
            "id": "2601.00001",
            "title": "A paper",
            "summary": "We show a thing.",
            "authors": [
                {"name": "Ada Lovelace", "hidden": False},
                {"name": "Hidden Person", "hidden": True},
                {"name": 7},
                "not an author",
            ],
            "githubRepo": "javascript:alert(1)",
            "projectPage": "/relative/page",
            "organization": {"name": "acme"},
            "ai_summary": 42,
            "ai_keywords": ["graphs", 3, " ", "trees"],
            "mediaUrls": ["https://cdn.example.org/demo.mp4", "ftp://x/y.mp4"],
        },
        "thumbnail": "data:image/png;base64,AAAA",
        "numComments": "5",
    }
    parsed = parse_source(json.dumps([item]).encode(), source="hf", kind="hf-papers")
    (entry,) = parsed.entries
    media = entry.media
    assert media is not None
    assert media.authors == ("Ada Lovelace",)
    assert media.image is None
    assert media.link("code") is None
    assert media.link("project") is None
    assert media.link("video") == "https://cdn.example.org/demo.mp4"
    assert media.organization == "acme"
    assert media.ai_summary is None
    assert media.keywords == ("graphs", "trees")
    assert entry.engagement.comments == 5


def test_a_paper_without_dates_is_dated_when_first_seen() -> None:
    """The demo's papers carry no dates: the entry has none and reads as first seen."""
    item = {"paper": {"id": "2601.00002", "title": "Undated", "summary": "Text."}}
    (entry,) = parse_source(json.dumps([item]).encode(), source="hf", kind="hf-papers").entries
    assert entry.published is None and entry.updated is None


def test_arxiv_rss_gives_every_author_and_the_paper_links() -> None:
    parsed = parse("arxiv-rss-cs.AI.xml", url="https://rss.arxiv.org/rss/cs.AI")
    first = parsed.entries[0]
    assert first.media is not None
    assert first.media.authors == ("Michael Cooper", "Samuel Cooper")
    assert first.media.links == (
        ("paper", "https://arxiv.org/abs/2604.21935"),
        ("pdf", "https://arxiv.org/pdf/2604.21935"),
    )
    assert first.author == "Michael Cooper, Samuel Cooper"
    second = parsed.entries[1].media
    assert second is not None and len(second.authors) == 18
    assert second.authors[0] == "Lianrui Zuo" and second.authors[-1] == "Bennett A. Landman"


def test_arxiv_api_atom_keeps_all_authors_the_feed_parser_drops() -> None:
    """The API lists one <author> per person; the parser keeps the first, we keep all."""
    parsed = parse("arxiv-api-query.atom.xml", url="http://export.arxiv.org/api/query")
    first = parsed.entries[0]
    assert first.media is not None
    assert first.media.authors == (
        "Jonathan J. Heckman",
        "Shani Meynet",
        "Alessandro Mininno",
        "Gary Shiu",
    )
    assert first.author == "Jonathan J. Heckman, Shani Meynet, Alessandro Mininno, Gary Shiu"
    assert first.media.link("pdf") == "https://arxiv.org/pdf/2607.28628v1"
    assert all(e.media and e.media.authors and e.media.link("paper") for e in parsed.entries)


def test_feeds_that_are_not_papers_get_no_media() -> None:
    for name in ("hackernews-frontpage.rss.xml", "rss2-spec-sample.xml"):
        assert all(e.media is None for e in parse(name).entries), name


def test_an_arxiv_link_elsewhere_gets_links_but_not_the_posters_name_as_authors() -> None:
    """A blog or aggregator entry that links an arXiv paper: its author is whoever posted
    it, so only the paper's links are added."""
    parsed = parse("arxiv-rss-cs.AI.xml")  # no URL given, and a channel link on arxiv.org
    blog = replace(parsed, info=replace(parsed.info, link="https://blog.example.org/"))
    entry = with_arxiv_media(
        replace(blog, entries=tuple(replace(e, media=None) for e in blog.entries)), b""
    ).entries[0]
    assert entry.media is not None
    assert entry.media.authors == ()
    assert entry.media.link("pdf") == "https://arxiv.org/pdf/2604.21935"
    assert entry.author == "Michael Cooper, Samuel Cooper"  # as the feed said


@pytest.mark.parametrize(
    ("creator", "names"),
    [
        ("A. One, B. Two", ("A. One", "B. Two")),
        ("A. One, B. Two, and C. Three", ("A. One", "B. Two", "C. Three")),
        ("A. One and B. Two", ("A. One", "B. Two")),
        ("Solo Author", ("Solo Author",)),
    ],
    ids=["commas", "oxford-and", "and", "one"],
)
def test_arxiv_creator_lists_are_split(creator: str, names: tuple[str, ...]) -> None:
    rss = f"""<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
    <title>cs updates on arXiv.org</title><link>https://arxiv.org/</link>
    <item><title>T</title><link>https://arxiv.org/abs/2601.00003v2</link>
    <description>We show it.</description><dc:creator>{creator}</dc:creator></item>
    </channel></rss>"""
    (entry,) = parse_source(rss.encode(), source="a", url="https://rss.arxiv.org/rss/cs").entries
    assert entry.media is not None
    assert entry.media.authors == names
    assert entry.media.link("paper") == "https://arxiv.org/abs/2601.00003v2"


def test_the_list_is_titled_as_what_it_is() -> None:
    """A one-off digest of the list names its source: not "Daily Papers" of anyone."""
    info = parse("hf-daily-papers-api.json").info
    assert info.title == "Hugging Face Daily Papers"
    assert info.link == "https://huggingface.co/papers"
