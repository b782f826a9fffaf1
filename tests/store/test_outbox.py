"""The outbox: unique rows per (edition, subscriber), atomic claims, state changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.schema import outbox_table
from newsletter.store.subscribers import all_subscribers
from tests.factories import seed_outbox

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def edition(store: Store, n: int) -> int:
    return seed_outbox(store, [f"u{i}@example.org" for i in range(n)], now=NOW)


def test_enqueue_is_idempotent_and_rows_are_unique(store: Store) -> None:
    eid = edition(store, 3)
    subs = all_subscribers(store)
    assert outbox.enqueue(store, eid, subs, now=NOW) == 0
    assert outbox.counts(store, eid)["queued"] == 3
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(
            sa.insert(outbox_table).values(
                edition_id=eid, subscriber_id=subs[0].id, email="x", created_at=NOW
            )
        )


def test_claim_send_retry_fail(store: Store) -> None:
    eid = edition(store, 3)
    a, b, c = outbox.claim(store, eid, now=NOW, limit=10, prefix="h:1:x")
    assert outbox.counts(store, eid)["sending"] == 3 and a.attempts == 1
    assert outbox.mark_sent(store, a, reply="250 ok", message_id="<m>", now=NOW)
    assert outbox.mark_retry(store, b, error="451", next_try=NOW + timedelta(minutes=5))
    assert outbox.mark_failed(store, c, error="550")
    assert not outbox.mark_sent(store, a, reply="250 again", message_id="<m>", now=NOW)
    states = {r.email: (r.state, r.reply) for r in outbox.rows(store, eid)}
    assert states == {
        "u0@example.org": ("sent", "250 ok"),
        "u1@example.org": ("retry", None),
        "u2@example.org": ("failed", None),
    }
    assert outbox.claim(store, eid, now=NOW, limit=10, prefix="h:1:y") == []
    later = outbox.claim(store, eid, now=NOW + timedelta(minutes=6), limit=10, prefix="h:1:z")
    assert [r.email for r in later] == ["u1@example.org"] and later[0].attempts == 2


def test_a_stale_claim_cannot_overwrite_a_newer_one(store: Store) -> None:
    eid = edition(store, 1)
    (old,) = outbox.claim(store, eid, now=NOW, limit=1, prefix="otherhost:1:a")
    assert outbox.recover(store, eid, now=NOW + timedelta(hours=1)) == 1
    (new,) = outbox.claim(store, eid, now=NOW + timedelta(hours=1), limit=1, prefix="h:2:b")
    assert not outbox.mark_sent(store, old, reply="250", message_id="<m>", now=NOW)
    assert outbox.mark_sent(store, new, reply="250", message_id="<m>", now=NOW)


def test_release_gives_rows_back_without_counting_an_attempt(store: Store) -> None:
    eid = edition(store, 2)
    rows = outbox.claim(store, eid, now=NOW, limit=2, prefix="h:1:x")
    outbox.release(store, rows)
    again = outbox.claim(store, eid, now=NOW, limit=2, prefix="h:1:y")
    assert [r.attempts for r in again] == [1, 1]


def test_a_claim_starts_after_the_last_id_it_took(store: Store) -> None:
    eid = edition(store, 6)
    first = outbox.claim(store, eid, now=NOW, limit=2, prefix="h:1:x")
    # Another claimer took the next two meanwhile; they are skipped, not waited for.
    other = outbox.claim(store, eid, now=NOW, limit=2, prefix="h:2:x")
    mark = max(r.id for r in other)
    rest = outbox.claim(store, eid, now=NOW, limit=10, prefix="h:1:y", after=mark)
    assert [r.email for r in first + other + rest] == [f"u{i}@example.org" for i in range(6)]
    # A row back in the queue before the mark is only found from the start.
    with store.begin() as conn:
        row = first[0]
        conn.execute(
            sa.update(outbox_table).where(outbox_table.c.id == row.id).values(state="queued")
        )
    assert outbox.claim(store, eid, now=NOW, limit=10, prefix="h:1:z", after=mark) == []
    again = outbox.claim(store, eid, now=NOW, limit=10, prefix="h:1:z")
    assert [r.id for r in again] == [row.id]


def test_pending_for(store: Store) -> None:
    eid = edition(store, 3)
    (a,) = outbox.claim(store, eid, now=NOW, limit=1, prefix="h:1:x")
    outbox.mark_sent(store, a, reply="250", message_id="<m>", now=NOW)
    assert outbox.pending_for(store, eid, all_subscribers(store)) == 2
