"""Several senders on one edition (on SQLite and PostgreSQL, see this folder's conftest):
a sender renews the lease of the rows it holds while a slow server takes its time, so a
second sender starting meanwhile takes none of them back, and nobody gets a message
twice. Without the renewal, the same run does send duplicates (the control below)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.deliver.loop import DeliveryReport, RetryPolicy, deliver_edition
from newsletter.deliver.mailers import MemoryMailer, Outgoing
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.deliver.test_deliver import composer
from tests.factories import make_subscriber, seed_outbox

SUBSCRIBERS = 12
BATCH = 6
DELAY = 0.2
"""Seconds the server takes per message: one batch (1.2 s) outlasts the lease."""
LEASE = timedelta(seconds=0.6)
SECOND_STARTS = 0.9
"""Seconds after the first sender: its first batch is older than the lease by then."""


def real_now() -> datetime:
    return datetime.now(UTC)


async def two_senders(store: Store, eid: int) -> tuple[Counter[str], list[DeliveryReport]]:
    async def slow(message: Outgoing) -> None:
        await asyncio.sleep(DELAY)

    mailer = MemoryMailer(slow)
    compose = composer()

    async def sender(after: float) -> DeliveryReport:
        await asyncio.sleep(after)
        return await deliver_edition(
            store,
            eid,
            mailer,
            compose,
            clock=real_now,
            policy=RetryPolicy(backoff=0.01),
            workers=1,
            batch=BATCH,
            lease=LEASE,
        )

    reports = await asyncio.gather(sender(0), sender(SECOND_STARTS))
    return Counter(mailer.recipients), list(reports)


def edition(store: Store) -> int:
    people = [make_subscriber(i) for i in range(SUBSCRIBERS)]
    return seed_outbox(store, people, now=real_now())


def test_two_senders_and_a_slow_server_send_each_message_once(store: Store) -> None:
    eid = edition(store)
    received, (first, second) = asyncio.run(two_senders(store, eid))
    assert second.recovered == 0  # the first sender's rows were still leased
    assert set(received.values()) == {1} and len(received) == SUBSCRIBERS
    assert first.sent + second.sent == SUBSCRIBERS and second.sent > 0
    assert outbox.counts(store, eid)["sent"] == SUBSCRIBERS


def test_without_renewal_the_second_sender_takes_rows_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "renew", lambda *args, **kw: 0)
    eid = edition(store)
    received, (_, second) = asyncio.run(two_senders(store, eid))
    assert second.recovered > 0
    assert max(received.values()) == 2  # what the renewal prevents
