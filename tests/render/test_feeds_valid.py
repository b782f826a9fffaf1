"""Valid feeds out: digests of every fixture feed, and the editions feeds, as RSS and Atom
with no error under the validator's rules (``feed_rules``); and the checker itself
catches each symptom users found."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.clock import now_utc
from newsletter.config import settings_from_dict
from newsletter.models import Digest, Edition
from newsletter.render.archive import ArchivedEdition, FeedMeta, editions_feed
from newsletter.render.feeds import render_feed
from newsletter.services import digests, ingest
from newsletter.store.database import Store
from tests.factories import FEEDS, NOW, sample_digest
from tests.render.feed_rules import check_feed

FIXTURES = sorted(p for p in FEEDS.iterdir() if p.suffix in (".xml", ".json"))


def one_off(path: Path) -> Digest:
    """What ``newsletter digest PATH`` builds (no config): fetched, ranked, titled."""
    settings = settings_from_dict({})
    sources = digests.sources_from_args([str(path)])
    settings = digests.allow_named_files(settings, sources)
    now = now_utc()
    with Store("sqlite://") as store:
        report = ingest.ingest(sources, store, settings.fetch, now=now)
        assert report.readable == 1, report.failures
        cfg = settings.digest(None)
        digest = digests.make_digest(store, settings, cfg, sources, now=now)
        title = digests.one_off_title(digests.contributing(digest, sources), store)
        digest = digests.retitled(digest, title)
    return digest


@pytest.fixture(scope="module")
def fixture_digests() -> dict[str, Digest]:
    return {path.name: one_off(path) for path in FIXTURES}


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("name", [p.name for p in FIXTURES])
def test_digest_of_every_fixture_feed_is_valid(
    fixture_digests: dict[str, Digest], name: str, fmt: str
) -> None:
    digest = fixture_digests[name]
    assert digest.item_count > 0
    assert check_feed(render_feed(digest, fmt)) == []  # type: ignore[arg-type]


def test_fixture_feeds_are_all_here() -> None:
    # The real captures of the issue (copied from the shared fixtures) are among them.
    names = {p.name for p in FIXTURES}
    assert {
        "arxiv-api-query.atom.xml",
        "arxiv-rss-cs.AI.xml",
        "github-releases-astral-sh-ty.atom.xml",
        "hackernews-frontpage.rss.xml",
        "hf-daily-papers-api.json",
        "jsonfeed-v1-daringfireball.json",
        "rss2-spec-sample.xml",
    } <= names


def _archived(period: str, days: int, digest: Digest) -> ArchivedEdition:
    when = NOW - timedelta(days=days)
    edition = Edition(id=days + 1, digest="daily", period=period, created_at=when, title="Daily")
    return ArchivedEdition(edition, digest, "<html><body><p>Hello &amp; more</p></body></html>")


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("count", [0, 1, 3], ids=["empty", "one", "three"])
def test_editions_feed_is_valid(fmt: str, count: int) -> None:
    meta = FeedMeta("daily", "Daily", "", "https://news.example.org", author="The Editors")
    editions = [_archived(f"2025-03-{14 - n:02d}", n, sample_digest()) for n in range(count)]
    data = editions_feed(meta, editions, fmt)  # type: ignore[arg-type]
    assert check_feed(data) == []
    if fmt == "atom" or count:  # RSS names it on each item (dc:creator), Atom on the feed
        assert b"The Editors" in data


def test_editions_feed_without_author_names_its_title() -> None:
    data = editions_feed(FeedMeta("daily", "Daily"), [_archived("p", 0, sample_digest())], "atom")
    assert check_feed(data) == []
    assert b"<name>Daily</name>" in data


ATOM_HEAD = b'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>'


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            ATOM_HEAD + b"<updated>2025-03-14T12:00:00Z</updated>"
            b"<entry><id>urn:e</id><title>e</title><updated>2025-03-14T12:00:00Z</updated>"
            b'<link href="https://x.org/e"/></entry></feed>',
            "MissingElement",  # an entry without author in a feed without one
        ),
        (
            ATOM_HEAD + b"<updated>2025-03-14T12:00:00Z</updated><author><name>a</name></author>"
            b"<entry><id>urn:e</id><title>e</title><updated>2025-03-13T12:00:00Z</updated>"
            b"<published>2025-03-14T12:00:00Z</published>"
            b'<link href="https://x.org/e"/></entry></feed>',
            "UpdatedBeforePublished",
        ),
        (
            ATOM_HEAD + b"<updated>Fri, 14 Mar 2025 12:00:00 GMT</updated>"
            b"<author><name>a</name></author></feed>",
            "InvalidRFC3339Date",
        ),
        (
            ATOM_HEAD + b"<updated>2025-03-14T12:00:00Z</updated><author><name>a</name></author>"
            b"<entry><id>urn:e</id><title>e</title><updated>2025-03-14T12:00:00Z</updated>"
            b'<link href="/relative"/></entry></feed>',
            "InvalidIRI",
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><link>https://x.org/</link>'
            b"<description>d</description><item><title>i</title>"
            b"<author>Ada Lovelace</author></item></channel></rss>",
            "InvalidContact",  # RSS author must be an email address
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><link>https://x.org/</link>'
            b"<description>d</description><item><title>i</title></item></channel></rss>",
            "MissingAuthor",
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><link>https://x.org/</link>'
            b"<description>d</description><item><title>i</title><dc:creator "
            b'xmlns:dc="http://purl.org/dc/elements/1.1/">a</dc:creator>'
            b"<pubDate>2025-03-14</pubDate></item></channel></rss>",
            "InvalidRFC2822Date",
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><link>https://x.org/</link>'
            b"<description>d</description><item><title>i</title><dc:creator "
            b'xmlns:dc="http://purl.org/dc/elements/1.1/">a</dc:creator>'
            b"<guid>not a url</guid></item></channel></rss>",
            "InvalidHttpGUID",
        ),
        (b"<rss version='2.0'><channel>", "NotWellFormed"),
    ],
    ids=[
        "atom-no-author",
        "atom-updated-before-published",
        "atom-date",
        "atom-relative-link",
        "rss-author-not-email",
        "rss-no-author",
        "rss-date",
        "rss-guid",
        "not-xml",
    ],
)
def test_checker_catches_each_symptom(document: bytes, message: str) -> None:
    errors = check_feed(document)
    assert any(e.startswith(message) for e in errors), errors
