"""The store: a real SQLite file, entries stored once, editions idempotent, concurrency."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from newsletter.models import Engagement, Entry, EntryMedia
from newsletter.store.database import Store
from tests.factories import make_entry
from tests.support import open_at_once

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entry(i: int, source: str = "s", **fields: Any) -> Entry:
    """``make_entry`` with this file's ids (``id-i``), titles and links."""
    return make_entry(
        i, id=f"id-{i}", source=source, title=f"Title {i}", link=f"https://e.org/{i}", **fields
    )


def test_tables_created_and_wal_on(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite"
    s = Store(f"sqlite:///{path}")
    assert path.exists()
    with s.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert {"sources", "entries", "editions", "edition_entries"} <= names
    assert mode == "wal"
    s.close()


def test_same_entry_stored_once_first_seen_kept(store: Store) -> None:
    new = store.add_entries([entry(1), entry(2)], now=NOW)
    assert [e.id for e in new] == ["id-1", "id-2"]
    assert all(e.first_seen == NOW for e in new)
    again = store.add_entries([entry(1), entry(3)], now=NOW + timedelta(hours=1))
    assert [e.id for e in again] == ["id-3"]
    stored = {e.id: e for e in store.entries()}
    assert stored["id-1"].first_seen == NOW
    assert stored["id-3"].first_seen == NOW + timedelta(hours=1)
    assert store.count_entries() == 3


def test_same_id_in_two_sources_is_two_entries(store: Store) -> None:
    store.add_entries([entry(1, "a"), entry(1, "b")], now=NOW)
    assert store.count_entries() == 2


def test_entry_round_trip(store: Store) -> None:
    e = entry(
        7,
        author="Ada",
        published=NOW - timedelta(days=1),
        tags=("ml", "théorie"),
        content_html="<p>x</p>",
        text="x",
        engagement=Engagement(upvotes=5, comments=2),
        comments_url="https://e.org/c/7",
    )
    store.add_entries([e], now=NOW)
    (got,) = store.entries()
    assert got == e.seen_at(NOW)
    assert got.published is not None and got.published.tzinfo is not None


def test_an_entrys_media_round_trips(store: Store) -> None:
    media = EntryMedia(
        image="https://e.org/t.png",
        image_width=640,
        image_height=360,
        authors=("Ada Lovelace", "Émile Borel"),
        organization="Analytical Engines",
        links=(("pdf", "https://e.org/p.pdf"), ("code", "https://github.com/a/b")),
        ai_summary="We show that it works.",
        keywords=("engines",),
    )
    store.add_entries([entry(1, media=media), entry(2)], now=NOW)
    got = {e.id: e for e in store.entries()}
    assert got["id-1"].media == media and got["id-2"].media is None
    assert media.link("pdf") == "https://e.org/p.pdf" and media.link("project") is None


def test_entries_since_uses_published_else_first_seen(store: Store) -> None:
    store.add_entries([entry(1, published=NOW - timedelta(days=10)), entry(2)], now=NOW)
    recent = store.entries(since=NOW - timedelta(days=2))
    assert [e.id for e in recent] == ["id-2"]


def test_editions_are_idempotent_per_period(store: Store) -> None:
    store.add_entries([entry(1), entry(2)], now=NOW)
    ed, created = store.create_edition(
        "daily", "2026-11-28", [("s", "id-2"), ("s", "id-1")], now=NOW
    )
    assert created
    ed2, created2 = store.create_edition("daily", "2026-11-28", [("s", "id-1")], now=NOW)
    assert not created2 and ed2.id == ed.id
    assert [e.id for e in store.edition_entries(ed.id)] == ["id-2", "id-1"]
    assert store.last_edition("daily") == ed
    assert store.last_edition("weekly") is None


def test_source_state_and_url_change_resets_validators(store: Store) -> None:
    st = store.ensure_source("feed", "https://a.org/rss")
    assert st.status == "new" and st.fetch_url == "https://a.org/rss"
    store.update_source("feed", etag='"x"', fetch_url="https://a.org/new", error_count=3)
    st = store.ensure_source("feed", "https://a.org/rss")
    assert st.etag == '"x"' and st.fetch_url == "https://a.org/new"
    st = store.ensure_source("feed", "https://b.org/rss")
    assert st.etag is None and st.fetch_url == "https://b.org/rss" and st.error_count == 0


def _writer(url: str, worker: int, n: int) -> None:
    s = Store(url)
    for i in range(n):
        s.add_entries([entry(worker * 1000 + i, source=f"w{worker}")], now=NOW)
        s.create_edition("daily", "p", [], now=NOW)
    s.close()


def test_concurrent_processes_do_not_corrupt(database_url: str) -> None:
    url = database_url
    Store(url).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    s = Store(url)
    assert s.count_entries() == 120
    assert len(s.editions("daily")) == 1
    if url.startswith("sqlite"):
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    s.close()


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Several connections (a `run` and a `serve` started together) open a database file
    that does not exist yet: the one creating the tables holds a lock that switching the
    journal to WAL cannot wait for, and none of the others may fail for it."""
    for trial in range(40):
        assert open_at_once(f"sqlite:///{tmp_path / f'db{trial}.sqlite'}") == []
