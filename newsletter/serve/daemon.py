"""``newsletter run``: the scheduler daemon (APScheduler 3.11, asyncio), optionally with
the web app in the same process.

Jobs, each with an explicit id::

    poll               fetch the sources that are due (per-source back-off after errors)
    digest:<name>      send the digest on its cron schedule, in its time zone
    local:<name>       hourly: send to the subscribers whose local hour has come
    bounces            read the bounce mailbox (when ``bounces.imap_host`` is set)
    outbox             retry messages left for later (temporary failures, interruptions)
    leader             PostgreSQL: try to take the lead (or check it is still held)

The first four belong to the schedule, placed by the leading daemon only
(``newsletter.serve.leader``) in a SQLAlchemy job store on the project's own database
(``jobs.place_schedule``; a restart replaces them instead of adding copies); the others
live in memory. ``DaemonOptions.roles`` says which parts a daemon runs.

At start-up the daemon reads, before replacing them, when each digest job was due next:
a run missed while the daemon was down is sent once if it is still within the digest's
grace period, else skipped with a logged notice (``serve.schedule.plan_catch_up``).

Every send goes through ``newsletter.services.delivery`` (``send_edition``, ``send_to``,
``resume_edition``): the daemon decides when, the service how.

Stopping (SIGTERM, Ctrl-C: ``newsletter.serve.runner``): no new job starts, a job in
flight gets ``stop_timeout`` seconds to finish, then it is cancelled; the outbox hands a
message interrupted mid-send back for the next run. The process exits 0.

Log lines are ``event=... key=value`` pairs (digest, edition, counts) on the
``newsletter.serve.daemon`` logger.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.clock import now_utc
from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.deliver.mailers import Mailer
from newsletter.serve import jobs
from newsletter.serve.events import log_event, logged_failure
from newsletter.serve.jobs import DB_JOBS, job_outbox, place_schedule
from newsletter.serve.leader import (
    DAEMON_ROLES,
    LEADER_RETRY,
    Leadership,
    describe_roles,
    leadership_for,
)
from newsletter.serve.schedule import (
    DEFAULT_POLL_INTERVAL,
    DigestSchedule,
    decide,
    due_sources,
    local_due,
    next_due,
    previous_fire,
)
from newsletter.store.database import Store
from newsletter.store.subscribers import subscribers_of

if TYPE_CHECKING:
    from newsletter.sources.fetch import Fetcher, HttpFetcher

DEFAULT_STOP_TIMEOUT = 20.0
OUTBOX_INTERVAL = timedelta(minutes=5)
_RECENT_EDITIONS = 3


@dataclass(frozen=True)
class DaemonOptions:
    """How the daemon runs (command-line options of ``newsletter run``)."""

    poll_interval: timedelta = DEFAULT_POLL_INTERVAL
    poll: bool = True
    web: bool = False
    host: str | None = None
    port: int | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    outbox_interval: timedelta = OUTBOX_INTERVAL
    """How often the outbox job retries waiting messages."""
    local_interval: timedelta | None = None
    """How often the local-hour job looks for subscribers whose hour has come; ``None``:
    at the start of every hour."""
    roles: frozenset[str] = DAEMON_ROLES
    """What this daemon does: ``schedule`` (poll, plan and send editions: on the leader
    only), ``send`` (the outbox job); ``web`` is the caller's (``newsletter run``)."""
    leader_retry: timedelta = LEADER_RETRY
    """How often a daemon that does not lead tries to take the lead (PostgreSQL)."""


def schedule_for(cfg: DigestConfig) -> DigestSchedule:
    """The schedule of a configured digest, in the plain values the scheduling
    decisions (``newsletter.serve.schedule``) take."""
    return DigestSchedule(
        name=cfg.name,
        cron=cfg.schedule,
        timezone=cfg.timezone,
        grace=parse_duration(cfg.grace),
        deadline=parse_duration(cfg.deadline) if cfg.deadline else None,
        local_hour=cfg.local_hour,
    )


@dataclass
class Daemon:
    """The scheduler and its jobs. Every send goes through ``services.delivery`` with
    ``mailer`` (a ``deliver.Mailer``); ``clock`` gives the current time for every
    decision (tests inject one).

    Start-up is paid once: ``store`` (one database engine) and ``fetcher`` (one HTTP
    client and its connection pool, an ``HttpFetcher`` made at the first poll unless one
    is given) serve every poll; ``stop`` closes the fetcher the daemon made."""

    settings: Settings
    store: Store
    mailer: Mailer
    secret: str
    clock: Callable[[], datetime] = now_utc
    options: DaemonOptions = field(default_factory=DaemonOptions)
    overrides: dict[str, DigestSchedule] = field(default_factory=dict)
    """Schedules to use instead of the configured ones (by digest name)."""
    scheduler: AsyncIOScheduler | None = None
    fetcher: Fetcher | None = None
    _own_fetcher: HttpFetcher | None = None
    _running: set[asyncio.Task[Any]] = field(default_factory=set)
    _stopping: bool = False
    _poll_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ident: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Names this daemon in its stored jobs (several may run in one process: tests)."""
    leadership: Leadership | None = None
    leading: bool = False
    """Whether this daemon schedules (holds the lead: ``newsletter.serve.leader``)."""

    # -- set-up --------------------------------------------------------------------------

    @property
    def schedules(self) -> dict[str, DigestSchedule]:
        return {
            d.name: self.overrides.get(d.name) or schedule_for(d) for d in self.settings.digests
        }

    def digest_cfg(self, name: str) -> DigestConfig:
        return self.settings.digest(name)

    def make_scheduler(self) -> AsyncIOScheduler:
        """An AsyncIOScheduler whose default job store is in memory (the outbox job, the
        leadership check); the leader adds the persistent one (``DB_JOBS``)."""
        return AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    @property
    def roles(self) -> frozenset[str]:
        return self.options.roles | ({"web"} if self.options.web else set())

    async def start(self) -> list[asyncio.Task[Any]]:
        """Start the scheduler: with the schedule role, lead if no other daemon does
        (read what was missed, place the schedule's jobs, start catch-up sends) or try
        again every ``leader_retry``; with the send role, the outbox job. Returns the
        catch-up tasks."""
        jobs.attach(self)
        scheduler = self.scheduler = self.make_scheduler()
        # Paused: nothing runs until every job is in place and the catch-up is planned.
        scheduler.start(paused=True)
        tasks: list[asyncio.Task[Any]] = []
        if "schedule" in self.options.roles:
            self.leadership = leadership_for(self.store.engine)
            if self.leadership.try_acquire():
                tasks = self._lead()
            if self.leadership.contested:
                retry = self.options.leader_retry.total_seconds()
                scheduler.add_job(
                    self._check_lead,
                    IntervalTrigger(seconds=retry, timezone=UTC),
                    id="leader",
                    name="leadership",
                    misfire_grace_time=None,
                )
        if self.settings.digests and "send" in self.options.roles:
            scheduler.add_job(
                job_outbox,
                IntervalTrigger(seconds=self.options.outbox_interval.total_seconds(), timezone=UTC),
                kwargs={"daemon": self.ident},
                id="outbox",
                name="retry waiting messages",
                misfire_grace_time=None,
            )
        scheduler.resume()
        log_event(
            "started",
            roles=describe_roles(self.roles),
            leader="yes" if self.leading else "no",
            jobs=len([j for j in self.jobs() if j[0] != "leader"]),
            digests=len(self.settings.digests),
            sources=len(self.settings.sources),
        )
        if self.leading:
            for name in self.schedules:
                self.log_next_due(name)
        if self.settings.digests and "send" in self.options.roles:
            # A send interrupted by the last stop resumes now, not at the first outbox run.
            self._spawn(self.flush_outbox())
        return tasks

    async def _check_lead(self) -> None:
        """Job: a leader checks it still leads (else steps down); the others try to."""
        if self._stopping or self.leadership is None:
            return
        if self.leading:
            if not self.leadership.still_held():
                log_event("leader_lost", logging.WARNING)
                self.leading = False
                if self.scheduler is not None:
                    self.scheduler.remove_jobstore(DB_JOBS, shutdown=False)
            return
        if self.leadership.try_acquire():
            log_event("leader_elected")
            self._lead()

    def _lead(self) -> list[asyncio.Task[Any]]:
        """Take over the schedule (``jobs.place_schedule``); the catch-up tasks."""
        assert self.scheduler is not None
        self.leading = True
        return place_schedule(self, self.scheduler)

    def spawn_catch_up(self, name: str, fire: datetime) -> asyncio.Task[Any]:
        """Send the missed edition of ``name`` scheduled at ``fire``, in the background."""
        return self._spawn(self._catch_up(name, fire))

    async def _catch_up(self, name: str, fire: datetime) -> None:
        """A missed edition, sent after a first poll: the entries that came in while the
        daemon was down belong in it."""
        if self.options.poll and self.settings.sources:
            try:
                await self.poll()
            except Exception as exc:  # a failed poll must not lose the catch-up
                log_event("poll_failed", logging.WARNING, error=str(exc))
        await self.send_digest(name, fire)

    def log_next_due(self, name: str) -> None:
        """Log when ``name`` is next due, in its local time and UTC."""
        sched = self.schedules.get(name)
        if sched is not None:
            zones = [s.timezone for s in subscribers_of(self.store, name)]
            due = next_due(sched, self.clock(), zones)
            log_event("next_due", digest=name, local=due["local"], utc=due["utc"])

    def jobs(self) -> list[tuple[str, datetime | None]]:
        """(id, next run) of every scheduled job."""
        if self.scheduler is None:
            return []
        return [(j.id, j.next_run_time) for j in self.scheduler.get_jobs()]

    # -- stopping ------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def tracked(self, coro: Any) -> None:
        """Run a job body, known to ``stop`` as in flight."""
        if self._stopping:
            coro.close()
            return
        try:
            await self._spawn(coro)
        except asyncio.CancelledError:
            # ``stop`` cancelled the job body: the outbox gives its message back. Only the
            # body was cancelled, not this job, so APScheduler is not told (no traceback).
            task = asyncio.current_task()
            if not self._stopping or (task is not None and task.cancelling()):
                raise
            log_event("job_cancelled", logging.WARNING, reason="stopped mid-job")

    async def stop(self) -> None:
        """Take no new work; let jobs in flight finish within ``stop_timeout``, then
        cancel them (the outbox gives an interrupted message back)."""
        self._stopping = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        running = [t for t in self._running if not t.done()]
        if running:
            log_event("stopping", in_flight=len(running), timeout=self.options.stop_timeout)
            _, pending = await asyncio.wait(running, timeout=self.options.stop_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
                log_event("abandoned", logging.WARNING, jobs=len(pending))
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leadership is not None:
            # After the last job: the next daemon to try takes over a quiet schedule.
            self.leadership.release()
            self.leading = False
        jobs.detach(self)
        if self._own_fetcher is not None:
            await self._own_fetcher.aclose()
            self._own_fetcher = self.fetcher = None
        log_event("stopped")

    # -- the jobs ------------------------------------------------------------------------

    async def poll(self) -> None:
        """Fetch every source that is due (healthy ones every ``poll_interval``, failing
        ones less and less often)."""
        async with self._poll_lock:
            await self._poll()

    async def _poll(self) -> None:
        from newsletter.services import ingest

        now = self.clock()
        names = due_sources(
            self.store.source_states(),
            [s.name for s in self.settings.sources],
            now=now,
            interval=self.options.poll_interval,
        )
        if not names:
            return
        sources = [s.to_source() for s in self.settings.sources if s.name in names]
        report = await ingest.ingest_async(sources, self.store, self.poll_fetcher(), now=now)
        for f in report.failures:
            log_event("source_failed", logging.WARNING, source=f.name, error=f.error or "")
        log_event(
            "polled",
            sources=len(sources),
            readable=report.readable,
            failed=len(report.failures),
            new=report.new,
            seconds=f"{report.seconds:.1f}",
        )

    def poll_fetcher(self) -> Fetcher:
        """The fetcher every poll uses: the one given, else an ``HttpFetcher`` made now
        (once) from the ``[fetch]`` settings."""
        if self.fetcher is None:
            from newsletter.sources.fetch import HttpFetcher

            self.fetcher = self._own_fetcher = HttpFetcher(self.settings.fetch)
        return self.fetcher

    async def send_digest(self, name: str, fire: datetime | None = None) -> None:
        """Send the edition of ``name`` scheduled at ``fire`` (default: the latest
        scheduled time), unless it is past its grace period or deadline."""
        from newsletter.services.delivery import send_edition
        from newsletter.services.editions import period_for

        sched = self.schedules.get(name)
        if sched is None:
            return
        now = self.clock()
        fire = fire or previous_fire(sched, now) or now
        decision = decide(sched, fire, now)
        if not decision.send:
            log_event(
                "edition_skipped",
                logging.WARNING,
                digest=name,
                edition=decision.period,
                reason=decision.reason,
            )
            return
        cfg = self.digest_cfg(name)
        # The edition is keyed by the scheduled time's local date: a catch-up that runs
        # after midnight still belongs to the day it was scheduled for.
        at = now if period_for(cfg, now) == decision.period else fire
        with logged_failure(name, decision.period):
            result = await send_edition(
                self.store,
                self.settings,
                cfg,
                self.mailer,
                now=at,
                clock=self.clock,
                secret=self.secret,
                period=decision.period,
            )
            report = result.report
            log_event(
                "edition_sent" if result.edition is not None else "edition_empty",
                digest=name,
                edition=result.period,
                created=result.created,
                items=result.items,
                recipients=result.recipients,
                sent=report.sent if report else 0,
                retry=report.retry if report else 0,
                failed=len(report.failed) if report else 0,
            )
        self.log_next_due(name)

    async def send_local(self, name: str) -> None:
        """Send ``name`` to each subscriber whose local hour has come today (one edition
        per local date, shared by everyone on that date)."""
        from newsletter.services.delivery import send_to

        sched = self.schedules.get(name)
        if sched is None or sched.local_hour is None:
            return
        cfg = self.digest_cfg(name)
        now = self.clock()
        subscribers = subscribers_of(self.store, name)
        due = local_due(subscribers, hour=sched.local_hour, now=now, grace=sched.grace)
        for period, subs in sorted(due.items()):
            with logged_failure(name, period):
                result = await send_to(
                    self.store,
                    self.settings,
                    cfg,
                    self.mailer,
                    subs,
                    period=period,
                    now=now,
                    clock=self.clock,
                    secret=self.secret,
                )
                if result.report is None:
                    log_event("edition_empty", digest=name, edition=period, due=len(subs))
                    continue
                log_event(
                    "edition_sent",
                    digest=name,
                    edition=period,
                    created=result.created,
                    local_hour=sched.local_hour,
                    due=len(subs),
                    queued=result.queued,
                    sent=result.report.sent,
                    retry=result.report.retry,
                    failed=len(result.report.failed),
                )
                self.log_next_due(name)

    async def flush_outbox(self) -> None:
        """Deliver what recent editions still owe (retries whose time has come), unless
        an edition is past its digest's deadline."""
        from newsletter.services.delivery import editions_owing, resume_edition

        now = self.clock()
        for name, sched in self.schedules.items():
            cfg = self.digest_cfg(name)
            for edition in editions_owing(self.store, name, recent=_RECENT_EDITIONS):
                if decide(sched, edition.created_at, now).action == "expired":
                    continue
                with logged_failure(name, edition.period):
                    report = await resume_edition(
                        self.store,
                        self.settings,
                        cfg,
                        edition,
                        self.mailer,
                        clock=self.clock,
                        secret=self.secret,
                    )
                    if report.sent or report.retry or report.failed:
                        log_event(
                            "outbox_flushed",
                            digest=name,
                            edition=edition.period,
                            sent=report.sent,
                            retry=report.retry,
                            failed=len(report.failed),
                        )


__all__ = [
    "Daemon",
    "DaemonOptions",
    "log_event",
    "schedule_for",
]
