"""The fetch stage: sources fetched through a Fetcher, parsed, stored in a real SQLite
file; cold, warm (304), gone and failing sources."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.models import Source
from newsletter.services.ingest import IngestReport, ingest_async
from newsletter.sources.fetch import Fetcher
from newsletter.sources.memory import MemoryFetcher, MemoryResponse
from newsletter.store.database import Store

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
HN = (FEEDS / "hackernews-frontpage.rss.xml").read_bytes()
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
SOURCES = [
    Source(name="hn", url="https://news.test/rss"),
    Source(name="gone", url="https://gone.test/rss"),
    Source(name="broken", url="https://broken.test/rss"),
]


def run(
    store: Store, fetcher: Fetcher, now: datetime, sources: Sequence[Source] = SOURCES
) -> IngestReport:
    return asyncio.run(ingest_async(sources, store, fetcher, now=now))


def statuses(report: IngestReport) -> dict[str, str]:
    return {s.name: s.status for s in report.sources}


def test_cold_then_warm_through_a_memory_fetcher(tmp_path: Path) -> None:
    fetcher = MemoryFetcher(
        {
            "https://news.test/rss": MemoryResponse(HN, headers={"ETag": '"v1"'}),
            "https://gone.test/rss": MemoryResponse(status=410),
            "https://broken.test/rss": b"not a feed at all",
        }
    )
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        cold = run(store, fetcher, NOW)
        warm = run(store, fetcher, NOW + timedelta(hours=1))
        states = store.source_states()
        stored = store.count_entries()

    assert statuses(cold) == {"hn": "ok", "gone": "gone", "broken": "error"}
    assert cold.new == stored == 30
    # The second run: a 304 for hn, nothing asked of the gone source.
    assert statuses(warm) == {"gone": "skipped", "hn": "not_modified", "broken": "error"}
    assert warm.new == 0
    assert [r.url.path for r in fetcher.requests] == ["/rss"] * 5
    assert fetcher.requests[3].headers["If-None-Match"] == '"v1"'
    assert states["hn"].etag == '"v1"' and states["hn"].error_count == 0
    assert states["broken"].error_count == 2
    assert states["gone"].status == "gone"


def test_a_changed_feed_stores_only_its_new_entries(tmp_path: Path) -> None:
    url = "https://news.test/rss"
    fetcher = MemoryFetcher({url: MemoryResponse(HN, headers={"ETag": '"v1"'})})
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        run(store, fetcher, NOW, SOURCES[:1])
        fetcher.routes[url] = MemoryResponse(HN, headers={"ETag": '"v2"'})
        again = run(store, fetcher, NOW + timedelta(hours=1), SOURCES[:1])
        state = store.source_state("hn")

    assert statuses(again) == {"hn": "ok"}
    assert again.sources[0].entries == 30 and again.new == 0
    assert state is not None and state.etag == '"v2"'
