"""The proof that several senders share one PostgreSQL database: three ``newsletter send``
processes started together on one edition of 2,000 subscribers, to one SMTP server. They
plan the same edition (recorded once), enqueue it (each row once), and claim rows with
``FOR UPDATE SKIP LOCKED``: every subscriber gets the edition exactly once, and every row
is recorded as sent. (``bench/`` is the place for the 20,000-subscriber run.)"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.schema import subscribers_table
from tests.factories import local_smtp, make_papers, write_config
from tests.pg import database_url_for
from tests.smtp_server import SmtpSink
from tests.support import HANG_GUARD, newsletter_command, process_env

SUBSCRIBERS = 2_000
SENDERS = 3


def seed(url: str, now: datetime) -> list[str]:
    """Entries for the edition, and the subscribers in one bulk insert."""
    addresses = [f"reader{i:05d}@example.org" for i in range(SUBSCRIBERS)]
    with Store(url) as store:
        store.add_entries(make_papers(8, now=now), now=now)
        with store.begin() as conn:
            conn.execute(
                sa.insert(subscribers_table),
                [{"email": a, "created_at": now, "updated_at": now} for a in addresses],
            )
    return addresses


def test_three_senders_on_one_postgres_edition_send_each_message_once(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    url = database_url_for(request, "postgres", tmp_path)
    cfg = write_config(tmp_path, database_url=url, smtp=local_smtp(smtp_sink.port))
    addresses = seed(url, datetime.now(UTC))
    env = process_env(NEWSLETTER_SECRET_KEY="many-senders-secret")
    cmd = [*newsletter_command(), "send", "--config", str(cfg), "--digest", "daily"]
    logs = [tmp_path / f"sender{i}.log" for i in range(SENDERS)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=HANG_GUARD) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = [log.read_text() for log in logs]
    assert codes == [0] * SENDERS, "\n".join(outputs)

    # Each run says what it sent: the shares add up, and the work was shared.
    shares = [int(m.group(1)) for o in outputs if (m := re.search(r"sent (\d+) now", o))]
    assert sum(shares) == SUBSCRIBERS and len([n for n in shares if n]) > 1, outputs
    received = Counter(smtp_sink.recorder.count())
    assert set(received) == set(addresses)
    assert set(received.values()) == {1}, "a subscriber got the edition twice"
    with Store(url) as store:
        edition = store.last_edition("daily")
        assert edition is not None and len(store.editions("daily")) == 1
        assert outbox.counts(store, edition.id)["sent"] == SUBSCRIBERS
        assert len(outbox.rows(store, edition.id)) == SUBSCRIBERS
