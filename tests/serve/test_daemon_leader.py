"""Several daemons on one PostgreSQL database (issue 12, item 2): one of them leads (a
session advisory lock) and alone places the schedule's jobs; when it stops or its
connection dies another takes over within ``DaemonOptions.leader_retry``, catching up a
missed edition within the digest's grace; each period gets one edition, never two.

The issue's proof (two daemons on a minutely schedule for five minutes, the leader
killed midway) is scaled down: the daemons' decisions read an injected clock, so five
minutely periods pass in a moment, and each period's digest job is made due at once
(``fire_now``) instead of waiting for the wall clock's next minute. Both daemons run in
this process, each with its own ``Store`` (engine, pool) and leadership connection.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import Settings
from newsletter.deliver.mailers import MemoryMailer
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.serve.jobs import DB_JOBS, JOBSTORE_TABLE
from newsletter.serve.leader import SCHEDULER_LOCK, parse_roles
from newsletter.store.database import Store
from tests.factories import (
    FEEDS,
    db_url,
    digest_config,
    make_entry,
    make_settings,
    make_stories,
    seed,
    source_config,
    write_config,
)
from tests.pg import PgCluster, database_url_for, on_both_databases
from tests.support import HANG_GUARD, Clock, eventually, logged_process, process_env

# ``database_url`` runs on SQLite and PostgreSQL; ``pg_url`` on PostgreSQL only.
database_url = on_both_databases()

READER = "reader@example.org"
RETRY = timedelta(seconds=0.1)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url_for(request, "postgres", tmp_path)


def settings(tmp_path: Path, schedule: str = "* * * * *") -> Settings:
    return make_settings(
        tmp_path,
        sources=[source_config("feed", tmp_path / "feed.xml")],
        digests=[digest_config(schedule=schedule, timezone="UTC", grace="3h")],
    )


def make_daemon(
    cfg: Settings, url: str, clock: Clock, mailer: MemoryMailer, **options: Any
) -> Daemon:
    return Daemon(
        cfg,
        Store(url),
        mailer,
        "test-secret",
        clock=clock,
        options=DaemonOptions(poll=False, leader_retry=RETRY, **options),
    )


def job_rows(url: str) -> list[str]:
    with Store(url) as store, store.engine.connect() as conn:
        if not sa.inspect(conn).has_table(JOBSTORE_TABLE):
            return []
        return sorted(r[0] for r in conn.execute(sa.text(f"SELECT id FROM {JOBSTORE_TABLE}")))


def editions(url: str) -> list[str]:
    with Store(url) as store:
        return sorted(e.period for e in store.editions("daily", limit=100))


async def stop(*daemons: Daemon) -> None:
    for d in daemons:
        await d.stop()
        d.store.close()


async def fire_now(d: Daemon) -> None:
    """Run the leader's digest job now, as the scheduler does when it is due (the
    injected clock is ahead of the wall clock), and wait until it has run."""
    assert d.scheduler is not None
    ran = asyncio.Event()

    def done(event: JobExecutionEvent) -> None:
        if event.job_id == "digest:daily":
            ran.set()

    d.scheduler.add_listener(done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    d.scheduler.modify_job("digest:daily", DB_JOBS, next_run_time=datetime.now(UTC))
    try:
        await asyncio.wait_for(ran.wait(), HANG_GUARD)
    finally:
        d.scheduler.remove_listener(done)


def test_one_daemon_leads_and_places_the_schedule(tmp_path: Path, pg_url: str) -> None:
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    cfg = settings(tmp_path, "0 7 * * *")

    async def main() -> tuple[list[bool], list[list[str]], list[str]]:
        daemons = [make_daemon(cfg, pg_url, clock, MemoryMailer()) for _ in range(3)]
        for d in daemons:
            await d.start()
        rows = job_rows(pg_url)
        try:
            return (
                [d.leading for d in daemons],
                [sorted(j for j, _ in d.jobs()) for d in daemons],
                rows,
            )
        finally:
            await stop(*daemons)

    leading, jobs, rows = asyncio.run(main())
    assert leading == [True, False, False]
    assert jobs[0] == ["digest:daily", "leader", "outbox"]
    assert jobs[1] == jobs[2] == ["leader", "outbox"]  # every daemon sends
    assert rows == ["digest:daily"]


def test_the_next_daemon_takes_over_when_the_leader_stops(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The leader stops at 06:30 with the 07:00 run stored; the other daemon takes over
    # at 08:00, within the digest's grace (3h): the missed edition goes out once.
    caplog.set_level(logging.INFO, "newsletter")
    clock = Clock(datetime(2030, 6, 3, 6, 30, tzinfo=UTC))
    cfg = settings(tmp_path, "0 7 * * *")
    seed(pg_store := Store(pg_url), now=clock.now, subscribers=[READER])
    mailers = [MemoryMailer(), MemoryMailer()]

    async def main() -> None:
        first, second = (make_daemon(cfg, pg_url, clock, m) for m in mailers)
        await first.start()
        await second.start()
        assert first.leading and not second.leading
        await stop(first)
        clock.now = datetime(2030, 6, 3, 8, 0, tzinfo=UTC)
        seed(pg_store, now=clock.now, entries=make_stories(now=clock.now))
        await eventually(lambda: second.leading, message="no daemon took over")
        await eventually(lambda: editions(pg_url) == ["2030-06-03"])
        await eventually(lambda: bool(mailers[1].messages))
        await stop(second)

    try:
        asyncio.run(main())
    finally:
        pg_store.close()
    assert "event=leader_elected" in caplog.text
    assert "event=catch_up digest=daily edition=2030-06-03" in caplog.text
    assert [m.recipient for m in mailers[0].messages + mailers[1].messages] == [READER]


def test_a_leader_whose_connection_dies_steps_down(
    tmp_path: Path, pg_url: str, pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    cfg = settings(tmp_path, "0 7 * * *")

    async def main() -> None:
        first, second = (make_daemon(cfg, pg_url, clock, MemoryMailer()) for _ in range(2))
        await first.start()
        await second.start()
        assert first.leading and not second.leading
        # The leader's session ends as if its host died: the server drops the lock.
        with Store(pg_url) as admin, admin.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                    "'advisory' AND granted AND objid = :low"
                ),
                {"low": SCHEDULER_LOCK & 0xFFFFFFFF},
            ).all()
        assert len(killed) == 1
        await eventually(lambda: second.leading and not first.leading)
        assert "digest:daily" in dict(second.jobs())
        assert "digest:daily" not in dict(first.jobs())
        await stop(first, second)

    asyncio.run(main())
    assert "event=leader_lost" in caplog.text
    assert job_rows(pg_url) == ["digest:daily"]


def test_one_edition_per_period_with_two_daemons_and_the_leader_killed(
    tmp_path: Path, pg_url: str
) -> None:
    # The proof, scaled down: five daily periods on the injected clock (ahead of
    # the wall clock, so a job runs only when ``fire_now`` says), the leader stopped
    # after the second; each period is planned and sent once.
    cfg = settings(tmp_path, "0 7 * * *")
    clock = Clock(datetime(2030, 6, 3, 6, 0, tzinfo=UTC))
    with Store(pg_url) as store:
        seed(store, now=clock.now, subscribers=[READER])
    mailers = [MemoryMailer(), MemoryMailer()]

    async def main() -> None:
        daemons = [make_daemon(cfg, pg_url, clock, m) for m in mailers]
        for d in daemons:
            await d.start()
        for day in range(5):
            if day == 2:
                await stop(daemons.pop(0))
                await eventually(lambda: daemons[0].leading, message="no daemon took over")
            clock.now = datetime(2030, 6, 3 + day, 7, 0, 1, tzinfo=UTC)
            stories = [
                make_entry(f"day{day}-{i}", source="feed", title=f"Story {day}.{i}", now=clock.now)
                for i in range(3)
            ]
            with Store(pg_url) as store:
                seed(store, now=clock.now, entries=stories)
            leaders = [d for d in daemons if d.leading]
            assert len(leaders) == 1
            await fire_now(leaders[0])
            assert len(editions(pg_url)) == day + 1
            assert sum(len(m.messages) for m in mailers) == day + 1
        await stop(*daemons)

    asyncio.run(main())
    assert editions(pg_url) == [f"2030-06-0{3 + day}" for day in range(5)]
    assert sum(len(m.messages) for m in mailers) == 5
    assert len(mailers[0].messages) == 2 and len(mailers[1].messages) == 3


def test_both_daemons_firing_plan_one_edition(tmp_path: Path, pg_url: str) -> None:
    # Were the lead ever briefly held twice (a dropped connection), both would send the
    # same period: planning and sending are safe to race, so it costs work, not mail.
    clock = Clock(datetime(2030, 6, 3, 5, 0, 1, tzinfo=UTC))
    cfg = settings(tmp_path)
    with Store(pg_url) as store:
        seed(store, now=clock.now, entries=make_stories(now=clock.now), subscribers=[READER])
    mailers = [MemoryMailer(), MemoryMailer()]

    async def main() -> None:
        daemons = [make_daemon(cfg, pg_url, clock, m, roles=frozenset({"send"})) for m in mailers]
        await asyncio.gather(*(d.send_digest("daily") for d in daemons))
        await stop(*daemons)

    asyncio.run(main())
    assert editions(pg_url) == ["2030-06-03T0500"]
    assert [m.recipient for m in mailers[0].messages + mailers[1].messages] == [READER]


def test_a_send_only_daemon_places_no_schedule(tmp_path: Path, pg_url: str) -> None:
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    cfg = settings(tmp_path, "0 7 * * *")

    async def main() -> list[str]:
        d = make_daemon(cfg, pg_url, clock, MemoryMailer(), roles=frozenset({"send"}))
        await d.start()
        jobs = [j for j, _ in d.jobs()]
        assert d.leadership is None and not d.leading
        await stop(d)
        return jobs

    assert asyncio.run(main()) == ["outbox"]
    assert job_rows(pg_url) == []


@pytest.mark.parametrize(
    ("values", "roles"),
    [
        (["send"], {"send"}),
        (["schedule,send"], {"schedule", "send"}),
        (["web", "Send , schedule"], {"schedule", "send", "web"}),
    ],
)
def test_roles_are_repeatable_or_comma_separated(values: list[str], roles: set[str]) -> None:
    assert parse_roles(values) == roles


@pytest.mark.parametrize("value", ["sned", "", "send,,web"])
def test_an_unknown_role_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="choose from schedule, send, web"):
        parse_roles([value])


# -- newsletter run --role -------------------------------------------------------------------


def test_run_refuses_an_unknown_role(runner: CliRunner, tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=[digest_config()])
    result = runner.invoke(main, ["run", "--config", str(config), "--role", "send,sned"])
    assert result.exit_code == 2
    assert "'sned' is not a role: choose from schedule, send, web" in result.output


def test_run_with_the_send_role_places_no_schedule(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        sources=[source_config("feed", FEEDS / "atom-handmade.xml")],
        digests=[digest_config(schedule="0 7 * * *")],
    )
    args = [sys.executable, "-c", "from newsletter.cli import main\nmain()\n"]
    args += ["run", "--config", str(config), "--role", "send", "--web", "--port", "0"]
    with logged_process(args, env=process_env(PYTHONPATH=str(ROOT)), cwd=tmp_path) as run:
        run.wait_for("event=started")
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
    assert code == 0, run.stderr
    assert "event=started roles=send,web leader=no jobs=1 " in run.stderr
    assert "event=web_listening" in run.stderr
    assert "event=polled" not in run.stderr
    assert job_rows(db_url(tmp_path)) == []


def test_a_lone_daemon_leads_on_either_database(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite: no lock and no leadership job (one daemon per file); PostgreSQL: the lock.
    caplog.set_level(logging.INFO, "newsletter")
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))

    async def main() -> list[str]:
        d = make_daemon(settings(tmp_path, "0 7 * * *"), database_url, clock, MemoryMailer())
        await d.start()
        jobs = sorted(j for j, _ in d.jobs())
        await stop(d)
        return jobs

    jobs = asyncio.run(main())
    postgres = database_url.startswith("postgresql")
    assert jobs == ["digest:daily", *(["leader"] if postgres else []), "outbox"]
    assert "event=started roles=schedule,send leader=yes jobs=2 " in caplog.text
    assert job_rows(database_url) == ["digest:daily"]


@pytest.mark.parametrize(
    ("values", "web", "roles"),
    [
        ((), None, {"schedule", "send"}),
        ((), True, {"schedule", "send", "web"}),
        (("send",), True, {"send", "web"}),
        (("send,web",), False, {"send"}),
    ],
)
def test_web_adds_or_takes_away_the_web_role(
    values: tuple[str, ...], web: bool | None, roles: set[str]
) -> None:
    from newsletter.cli.run import _roles

    assert _roles(values, web) == roles
