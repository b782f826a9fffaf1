"""Bounce events and per-edition figures: the ``bounce_events`` table of ``schema`` and
the queries the bounce processor and ``newsletter stats`` ask of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from newsletter.models import SubscriberStatus
from newsletter.store.database import Store
from newsletter.store.engine import insert_or_skip
from newsletter.store.schema import (
    bounce_events_table,
    editions_table,
    outbox_table,
    subscribers_table,
)


@dataclass(frozen=True, slots=True)
class Target:
    """Whom a report is about: an outbox row's subscriber and edition."""

    outbox_id: int
    subscriber_id: int
    edition_id: int
    email: str


@dataclass(frozen=True, slots=True)
class EditionStats:
    """What became of one edition's messages."""

    edition_id: int
    digest: str
    period: str
    created_at: datetime
    queued: int
    """Not sent yet: queued, being sent, or waiting for a retry."""
    sent: int
    failed: int
    bounced: int
    complained: int
    unsubscribed: int


def target_of(store: Store, outbox_id: int) -> Target | None:
    """The subscriber and edition of an outbox row."""
    t = outbox_table
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.c.id, t.c.subscriber_id, t.c.edition_id, t.c.email).where(
                t.c.id == outbox_id
            )
        ).first()
    return Target(*row) if row else None


def target_by_message_id(store: Store, message_id: str) -> Target | None:
    """The outbox row that sent the message with this Message-ID (with or without <>)."""
    bare = message_id.strip().strip("<>")
    if not bare:
        return None
    t = outbox_table
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.c.id, t.c.subscriber_id, t.c.edition_id, t.c.email)
            .where(t.c.message_id.in_([f"<{bare}>", bare]))
            .order_by(t.c.id.desc())
            .limit(1)
        ).first()
    return Target(*row) if row else None


def latest_target(store: Store, email: str, digest: str | None = None) -> Target | None:
    """The last message sent to ``email`` (of ``digest``): where an unsubscribe without
    an edition of its own is counted."""
    t, e = outbox_table, editions_table
    q = (
        sa.select(t.c.id, t.c.subscriber_id, t.c.edition_id, t.c.email)
        .join(e, e.c.id == t.c.edition_id)
        .where(t.c.email == email, t.c.state == "sent")
    )
    if digest is not None:
        q = q.where(e.c.digest == digest)
    with store.engine.connect() as conn:
        row = conn.execute(q.order_by(t.c.edition_id.desc()).limit(1)).first()
    return Target(*row) if row else None


def edition_digest(store: Store, edition_id: int) -> str | None:
    """The digest an edition belongs to."""
    e = editions_table
    with store.engine.connect() as conn:
        return conn.execute(sa.select(e.c.digest).where(e.c.id == edition_id)).scalar()


def record_event(
    store: Store,
    *,
    source_id: str,
    kind: str,
    email: str,
    reason: str,
    now: datetime,
    target: Target | None = None,
) -> bool:
    """Store one event; False when a report with this ``source_id`` is already stored."""
    t = bounce_events_table
    values = {
        "source_id": source_id[:400],
        "kind": kind,
        "email": email[:320],
        "reason": reason,
        "received_at": now,
        "subscriber_id": target.subscriber_id if target else None,
        "edition_id": target.edition_id if target else None,
        "outbox_id": target.outbox_id if target else None,
    }
    with store.begin() as conn:
        return bool(conn.execute(insert_or_skip(conn, t).values(**values).returning(t.c.id)).all())


def hard_bounces(store: Store, subscriber_id: int) -> int:
    """How many editions hard-bounced for this subscriber."""
    t = bounce_events_table
    with store.engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count(sa.distinct(t.c.edition_id))).where(
                t.c.subscriber_id == subscriber_id, t.c.kind == "hard"
            )
        ).scalar_one()
    return int(n)


def bounce_streak(store: Store, subscriber_id: int, edition_id: int) -> int:
    """How many consecutive editions sent to the subscriber, up to ``edition_id``, bounced
    (soft or hard): one delivered edition in between ends the streak."""
    o, b = outbox_table, bounce_events_table
    with store.engine.connect() as conn:
        sent = conn.execute(
            sa.select(o.c.edition_id)
            .where(
                o.c.subscriber_id == subscriber_id,
                o.c.state == "sent",
                o.c.edition_id <= edition_id,
            )
            .order_by(o.c.edition_id.desc())
        ).all()
        bounced = {
            r[0]
            for r in conn.execute(
                sa.select(b.c.edition_id).where(
                    b.c.subscriber_id == subscriber_id, b.c.kind.in_(("soft", "hard"))
                )
            )
        }
    streak = 0
    for (eid,) in sent:
        if eid not in bounced:
            break
        streak += 1
    return streak


def deactivate(
    store: Store, subscriber_id: int, status: SubscriberStatus, reason: str, *, now: datetime
) -> bool:
    """Set a subscriber's status with its reason, unless it is already inactive; True
    when it changed."""
    t = subscribers_table
    with store.begin() as conn:
        n = conn.execute(
            sa.update(t)
            .where(t.c.id == subscriber_id, t.c.status.in_(("active", "pending")))
            .values(status=status, status_reason=reason[:500], updated_at=now)
        ).rowcount
    return bool(n)


def note_reason(store: Store, email: str, reason: str, *, now: datetime) -> None:
    """Store why an inactive subscriber stopped (the status was set elsewhere)."""
    t = subscribers_table
    with store.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.email == email, t.c.status != "active")
            .values(status_reason=reason[:500], updated_at=now)
        )


def status_reason(store: Store, email: str) -> str | None:
    """Why the subscriber's status last changed by a report (None: not by a report)."""
    t = subscribers_table
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.c.status_reason).where(t.c.email == email)).scalar()


def events(
    store: Store, *, edition_id: int | None = None, email: str | None = None, latest: int = 0
) -> list[dict[str, object]]:
    """Stored events (of one edition, of one address), oldest first; with ``latest``,
    only that many of the newest."""
    t = bounce_events_table
    q = sa.select(t).order_by(t.c.id.desc() if latest else t.c.id)
    if edition_id is not None:
        q = q.where(t.c.edition_id == edition_id)
    if email is not None:
        q = q.where(t.c.email == email)
    if latest:
        q = q.limit(latest)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    return rows[::-1] if latest else rows


def edition_ids(
    store: Store, *, digest: str | None = None, edition: str | None = None, limit: int = 10
) -> list[int]:
    """Editions, newest first: of ``digest`` (or every digest), only the one ``edition``
    names (its id, or its period) when given, at most ``limit``."""
    e = editions_table
    q = sa.select(e.c.id).order_by(e.c.created_at.desc(), e.c.id.desc()).limit(limit)
    if digest is not None:
        q = q.where(e.c.digest == digest)
    if edition is not None:
        by_period = e.c.period == edition
        q = q.where(sa.or_(e.c.id == int(edition), by_period) if edition.isdigit() else by_period)
    with store.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(q)]


def edition_stats(store: Store, edition_ids: list[int]) -> list[EditionStats]:
    """The figures of each edition in ``edition_ids`` (in that order)."""
    if not edition_ids:
        return []
    o, b, e = outbox_table, bounce_events_table, editions_table
    with store.engine.connect() as conn:
        eds = {
            r.id: r
            for r in conn.execute(
                sa.select(e.c.id, e.c.digest, e.c.period, e.c.created_at).where(
                    e.c.id.in_(edition_ids)
                )
            )
        }
        states: dict[int, dict[str, int]] = {}
        for eid, state, n in conn.execute(
            sa.select(o.c.edition_id, o.c.state, sa.func.count())
            .where(o.c.edition_id.in_(edition_ids))
            .group_by(o.c.edition_id, o.c.state)
        ):
            states.setdefault(eid, {})[state] = int(n)
        # Distinct subscribers per kind: a report read twice, or a hard and a soft
        # bounce of one message, count one person once.
        kinds: dict[int, dict[str, int]] = {}
        for eid, kind, n in conn.execute(
            sa.select(b.c.edition_id, b.c.kind, sa.func.count(sa.distinct(b.c.email)))
            .where(b.c.edition_id.in_(edition_ids))
            .group_by(b.c.edition_id, b.c.kind)
        ):
            kinds.setdefault(eid, {})[kind] = int(n)
        for eid, n in conn.execute(
            sa.select(b.c.edition_id, sa.func.count(sa.distinct(b.c.email)))
            .where(b.c.edition_id.in_(edition_ids), b.c.kind.in_(("hard", "soft")))
            .group_by(b.c.edition_id)
        ):
            kinds.setdefault(eid, {})["bounced"] = int(n)
    out = []
    for eid in edition_ids:
        if eid not in eds:
            continue
        s, k = states.get(eid, {}), kinds.get(eid, {})
        out.append(
            EditionStats(
                edition_id=eid,
                digest=eds[eid].digest,
                period=eds[eid].period,
                created_at=eds[eid].created_at,
                queued=s.get("queued", 0) + s.get("sending", 0) + s.get("retry", 0),
                sent=s.get("sent", 0),
                failed=s.get("failed", 0),
                bounced=k.get("bounced", 0),
                complained=k.get("complaint", 0),
                unsubscribed=k.get("unsubscribe", 0),
            )
        )
    return out
