"""The store as a fetch run uses it, opened lazily: source states in, outcomes out.

Most runs of a feed reader are warm: every feed answers 304 and nothing but the sources'
check times changes. Loading SQLAlchemy costs more than all those requests together, so
``LazyStore`` reads the source states of an SQLite database and records outcomes that
carry no entries with the standard library's ``sqlite3``, and opens the real ``Store``
(SQLAlchemy Core) only for what needs it: a database or table that does not exist yet, a
source that is new or whose URL changed, entries to store, any other database.

Rows are written exactly as ``Store`` writes them (naive UTC times as SQLAlchemy's SQLite
``DATETIME`` text, ``BEGIN IMMEDIATE``, the same busy timeout); a test compares the two
row by row.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter.errors import StoreError
from newsletter.models import Entry, SourceState

if TYPE_CHECKING:
    from newsletter.store.database import Store

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SourceState))
"""The ``sources`` table's columns: ``SourceState`` holds one row."""
TIME_COLUMNS = frozenset({"last_fetched", "last_ok", "retry_after"})
"""The columns stored as ``DATETIME`` (naive UTC text)."""

# A plain file database; anything else (memory, URI options, other drivers) goes through
# SQLAlchemy, which knows what those mean.
_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?]+)")
_MAX_VARIABLES = 900  # under SQLite's oldest limit of 999 bound parameters per statement


def sqlite_path(url: str) -> Path | None:
    """The file of a plain SQLite URL (``sqlite:///path``); None for anything else."""
    m = _SQLITE_FILE.fullmatch(url)
    if m is None or m["path"] == ":memory:":
        return None
    return Path(m["path"])


def to_db_time(value: datetime) -> str:
    """A datetime as the SQLite text SQLAlchemy stores for a ``DATETIME`` column: naive
    UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    """The aware UTC datetime of a stored ``DATETIME`` text."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class LazyStore:
    """``ensure_sources`` and ``record_fetch`` of ``Store``, without loading SQLAlchemy
    when the standard library's ``sqlite3`` can do them (see the module's docstring).

    Use it as a context manager, or call ``close``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The real store, opened (and its tables created) on first use."""
        if self._store is None:
            from newsletter.store.database import Store

            self._close_conn()
            self._store = Store(self.url)
        return self._store

    @property
    def opened_store(self) -> bool:
        """Whether the real store (SQLAlchemy) had to be opened."""
        return self._store is not None

    def ensure_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, SourceState]:
        """As ``Store.ensure_sources``: read with ``sqlite3`` when every source is already
        stored under the same URL (nothing to write), else by the real store."""
        pairs = dict(sources)
        states = self._read_states(pairs) if self._store is None else None
        if states is None:
            return self.store.ensure_sources(pairs.items())
        return states

    def record_fetch(
        self,
        entries: Iterable[Entry],
        updates: Mapping[str, Mapping[str, Any]],
        *,
        now: datetime,
    ) -> list[Entry]:
        """As ``Store.record_fetch``; without entries and with the database open through
        ``sqlite3``, the source updates are written by it, in one transaction."""
        batch = list(entries)
        if batch or self._conn is None:
            # Entries and their sources' new validators go in one transaction: a feed
            # must never be marked as read while its entries are not stored.
            return self.store.record_fetch(batch, updates, now=now)
        self._update_sources(self._conn, updates)
        return []

    def close(self) -> None:
        self._close_conn()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> LazyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sqlite3 --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path is not None and self.path.is_file():
            try:
                # isolation_level=None: transactions are begun by hand (BEGIN IMMEDIATE).
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                return None  # the real store will say what is wrong with it
            self._conn = conn
        return self._conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_states(self, pairs: Mapping[str, str]) -> dict[str, SourceState] | None:
        """Every source's stored state, or None when the real store must handle them."""
        conn = self._connect()
        if conn is None or not pairs:
            return None
        names = list(pairs)
        rows: dict[str, tuple[Any, ...]] = {}
        try:
            for part in _chunks(names, _MAX_VARIABLES):
                marks = ", ".join("?" * len(part))
                sql = f"SELECT {', '.join(COLUMNS)} FROM sources WHERE name IN ({marks})"
                for row in conn.execute(sql, part):
                    rows[row[0]] = row
        except sqlite3.Error:
            # No such table or column (an older or newer database): the real store
            # creates what is missing or reports what is wrong.
            self._close_conn()
            return None
        if any(name not in rows or rows[name][1] != url for name, url in pairs.items()):
            self._close_conn()
            return None
        return {name: _state(rows[name]) for name in names}

    def _update_sources(
        self, conn: sqlite3.Connection, updates: Mapping[str, Mapping[str, Any]]
    ) -> None:
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for name, values in updates.items():
            columns = tuple(sorted(values))
            unknown = set(columns) - set(COLUMNS)
            if unknown:
                raise ValueError(f"not a column of sources: {', '.join(sorted(unknown))}")
            row = tuple(_db_value(c, values[c]) for c in columns)
            by_columns.setdefault(columns, []).append((*row, name))
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for columns, rows in by_columns.items():
                    assignments = ", ".join(f"{c} = ?" for c in columns)
                    conn.executemany(f"UPDATE sources SET {assignments} WHERE name = ?", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the database {self.url}: {exc}") from None


def _state(row: Sequence[Any]) -> SourceState:
    values = dict(zip(COLUMNS, row, strict=True))
    for c in TIME_COLUMNS:
        values[c] = from_db_time(values[c])
    return SourceState(**values)


def _db_value(column: str, value: Any) -> Any:
    if column in TIME_COLUMNS and isinstance(value, datetime):
        return to_db_time(value)
    return value


def _chunks(seq: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
