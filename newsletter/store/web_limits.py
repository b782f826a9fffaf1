"""The web app's abuse limits and single-use confirmation links, kept in the database so
they hold across processes and restarts (the ``web_limits`` and ``web_confirmations``
tables of ``schema``).

A limit is a fixed-window counter: one row per key and window, found by its primary key
(no scan, whatever the number of keys), deleted once its window is over. ``hit`` is one
conditional UPDATE, or an INSERT for the window's first event: two processes counting at
once can never both pass the limit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from newsletter.store.database import Store
from newsletter.store.schema import (
    outbox_table,
    subscribers_table,
    web_confirmations_table,
    web_limits_table,
)


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=now.tzinfo)


def hit(store: Store, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one event for ``key`` in the current window; False (and nothing counted)
    when ``limit`` events were counted in it already."""
    t = web_limits_table
    start = _window_start(now, window)
    where = sa.and_(t.c.key == key, t.c.window_start == start)
    for _ in range(2):
        with store.begin() as conn:
            n = conn.execute(
                sa.update(t).where(where, t.c.count < limit).values(count=t.c.count + 1)
            ).rowcount
            if n:
                return True
            if conn.execute(sa.select(t.c.count).where(where)).first() is not None:
                return False
        if limit < 1:
            return False
        try:
            with store.begin() as conn:
                conn.execute(
                    sa.insert(t).values(
                        key=key, window_start=start, count=1, expires_at=start + window
                    )
                )
            return True
        except IntegrityError:
            continue  # another process inserted the window's row first: count in it
    return False


def would_allow(store: Store, key: str, *, limit: int, window: timedelta, now: datetime) -> bool:
    """Whether ``hit`` would pass now, counting nothing."""
    t = web_limits_table
    start = _window_start(now, window)
    with store.engine.connect() as conn:
        count = conn.execute(
            sa.select(t.c.count).where(t.c.key == key, t.c.window_start == start)
        ).scalar()
    return (count or 0) < limit


def issue_confirmation(store: Store, email: str, *, now: datetime) -> str:
    """A new nonce for ``email``'s confirmation link; the address's older links stop
    working (one link per address works at a time)."""
    t = web_confirmations_table
    nonce = secrets.token_urlsafe(16)
    with store.begin() as conn:
        conn.execute(sa.delete(t).where(t.c.email == email))
        conn.execute(sa.insert(t).values(email=email, nonce=nonce, created_at=now))
    return nonce


def use_confirmation(store: Store, email: str, nonce: str, *, not_before: datetime) -> bool:
    """Spend ``email``'s confirmation link: True once for the nonce of its working link
    (made after ``not_before``), False for any other, a used one, or a link made before
    the address was last unsubscribed."""
    c = web_confirmations_table
    s = subscribers_table
    with store.begin() as conn:
        row = conn.execute(
            sa.select(c.c.created_at).where(c.c.email == email, c.c.nonce == nonce)
        ).first()
        if row is None or row[0] < not_before:
            return False
        left = conn.execute(
            sa.select(s.c.updated_at).where(s.c.email == email, s.c.status == "unsubscribed")
        ).first()
        if left is not None and left[0] > row[0]:
            return False
        n = conn.execute(sa.delete(c).where(c.c.email == email, c.c.nonce == nonce)).rowcount
    return bool(n)


def forget_confirmation(store: Store, email: str) -> None:
    """The address's confirmation link stops working (it unsubscribed)."""
    t = web_confirmations_table
    with store.begin() as conn:
        conn.execute(sa.delete(t).where(t.c.email == email))


def clean_up(store: Store, *, now: datetime, pending_max_age: timedelta) -> tuple[int, int]:
    """Delete finished limit windows, expired confirmation links and the pending
    addresses nobody confirmed within ``pending_max_age``: (limits, pending) deleted."""
    limits, confirmations, subs = web_limits_table, web_confirmations_table, subscribers_table
    cutoff = now - pending_max_age
    with store.begin() as conn:
        n_limits = conn.execute(sa.delete(limits).where(limits.c.expires_at <= now)).rowcount
        conn.execute(sa.delete(confirmations).where(confirmations.c.created_at < cutoff))
        mailed = sa.exists().where(outbox_table.c.subscriber_id == subs.c.id)
        n_pending = conn.execute(
            sa.delete(subs).where(subs.c.status == "pending", subs.c.updated_at < cutoff, ~mailed)
        ).rowcount
    return n_limits, n_pending


__all__ = [
    "clean_up",
    "forget_confirmation",
    "hit",
    "issue_confirmation",
    "use_confirmation",
    "would_allow",
]
