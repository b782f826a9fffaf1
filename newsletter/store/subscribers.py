"""Subscribers: who receives which digests, in which format, with which interests and
topics (the ``subscribers`` table of ``schema``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from newsletter.models import Subscriber, SubscriberStatus
from newsletter.store.database import Store
from newsletter.store.schema import subscribers_table


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        digests=tuple(json.loads(row["digests"] or "[]")),
        interests=tuple(json.loads(row["interests"] or "[]")),
        topics=tuple(json.loads(row["topics"] or "[]")),
        timezone=row["timezone"],
        status=row["status"],
        format=row["format"],
        paused_until=row["paused_until"],
        local_hour=row["local_hour"],
    )


def get_subscriber(store: Store, email: str) -> Subscriber | None:
    """The subscriber with this (normalized) address."""
    t = subscribers_table
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.email == email)).mappings().first()
    return _subscriber(row) if row else None


def all_subscribers(store: Store) -> list[Subscriber]:
    """Every subscriber, oldest first."""
    t = subscribers_table
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.id)).mappings().all()
    return [_subscriber(r) for r in rows]


def subscribers_of(
    store: Store, digest: str, *, active_only: bool = True, now: datetime | None = None
) -> list[Subscriber]:
    """Subscribers who receive ``digest`` (an empty digest list means every digest);
    with ``now``, not those whose pause still holds then."""
    return [
        s
        for s in all_subscribers(store)
        if (not s.digests or digest in s.digests)
        and (s.status == "active" or not active_only)
        and (now is None or not s.paused_at(now))
    ]


def save_subscriber(store: Store, sub: Subscriber, *, now: datetime) -> Subscriber:
    """Insert or update (by email) a subscriber; returns it with its id."""
    t = subscribers_table
    values = {
        "email": sub.email,
        "name": sub.name,
        "digests": json.dumps(list(sub.digests)),
        "interests": json.dumps(list(sub.interests)),
        "topics": json.dumps(list(sub.topics)),
        "timezone": sub.timezone,
        "status": sub.status,
        "format": sub.format,
        "paused_until": sub.paused_until,
        "local_hour": sub.local_hour,
        "updated_at": now,
    }
    with store.begin() as conn:
        found = conn.execute(sa.select(t.c.id).where(t.c.email == sub.email)).first()
        if found is None:
            new_id = conn.execute(
                sa.insert(t).values(**values, created_at=now)
            ).inserted_primary_key[0]
        else:
            new_id = found[0]
            conn.execute(sa.update(t).where(t.c.id == new_id).values(**values))
        row = conn.execute(sa.select(t).where(t.c.id == new_id)).mappings().one()
    return _subscriber(row)


def set_status(store: Store, email: str, status: SubscriberStatus, *, now: datetime) -> bool:
    """Change a subscriber's status; False when there is no such subscriber."""
    t = subscribers_table
    with store.begin() as conn:
        n = conn.execute(
            sa.update(t).where(t.c.email == email).values(status=status, updated_at=now)
        ).rowcount
    return bool(n)
