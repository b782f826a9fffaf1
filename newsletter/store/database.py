"""State in a database through SQLAlchemy Core: sources, entries, editions.

SQLite by default (WAL journal, a busy timeout so concurrent runs wait instead of failing,
one writer at a time); any SQLAlchemy URL works. Tables are created on first use. Other
modules add their own tables to ``metadata`` (subscribers, outbox) before ``create_all``.

Times are stored as naive UTC and returned timezone-aware (``UTCDateTime``).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import StoreError
from newsletter.models import Edition, Engagement, Entry, SourceState

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


sources_table = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    # Where we fetch from now: starts as ``url`` (the configured one) and follows
    # permanent redirects; reset when the configured URL changes.
    sa.Column("fetch_url", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("status", sa.String(20), nullable=False, server_default="new"),
    sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("last_fetched", UTCDateTime),
    sa.Column("last_ok", UTCDateTime),
    sa.Column("retry_after", UTCDateTime),
)

entries_table = sa.Table(
    "entries",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=False, server_default=""),
    sa.Column("author", sa.Text),
    sa.Column("published", UTCDateTime),
    sa.Column("updated", UTCDateTime),
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
    sa.Column("content_html", sa.Text, nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("points", sa.Integer),
    sa.Column("upvotes", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("comments_url", sa.Text),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "entry_id", name="uq_entries_source_id"),
    sa.Index("ix_entries_first_seen", "first_seen"),
)

editions_table = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(200), nullable=False),
    sa.Column("period", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("digest", "period", name="uq_editions_digest_period"),
)

edition_entries_table = sa.Table(
    "edition_entries",
    metadata,
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.Text, nullable=False),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets readers work while one writer writes; busy_timeout makes a second
    # concurrent run wait for the lock instead of failing with "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then
    # writes can otherwise fail with SQLITE_BUSY when another run wrote in between, and
    # the busy timeout cannot help it. Concurrent runs thus queue, one writer at a time.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite, the parent folder is created and WAL is on."""
    try:
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
            return engine
        return sa.create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        raise StoreError(f"cannot open the database {url}: {exc}") from None


class Store:
    """The project's state. ``Store(url)`` opens (and creates) the database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if create:
            self.create_tables()

    def create_tables(self) -> None:
        """Create every table registered on ``metadata`` that does not exist yet."""
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create tables in {self.url}: {exc}") from None

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


def _insert_new(conn: Connection) -> Any:
    """An INSERT into entries that skips rows already there (a concurrent run may have
    stored the same entry since we looked), where the dialect can say so."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(entries_table).on_conflict_do_nothing()
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(entries_table).on_conflict_do_nothing()
    return sa.insert(entries_table)


def _add_entries(conn: Connection, entries: Iterable[Entry], now: datetime) -> list[Entry]:
    # The first sighting wins: duplicates within the batch and entries already stored
    # are skipped, which keeps first_seen honest.
    batch = list({(e.source, e.id): e for e in entries}.values())
    if not batch:
        return []
    new: list[Entry] = []
    fast = conn.dialect.name == "sqlite" and conn.dialect.paramstyle == "qmark"
    insert = _insert_new(conn)
    row = _SqliteRows(conn.dialect, now) if fast else None
    for chunk in _chunks(batch, 400):
        existing = _existing_keys(conn, chunk)
        seen = [e.seen_at(now) for e in chunk if (e.source, e.id) not in existing]
        new.extend(seen)
        if not seen:
            continue
        if row is not None:
            _insert_sqlite(conn, [row(e) for e in seen])
        else:
            conn.execute(insert, [_entry_row(e) for e in seen])
    return new


_ENTRY_COLUMNS = (
    "source",
    "entry_id",
    "title",
    "link",
    "author",
    "published",
    "updated",
    "tags",
    "content_html",
    "text",
    "points",
    "upvotes",
    "comments",
    "comments_url",
    "first_seen",
)
_SQLITE_ROW = f"({', '.join('?' * len(_ENTRY_COLUMNS))})"
_SQLITE_VARIABLES = 999
"""SQLite's lowest limit on parameters per statement (before 3.32); newer allow 32,766."""


def _insert_sqlite(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    # Many rows per INSERT rather than executemany: the driver releases and retakes the
    # GIL around every statement it steps, and while parser results arrive on other
    # threads each retake can wait for a thread switch; a statement per row made the
    # inserts several times slower during a fetch than alone.
    per_statement = _sqlite_variables(conn) // len(_ENTRY_COLUMNS)
    for i in range(0, len(rows), per_statement):
        part = rows[i : i + per_statement]
        conn.exec_driver_sql(_sqlite_insert(len(part)), tuple(chain.from_iterable(part)))


def _sqlite_variables(conn: Connection) -> int:
    """How many parameters one statement may have on this connection."""
    dbapi = conn.connection.dbapi_connection
    try:
        limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    except (AttributeError, sqlite3.Error):  # Python before 3.11, or another driver
        return _SQLITE_VARIABLES
    return max(_SQLITE_VARIABLES, min(int(limit), 32_766))


@functools.lru_cache(maxsize=16)  # full chunks and a few tails: the same sizes recur
def _sqlite_insert(n: int) -> str:
    return (
        f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
        f"VALUES {', '.join([_SQLITE_ROW] * n)} "
        "ON CONFLICT (source, entry_id) DO NOTHING"
    )


_TAGS_JSON = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(..., ensure_ascii=False)`` without building an encoder per call."""


class _SqliteRows:
    """Entries as parameter tuples for the driver (see ``_insert_sqlite``): SQLAlchemy's
    per-row parameter handling costs several times the insert itself. Values are stored exactly
    as ``conn.execute(insert(...))`` stores them: times through the columns' own bind
    processors (aware UTC times, nearly all of them, take a shortcut to the same text)."""

    def __init__(self, dialect: sa.Dialect, now: datetime) -> None:
        process = _bind_processor(entries_table.c.first_seen, dialect)
        assert process is not None
        self.process = process
        self.now = now
        self.now_value = process(now)
        # Whether the processor writes aware UTC times as SQLite's DATETIME text with
        # microseconds (UTCDateTime, then the dialect's format), so that those can skip it.
        probe = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
        self.utc_text = process(probe) == "2001-02-03 04:05:06.000007"
        self.tags: dict[tuple[str, ...], str] = {}

    def time(self, value: datetime | None) -> Any:
        if value is not None and value.tzinfo is UTC and self.utc_text:
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return self.process(value)

    def __call__(self, e: Entry) -> tuple[Any, ...]:
        tags = self.tags.get(e.tags)
        if tags is None:
            tags = self.tags[e.tags] = _TAGS_JSON(list(e.tags))
        engagement = e.engagement
        return (
            e.source,
            e.id,
            e.title,
            e.link,
            e.author,
            self.time(e.published),
            self.time(e.updated),
            tags,
            e.content_html,
            e.text,
            engagement.points,
            engagement.upvotes,
            engagement.comments,
            e.comments_url,
            self.now_value if e.first_seen is self.now else self.time(e.first_seen),
        )


def _update_sources(conn: Connection, updates: Mapping[str, Mapping[str, Any]]) -> None:
    # One executemany per set of columns (a 304 and a fresh body change different ones).
    t = sources_table
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for name, values in updates.items():
        columns = tuple(sorted(values))
        row = {f"v_{c}": v for c, v in values.items()}
        by_columns.setdefault(columns, []).append({"k_name": name, **row})
    fast = (
        conn.dialect.name == "sqlite"
        and conn.dialect.paramstyle == "qmark"
        and getattr(conn.dialect.dbapi, "sqlite_version_info", (0,)) >= (3, 33)
    )
    for columns, rows in by_columns.items():
        if fast:
            _update_sqlite(conn, columns, rows)
            continue
        # Parameter names differ from column names: SQLAlchemy reserves those.
        stmt = (
            sa.update(t)
            .where(t.c.name == sa.bindparam("k_name"))
            .values({c: sa.bindparam(f"v_{c}", type_=t.c[c].type) for c in columns})
        )
        conn.execute(stmt, rows)


def _bind_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Any:
    """What SQLAlchemy does to a value for ``column`` before the driver sees it: the
    column type's processing, then its dialect's (SQLite's DATETIME writes text)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _update_sqlite(
    conn: Connection, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> None:
    # One UPDATE ... FROM (VALUES ...) for many sources instead of a statement per source
    # (each statement costs a GIL hand-off, see _insert_sqlite). Values go through the
    # columns' own bind processors, as conn.execute(update(...)) would pass them.
    t = sources_table
    processors = [_bind_processor(t.c[c], conn.dialect) for c in columns]
    assignments = ", ".join(f"{c} = v.column{i + 2}" for i, c in enumerate(columns))
    row_marks = f"({', '.join('?' * (len(columns) + 1))})"
    for part in _chunks(rows, _sqlite_variables(conn) // (len(columns) + 1)):
        params: list[Any] = []
        for row in part:
            params.append(row["k_name"])
            for c, process in zip(columns, processors, strict=True):
                value = row[f"v_{c}"]
                params.append(process(value) if process is not None else value)
        conn.exec_driver_sql(
            f"UPDATE sources SET {assignments} "
            f"FROM (VALUES {', '.join([row_marks] * len(part))}) AS v "
            "WHERE sources.name = v.column1",
            tuple(params),
        )


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _existing_keys(conn: Connection, chunk: Sequence[Entry]) -> set[tuple[str, str]]:
    t = entries_table
    if conn.dialect.name == "sqlite" and conn.dialect.paramstyle == "qmark":
        # One query for the whole chunk (each statement costs a GIL hand-off, see
        # _insert_sqlite): every stored (source, id) pair among the chunk's sources and
        # ids, a superset of the chunk's stored keys, found through the unique index.
        sources = list(dict.fromkeys(e.source for e in chunk))
        ids = list(dict.fromkeys(e.id for e in chunk))
        rows = conn.exec_driver_sql(
            _SQLITE_EXISTING.format(", ".join("?" * len(sources)), ", ".join("?" * len(ids))),
            (*sources, *ids),
        )
        return {(r[0], r[1]) for r in rows}
    by_source: dict[str, list[str]] = {}
    for e in chunk:
        by_source.setdefault(e.source, []).append(e.id)
    found: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        rows = conn.execute(
            sa.select(t.c.source, t.c.entry_id).where(t.c.source == source, t.c.entry_id.in_(ids))
        )
        found.update((r[0], r[1]) for r in rows)
    return found


_SQLITE_EXISTING = "SELECT source, entry_id FROM entries WHERE source IN ({}) AND entry_id IN ({})"


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
