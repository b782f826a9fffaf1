"""Engines and the little SQL that differs between the two databases the store runs on.

**SQLite** (the embedded default): WAL journal, a busy timeout so concurrent runs wait
instead of failing, ``BEGIN IMMEDIATE`` so writers queue, one at a time.

**PostgreSQL** (``postgresql+psycopg://``; ``postgresql://`` and ``postgres://`` mean the
same, psycopg 3 is the driver we ship): READ COMMITTED, as the server defaults; the outbox
claims with ``FOR UPDATE SKIP LOCKED``, which SQLite's compiler leaves out, and the
schema check on open takes an advisory lock before it creates or upgrades anything.

Everything else the store writes is portable SQLAlchemy Core: an INSERT that skips
duplicates is ``insert_or_skip`` (``ON CONFLICT DO NOTHING`` in both dialects).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import StoreError
from newsletter.store.faults import database_fault
from newsletter.store.migrate import display_url

BUSY_TIMEOUT = 30.0
"""Seconds a connection waits for another's lock before "database is locked"."""

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")


def _use_wal(cur: Any) -> None:
    """Switch the file to WAL unless it is already (or is a memory database).

    The switch takes a lock that SQLite's busy handler does not wait for: a process that
    opens a new file while another is creating its tables gets "database is locked" at
    once. So the switch is retried, for as long as the busy timeout, re-reading the mode
    each time (the other process may have switched it meanwhile)."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        (mode,) = cur.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() in ("wal", "memory"):
            return
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # busy_timeout first: it makes a second concurrent run wait for the lock instead of
    # failing with "database is locked". WAL lets readers work while one writer writes;
    # it is a property of the file, so it is switched on once, not by every connection
    # (switching needs a lock that a process creating the tables may hold).
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    _use_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then
    # writes can otherwise fail with SQLITE_BUSY when another run wrote in between, and
    # the busy timeout cannot help it. Concurrent runs thus queue, one writer at a time.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` name psycopg 3 (``postgresql+psycopg://``),
    the driver we depend on; SQLAlchemy would otherwise look for psycopg2."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in _POSTGRES_SCHEMES:
        return f"postgresql+psycopg://{rest}"
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite, the parent folder is created and WAL is on."""
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path and path != ":memory:" and not path.startswith("file:"):  # URI names
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        # Database faults (corrupt, read-only, disk full...) become one StoreError.
        sa.event.listen(engine, "handle_error", database_fault(url))
        return engine
    except (SQLAlchemyError, OSError, ValueError, ImportError) as exc:
        raise StoreError(f"cannot open the database {display_url(url)}: {exc}") from None


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def insert_or_skip(conn: Connection, table: sa.Table) -> Any:
    """An INSERT into ``table`` that skips rows whose unique key is already there (a
    concurrent run may have stored the same row since we looked): ``ON CONFLICT DO
    NOTHING`` on SQLite and PostgreSQL, a plain INSERT elsewhere."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    return sa.insert(table)
