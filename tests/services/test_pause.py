"""A paused subscriber gets no mail until the pause ends (issue 13, finding 15): every
send (``send_edition`` for the whole list, ``send_to`` for a local-hour group) skips
them while ``paused_until`` is ahead of the send's ``now``, on a real SQLite store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.deliver.mailers import MemoryMailer
from newsletter.services.delivery import send_to
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber, subscribers_of
from tests.factories import make_entry, make_settings, make_subscriber, seed, send_story

NOW = datetime(2030, 6, 1, 7, 0, tzinfo=UTC)
PAUSE_END = NOW + timedelta(weeks=2)


def send_at(store: Store, tmp_path: Path, now: datetime, title: str) -> list[str]:
    """Add a story first seen at ``now``, send the digest at ``now``: the recipients."""
    sent = send_story(store, make_settings(tmp_path), now=now, title=title)
    return sorted(m.recipient for m in sent)


def test_no_mail_until_the_pause_ends(store: Store, tmp_path: Path) -> None:
    seed(
        store,
        now=NOW,
        subscribers=[
            make_subscriber("paused@example.org", paused_until=PAUSE_END),
            make_subscriber("ada@example.org"),
        ],
    )
    sub = get_subscriber(store, "paused@example.org")
    assert sub is not None and sub.paused_until == PAUSE_END  # stored and read back
    assert send_at(store, tmp_path, NOW, "one") == ["ada@example.org"]
    just_before = PAUSE_END - timedelta(days=1)  # the day before: another edition
    assert send_at(store, tmp_path, just_before, "two") == ["ada@example.org"]
    assert send_at(store, tmp_path, PAUSE_END, "three") == [
        "ada@example.org",
        "paused@example.org",
    ]


def test_a_local_hour_send_skips_paused_subscribers_too(store: Store, tmp_path: Path) -> None:
    subs = seed(
        store,
        now=NOW,
        subscribers=[make_subscriber("paused@example.org", paused_until=PAUSE_END)],
    )
    assert subscribers_of(store, "daily", now=NOW) == []
    assert [s.email for s in subscribers_of(store, "daily")] == ["paused@example.org"]
    settings = make_settings(tmp_path)
    seed(store, now=NOW, entries=[make_entry("one", source="papers", now=NOW, hours_ago=0)])
    mailer = MemoryMailer()
    result = asyncio.run(
        send_to(
            store,
            settings,
            settings.digests[0],
            mailer,
            subs,
            period="2030-06-01",
            now=NOW,
            clock=lambda: NOW,
            secret="test-secret",
        )
    )
    assert mailer.messages == [] and result.queued == 0
