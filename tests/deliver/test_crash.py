"""Crash safety end to end: the real ``newsletter send`` command, killed with SIGKILL at
random points while it sends to a real SMTP server, then run again until it finishes.

Every subscriber gets the edition, nobody recorded as sent gets it again, and the
duplicates stay within the documented window (one message per connection per crash): on
SQLite and on PostgreSQL (this folder's conftest).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import make_papers, make_subscriber, seeded_store, write_config
from tests.smtp_server import Received, Recorder, smtp_server
from tests.support import HANG_GUARD, kill_mid_send, newsletter_command, process_env, wait_until

SUBSCRIBERS = 60
POOL_SIZE = 2
KILLS = 3
DELAY = 0.04
"""Seconds the server takes per message: a run lasts long enough for the kills to land
while messages are in flight."""


class SlowRecorder(Recorder):
    """Accepts every message after a short delay, then records it. A sender killed
    during the delay still has its message accepted (the server finishes it): that is
    the duplicate window, exercised for real."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(DELAY)
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK queued"

    def total(self) -> int:
        with self.lock:
            return len(self.messages)

    def counts(self) -> Counter[str]:
        with self.lock:
            return self.count()


def setup(tmp: Path, url: str) -> tuple[Path, str, list[str]]:
    """A config for SMTP delivery, a database (``url``) with entries and subscribers."""
    cfg = write_config(
        tmp,
        database_url=url,
        # Unreachable on purpose: the NEWSLETTER_SMTP_* variables must override these.
        smtp={
            "host": "192.0.2.1",
            "port": 2525,
            "security": "starttls",
            "timeout": 5,
            "backoff": 0.01,
            "pool_size": POOL_SIZE,
        },
    )
    now = datetime.now(UTC)
    addresses = [make_subscriber(i).email for i in range(SUBSCRIBERS)]
    seeded_store(url, now=now, entries=make_papers(8, now=now), subscribers=addresses).close()
    return cfg, url, addresses


def sent_addresses(db: str) -> set[str]:
    with Store(db) as store:
        edition = store.last_edition("daily")
        if edition is None:
            return set()
        return {row.email for row in outbox.rows(store, edition.id, "sent")}


def test_send_killed_at_random_points_then_run_again(tmp_path: Path, database_url: str) -> None:
    rng = random.Random(20261128)
    with smtp_server(SlowRecorder()) as (ctl, rec):
        assert isinstance(rec, SlowRecorder)
        cfg, db, addresses = setup(tmp_path, database_url)
        # The environment overrides the file: host, port and security come from here.
        env = process_env(
            NEWSLETTER_SMTP_HOST="127.0.0.1",
            NEWSLETTER_SMTP_PORT=str(ctl.port),
            NEWSLETTER_SMTP_SECURITY="none",
            NEWSLETTER_SECRET_KEY="crash-test-secret",
        )
        cmd = [*newsletter_command(), "send", "--config", str(cfg), "--digest", "daily"]
        # Copies received by each subscriber already recorded as sent at some kill: a
        # later run must not add to them.
        frozen: dict[str, int] = {}
        for kill in range(KILLS):
            target = rec.total() + rng.randint(3, 12)
            kill_mid_send(cmd, env, received=rec.total, target=target, log=tmp_path / f"{kill}.log")
            # The server has finished what was in flight: the killed run's connections are
            # closed. Then freeze what is recorded.
            wait_until(
                lambda: ctl.open_connections() == 0,
                message="the killed sender's connections stay open",
            )
            counts = rec.counts()
            for address in sent_addresses(db):
                frozen.setdefault(address, counts[address])
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
        assert final.returncode == 0, final.stdout + final.stderr
        counts = rec.counts()

    assert 0 < len(frozen) < SUBSCRIBERS  # the kills landed mid-run
    assert set(counts) == set(addresses)  # every subscriber got the edition
    for address, seen in frozen.items():
        assert counts[address] == seen, f"{address} was sent again after being recorded"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= KILLS * POOL_SIZE
    with Store(db) as store:
        edition = store.last_edition("daily")
        assert edition is not None
        assert outbox.counts(store, edition.id)["sent"] == SUBSCRIBERS
        assert {r.email for r in outbox.rows(store, edition.id)} == set(addresses)
