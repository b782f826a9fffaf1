"""Crash safety end to end: the real ``newsletter send`` command, killed with SIGKILL at
random points while it sends to a real SMTP server, then run again until it finishes.

Every subscriber gets the edition, nobody recorded as sent gets it again, and the
duplicates stay within the documented window (one message per connection per crash).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsletter.models import Entry, Subscriber
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.subscribers import save_subscriber
from tests.smtp_server import Received, Recorder, smtp_server

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


def newsletter_command() -> list[str]:
    """The installed ``newsletter`` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("newsletter")
    if script.exists():
        return [str(script)]
    found = shutil.which("newsletter")
    assert found, "the newsletter command is not installed"
    return [found]


def setup(tmp: Path, port: int) -> tuple[Path, str, list[str]]:
    """A config for SMTP delivery, a database with entries and subscribers."""
    db = f"sqlite:///{tmp / 'db.sqlite'}"
    cfg = tmp / "config.toml"
    cfg.write_text(
        f"""
database_url = "{db}"
[[sources]]
name = "papers"
url = "https://example.org/feed.xml"
[[digests]]
name = "daily"
title = "Daily Papers"
[mail]
delivery = "smtp"
from_address = "Daily Papers <daily@news.example.org>"
domain = "news.example.org"
[smtp]
# Unreachable on purpose: the NEWSLETTER_SMTP_* variables must override these.
host = "192.0.2.1"
port = 2525
security = "starttls"
timeout = 5
backoff = 0.01
pool_size = {POOL_SIZE}
[web]
base_url = "https://news.example.org"
""",
        encoding="utf-8",
    )
    now = datetime.now(UTC)
    entries = [
        Entry(
            id=str(i),
            source="papers",
            title=f"Study number {i} of sparse retrieval models",
            link=f"https://example.org/p/{i}",
            published=now - timedelta(hours=i),
            text=f"Paper {i} measures retrieval, memory and speed of sparse models.",
        )
        for i in range(8)
    ]
    addresses = [f"reader{i:03d}@example.org" for i in range(SUBSCRIBERS)]
    with Store(db) as store:
        store.add_entries(entries, now=now)
        for a in addresses:
            save_subscriber(store, Subscriber(email=a), now=now)
    return cfg, db, addresses


def sent_addresses(db: str) -> set[str]:
    with Store(db) as store:
        edition = store.last_edition("daily")
        if edition is None:
            return set()
        return {row.email for row in outbox.rows(store, edition.id, "sent")}


def test_send_killed_at_random_points_then_run_again(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    with smtp_server(SlowRecorder()) as (ctl, rec):
        assert isinstance(rec, SlowRecorder)
        cfg, db, addresses = setup(tmp_path, ctl.port)
        # The environment overrides the file: host, port and security come from here.
        env = {
            **os.environ,
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(ctl.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
            "NEWSLETTER_SECRET_KEY": "crash-test-secret",
        }
        cmd = [*newsletter_command(), "send", "--config", str(cfg), "--digest", "daily"]
        # Copies received by each subscriber already recorded as sent at some kill: a
        # later run must not add to them.
        frozen: dict[str, int] = {}
        for kill in range(KILLS):
            target = rec.total() + rng.randint(3, 12)
            log = tmp_path / f"run{kill}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + 60
                while rec.total() < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the sender made no progress"
                    time.sleep(0.002)
                assert proc.poll() is None, f"run {kill} ended before its kill:\n{log.read_text()}"
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            # Let the server finish what was in flight, then freeze what is recorded.
            time.sleep(DELAY * 5)
            counts = rec.counts()
            for address in sent_addresses(db):
                frozen.setdefault(address, counts[address])
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
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
