"""``newsletter run``: the scheduler daemon (APScheduler 3.11, asyncio), optionally with
the web app in the same process.

Jobs, each with an explicit id, stored in a SQLAlchemy job store on the project's own
database (so a restart replaces them instead of adding copies)::

    poll               fetch the sources that are due (per-source back-off after errors)
    digest:<name>      send the digest on its cron schedule, in its time zone
    local:<name>       hourly: send to the subscribers whose local hour has come
    outbox             retry messages left for later (temporary failures, interruptions)

At start-up the daemon reads, before replacing them, when each digest job was due next:
a run missed while the daemon was down is sent once if it is still within the digest's
grace period, else skipped with a logged notice (``newsletter.schedule.plan_catch_up``).

Stopping (SIGTERM, Ctrl-C): no new job starts, a job in flight gets ``stop_timeout``
seconds to finish, then it is cancelled; the outbox hands a message interrupted mid-send
back for the next run. The process exits 0.

Log lines are ``event=... key=value`` pairs (digest, edition, counts) on the
``newsletter.daemon`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.clock import now_utc
from newsletter.config import DigestConfig, Settings
from newsletter.errors import AuthenticationError, NewsletterError
from newsletter.serve.schedule import (
    DEFAULT_POLL_INTERVAL,
    DigestSchedule,
    decide,
    due_sources,
    local_due,
    next_fire,
    plan_catch_up,
    previous_fire,
    schedule_for,
)
from newsletter.store import outbox
from newsletter.store.database import Store

if TYPE_CHECKING:
    from newsletter.sources.fetch import Fetcher, HttpFetcher

log = logging.getLogger("newsletter.serve.daemon")

JOBSTORE_TABLE = "apscheduler_jobs"
DEFAULT_STOP_TIMEOUT = 20.0
OUTBOX_INTERVAL = timedelta(minutes=5)
_RECENT_EDITIONS = 3


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """One structured line: ``event=edition_sent digest=daily edition=2026-03-08 sent=3``."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
        parts.append(f"{key}={text}")
    log.log(level, " ".join(parts))


class WallClockTrigger(BaseTrigger):  # type: ignore[misc]  # untyped base
    """An APScheduler trigger firing on a cron expression read as wall-clock time in an
    IANA zone, with the DST rules of ``newsletter.schedule`` (no skipped or doubled
    run). Picklable, for the persistent job store."""

    __slots__ = ("cron", "name", "timezone")

    def __init__(self, name: str, cron: str, timezone: str) -> None:
        self.name = name
        self.cron = cron
        self.timezone = timezone

    @property
    def schedule(self) -> DigestSchedule:
        return DigestSchedule(self.name, self.cron, self.timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or (now - timedelta(microseconds=1))
        return next_fire(self.schedule, max(after, now - timedelta(microseconds=1)))

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "name": self.name, "cron": self.cron, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name = state["name"]
        self.cron = state["cron"]
        self.timezone = state["timezone"]

    def __str__(self) -> str:
        return f"wallclock[{self.cron} {self.timezone}]"

    def __repr__(self) -> str:
        return f"WallClockTrigger({self.name!r}, {self.cron!r}, {self.timezone!r})"


@dataclass(frozen=True)
class DaemonOptions:
    """How the daemon runs (command-line options of ``newsletter run``)."""

    poll_interval: timedelta = DEFAULT_POLL_INTERVAL
    poll: bool = True
    web: bool = False
    host: str | None = None
    port: int | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT


# The running daemon: job functions in a persistent store are saved by name
# ("newsletter.serve.daemon:job_digest"), so they find their daemon here.
_CURRENT: Daemon | None = None


def _daemon() -> Daemon:
    if _CURRENT is None:
        raise RuntimeError("no daemon is running")
    return _CURRENT


async def job_poll() -> None:
    """Job: fetch the sources that are due."""
    await _daemon().tracked(_daemon().poll())


async def job_digest(name: str) -> None:
    """Job: send the digest ``name`` for the run that is due now."""
    await _daemon().tracked(_daemon().send_digest(name))


async def job_local(name: str) -> None:
    """Job: send ``name`` to the subscribers whose local hour has come."""
    await _daemon().tracked(_daemon().send_local(name))


async def job_outbox() -> None:
    """Job: deliver messages of recent editions that are waiting for a retry."""
    await _daemon().tracked(_daemon().flush_outbox())


@dataclass
class Daemon:
    """The scheduler and its jobs. ``mailer`` is a ``deliver.Mailer``; ``clock`` gives
    the current time (tests inject one).

    Start-up is paid once: ``store`` (one database engine) and ``fetcher`` (one HTTP
    client and its connection pool, an ``HttpFetcher`` made at the first poll unless one
    is given) serve every poll; ``stop`` closes the fetcher the daemon made."""

    settings: Settings
    store: Store
    mailer: Any
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

    # -- set-up --------------------------------------------------------------------------

    @property
    def schedules(self) -> dict[str, DigestSchedule]:
        return {
            d.name: self.overrides.get(d.name) or schedule_for(d) for d in self.settings.digests
        }

    def digest_cfg(self, name: str) -> DigestConfig:
        return self.settings.digest(name)

    def make_scheduler(self) -> AsyncIOScheduler:
        """An AsyncIOScheduler with the persistent job store on the project database."""
        outbox.ensure_tables(self.store)
        store = SQLAlchemyJobStore(engine=self.store.engine, tablename=JOBSTORE_TABLE)
        return AsyncIOScheduler(
            jobstores={"default": store},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    async def start(self) -> list[asyncio.Task[Any]]:
        """Start the scheduler: read what was missed, (re)place every job, start catch-up
        sends. Returns the catch-up tasks."""
        global _CURRENT
        _CURRENT = self
        scheduler = self.scheduler = self.make_scheduler()
        # Paused: nothing runs until every job is in place and the catch-up is planned.
        scheduler.start(paused=True)
        now = self.clock()
        planned = {job.id: job.next_run_time for job in scheduler.get_jobs()}
        wanted: set[str] = set()
        tasks: list[asyncio.Task[Any]] = []
        if self.options.poll and self.settings.sources:
            wanted.add("poll")
            scheduler.add_job(
                job_poll,
                IntervalTrigger(seconds=self.options.poll_interval.total_seconds(), timezone=UTC),
                id="poll",
                name="poll sources",
                replace_existing=True,
                next_run_time=now,
                misfire_grace_time=None,
            )
        for name, sched in self.schedules.items():
            grace = max(1, int(sched.grace.total_seconds()))
            if sched.local_hour is not None:
                job_id = f"local:{name}"
                scheduler.add_job(
                    job_local,
                    CronTrigger(minute=0, timezone=UTC),
                    args=[name],
                    id=job_id,
                    name=f"{name} at {sched.local_hour}:00 local time",
                    replace_existing=True,
                    misfire_grace_time=grace,
                )
                wanted.add(job_id)
                continue
            job_id = f"digest:{name}"
            missed_since = planned.get(job_id)
            done = {e.period for e in self.store.editions(name, limit=50)}
            plan = plan_catch_up(sched, missed_since=missed_since, now=now, done=done)
            for skipped in plan.skipped[-3:]:
                log_event(
                    "edition_skipped",
                    logging.WARNING,
                    digest=name,
                    edition=skipped.period,
                    reason=skipped.reason,
                )
            if len(plan.skipped) > 3:
                log_event(
                    "edition_skipped",
                    logging.WARNING,
                    digest=name,
                    older=len(plan.skipped) - 3,
                    reason="coalesced",
                )
            if plan.send is not None:
                log_event(
                    "catch_up",
                    digest=name,
                    edition=plan.send.period,
                    scheduled=plan.send.fire.isoformat(),
                )
                tasks.append(self._spawn(self.send_digest(name, plan.send.fire)))
            scheduler.add_job(
                job_digest,
                WallClockTrigger(name, sched.cron, sched.timezone),
                args=[name],
                id=job_id,
                name=f"{name} ({sched.cron} {sched.timezone})",
                replace_existing=True,
                next_run_time=next_fire(sched, now),
                misfire_grace_time=grace,
            )
            wanted.add(job_id)
        if self.settings.digests:
            wanted.add("outbox")
            scheduler.add_job(
                job_outbox,
                IntervalTrigger(seconds=OUTBOX_INTERVAL.total_seconds(), timezone=UTC),
                id="outbox",
                name="retry waiting messages",
                replace_existing=True,
                misfire_grace_time=None,
            )
        for job_id in set(planned) - wanted:
            # A digest removed from the config: its job goes too.
            scheduler.remove_job(job_id)
            log_event("job_removed", job=job_id)
        scheduler.resume()
        log_event(
            "started",
            jobs=len(wanted),
            digests=len(self.settings.digests),
            sources=len(self.settings.sources),
        )
        return tasks

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
        await self._spawn(coro)

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
        if self._own_fetcher is not None:
            await self._own_fetcher.aclose()
            self._own_fetcher = self.fetcher = None
        log_event("stopped")

    # -- the jobs ------------------------------------------------------------------------

    async def poll(self) -> None:
        """Fetch every source that is due (healthy ones every ``poll_interval``, failing
        ones less and less often)."""
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
        sources = [ingest.source_from_config(s) for s in self.settings.sources if s.name in names]
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
        from newsletter.services.editions import period_for, send_edition

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
        try:
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
        except AuthenticationError as exc:
            log_event(
                "send_failed", logging.ERROR, digest=name, edition=decision.period, error=str(exc)
            )
            return
        except NewsletterError as exc:
            log_event(
                "send_failed", logging.ERROR, digest=name, edition=decision.period, error=str(exc)
            )
            return
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

    async def send_local(self, name: str) -> None:
        """Send ``name`` to each subscriber whose local hour has come today (one edition
        per local date, shared by everyone on that date)."""
        from newsletter.deliver.loop import RetryPolicy, deliver_edition
        from newsletter.services.editions import composer_for

        sched = self.schedules.get(name)
        if sched is None or sched.local_hour is None:
            return
        cfg = self.digest_cfg(name)
        now = self.clock()
        subscribers = outbox.subscribers_of(self.store, name)
        due = local_due(subscribers, hour=sched.local_hour, now=now, grace=sched.grace)
        for period, subs in sorted(due.items()):
            plan = plan_for_period(self.store, self.settings, cfg, period, now=now)
            if plan.edition is None:
                log_event("edition_empty", digest=name, edition=period, due=len(subs))
                continue
            added = outbox.enqueue(self.store, plan.edition.id, subs, now=now)
            try:
                report = await deliver_edition(
                    self.store,
                    plan.edition.id,
                    self.mailer,
                    composer_for(self.store, self.settings, cfg, plan, secret=self.secret),
                    clock=self.clock,
                    policy=RetryPolicy.from_settings(self.settings),
                )
            except NewsletterError as exc:
                log_event("send_failed", logging.ERROR, digest=name, edition=period, error=str(exc))
                continue
            log_event(
                "edition_sent",
                digest=name,
                edition=period,
                created=plan.created,
                local_hour=sched.local_hour,
                due=len(subs),
                queued=added,
                sent=report.sent,
                retry=report.retry,
                failed=len(report.failed),
            )

    async def flush_outbox(self) -> None:
        """Deliver what recent editions still owe (retries whose time has come), unless
        an edition is past its digest's deadline."""
        from newsletter.deliver.loop import RetryPolicy, deliver_edition
        from newsletter.services.editions import EditionPlan, composer_for

        now = self.clock()
        for name, sched in self.schedules.items():
            cfg = self.digest_cfg(name)
            for edition in self.store.editions(name, limit=_RECENT_EDITIONS):
                counts = outbox.counts(self.store, edition.id)
                if not (counts["queued"] or counts["retry"] or counts["sending"]):
                    continue
                if decide(sched, edition.created_at, now).action == "expired":
                    continue
                plan = EditionPlan(
                    edition.period,
                    self.store.edition_entries(edition.id),
                    edition.created_at,
                    edition,
                )
                try:
                    report = await deliver_edition(
                        self.store,
                        edition.id,
                        self.mailer,
                        composer_for(self.store, self.settings, cfg, plan, secret=self.secret),
                        clock=self.clock,
                        policy=RetryPolicy.from_settings(self.settings),
                    )
                except NewsletterError as exc:
                    log_event(
                        "send_failed",
                        logging.ERROR,
                        digest=name,
                        edition=edition.period,
                        error=str(exc),
                    )
                    continue
                if report.sent or report.retry or report.failed:
                    log_event(
                        "outbox_flushed",
                        digest=name,
                        edition=edition.period,
                        sent=report.sent,
                        retry=report.retry,
                        failed=len(report.failed),
                    )


def plan_for_period(
    store: Store, settings: Settings, cfg: DigestConfig, period: str, *, now: datetime
) -> Any:
    """The edition of ``cfg`` for ``period`` (a local date): the stored one, else made
    from the entries new since the last edition (``EditionPlan`` without an edition when
    there is nothing new)."""
    from newsletter.services.editions import plan_edition

    return plan_edition(store, settings, cfg, now=now, period=period)


# -- running it ----------------------------------------------------------------------------


class _EmbeddedServer:
    """uvicorn in the daemon's event loop, leaving signal handling to the daemon."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The daemon owns SIGTERM/SIGINT: it stops the server itself.
                yield

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=True,
        )
        self.server = Server(config)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.server.serve())

    async def started(self) -> None:
        while not self.server.started:
            if self.task is not None and self.task.done():
                self.task.result()  # raises why it could not start (port in use...)
                raise NewsletterError("the web server stopped at start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def serve_until_stopped(
    daemon: Daemon | None,
    *,
    web_app: Any = None,
    host: str = "127.0.0.1",
    port: int = 8025,
    stop: asyncio.Event | None = None,
    install_signals: bool = True,
) -> None:
    """Run the daemon and/or the web app until SIGTERM, SIGINT or ``stop`` is set."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
    server = _EmbeddedServer(web_app, host, port) if web_app is not None else None
    try:
        if server is not None:
            server.start()
            await server.started()
            log_event("web_started", url=f"http://{host}:{port}")
        if daemon is not None:
            await daemon.start()
        await stop.wait()
        log_event("stop_requested")
    finally:
        if daemon is not None:
            await daemon.stop()
        if server is not None:
            await server.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)


__all__ = [
    "Daemon",
    "DaemonOptions",
    "WallClockTrigger",
    "job_digest",
    "job_local",
    "job_outbox",
    "job_poll",
    "log_event",
    "plan_for_period",
    "serve_until_stopped",
]
