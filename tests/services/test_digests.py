"""One-off digests from the store: which sources are silent and why, a title that counts
what is really in the digest, the feeds' author and public URLs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.config import settings_from_dict
from newsletter.models import Entry, Source
from newsletter.services import digests
from newsletter.store.database import Store
from tests.factories import NOW, make_entry, seed
from tests.pg import on_both_databases

database_url = on_both_databases()


def stories(source: str, count: int, *, hours_ago: float = 1.0) -> list[Entry]:
    return [
        make_entry(f"{source}-{n}", source=source, hours_ago=hours_ago + n, now=NOW, points=5)
        for n in range(count)
    ]


SOURCES = [
    Source("fresh", "https://fresh.example.org/feed", title="Fresh News"),
    Source("empty", "https://empty.example.org/feed"),
    Source("old", "https://old.example.org/feed", title="Old Blog"),
    Source("broken", "https://broken.example.org/feed"),
]


def test_silent_sources_say_why(store: Store) -> None:
    seed(store, entries=[*stories("fresh", 3), *stories("old", 2, hours_ago=24 * 40)])
    settings = settings_from_dict({})
    cfg = settings.digest(None)
    digest = digests.make_digest(store, settings, cfg, SOURCES, now=NOW, since="7d")
    silent = digests.silent_sources(
        store, SOURCES, digest, now=NOW, since="7d", failed={"broken": "HTTP 404"}
    )
    lines = [s.line for s in silent]
    assert lines == [
        "empty (https://empty.example.org/feed): nothing in the digest: no entries",
        "Old Blog (https://old.example.org/feed): nothing in the digest:"
        " all 2 entries older than --since 7d",
        "broken (https://broken.example.org/feed): nothing in the digest:"
        " failed to fetch (HTTP 404)",
    ]
    assert not any(s.had_candidates for s in silent)


def test_outranked_source_is_named_too(store: Store) -> None:
    seed(store, entries=[*stories("fresh", 3), *stories("old", 2, hours_ago=24 * 40)])
    settings = settings_from_dict({})
    cfg = settings.digest(None)
    two = [SOURCES[0], SOURCES[2]]
    digest = digests.make_digest(store, settings, cfg, two, now=NOW, max_items=1)
    silent = digests.silent_sources(store, two, digest, now=NOW)
    assert [s.line for s in silent] == [
        "Old Blog (https://old.example.org/feed): nothing in the digest:"
        " none of its 2 entries ranked among the 1 kept"
    ]
    assert silent[0].had_candidates


def test_title_counts_the_sources_that_contributed(store: Store) -> None:
    seed(store, entries=[*stories("fresh", 3), *stories("old", 2)])
    settings = settings_from_dict({})
    cfg = settings.digest(None).model_copy(update={"group_by": "none", "title": "Digest"})
    digest = digests.make_digest(store, settings, cfg, SOURCES, now=NOW)
    contributing = digests.contributing(digest, SOURCES)
    assert [s.name for s in contributing] == ["fresh", "old"]
    title = digests.one_off_title(contributing, store)
    assert title == "Digest of 2 sources"  # not "of 4": two had nothing
    retitled = digests.retitled(digest, title)
    assert retitled.title == title
    assert [s.title for s in retitled.sections] == [title]  # the one section of "none"
    assert digests.one_off_title(contributing[:1], store) == "Digest of Fresh News"


def test_make_digest_names_the_sender_as_author(store: Store) -> None:
    seed(store, entries=stories("fresh", 1))
    settings = settings_from_dict({"mail": {"from_address": "Ada's Digest <ada@example.org>"}})
    digest = digests.make_digest(store, settings, settings.digest(None), SOURCES[:1], now=NOW)
    assert digest.author == "Ada's Digest"
    bare = settings_from_dict({"mail": {"from_address": "ada@example.org"}})
    assert digests.from_name(bare) == "ada@example.org"


@pytest.mark.parametrize(
    ("web", "files", "expected"),
    [
        (
            {"base_url": "https://news.example.org/"},
            {"rss": "out/feed.xml"},
            {
                "rss": "https://news.example.org/daily/feed.xml",
                "atom": "https://news.example.org/daily/atom.xml",
            },
        ),
        ({}, {"atom": "out/atom.xml"}, {"atom": "FILE"}),
        ({}, {}, {}),
    ],
    ids=["base-url", "file", "unknown"],
)
def test_feed_urls(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    web: dict[str, str],
    files: dict[str, str],
    expected: dict[str, str],
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = settings_from_dict({"web": web, "digests": [{"name": "daily"}]})
    urls = digests.feed_urls(
        settings, settings.digest("daily"), {k: Path(v) for k, v in files.items()}
    )
    if expected.get("atom") == "FILE":
        expected = {"atom": (tmp_path / "out" / "atom.xml").as_uri()}
    assert urls == expected


def test_feed_urls_follow_the_base_url_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://env.example.org")
    settings = settings_from_dict({})
    urls = digests.feed_urls(settings, settings.digest(None))
    assert urls["rss"].startswith("https://env.example.org/") and urls["rss"].endswith("/feed.xml")


def test_since_window_older_than_every_entry(store: Store) -> None:
    seed(store, entries=stories("fresh", 2, hours_ago=50))
    settings = settings_from_dict({})
    digest = digests.make_digest(
        store, settings, settings.digest(None), SOURCES[:1], now=NOW, since="1d"
    )
    assert digest.item_count == 0
    (silent,) = digests.silent_sources(store, SOURCES[:1], digest, now=NOW, since="1d")
    assert silent.why == "all 2 entries older than --since 1d"
    assert digests.parse_since("1d", NOW) == timedelta(days=1)
