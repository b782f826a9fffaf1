"""The scheduler's side of the daemon: the job functions APScheduler stores by name, and
the job table they are stored in.

APScheduler saves a job's function as a module path (``newsletter.serve.jobs:job_digest``),
so the functions are module-level and find the running ``Daemon`` here. At start the
daemon reads when each stored job was next due (``take_stored_runs``), then places every
job anew.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import parse_duration
from newsletter.serve.events import log_event, log_skipped
from newsletter.serve.schedule import next_fire, plan_catch_up
from newsletter.serve.triggers import WallClockTrigger

if TYPE_CHECKING:
    from newsletter.serve.daemon import Daemon

JOBSTORE_TABLE = "apscheduler_jobs"
DB_JOBS = "database"
"""The alias of the persistent job store, which only the leader adds."""


# The running daemons: job functions in a persistent store are saved by name
# ("newsletter.serve.jobs:job_digest"), so they find their daemon here, by the ``daemon``
# keyword the daemon places them with (several daemons may run in one process: tests).
_CURRENT: Daemon | None = None
_DAEMONS: dict[str, Daemon] = {}


def attach(daemon: Daemon) -> None:
    """Make ``daemon`` the one the job functions below act on (by default)."""
    global _CURRENT
    _CURRENT = daemon
    _DAEMONS[daemon.ident] = daemon


def detach(daemon: Daemon) -> None:
    """Forget a stopped daemon."""
    global _CURRENT
    _DAEMONS.pop(daemon.ident, None)
    if _CURRENT is daemon:
        _CURRENT = None


def _daemon(ident: str | None = None) -> Daemon:
    found = _CURRENT if ident is None else _DAEMONS.get(ident)
    if found is None:
        raise RuntimeError("no daemon is running")
    return found


async def job_poll(daemon: str | None = None) -> None:
    """Job: fetch the sources that are due."""
    d = _daemon(daemon)
    await d.tracked(d.poll())


async def job_digest(name: str, daemon: str | None = None) -> None:
    """Job: send the digest ``name`` for the run that is due now."""
    d = _daemon(daemon)
    await d.tracked(d.send_digest(name))


async def job_local(name: str, daemon: str | None = None) -> None:
    """Job: send ``name`` to the subscribers whose local hour has come."""
    d = _daemon(daemon)
    await d.tracked(d.send_local(name))


async def job_bounces(daemon: str | None = None) -> None:
    """Job: read the bounce mailbox (``bounces.imap_*``)."""
    d = _daemon(daemon)
    await d.tracked(read_bounces(d))


async def read_bounces(d: Daemon) -> None:
    """Read the bounce mailbox once, in a thread (imaplib blocks); a mailbox that cannot
    be read is a warning in the log, tried again at the next run."""
    from newsletter.errors import NewsletterError
    from newsletter.services.bounces import poll_mailbox

    try:
        tally = await asyncio.to_thread(
            poll_mailbox, d.store, d.settings, secret=d.secret, now=d.clock()
        )
    except NewsletterError as exc:
        log_event("bounces_failed", logging.WARNING, error=str(exc))
        return
    if tally.outcomes:
        log_event(
            "bounces_read",
            read=len(tally.outcomes),
            recorded=tally.count("recorded"),
            unmatched=tally.count("unmatched"),
            skipped=tally.count("skipped"),
        )


async def job_outbox(daemon: str | None = None) -> None:
    """Job: deliver messages of recent editions that are waiting for a retry."""
    d = _daemon(daemon)
    await d.tracked(d.flush_outbox())


def take_stored_runs(engine: sa.Engine) -> dict[str, datetime | None]:
    """Each stored job's next run, by job id, read from the job table's plain columns; the
    rows are then deleted, since the daemon places every job anew at start.

    The pickled jobs are never loaded: a job written by an earlier release whose function
    has since moved (``newsletter.daemon:job_digest`` before the package was laid out in
    stages) still tells when it was due, so the edition it missed is caught up."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table(JOBSTORE_TABLE):
            return {}
        table = sa.table(JOBSTORE_TABLE, sa.column("id"), sa.column("next_run_time"))
        rows = conn.execute(sa.select(table.c.id, table.c.next_run_time)).all()
        conn.execute(sa.delete(table))
    return {
        str(job_id): None if ts is None else datetime.fromtimestamp(float(ts), UTC)
        for job_id, ts in rows
    }


def place_schedule(daemon: Daemon, scheduler: AsyncIOScheduler) -> list[asyncio.Task[Any]]:
    """The leader takes over the schedule: read when each stored job was due
    (``take_stored_runs``), place every job of the schedule anew (poll, digest, local
    hour) in the persistent job store ``DB_JOBS``, start the catch-up sends (a run
    missed while no daemon led, sent once if within the digest's grace). Returns the
    catch-up tasks."""
    # Read before the job store loads a single job: every job is placed anew below.
    planned = take_stored_runs(daemon.store.engine)
    scheduler.add_jobstore(
        SQLAlchemyJobStore(engine=daemon.store.engine, tablename=JOBSTORE_TABLE), DB_JOBS
    )
    now = daemon.clock()
    mine = {"daemon": daemon.ident}
    # The outbox job lives in memory now: a row an earlier release stored is no news.
    wanted: set[str] = {"outbox"}
    tasks: list[asyncio.Task[Any]] = []

    def place(func: Callable[..., Any], job_id: str, trigger: Any, **kw: Any) -> None:
        scheduler.add_job(func, trigger, id=job_id, jobstore=DB_JOBS, kwargs=mine, **kw)
        wanted.add(job_id)

    if daemon.options.poll and daemon.settings.sources:
        every = daemon.options.poll_interval.total_seconds()
        place(
            job_poll,
            "poll",
            IntervalTrigger(seconds=every, timezone=UTC),
            name="poll sources",
            next_run_time=now,
            misfire_grace_time=None,
        )
    if daemon.settings.bounces.imap_host:
        every = parse_duration(daemon.settings.bounces.poll_interval).total_seconds()
        place(
            job_bounces,
            "bounces",
            IntervalTrigger(seconds=every, timezone=UTC),
            name="read the bounce mailbox",
            next_run_time=now,
            misfire_grace_time=None,
        )
    for name, sched in daemon.schedules.items():
        grace = max(1, int(sched.grace.total_seconds()))
        if sched.local_hour is not None:
            local = daemon.options.local_interval
            place(
                job_local,
                f"local:{name}",
                CronTrigger(minute=0, timezone=UTC)
                if local is None
                else IntervalTrigger(seconds=local.total_seconds(), timezone=UTC),
                args=[name],
                name=f"{name} at {sched.local_hour}:00 local time",
                misfire_grace_time=grace,
            )
            continue
        job_id = f"digest:{name}"
        done = {e.period for e in daemon.store.editions(name, limit=50)}
        plan = plan_catch_up(sched, missed_since=planned.get(job_id), now=now, done=done)
        log_skipped(name, plan.skipped)
        if plan.send is not None:
            log_event(
                "catch_up",
                digest=name,
                edition=plan.send.period,
                scheduled=plan.send.fire.isoformat(),
            )
            tasks.append(daemon.spawn_catch_up(name, plan.send.fire))
        place(
            job_digest,
            job_id,
            WallClockTrigger(name, sched.cron, sched.timezone),
            args=[name],
            name=f"{name} ({sched.cron} {sched.timezone})",
            next_run_time=next_fire(sched, now),
            misfire_grace_time=grace,
        )
    for job_id in sorted(set(planned) - wanted):
        # A digest removed from the config: its job is not placed again.
        log_event("job_removed", job=job_id)
    return tasks
