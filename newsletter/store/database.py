"""State in a database through SQLAlchemy Core: the ``Store``, and its queries on sources,
entries and editions (subscribers and the outbox: ``subscribers`` and ``outbox``).

SQLite by default, PostgreSQL for several processes or machines (``engine`` makes the
engine and holds what differs between the two). The tables are in ``schema``; opening a
store checks the database's schema revision (``migrate``): an empty database is created,
an older SQLite one upgraded, anything else refused with a message saying what to run.

Times are stored as naive UTC and returned timezone-aware (``schema.UTCDateTime``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.models import Edition, Engagement, Entry, EntryMedia, SourceState
from newsletter.store import migrate
from newsletter.store.engine import insert_or_skip, make_engine
from newsletter.store.schema import (
    edition_entries_table,
    editions_table,
    entries_table,
    sources_table,
)

log = logging.getLogger("newsletter.store")


class Store:
    """The project's state. ``Store(url)`` opens the database, creates its tables when it
    is empty, and checks that its schema is the code's (see ``migrate``).

    ``upgrade`` says what to do with an older schema: migrate it (True), refuse it with
    ``SchemaOutdatedError`` (False), or the default, None: migrate SQLite, refuse
    a database server (``migrate.auto_upgrades``). A newer schema is always refused.
    ``schema_state`` is the database's state as found on opening. One ``Store`` (one
    engine, one connection pool) serves a process for as long as it runs.
    """

    def __init__(self, url: str, *, upgrade: bool | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            self.schema_state = migrate.ensure_schema(
                self.engine,
                upgrade=migrate.auto_upgrades(url) if upgrade is None else upgrade,
            )
        except BaseException:
            self.engine.dispose()
            raise
        if self.schema_state.status == "older":
            log.warning(
                "upgraded the database %s from schema revision %s to %s",
                self.schema_state.database,
                self.schema_state.describe(),
                self.schema_state.head,
            )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(self) -> Any:
        """A transaction (context manager yielding a Connection)."""
        return self.engine.begin()

    # -- sources ------------------------------------------------------------------------

    def source_state(self, name: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(sources_table).where(sources_table.c.name == name))
                .mappings()
                .first()
            )
        return SourceState(**dict(row)) if row else None

    def source_states(self) -> dict[str, SourceState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(sources_table)).mappings().all()
        return {r["name"]: SourceState(**dict(r)) for r in rows}

    def ensure_source(self, name: str, url: str) -> SourceState:
        """The stored state of a source, created if new. A changed URL in the config
        resets the fetch URL, the HTTP validators and the error state (they belonged to
        the old URL)."""
        t = sources_table
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
            if row is None:
                conn.execute(sa.insert(t).values(name=name, url=url, fetch_url=url))
                return SourceState(name=name, url=url, fetch_url=url)
            if row["url"] != url:
                reset = {**_URL_RESET, "url": url, "fetch_url": url}
                conn.execute(sa.update(t).where(t.c.name == name).values(**reset))
                return SourceState(**{**dict(row), **reset})
            return SourceState(**dict(row))

    def ensure_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, SourceState]:
        """``ensure_source`` for many (name, url) pairs in one transaction."""
        t = sources_table
        pairs = dict(sources)
        states: dict[str, SourceState] = {}
        with self.engine.begin() as conn:
            rows = {
                r["name"]: r
                for chunk in _chunks(list(pairs), 400)
                for r in conn.execute(sa.select(t).where(t.c.name.in_(chunk))).mappings()
            }
            new = [{"name": n, "url": u, "fetch_url": u} for n, u in pairs.items() if n not in rows]
            if new:
                conn.execute(sa.insert(t), new)
            for name, url in pairs.items():
                row = rows.get(name)
                if row is None:
                    states[name] = SourceState(name=name, url=url, fetch_url=url)
                elif row["url"] != url:
                    reset = {**_URL_RESET, "url": url, "fetch_url": url}
                    conn.execute(sa.update(t).where(t.c.name == name).values(**reset))
                    states[name] = SourceState(**{**dict(row), **reset})
                else:
                    states[name] = SourceState(**dict(row))
        return states

    def record_fetch(
        self,
        entries: Iterable[Entry],
        updates: Mapping[str, Mapping[str, Any]],
        *,
        now: datetime,
    ) -> list[Entry]:
        """In one transaction: store ``entries`` not seen before (as ``add_entries``) and
        update the sources named in ``updates`` (as ``update_source``). Returns the new
        entries, with ``first_seen``."""
        with self.engine.begin() as conn:
            new = _add_entries(conn, entries, now)
            _update_sources(conn, updates)
        return new

    def update_source(self, name: str, **values: Any) -> None:
        """Update stored fields of a source (etag, status, error_count, url...)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(sources_table).where(sources_table.c.name == name).values(**values)
            )

    # -- entries ------------------------------------------------------------------------

    def add_entries(self, entries: Iterable[Entry], *, now: datetime) -> list[Entry]:
        """Store entries not seen before; return the new ones (with ``first_seen``).

        The same entry seen twice (same source and id) is stored once: the first sighting
        wins, which keeps ``first_seen`` honest.
        """
        with self.engine.begin() as conn:
            return _add_entries(conn, entries, now)

    def entries(
        self,
        *,
        sources: Sequence[str] | None = None,
        since: datetime | None = None,
        seen_after: datetime | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Stored entries, newest first. ``since`` filters on the entry's time (published,
        else first seen); ``seen_after`` on when the store first saw it."""
        t = entries_table
        q = sa.select(t)
        if sources is not None:
            q = q.where(t.c.source.in_(list(sources)))
        if since is not None:
            q = q.where(sa.func.coalesce(t.c.published, t.c.updated, t.c.first_seen) >= since)
        if seen_after is not None:
            q = q.where(t.c.first_seen > seen_after)
        q = q.order_by(t.c.first_seen.desc(), t.c.pk.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [_row_entry(r) for r in conn.execute(q).mappings()]

    def count_entries(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(entries_table)).scalar_one()
            )

    # -- editions -----------------------------------------------------------------------

    def last_edition(self, digest: str) -> Edition | None:
        t = editions_table
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(t)
                    .where(t.c.digest == digest)
                    .order_by(t.c.created_at.desc(), t.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return _edition(conn, row) if row else None

    def edition(self, digest: str, period: str) -> Edition | None:
        t = editions_table
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t).where(t.c.digest == digest, t.c.period == period))
                .mappings()
                .first()
            )
            return _edition(conn, row) if row else None

    def editions(self, digest: str | None = None, *, limit: int = 100) -> list[Edition]:
        t = editions_table
        q = sa.select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        if digest is not None:
            q = q.where(t.c.digest == digest)
        with self.engine.connect() as conn:
            return [_edition(conn, r) for r in conn.execute(q).mappings().all()]

    def create_edition(
        self,
        digest: str,
        period: str,
        entry_keys: Sequence[tuple[str, str]],
        *,
        now: datetime,
        title: str = "",
    ) -> tuple[Edition, bool]:
        """Record an edition once per (digest, period). Returns (edition, created): a
        second call for the same period returns the stored edition unchanged."""
        t = editions_table
        try:
            with self.engine.begin() as conn:
                found = (
                    conn.execute(sa.select(t).where(t.c.digest == digest, t.c.period == period))
                    .mappings()
                    .first()
                )
                if found:
                    return _edition(conn, found), False
                eid = conn.execute(
                    sa.insert(t).values(digest=digest, period=period, created_at=now, title=title)
                ).inserted_primary_key[0]  # type: ignore[index]
                if entry_keys:
                    conn.execute(
                        sa.insert(edition_entries_table),
                        [
                            {"edition_id": eid, "position": i, "source": s, "entry_id": e}
                            for i, (s, e) in enumerate(entry_keys)
                        ],
                    )
                row = conn.execute(sa.select(t).where(t.c.id == eid)).mappings().one()
                return _edition(conn, row), True
        except sa.exc.IntegrityError:
            # Another process created the same edition between our read and insert.
            existing = self.edition(digest, period)
            if existing is None:
                raise
            return existing, False

    def edition_entries(self, edition_id: int) -> list[Entry]:
        """The entries of an edition, in the order they were recorded."""
        ee, e = edition_entries_table, entries_table
        q = (
            sa.select(e)
            .join(ee, sa.and_(ee.c.source == e.c.source, ee.c.entry_id == e.c.entry_id))
            .where(ee.c.edition_id == edition_id)
            .order_by(ee.c.position)
        )
        with self.engine.connect() as conn:
            return [_row_entry(r) for r in conn.execute(q).mappings()]


_URL_RESET: dict[str, Any] = {
    "etag": None,
    "last_modified": None,
    "status": "new",
    "error_count": 0,
    "last_error": None,
    "retry_after": None,
}
"""What a changed source URL resets (the validators and error state of the old one)."""


def _add_entries(conn: Connection, entries: Iterable[Entry], now: datetime) -> list[Entry]:
    # The first sighting wins: duplicates within the batch and entries already stored
    # are skipped, which keeps first_seen honest.
    batch = list({(e.source, e.id): e for e in entries}.values())
    if not batch:
        return []
    new: list[Entry] = []
    insert = insert_or_skip(conn, entries_table)
    for chunk in _chunks(batch, 400):
        existing = _existing_keys(conn, chunk)
        seen = [e.seen_at(now) for e in chunk if (e.source, e.id) not in existing]
        new.extend(seen)
        if seen:
            conn.execute(insert, [_entry_row(e) for e in seen])
    return new


_TAGS_JSON = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(..., ensure_ascii=False)`` without building an encoder per call."""


def _update_sources(conn: Connection, updates: Mapping[str, Mapping[str, Any]]) -> None:
    # One executemany per set of columns (a 304 and a fresh body change different ones).
    t = sources_table
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for name, values in updates.items():
        columns = tuple(sorted(values))
        row = {f"v_{c}": v for c, v in values.items()}
        by_columns.setdefault(columns, []).append({"k_name": name, **row})
    for columns, rows in by_columns.items():
        # Parameter names differ from column names: SQLAlchemy reserves those.
        stmt = (
            sa.update(t)
            .where(t.c.name == sa.bindparam("k_name"))
            .values({c: sa.bindparam(f"v_{c}", type_=t.c[c].type) for c in columns})
        )
        conn.execute(stmt, rows)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _existing_keys(conn: Connection, chunk: Sequence[Entry]) -> set[tuple[str, str]]:
    """The chunk's (source, id) pairs already stored, in one query: every stored pair
    among the chunk's sources and ids (a superset of those keys, found through the
    unique index)."""
    t = entries_table
    sources = list(dict.fromkeys(e.source for e in chunk))
    ids = list(dict.fromkeys(e.id for e in chunk))
    rows = conn.execute(
        sa.select(t.c.source, t.c.entry_id).where(t.c.source.in_(sources), t.c.entry_id.in_(ids))
    )
    return {(r[0], r[1]) for r in rows}


def _entry_row(e: Entry) -> dict[str, Any]:
    return {
        "source": e.source,
        "entry_id": e.id,
        "title": e.title,
        "link": e.link,
        "author": e.author,
        "published": e.published,
        "updated": e.updated,
        "tags": _TAGS_JSON(list(e.tags)),
        "content_html": e.content_html,
        "text": e.text,
        "points": e.engagement.points,
        "upvotes": e.engagement.upvotes,
        "comments": e.engagement.comments,
        "comments_url": e.comments_url,
        "first_seen": e.first_seen,
        "media": _TAGS_JSON(e.media.to_json()) if e.media is not None else None,
    }


def _row_entry(r: Any) -> Entry:
    return Entry(
        id=r["entry_id"],
        source=r["source"],
        title=r["title"],
        link=r["link"],
        author=r["author"],
        published=r["published"],
        updated=r["updated"],
        tags=tuple(json.loads(r["tags"] or "[]")),
        content_html=r["content_html"],
        text=r["text"],
        engagement=Engagement(points=r["points"], upvotes=r["upvotes"], comments=r["comments"]),
        comments_url=r["comments_url"],
        first_seen=r["first_seen"],
        media=EntryMedia.from_json(json.loads(r["media"])) if r["media"] else None,
    )


def _edition(conn: Connection, row: Any) -> Edition:
    ee = edition_entries_table
    keys = conn.execute(
        sa.select(ee.c.source, ee.c.entry_id)
        .where(ee.c.edition_id == row["id"])
        .order_by(ee.c.position)
    ).all()
    return Edition(
        id=row["id"],
        digest=row["digest"],
        period=row["period"],
        created_at=row["created_at"],
        entry_keys=tuple(f"{s}\x1f{e}" for s, e in keys),
        title=row["title"],
    )
