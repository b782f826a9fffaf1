"""The daemon's scheduled jobs run by the real APScheduler (persistent SQLAlchemy job
store, real triggers, real job functions): the scheduled digest job sends its edition,
the local-hour job sends to the subscribers whose hour has come, and the outbox job
retries mail a real SMTP server deferred (4xx), unless the edition is past its deadline.

The daemon's decisions read an injected clock; the scheduler fires on real time. The
digest job fires at once because the injected clock runs behind the real one (its next
run, reckoned on the daemon's clock, is already due); the local-hour and outbox jobs run
on short intervals (``DaemonOptions``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from newsletter.config import Settings
from newsletter.deliver.mailers import Mailer, MemoryMailer, make_mailer
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.services.delivery import send_edition
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import (
    digest_config,
    local_smtp,
    make_settings,
    make_stories,
    make_subscriber,
    seed,
    source_config,
)
from tests.pg import on_both_databases
from tests.smtp_server import SmtpSink
from tests.support import Clock, eventually

# The tests that use ``store`` run on SQLite and PostgreSQL.
database_url = on_both_databases()

FAST = timedelta(seconds=0.05)


def daily(tmp_path: Path, *, smtp_port: int | None = None, **digest: Any) -> Settings:
    """The digest "daily" in Paris time; file delivery, or SMTP to 127.0.0.1:``smtp_port``
    with one try per run."""
    return make_settings(
        tmp_path,
        sources=[source_config("feed", tmp_path / "feed.xml")],
        digests=[digest_config(title="Daily", timezone="Europe/Paris", **digest)],
        smtp=None if smtp_port is None else local_smtp(smtp_port, tries_per_run=1),
    )


def add_stories(store: Store, now: datetime, *subscribers: tuple[str, str]) -> None:
    """Three stories of the last hours, and ``subscribers`` (address, time zone)."""
    people = [make_subscriber(email, timezone=tz) for email, tz in subscribers]
    seed(store, now=now, entries=make_stories(now=now), subscribers=people)


async def run_until_job_ran(
    daemon: Daemon, job_id: str, *, done: Callable[[], bool] = lambda: True
) -> list[JobExecutionEvent]:
    """Start the daemon, wait until the scheduler has run ``job_id`` (and ``done()``
    holds), stop it. Returns the job's events."""
    events: list[JobExecutionEvent] = []
    await daemon.start()
    assert daemon.scheduler is not None
    daemon.scheduler.add_listener(
        lambda e: events.append(e) if e.job_id == job_id else None,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR,
    )
    try:
        await eventually(
            lambda: any(e.exception for e in events) or (bool(events) and done()),
            message=f"the scheduler never ran {job_id} to the end",
        )
    finally:
        await daemon.stop()
    assert all(e.exception is None for e in events), events[0].exception
    return events


def daemon_for(
    settings: Settings, store: Store, clock: Clock, mailer: Mailer, **options: Any
) -> Daemon:
    return Daemon(
        settings,
        store,
        mailer,
        "test-secret",
        clock=clock,
        options=DaemonOptions(poll=False, **options),
    )


def test_the_scheduled_digest_job_sends_the_edition(tmp_path: Path, store: Store) -> None:
    # A schedule firing every minute. The daemon's clock stands a second after a run
    # two minutes ago, so the job's next run (one minute later) is due for APScheduler.
    fire = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    clock = Clock(fire + timedelta(seconds=1))
    settings = daily(tmp_path, schedule="* * * * *")
    add_stories(store, fire - timedelta(hours=1), ("reader@example.org", "UTC"))
    mailer = MemoryMailer()
    daemon = daemon_for(settings, store, clock, mailer)

    asyncio.run(run_until_job_ran(daemon, "digest:daily", done=lambda: bool(mailer.messages)))

    assert mailer.recipients == ["reader@example.org"]
    period = fire.astimezone(daemon.schedules["daily"].zone).strftime("%Y-%m-%dT%H%M")
    edition = store.edition("daily", period)
    assert edition is not None and outbox.counts(store, edition.id)["sent"] == 1


def test_the_local_hour_job_sends_to_whose_hour_has_come(tmp_path: Path, store: Store) -> None:
    clock = Clock(datetime(2030, 6, 3, 5, 10, tzinfo=UTC))  # 07:10 in Paris, 01:10 in New York
    settings = daily(tmp_path, local_hour=7, grace="2h")
    add_stories(
        store,
        clock.now,
        ("paris@example.org", "Europe/Paris"),
        ("ny@example.org", "America/New_York"),
    )
    mailer = MemoryMailer()
    daemon = daemon_for(settings, store, clock, mailer, local_interval=FAST)

    asyncio.run(run_until_job_ran(daemon, "local:daily", done=lambda: bool(mailer.messages)))

    assert mailer.recipients == ["paris@example.org"]
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None and outbox.counts(store, edition.id)["sent"] == 1


@pytest.mark.parametrize(
    ("later", "delivered"),
    [(timedelta(minutes=30), True), (timedelta(hours=2), False)],
    ids=["retried-by-the-outbox-job", "past-the-deadline"],
)
def test_the_outbox_job_retries_deferred_mail_within_the_deadline(
    tmp_path: Path, store: Store, smtp_sink: SmtpSink, later: timedelta, delivered: bool
) -> None:
    """A 451 leaves a message for a later run (in about 5 minutes); the daemon's outbox
    job sends it then, against the same real SMTP server, unless the digest's deadline
    (1 hour) has passed."""
    start = datetime(2030, 6, 3, 5, 0, tzinfo=UTC)
    rec = smtp_sink.recorder
    rec.script["busy@example.org"] = ["451 4.3.0 try again later"]
    settings = daily(tmp_path, smtp_port=smtp_sink.port, deadline="1h")
    add_stories(store, start, ("busy@example.org", "UTC"), ("ok@example.org", "UTC"))
    mailer = make_mailer(settings)
    first = asyncio.run(
        send_edition(
            store,
            settings,
            settings.digest("daily"),
            mailer,
            now=start,
            clock=lambda: start,
            secret="test-secret",
        )
    )
    assert first.report is not None and (first.report.sent, first.report.retry) == (1, 1)
    assert rec.count() == {"ok@example.org": 1}

    clock = Clock(start + later)
    daemon = daemon_for(settings, store, clock, mailer, outbox_interval=FAST)
    asyncio.run(
        run_until_job_ran(
            daemon,
            "outbox",
            done=lambda: not delivered or bool(rec.count()["busy@example.org"]),
        )
    )
    counts = rec.count()

    assert first.edition is not None
    states = {r.email: r.state for r in outbox.rows(store, first.edition.id)}
    if delivered:
        assert counts == {"ok@example.org": 1, "busy@example.org": 1}
        assert states == {"ok@example.org": "sent", "busy@example.org": "sent"}
    else:
        assert counts == {"ok@example.org": 1}
        assert states == {"ok@example.org": "sent", "busy@example.org": "retry"}
