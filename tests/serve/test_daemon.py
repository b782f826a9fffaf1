"""The scheduler daemon: persistent jobs without duplicates, catch-up after downtime,
per-subscriber local hours, polling, graceful stop (in process and with SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.deliver.mailers import MemoryMailer, Outgoing
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.serve.jobs import JOBSTORE_TABLE
from newsletter.serve.schedule import DigestSchedule
from newsletter.serve.triggers import WallClockTrigger
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import (
    FEEDS,
    db_url,
    digest_config,
    make_settings,
    make_stories,
    make_subscriber,
    seed,
    source_config,
    write_config,
)
from tests.pg import on_both_databases
from tests.support import HANG_GUARD, Clock, eventually, logged_process, process_env

# The tests that use ``store`` run on SQLite and PostgreSQL.
database_url = on_both_databases()

ROOT = Path(__file__).resolve().parents[2]
FEED = FEEDS / "atom-handmade.xml"
READER = "reader@example.org"


def daily(tmp_path: Path, **digest: Any) -> Settings:
    """One source (a feed file), the digest "daily" at 07:00 Paris time, grace 3h."""
    return make_settings(
        tmp_path,
        sources=[source_config("feed", FEED)],
        digests=[
            digest_config(
                title="Daily",
                schedule="0 7 * * *",
                timezone="Europe/Paris",
                grace="3h",
                **digest,
            )
        ],
    )


def due_with_a_reader(tmp_path: Path, store: Store) -> tuple[Settings, Clock]:
    """The daily digest at its hour (07:00 in Paris on 2030-06-03), three stories and one
    reader in the store."""
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    seed(store, now=clock.now, entries=make_stories(now=clock.now), subscribers=[READER])
    return daily(tmp_path), clock


def make_daemon(
    settings: Settings,
    store: Store,
    clock: Callable[[], datetime],
    mailer: Any = None,
    **options: Any,
) -> Daemon:
    return Daemon(
        settings,
        store,
        mailer or MemoryMailer(),
        "test-secret",
        clock=clock,
        options=DaemonOptions(**options),
    )


def job_rows(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text(f"SELECT id FROM {JOBSTORE_TABLE}")))


async def restart(daemon: Daemon) -> list[asyncio.Task[Any]]:
    tasks = await daemon.start()
    if tasks:
        await asyncio.wait(tasks, timeout=20)
    await daemon.stop()
    return tasks


def test_restart_never_duplicates_jobs(tmp_path: Path, store: Store) -> None:
    settings = daily(tmp_path)
    clock = Clock(datetime(2030, 6, 1, 4, 0, tzinfo=UTC))

    async def main() -> None:
        for _ in range(3):
            await restart(make_daemon(settings, store, clock))

    asyncio.run(main())
    # The table holds the schedule's jobs only (the outbox job lives in memory).
    assert job_rows(store) == ["digest:daily", "poll"]
    # A digest removed from the config takes its job with it.
    other = settings.model_copy(update={"digests": ()})
    asyncio.run(restart(make_daemon(other, store, clock)))
    assert job_rows(store) == ["poll"]


def test_jobs_have_explicit_ids_and_next_runs_in_the_digest_zone(
    tmp_path: Path, store: Store
) -> None:
    settings = daily(tmp_path)
    clock = Clock(datetime(2030, 6, 1, 4, 0, tzinfo=UTC))

    async def main() -> dict[str, datetime | None]:
        daemon = make_daemon(settings, store, clock)
        await daemon.start()
        jobs = dict(daemon.jobs())
        await daemon.stop()
        return jobs

    jobs = asyncio.run(main())
    assert jobs["digest:daily"] == datetime(2030, 6, 1, 5, 0, tzinfo=UTC)  # 07:00 CEST


def run_downtime(
    tmp_path: Path,
    store: Store,
    *,
    restarted_at: datetime,
    stopped_at: datetime = datetime(2030, 6, 3, 4, 0, tzinfo=UTC),  # 06:00 in Paris
) -> tuple[MemoryMailer, list[asyncio.Task[Any]]]:
    settings = daily(tmp_path)
    clock = Clock(stopped_at)
    asyncio.run(restart(make_daemon(settings, store, clock)))
    seed(
        store,
        now=restarted_at - timedelta(hours=1),
        entries=make_stories(now=restarted_at - timedelta(hours=1)),
    )
    seed(store, now=stopped_at, subscribers=[READER])
    clock.now = restarted_at
    mailer = MemoryMailer()
    tasks = asyncio.run(restart(make_daemon(settings, store, clock, mailer)))
    return mailer, tasks


def test_restart_inside_grace_sends_the_missed_edition_once(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    # Down at 06:00 Paris, back at 08:30 (07:00 missed by 1h30, grace 3h).
    mailer, tasks = run_downtime(
        tmp_path, store, restarted_at=datetime(2030, 6, 3, 6, 30, tzinfo=UTC)
    )
    assert len(tasks) == 1
    assert [m.recipient for m in mailer.messages] == ["reader@example.org"]
    assert store.edition("daily", "2030-06-03") is not None
    assert "event=catch_up digest=daily edition=2030-06-03" in caplog.text
    assert "event=edition_sent digest=daily edition=2030-06-03" in caplog.text
    # Restarting again sends nothing more: the edition is done.
    settings = daily(tmp_path)
    again = MemoryMailer()
    asyncio.run(
        restart(make_daemon(settings, store, Clock(datetime(2030, 6, 3, 7, 0, tzinfo=UTC)), again))
    )
    assert again.messages == []


def test_restart_outside_grace_skips_with_a_notice(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    late = datetime(2030, 6, 3, 9, 30, tzinfo=UTC)  # 07:00 in Paris was 4h30 before
    mailer, tasks = run_downtime(tmp_path, store, restarted_at=late)
    assert tasks == [] and mailer.messages == []
    assert store.edition("daily", "2030-06-03") is None
    skipped = [r for r in caplog.records if "event=edition_skipped" in r.getMessage()]
    assert skipped and skipped[0].levelno == logging.WARNING
    assert "grace period of 3h" in skipped[0].getMessage()


def test_deadline_stops_a_late_send(tmp_path: Path, store: Store) -> None:
    settings = daily(tmp_path)
    clock = Clock(datetime(2030, 6, 3, 7, 0, tzinfo=UTC))
    seed(store, now=clock.now, entries=make_stories(now=clock.now), subscribers=[READER])
    mailer = MemoryMailer()
    daemon = make_daemon(settings, store, clock, mailer)
    daemon.overrides["daily"] = DigestSchedule(
        "daily",
        "0 7 * * *",
        "Europe/Paris",
        grace=timedelta(hours=6),
        deadline=timedelta(hours=1),
    )
    asyncio.run(daemon.send_digest("daily"))  # 07:00 Paris was 2h ago: past the deadline
    assert mailer.messages == []
    clock.now = datetime(2030, 6, 3, 5, 30, tzinfo=UTC)
    asyncio.run(daemon.send_digest("daily"))
    assert len(mailer.messages) == 1


def test_local_hour_job_sends_each_subscriber_in_their_morning(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    settings = daily(tmp_path)
    start = datetime(2030, 6, 3, 0, 0, tzinfo=UTC)
    people = [
        make_subscriber("paris@example.org", timezone="Europe/Paris"),
        make_subscriber("ny@example.org", timezone="America/New_York"),
    ]
    seed(store, now=start, entries=make_stories(now=start), subscribers=people)
    clock = Clock(start)
    mailer = MemoryMailer()
    daemon = make_daemon(settings, store, clock, mailer)
    daemon.overrides["daily"] = DigestSchedule(
        "daily", "0 7 * * *", "UTC", grace=timedelta(hours=2), local_hour=7
    )
    got: dict[str, datetime] = {}
    for hour in range(24):
        clock.now = start + timedelta(hours=hour)
        asyncio.run(daemon.send_local("daily"))
        for m in mailer.messages:
            got.setdefault(m.recipient, clock.now)
    assert got == {
        "paris@example.org": datetime(2030, 6, 3, 5, 0, tzinfo=UTC),
        "ny@example.org": datetime(2030, 6, 3, 11, 0, tzinfo=UTC),
    }
    assert len(mailer.messages) == 2  # hourly runs within the grace did not send again
    assert "local_hour=7" in caplog.text


def test_local_hour_digest_gets_an_hourly_job(tmp_path: Path, store: Store) -> None:
    settings = daily(tmp_path)
    daemon = make_daemon(settings, store, Clock(datetime(2030, 6, 3, tzinfo=UTC)))
    daemon.overrides["daily"] = DigestSchedule("daily", local_hour=7)
    asyncio.run(restart(daemon))
    assert job_rows(store) == ["local:daily", "poll"]


def test_poll_runs_in_the_real_scheduler_and_backs_off(tmp_path: Path, store: Store) -> None:
    settings = make_settings(
        tmp_path,
        sources=[source_config("feed", FEED), source_config("broken", tmp_path / "missing.xml")],
        digests=[digest_config(title="Digest")],
    )

    def both_fetched() -> bool:
        states = store.source_states()
        return all(n in states and states[n].last_fetched for n in ("feed", "broken"))

    async def main() -> None:
        daemon = make_daemon(settings, store, lambda: datetime.now(UTC))
        await daemon.start()
        try:
            await eventually(both_fetched, message="the poll job never fetched both sources")
        finally:
            await daemon.stop()

    asyncio.run(main())
    states = store.source_states()
    assert states["feed"].status == "ok" and store.count_entries() > 0
    assert states["broken"].error_count == 1
    # The next poll leaves the failing source alone until its back-off is over.
    daemon = make_daemon(settings, store, lambda: datetime.now(UTC))
    asyncio.run(daemon.poll())
    assert store.source_states()["broken"].error_count == 1


def test_stop_lets_a_send_in_flight_finish(tmp_path: Path, store: Store) -> None:
    settings, clock = due_with_a_reader(tmp_path, store)

    async def main() -> MemoryMailer:
        sending, release = asyncio.Event(), asyncio.Event()

        async def held(message: Outgoing) -> None:
            sending.set()
            await release.wait()

        mailer = MemoryMailer(held)
        daemon = make_daemon(settings, store, clock, mailer, stop_timeout=HANG_GUARD)
        await daemon.start()
        job = asyncio.ensure_future(daemon.tracked(daemon.send_digest("daily")))
        await sending.wait()  # the message is in the mailer's hands
        stopping = asyncio.ensure_future(daemon.stop())
        await asyncio.sleep(0)  # stop() runs up to its wait for the jobs in flight
        assert not stopping.done(), "stop() did not wait for the send in flight"
        release.set()
        await stopping
        await job
        return mailer

    mailer = asyncio.run(main())
    assert len(mailer.messages) == 1
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None and outbox.counts(store, edition.id)["sent"] == 1


def test_stop_abandons_a_stuck_send_safely(tmp_path: Path, store: Store) -> None:
    settings, clock = due_with_a_reader(tmp_path, store)

    async def main() -> None:
        sending = asyncio.Event()

        async def stuck(message: Outgoing) -> None:
            sending.set()
            await asyncio.Event().wait()  # never answers

        daemon = make_daemon(settings, store, clock, MemoryMailer(stuck), stop_timeout=0.2)
        await daemon.start()
        job = asyncio.ensure_future(daemon.tracked(daemon.send_digest("daily")))
        await sending.wait()
        await daemon.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await job

    asyncio.run(main())
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None
    counts = outbox.counts(store, edition.id)
    # Handed back to the outbox (not lost, not marked sent): the next run sends it.
    assert counts["sent"] == 0 and counts["retry"] == 1


def test_wall_clock_trigger_survives_pickling() -> None:
    import pickle

    trigger = WallClockTrigger("daily", "30 2 * * *", "America/New_York")
    copy = pickle.loads(pickle.dumps(trigger))
    now = datetime(2026, 3, 7, 12, tzinfo=UTC)
    assert copy.get_next_fire_time(None, now) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert str(copy) == "wallclock[30 2 * * * America/New_York]"


def newsletter(*args: str) -> list[str]:
    """The command line of ``newsletter ARGS`` run from this checkout."""
    return [sys.executable, "-c", "from newsletter.cli import main\nmain()\n", *args]


def test_sigterm_stops_run_cleanly_with_exit_0(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        sources=[source_config("feed", FEED)],
        digests=[digest_config(schedule="0 7 * * *", timezone="Europe/Paris")],
    )
    args = newsletter("run", "--config", str(config), "--web", "--port", "0")
    with logged_process(args, env=process_env(PYTHONPATH=str(ROOT)), cwd=tmp_path) as run:
        # --port 0: the kernel picks a free port; the log says which.
        url = run.wait_for(r"event=web_listening url=(http://127\.0\.0\.1:\d+/)\s").group(1)
        with httpx.Client(trust_env=False, timeout=HANG_GUARD) as client:  # no proxy
            r = client.get(f"{url}healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        run.wait_for("event=started")  # the daemon's jobs are scheduled
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    err = run.stderr
    assert code == 0, err
    assert "event=started" in err
    assert "event=stopped" in err
    assert "Traceback" not in err


def test_serve_on_port_0_logs_the_port_it_bound(tmp_path: Path) -> None:
    """Two ``newsletter serve --port 0`` at once: each listens on a port of its own and
    says which in its log, where a test (or a supervisor) reads it."""
    config = write_config(tmp_path)
    # The database exists before both start: two processes creating a new SQLite file at
    # the same instant can fail with "database is locked" (PRAGMA journal_mode=WAL does
    # not wait on the busy timeout), which is not what this test is about.
    Store(db_url(tmp_path)).close()
    env = process_env(PYTHONPATH=str(ROOT), NEWSLETTER_SECRET_KEY="k")
    args = newsletter("serve", "--config", str(config), "--port", "0")
    with (
        logged_process(args, env=env, cwd=tmp_path) as one,
        logged_process(args, env=env, cwd=tmp_path) as two,
    ):
        pattern = r"event=web_listening url=(http://127\.0\.0\.1:(\d+)/)\s"
        urls = [p.wait_for(pattern) for p in (one, two)]
        assert urls[0].group(2) != urls[1].group(2)
        with httpx.Client(trust_env=False, timeout=HANG_GUARD) as client:
            for found in urls:
                assert client.get(f"{found.group(1)}healthz").json() == {"status": "ok"}
        for p in (one, two):
            p.proc.send_signal(signal.SIGTERM)
        assert [p.finish() for p in (one, two)] == [0, 0], one.stderr + two.stderr
