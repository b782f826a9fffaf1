"""Which daemon schedules, when several run on one database; and which parts of the
daemon a process runs (``newsletter run --role``).

**Leadership.** On PostgreSQL the scheduler is the daemon that holds a session-level
advisory lock (``pg_try_advisory_lock``) on a connection of its own, kept open for as
long as it leads. Only the leader reads, deletes and places the rows of
``apscheduler_jobs`` and runs the poll, digest and local-hour jobs; the other daemons
try again every ``DaemonOptions.leader_retry``. When the leader stops (or dies) its
connection closes, the server releases the lock, and the next daemon to try takes over:
it reads when each job was due from the table the old leader left, so an edition the
old leader missed is caught up within the digest's grace. A leader that finds its
connection gone steps down (``still_held``) and tries again like the others.

On SQLite there is one daemon per database file: it always leads, and no lock is taken.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from newsletter.store.engine import is_postgres

ROLES = ("schedule", "send", "web")
"""The parts of ``newsletter run``: ``schedule`` polls the sources and plans, builds and
sends each edition (on the leader only), ``send`` retries the outbox, ``web`` serves the
web pages."""

DAEMON_ROLES = frozenset({"schedule", "send"})
"""What ``newsletter run`` does without ``--role`` (``--web`` adds ``web``)."""

LEADER_RETRY = timedelta(minutes=1)
"""How often a daemon that does not lead tries to (and a leader checks it still does)."""

CONNECT_TIMEOUT = 10
"""Seconds the leadership connection waits for the server."""

SCHEDULER_LOCK = 0x6E657773_6C656164
"""PostgreSQL advisory lock key held by the scheduling daemon ("newslead"); the schema
lock (``store.migrate``) is another key."""


def parse_roles(values: Iterable[str]) -> frozenset[str]:
    """``--role`` values, each one role or several separated by commas; ValueError names
    an unknown one."""
    roles: set[str] = set()
    for value in values:
        for part in value.split(","):
            role = part.strip().lower()
            if role not in ROLES:
                shown = repr(part.strip()) if part.strip() else "an empty role"
                raise ValueError(f"{shown} is not a role: choose from {', '.join(ROLES)}")
            roles.add(role)
    return frozenset(roles)


def describe_roles(roles: Iterable[str]) -> str:
    """``schedule,send``: the roles in their usual order, for the log."""
    return ",".join(r for r in ROLES if r in set(roles))


class Leadership:
    """Always the leader: SQLite, one daemon per database file."""

    contested = False
    """Whether another daemon may hold the lead (then ``still_held`` is worth asking)."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLeadership(Leadership):
    """The lead on PostgreSQL: a session advisory lock on a connection of its own (not
    from the store's pool, so nothing else runs on it and closing it ends the session)."""

    contested = True

    def __init__(self, engine: sa.Engine, key: int = SCHEDULER_LOCK) -> None:
        # A server that does not answer must not hold up the daemon's event loop for
        # long: the next try comes a ``leader_retry`` later anyway.
        self._engine = sa.create_engine(
            engine.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
        self._key = key
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it; the connection stays open while
        it is held."""
        if self._conn is not None and self.still_held():
            return True
        try:
            conn = self._engine.connect()
        except SQLAlchemyError:
            return False
        try:
            got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._key))).scalar())
        except SQLAlchemyError:
            got = False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """Whether this session is alive (a session lock lasts as long as its session)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.select(1))
        except SQLAlchemyError:
            self._close()
            return False
        return True

    def release(self) -> None:
        """Unlock and close the connection: the next daemon to try takes over."""
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self._key)))
            self._close()
        self._engine.dispose()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
                conn.close()


def leadership_for(engine: sa.Engine) -> Leadership:
    """An advisory lock on PostgreSQL; always the leader elsewhere (SQLite)."""
    return AdvisoryLeadership(engine) if is_postgres(engine) else Leadership()


__all__ = [
    "DAEMON_ROLES",
    "LEADER_RETRY",
    "ROLES",
    "AdvisoryLeadership",
    "Leadership",
    "describe_roles",
    "leadership_for",
    "parse_roles",
]
