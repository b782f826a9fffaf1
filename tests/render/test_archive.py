"""Editions -> archive pages and the editions feed (pure), and the `rss` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import DigestConfig
from newsletter.models import Edition, Entry
from newsletter.render.archive import (
    ArchivedEdition,
    FeedMeta,
    archive_index,
    archive_page,
    body_of,
    edition_path,
    edition_url,
    editions_feed,
)
from newsletter.render.templates import make_environment
from newsletter.services.editions import EditionPlan, edition_digest
from newsletter.store.database import Store
from tests.factories import digest_config, make_entry, seed_edition, source_config, write_config

T0 = datetime(2030, 6, 1, 5, 0, tzinfo=UTC)


def entry(i: int, title: str = "") -> Entry:
    return make_entry(i, title=title or f"Story {i}", hours_ago=i + 1, now=T0, text=f"Text {i}.")


def archived(period: str, when: datetime, titles: list[str], eid: int) -> ArchivedEdition:
    edition = Edition(id=eid, digest="daily", period=period, created_at=when, title="Daily")
    entries = [entry(i, t) for i, t in enumerate(titles)]
    plan = EditionPlan.stored(edition, entries)
    digest = edition_digest(DigestConfig(name="daily", title="Daily"), plan, sources={})
    return archive_page(edition, digest, env=make_environment())


def test_edition_page_is_the_rebuilt_digest() -> None:
    a = archived("2030-06-01", T0, ["Alpha", "Beta"], 1)
    assert a.digest.title == "Daily" and a.digest.item_count == 2
    assert a.digest.generated_at == T0
    assert "<html" in a.html and "Alpha" in a.html
    assert "<html" not in a.fragment and "Alpha" in a.fragment
    # Rebuilding gives the same page (the edition's own time is used, not the clock).
    assert archived("2030-06-01", T0, ["Alpha", "Beta"], 1).html == a.html


def test_urls_are_quoted_and_stable() -> None:
    assert edition_path("daily", "2030-06-01") == "/archive/daily/2030-06-01"
    assert edition_path("a b", "x/y") == "/archive/a%20b/x%2Fy"
    assert edition_url("https://x.org/", "daily", "2030-06-01") == (
        "https://x.org/archive/daily/2030-06-01"
    )


def test_body_of() -> None:
    assert body_of("<html><body class='x'>\n<p>hi</p>\n</body></html>") == "<p>hi</p>"
    assert body_of("<p>no body</p>") == "<p>no body</p>"


def test_feed_newest_first_with_guid_date_and_full_html() -> None:
    meta = FeedMeta("daily", "Daily & <co>", "About \x0bthings", "https://news.example.org")
    editions = [
        archived("2030-05-31", T0 - timedelta(days=1), ["Old"], 1),
        archived("2030-06-01", T0, ["New <b>bold</b> \x01title", "Other"], 2),
    ]
    for fmt in ("rss", "atom"):
        parsed = feedparser.parse(editions_feed(meta, editions, fmt))  # type: ignore[arg-type]
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.feed.title == "Daily & <co>"
        assert [e.id for e in parsed.entries] == [
            "https://news.example.org/archive/daily/2030-06-01",
            "https://news.example.org/archive/daily/2030-05-31",
        ]
        first = parsed.entries[0]
        assert first.title == "Daily — 2030-06-01"
        assert first.published_parsed[:4] == (2030, 6, 1, 5)
        html = first.content[0].value
        assert "Other" in html and "&lt;b&gt;bold" in html


def test_empty_feed_is_valid() -> None:
    data = editions_feed(FeedMeta("daily", "Daily"), [], "rss")
    parsed = feedparser.parse(data)
    assert not parsed.bozo and parsed.entries == []


def test_archive_index_groups_by_configured_digest() -> None:
    def ed(i: int, digest: str, day: int) -> Edition:
        return Edition(
            id=i, digest=digest, period=f"2030-06-{day:02d}", created_at=T0 + timedelta(days=day)
        )

    groups = archive_index(
        [ed(1, "daily", 1), ed(2, "daily", 2), ed(3, "gone", 1), ed(4, "weekly", 1)],
        {"weekly": "Weekly", "daily": "Daily"},
    )
    assert [(n, [r.period for r in rows]) for n, _, rows in groups] == [
        ("weekly", ["2030-06-01"]),
        ("daily", ["2030-06-02", "2030-06-01"]),
    ]


def test_rss_command_writes_the_feed(tmp_path: Path, runner: CliRunner, store: Store) -> None:
    config = write_config(
        tmp_path,
        name="c.toml",
        sources=[source_config("s", "x.xml")],
        digests=[digest_config(title="Daily")],
        web={"base_url": "https://n.example"},
    )
    seed_edition(store, "2030-06-01", [entry(1), entry(2)], now=T0)
    group = main
    out = tmp_path / "feed.xml"
    r = runner.invoke(group, ["rss", "--config", str(config), "--digest", "daily", "-o", str(out)])
    assert r.exit_code == 0, r.output
    parsed = feedparser.parse(out.read_bytes())
    assert [e.link for e in parsed.entries] == ["https://n.example/archive/daily/2030-06-01"]
    r = runner.invoke(group, ["rss", "--config", str(config), "--atom"])
    assert r.exit_code == 0 and b"<feed" in r.stdout_bytes
    r = runner.invoke(group, ["rss", "--config", str(config), "--digest", "nope"])
    assert r.exit_code == 2 and "no digest named 'nope'" in r.output
