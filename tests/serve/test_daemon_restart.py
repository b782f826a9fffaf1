"""The daemon after a restart (issue 13): the catch-up edition waits for a first poll, an
interrupted send resumes at start, a stop mid-send logs no traceback, and the daemon says
when each digest is next due."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.deliver.mailers import MemoryMailer, Outgoing
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.serve.jobs import job_digest
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import (
    FEEDS,
    digest_config,
    make_settings,
    make_stories,
    seed,
    seed_edition,
    source_config,
)
from tests.support import HANG_GUARD, Clock

READER = "reader@example.org"


def settings(tmp_path: Path, **digest: Any) -> Any:
    return make_settings(
        tmp_path,
        sources=[source_config("feed", FEEDS / "atom-handmade.xml")],
        digests=[
            digest_config(schedule="0 7 * * *", timezone="Europe/Paris", grace="3h", **digest)
        ],
    )


def daemon(tmp_path: Path, store: Store, clock: Clock, mailer: Any, **options: Any) -> Daemon:
    return Daemon(
        settings(tmp_path),
        store,
        mailer,
        "test-secret",
        clock=clock,
        options=DaemonOptions(**options),
    )


async def run_once(d: Daemon) -> None:
    tasks = await d.start()
    if tasks:
        await asyncio.wait(tasks, timeout=HANG_GUARD)
    await d.stop()


def test_catch_up_fetches_before_it_sends(tmp_path: Path, store: Store) -> None:
    # Down since 06:00 in Paris (jobs stored then, no poll), back at 08:30: the missed
    # 07:00 edition must carry the entries the feed has now, not go out empty.
    clock = Clock(datetime(2030, 6, 3, 4, 0, tzinfo=UTC))
    asyncio.run(run_once(daemon(tmp_path, store, clock, MemoryMailer(), poll=False)))
    seed(store, now=clock.now, subscribers=[READER])
    assert store.count_entries() == 0
    clock.now = datetime(2030, 6, 3, 6, 30, tzinfo=UTC)
    mailer = MemoryMailer()
    asyncio.run(run_once(daemon(tmp_path, store, clock, mailer)))
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None, "the catch-up went out before the first poll"
    assert store.edition_entries(edition.id)
    assert [m.recipient for m in mailer.messages] == [READER]


def test_an_interrupted_send_resumes_at_start(tmp_path: Path, store: Store) -> None:
    clock = Clock(datetime(2030, 6, 3, 5, 30, tzinfo=UTC))
    edition = seed_edition(store, "2030-06-03", make_stories(now=clock.now), now=clock.now)
    subs = seed(store, now=clock.now, subscribers=[READER])
    outbox.enqueue(store, edition.id, subs, now=clock.now)  # queued, never sent
    mailer = MemoryMailer()

    async def main() -> None:
        d = daemon(tmp_path, store, clock, mailer, poll=False, stop_timeout=HANG_GUARD)
        await d.start()
        await asyncio.sleep(0.5)  # well before the outbox job's first run (5 minutes)
        await d.stop()

    asyncio.run(main())
    assert [m.recipient for m in mailer.messages] == [READER]
    assert outbox.counts(store, edition.id)["sent"] == 1


def test_stop_mid_send_logs_no_traceback(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    seed(store, now=clock.now, entries=make_stories(now=clock.now), subscribers=[READER])

    async def main() -> None:
        sending = asyncio.Event()

        async def stuck(message: Outgoing) -> None:
            sending.set()
            await asyncio.Event().wait()

        d = daemon(tmp_path, store, clock, MemoryMailer(stuck), poll=False, stop_timeout=0.2)
        await d.start()
        assert d.scheduler is not None
        d.scheduler.add_job(job_digest, args=["daily"], id="now")  # runs at once
        await asyncio.wait_for(sending.wait(), HANG_GUARD)
        await d.stop()
        await asyncio.sleep(0.1)  # let the executor report the job's end

    asyncio.run(main())
    assert "Traceback" not in caplog.text and "CancelledError" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
    assert "event=job_cancelled" in caplog.text


def test_the_daemon_says_when_each_digest_is_next_due(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    clock = Clock(datetime(2030, 6, 3, 4, 0, tzinfo=UTC))  # 06:00 in Paris
    seed(store, now=clock.now, entries=make_stories(now=clock.now), subscribers=[READER])

    async def main() -> None:
        d = daemon(tmp_path, store, clock, MemoryMailer(), poll=False)
        await d.start()
        clock.now = datetime(2030, 6, 3, 5, 0, tzinfo=UTC)
        await d.send_digest("daily")
        await d.stop()

    asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "event=next_due" in r.getMessage()]
    assert lines[0] == (
        'event=next_due digest=daily local="2030-06-03 07:00 Europe/Paris" utc="2030-06-03 05:00Z"'
    )
    # After the edition: the next day's.
    assert lines[-1] == (
        'event=next_due digest=daily local="2030-06-04 07:00 Europe/Paris" utc="2030-06-04 05:00Z"'
    )


def test_next_due_of_a_local_hour_digest() -> None:
    from newsletter.serve.schedule import DigestSchedule, next_due

    sched = DigestSchedule("d", local_hour=7)
    now = datetime(2030, 6, 3, 4, 0, tzinfo=UTC)
    due = next_due(sched, now, ["Europe/Paris", "America/New_York"])
    assert due == {
        "local": "07:00 in each subscriber's zone",
        "utc": "2030-06-03 05:00Z",  # 07:00 in Paris comes first
    }
    assert next_due(sched, now, [])["utc"] == "no subscribers yet"
