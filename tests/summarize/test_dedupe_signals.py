"""After merging, each signal stays with its source (``Item.signals``, ``Item.media``) and
a paper seen on Hugging Face and in an arXiv feed is told with HF's card."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from newsletter.config import DigestConfig
from newsletter.models import Engagement, Entry, EntryMedia
from newsletter.sources.parse import parse_source
from newsletter.summarize.dedupe import merge_duplicates
from newsletter.summarize.digest import build_digest
from tests.factories import make_entry

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
NOW = datetime(2026, 6, 13, 7, tzinfo=UTC)


def hf_paper() -> Entry:
    data = (FEEDS / "hf-daily-papers-api.json").read_bytes()
    return next(e for e in parse_source(data, source="hf").entries if "2606.13392" in e.id)


def arxiv_listing(hf: Entry) -> Entry:
    """The same paper as an arXiv RSS feed lists it: earlier, same abstract, no votes."""
    pid = hf.id.removeprefix("arxiv:")
    rss = f"""<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
    <title>cs updates on arXiv.org</title><link>https://arxiv.org/</link>
    <item><title>{hf.title}</title><link>https://arxiv.org/abs/{pid}</link>
    <guid isPermaLink="false">oai:arXiv.org:{pid}v1</guid>
    <description>arXiv:{pid}v1 Announce Type: new
Abstract: {hf.text.split("arXiv:")[0].strip()}</description>
    <pubDate>Wed, 10 Jun 2026 04:00:00 +0000</pubDate>
    <dc:creator>First Author, Second Author</dc:creator></item></channel></rss>"""
    (entry,) = parse_source(
        rss.encode(), source="arxiv", url="https://rss.arxiv.org/rss/cs"
    ).entries
    return entry


def test_a_paper_on_hf_and_arxiv_keeps_hf_upvotes_and_discussion_with_hf() -> None:
    hf = hf_paper()
    arxiv = arxiv_listing(hf)
    assert arxiv.when is not None and hf.when is not None and arxiv.when < hf.when
    (item,) = merge_duplicates([arxiv, hf])
    # HF's card is the fuller one: it is the primary, though the arXiv listing is older.
    assert item.entry.source == "hf"
    assert item.entry.link == "https://huggingface.co/papers/2606.13392"
    hf_signal, arxiv_signal = item.signals
    assert hf_signal.source == "hf"
    assert hf_signal.engagement == hf.engagement
    assert hf_signal.engagement.upvotes == 103
    assert hf_signal.discussion == "https://huggingface.co/papers/2606.13392"
    assert arxiv_signal.source == "arxiv"
    assert not arxiv_signal.engagement.known  # no votes shown next to arXiv
    assert arxiv_signal.discussion is None
    assert arxiv_signal.link == "https://arxiv.org/abs/2606.13392"


def test_merged_media_takes_each_field_from_the_first_entry_that_has_it() -> None:
    hf = hf_paper()
    arxiv = arxiv_listing(hf)
    (item,) = merge_duplicates([arxiv, hf])
    media = item.media
    assert media is not None and hf.media is not None
    assert media.image == hf.media.image
    assert media.ai_summary == hf.media.ai_summary
    assert media.organization == "MiniMax"
    assert media.authors == hf.media.authors  # the primary's, not the feed's two names
    assert media.link("code") == "https://github.com/MiniMax-AI/MSA"
    assert media.link("paper") == "https://huggingface.co/papers/2606.13392"


def test_hn_points_and_discussion_stay_with_hn_not_the_article() -> None:
    """The article is the primary (it has the text); HN's points and its comments page
    are HN's signal, never the article's link."""
    article = make_entry(
        1,
        source="blog",
        link="https://blog.example.org/post",
        title="Why we moved back to a monolith",
        text="A long article. " * 60,
        hours_ago=5,
    )
    hn = make_entry(
        2,
        source="hn",
        link="https://blog.example.org/post",
        title="Why we moved back to a monolith",
        text="Comments",
        comments_url="https://news.ycombinator.com/item?id=46257714",
        points=312,
        comments=140,
        hours_ago=3,
    )
    (item,) = merge_duplicates([hn, article])
    assert item.entry.source == "blog"
    blog_signal, hn_signal = item.signals
    assert blog_signal.source == "blog" and not blog_signal.engagement.known
    assert blog_signal.discussion is None
    assert hn_signal.engagement == Engagement(points=312, comments=140)
    assert hn_signal.discussion == "https://news.ycombinator.com/item?id=46257714"
    assert hn_signal.discussion != hn_signal.link


def test_two_entries_of_one_source_are_one_signal() -> None:
    a = make_entry(1, source="hn", link="https://x.example/a", upvotes=2, hours_ago=2)
    b = make_entry(2, source="hn", link="https://x.example/a", upvotes=3, hours_ago=1)
    (item,) = merge_duplicates([a, b])
    (signal,) = item.signals
    assert signal.engagement.upvotes == 5


def test_media_richness_breaks_ties_between_equally_rich_texts_only() -> None:
    """A longer text still wins: media only decides between texts both rich enough."""
    text = "word " * 200
    plain = make_entry(1, source="a", link="https://x.example/p", text=text, hours_ago=9)
    card = make_entry(
        2,
        source="b",
        link="https://x.example/p",
        text=text,
        hours_ago=1,
        media=EntryMedia(image="https://img.example/p.png", authors=("A",)),
    )
    assert merge_duplicates([plain, card])[0].entry.source == "b"
    short_card = make_entry(
        3, source="c", link="https://x.example/p", text="short", media=card.media
    )
    assert merge_duplicates([plain, short_card])[0].entry.source == "a"


def test_a_digest_keeps_per_source_signals_on_its_items() -> None:
    hf = hf_paper()
    arxiv = arxiv_listing(hf)
    config = DigestConfig(name="d", title="D", group_by="none")
    digest = build_digest([arxiv, hf], now=NOW, config=config)
    (item,) = digest.items
    assert [s.source for s in item.signals] == ["hf", "arxiv"]
    assert item.summary == (hf.media.ai_summary if hf.media else None)
