"""The proof that several senders share one PostgreSQL database (issue 12): three
``newsletter send`` processes started together on one edition of 20,000 subscribers, to
one SMTP server. They plan the same edition (recorded once), enqueue it (each row once),
and claim rows with ``FOR UPDATE SKIP LOCKED``: every subscriber gets the edition exactly
once, and every row is recorded as sent. Then the same with one of them SIGKILLed
mid-run: the two others take over its rows once they run out of their own, every
subscriber gets the edition, nobody recorded as sent gets it again, and the duplicates
stay within the documented bound (one message per open connection of the killed sender).

The server is aiosmtpd with a handler that keeps no message, only who received which
Message-ID: 20,000 messages of a real edition would otherwise hold hundreds of MB.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.schema import subscribers_table
from tests.factories import local_smtp, make_papers, write_config
from tests.pg import database_url_for
from tests.smtp_server import smtp_server
from tests.support import HANG_GUARD, newsletter_command, process_env, wait_until

SUBSCRIBERS = 20_000
SENDERS = 3
POOL_SIZE = 2
"""SMTP connections per sender: the most a SIGKILL may send twice."""
RUN_GUARD = 10 * HANG_GUARD
"""A hang guard for one run of 20,000 messages on a busy two-core machine."""

_MESSAGE_ID = re.compile(rb"\r\nMessage-ID: (<[^>\r\n]+>)\r\n", re.IGNORECASE)


class EnvelopeCounter:
    """An aiosmtpd handler that accepts every message and keeps only, per recipient,
    how many copies arrived and under which Message-IDs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.copies: Counter[str] = Counter()
        self.message_ids: dict[str, set[str]] = defaultdict(set)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = _MESSAGE_ID.search(envelope.original_content, 0, 8192)
        message_id = found.group(1).decode("ascii") if found else ""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.copies[rcpt] += 1
                self.message_ids[rcpt].add(message_id)
        return "250 2.0.0 OK queued"

    def total(self) -> int:
        with self.lock:
            return sum(self.copies.values())


def seed(url: str, now: datetime) -> list[str]:
    """Entries for the edition, and the subscribers in one bulk insert."""
    addresses = [f"reader{i:05d}@example.org" for i in range(SUBSCRIBERS)]
    with Store(url) as store:
        store.add_entries(make_papers(3, now=now), now=now)
        with store.begin() as conn:
            conn.execute(
                sa.insert(subscribers_table),
                [{"email": a, "created_at": now, "updated_at": now} for a in addresses],
            )
    return addresses


def start_senders(
    tmp_path: Path, url: str, port: int
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """``SENDERS`` ``newsletter send`` processes started together; their output files."""
    cfg = write_config(tmp_path, database_url=url, smtp=local_smtp(port, pool_size=POOL_SIZE))
    env = process_env(NEWSLETTER_SECRET_KEY="many-senders-secret")
    cmd = [*newsletter_command(), "send", "--config", str(cfg), "--digest", "daily"]
    logs = [tmp_path / f"sender{i}.log" for i in range(SENDERS)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs, logs


def finish(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """Wait for every sender; any still running at the hang guard is killed."""
    try:
        return [p.wait(timeout=RUN_GUARD) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def sent_rows(url: str) -> set[str]:
    """The addresses whose row of the edition is recorded as sent."""
    with Store(url) as store:
        edition = store.last_edition("daily")
        return (
            set() if edition is None else {r.email for r in outbox.rows(store, edition.id, "sent")}
        )


def check_the_edition(url: str) -> None:
    """One edition, every row recorded as sent."""
    with Store(url) as store:
        edition = store.last_edition("daily")
        assert edition is not None and len(store.editions("daily")) == 1
        assert outbox.counts(store, edition.id)["sent"] == SUBSCRIBERS
        assert len(outbox.rows(store, edition.id)) == SUBSCRIBERS


def numbers(pattern: str, outputs: list[str]) -> list[int]:
    return [int(m.group(1)) for o in outputs for m in re.finditer(pattern, o)]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url_for(request, "postgres", tmp_path)


def test_three_senders_on_one_postgres_edition_send_each_message_once(
    tmp_path: Path, pg_url: str
) -> None:
    addresses = seed(pg_url, datetime.now(UTC))
    with smtp_server(EnvelopeCounter()) as (controller, counter):
        assert isinstance(counter, EnvelopeCounter)
        procs, logs = start_senders(tmp_path, pg_url, int(controller.port))
        codes = finish(procs)
    outputs = [log.read_text() for log in logs]
    assert codes == [0] * SENDERS, "\n".join(outputs)

    # Each run says what it sent: the shares add up, and the work was shared.
    shares = numbers(r"sent (\d+) now", outputs)
    assert sum(shares) == SUBSCRIBERS and len([n for n in shares if n]) > 1, outputs
    assert set(counter.copies) == set(addresses)
    assert set(counter.copies.values()) == {1}, "a subscriber got the edition twice"
    ids = {i for found in counter.message_ids.values() for i in found}
    assert len(ids) == SUBSCRIBERS and "" not in ids  # one Message-ID per subscriber
    check_the_edition(pg_url)


def test_one_of_three_senders_killed_mid_run(tmp_path: Path, pg_url: str) -> None:
    addresses = seed(pg_url, datetime.now(UTC))
    with smtp_server(EnvelopeCounter()) as (controller, counter):
        assert isinstance(counter, EnvelopeCounter)
        procs, logs = start_senders(tmp_path, pg_url, int(controller.port))
        try:
            victim = procs[0]
            wait_until(
                lambda: counter.total() >= SUBSCRIBERS // 4 or victim.poll() is not None,
                message="the senders made no progress",
                timeout=RUN_GUARD,
            )
            assert victim.poll() is None, "the first sender ended before its kill"
            victim.send_signal(signal.SIGKILL)
            assert victim.wait() == -signal.SIGKILL
            # Recorded as sent by the time the victim died: never to be sent again.
            recorded = sent_rows(pg_url)
        finally:
            codes = finish(procs)
    outputs = [log.read_text() for log in logs]
    assert codes[1:] == [0] * (SENDERS - 1), "\n".join(outputs)

    assert set(counter.copies) == set(addresses)  # every subscriber got the edition
    twice = {a: n for a, n in counter.copies.items() if n > 1}
    assert not set(twice) & recorded, "a subscriber recorded as sent got the edition again"
    assert sum(n - 1 for n in twice.values()) <= POOL_SIZE, twice
    # A copy sent again is the same message: same Message-ID (mailboxes fold it).
    assert all(len(found) == 1 for found in counter.message_ids.values())
    # The survivors took over the rows the victim held when it died.
    assert sum(numbers(r"(\d+) resumed after an interrupted run", outputs[1:])) > 0, outputs
    assert len(recorded) < SUBSCRIBERS  # the kill landed mid-run
    check_the_edition(pg_url)
