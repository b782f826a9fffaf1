"""The outbox loop: ``deliver_edition`` runs ``workers`` workers, each with one reused
connection, claiming outbox rows atomically in small batches (see
``newsletter.store.outbox`` for the states and the crash story). Outcomes are committed in
groups: a worker sends the envelope of its next message while the previous outcome is
committed, and sends DATA only once it is, so at most one message per connection is ever
accepted by the server but not yet recorded. Temporary failures are tried again with
exponential backoff and jitter (``RetryPolicy``), then left in the outbox as ``retry``.
While the workers send, the run renews the lease of the rows it holds every third of the
lease, so a slow server never lets another sender take them back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from newsletter.config import SmtpConfig, parse_duration
from newsletter.deliver.mailers import Mailer, MailSession, Outgoing
from newsletter.errors import (
    AuthenticationError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.engine import is_postgres
from newsletter.store.outbox import OutboxRow

log = logging.getLogger("newsletter.deliver")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry temporary failures."""

    tries_per_run: int = 3
    backoff: float = 1.0
    """Seconds before the 2nd try in a run; doubles, with jitter of up to 50 %."""
    retry_delay: timedelta = timedelta(minutes=5)
    """Before the next run may try: doubles with each run that failed."""
    max_attempts: int = 5
    """Runs after which a message that keeps failing is marked failed."""
    max_delay: timedelta = timedelta(hours=6)

    @classmethod
    def from_config(cls, s: SmtpConfig) -> RetryPolicy:
        """The policy of the ``[smtp]`` settings."""
        return cls(
            tries_per_run=s.tries_per_run,
            backoff=s.backoff,
            retry_delay=parse_duration(s.retry_delay),
            max_attempts=s.max_attempts,
        )

    def pause(self, tried: int) -> float:
        """Seconds to wait after the ``tried``-th failed try in a run."""
        base = self.backoff * 2.0 ** (tried - 1)
        return base + random.uniform(0, base / 2)

    def next_try(self, now: datetime, attempts: int) -> datetime:
        """When a later run may try again after ``attempts`` runs failed."""
        delay = self.retry_delay * 2.0 ** max(0, attempts - 1)
        delay = min(delay, self.max_delay)
        return now + delay * random.uniform(1.0, 1.25)


@dataclass
class DeliveryReport:
    """What one run of the outbox loop did."""

    sent: int = 0
    retry: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)
    """(outbox id, address, reply) of each message the server refused with a 5xx: the
    bounce rules may count the address as a hard bounce (``services.bounces``)."""
    recovered: int = 0
    suppressed: int = 0
    stopped: str | None = None
    """Why the run stopped early (a refused login), else None."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed for good and the run was not stopped."""
        return not self.failed and self.stopped is None


Compose = Callable[[OutboxRow, datetime], Outgoing]


class _Ledger:
    """The outcomes of one run, committed in groups.

    ``record`` queues an outcome and returns a future that completes once it is
    committed; ``settle`` waits for such a future, starting a commit of everything queued
    so far when none is running (group commit: the outcomes the other connections queued
    meanwhile share the transaction); what is queued while a commit runs goes in the
    next one. On PostgreSQL the commit runs in a worker thread, so its round trip never
    stalls the other connections. A sender settles the outcome of its previous message
    before it sends DATA for the next one, so each connection has at most one message
    accepted by the server but not yet recorded as sent: the duplicate window of the crash
    story stays one message per connection, while the next message is composed and its
    envelope sent before the commit.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[_Outcome] = []
        # A database server is a network round trip away: waiting for it in a thread
        # (psycopg lets go of the GIL) keeps the other connections sending. SQLite's
        # commit is a local call that costs less than handing it to a thread.
        self.offload = is_postgres(store.engine)
        self._committing: asyncio.Task[None] | None = None
        self._wanted = False

    def record(
        self, row: OutboxRow, values: dict[str, Any], then: Callable[[], None] | None = None
    ) -> asyncio.Future[None]:
        """Queue one outcome (``outbox.sent_values`` and friends); ``then()`` runs once it
        is committed. Returns the future of that commit."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(_Outcome(row, values, done, then))
        return done

    async def settle(self, done: asyncio.Future[None] | None) -> None:
        """Wait until the outcome behind ``done`` is committed (starting a commit if none
        is running)."""
        if done is None:
            return
        if any(o.done is done for o in self.pending):
            self._wanted = True
            self._start()
        # Shielded: a sender cancelled while it waits must not cancel the outcome (the
        # other senders' outcomes in the same commit are not its to cancel).
        await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait until every queued outcome is committed."""
        self._wanted = True
        self._start()
        while self._committing is not None:
            await asyncio.shield(self._committing)

    def _start(self) -> None:
        if self._committing is None and self.pending:
            self._committing = asyncio.get_running_loop().create_task(self._commit())

    async def _commit(self) -> None:
        try:
            # Another commit only when a sender waits for an outcome queued meanwhile:
            # the others join the next group instead of each paying a round trip.
            while self.pending and self._wanted:
                self._wanted = False
                batch, self.pending = self.pending, []
                outcomes = [(o.row, o.values) for o in batch]
                try:
                    if self.offload:
                        await asyncio.to_thread(outbox.finish_many, self.store, outcomes)
                    else:
                        outbox.finish_many(self.store, outcomes)
                except Exception as exc:
                    # Their rows stay in ``sending``: the next run recovers them.
                    for o in batch:
                        _resolve(o.done, exc)
                    continue
                for o in batch:
                    try:
                        if o.then is not None:
                            o.then()
                    except Exception as exc:
                        # It belongs to that outcome's sender, which sees it on settling.
                        _resolve(o.done, exc)
                    else:
                        _resolve(o.done, None)
        finally:
            self._committing = None


def _resolve(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


@dataclass(frozen=True, slots=True)
class _Outcome:
    row: OutboxRow
    values: dict[str, Any]
    done: asyncio.Future[None]
    then: Callable[[], None] | None


async def deliver_edition(
    store: Store,
    edition_id: int,
    mailer: Mailer,
    compose: Compose,
    *,
    clock: Callable[[], datetime],
    policy: RetryPolicy | None = None,
    workers: int | None = None,
    batch: int = 32,
    lease: timedelta = outbox.DEFAULT_LEASE,
    on_result: Callable[[OutboxRow, str, str], None] | None = None,
) -> DeliveryReport:
    """Send every due outbox row of an edition.

    ``compose(row, now)`` builds the message for a row. ``on_result(row, state, detail)``
    hears about each message (``sent``, ``retry``, ``failed``) once it is recorded.
    Raises ``AuthenticationError`` after giving back every claimed row when the server
    refuses the login. Each of the ``workers`` connections (default: the mailer's
    ``connections``) claims ``batch`` rows at a time; a claimed row that was never
    attempted is given back (or, after a crash, recovered by the next run), so the batch
    size does not widen the duplicate window. When nothing is left to claim, the rows of
    a sender that died meanwhile (``outbox.recover``) are sent too.
    """
    policy = policy or RetryPolicy()
    started = time.perf_counter()
    report = DeliveryReport()
    report.recovered = outbox.recover(store, edition_id, now=clock(), lease=lease)
    report.suppressed = outbox.suppress_inactive(store, edition_id)
    prefix = outbox.new_claim_prefix()
    stop: list[BaseException] = []
    ledger = _Ledger(store)

    async def worker() -> None:
        async with mailer.session() as session:
            last: list[asyncio.Future[None]] = []  # the previous message's outcome
            try:
                await deliver_rows(session, last)
            except BaseException as exc:
                stop.append(exc)
            if last:
                try:
                    # Settled before the connection closes; a commit that failed leaves
                    # its row in ``sending``, which the next run recovers.
                    await ledger.settle(last[0])
                except Exception as exc:
                    if not stop:
                        stop.append(exc)

    claimed_up_to = [0]  # the highest id this run claimed: the next claim starts there

    async def claim(now: datetime) -> list[OutboxRow]:
        rows = await claim_after(now, claimed_up_to[0])
        if not rows and claimed_up_to[0]:
            # Rows before the mark are normally all taken; a last look from the start.
            rows = await claim_after(now, 0)
        if rows:
            claimed_up_to[0] = max(claimed_up_to[0], *(r.id for r in rows))
        return rows

    async def claim_after(now: datetime, after: int) -> list[OutboxRow]:
        def take() -> list[OutboxRow]:
            return outbox.claim(store, edition_id, now=now, limit=batch, prefix=prefix, after=after)

        if not ledger.offload:
            return take()
        # In a worker thread, so the other connections go on sending meanwhile.
        claiming = asyncio.ensure_future(asyncio.to_thread(take))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # The claim goes on in its thread: its rows are given back once it is done.
            claiming.add_done_callback(lambda task: _give_back(store, task))
            raise

    async def deliver_rows(session: MailSession, last: list[asyncio.Future[None]]) -> None:
        while not stop:
            rows = await claim(clock())
            if not rows:
                return
            for i, row in enumerate(rows):
                if stop:
                    outbox.release(store, rows[i:])
                    return
                attempt = _Attempt(ledger, session, row, last[0] if last else None)
                try:
                    last[:] = [await attempt.run(compose, clock, policy, report, on_result)]
                except BaseException:
                    # The row in hand is given back unless its outcome is already queued
                    # for the database; the rest were never tried.
                    outbox.release(store, rows[i + 1 :] if attempt.done else rows[i:])
                    raise

    count = mailer.connections if workers is None else workers
    renewing = asyncio.create_task(
        _renew_leases(store, edition_id, prefix, clock, lease, ledger.offload)
    )
    try:
        while True:
            await asyncio.gather(*(worker() for _ in range(max(1, count))))
            if stop:
                break
            # Nothing left to claim: rows another sender held when it died (same host,
            # process gone; or its lease ran out) are taken over now rather than left
            # for the next run.
            taken_over = outbox.recover(store, edition_id, now=clock(), lease=lease)
            if not taken_over:
                break
            report.recovered += taken_over
    finally:
        renewing.cancel()
        await ledger.drain()
    report.seconds = time.perf_counter() - started
    if stop:
        first = stop[0]
        if isinstance(first, AuthenticationError):
            report.stopped = str(first)
        raise first
    return report


def _give_back(store: Store, claiming: asyncio.Future[list[OutboxRow]]) -> None:
    """Release the rows of a claim whose sender was cancelled while it ran."""
    if claiming.cancelled() or claiming.exception() is not None:
        return
    try:
        outbox.release(store, claiming.result())
    except Exception as exc:  # they are recovered when their lease runs out
        log.warning("cannot give back claimed outbox rows: %s", exc)


async def _renew_leases(
    store: Store,
    edition_id: int,
    prefix: str,
    clock: Callable[[], datetime],
    lease: timedelta,
    offload: bool,
) -> None:
    """Every third of the lease, renew the claims of this run (``outbox.renew``): another
    sender's ``recover`` never takes back a row this run still holds, however slow the
    server. A failed renewal is logged and tried again at the next turn."""
    every = max(lease.total_seconds() / 3, 0.01)
    while True:
        await asyncio.sleep(every)
        try:
            if offload:
                await asyncio.to_thread(outbox.renew, store, edition_id, prefix, now=clock())
            else:
                outbox.renew(store, edition_id, prefix, now=clock())
        except Exception as exc:
            log.warning("cannot renew the outbox leases of edition %s: %s", edition_id, exc)


class _Attempt:
    """One row's delivery over one session, with retries within the run."""

    def __init__(
        self,
        ledger: _Ledger,
        session: MailSession,
        row: OutboxRow,
        previous: asyncio.Future[None] | None,
    ) -> None:
        self.ledger = ledger
        self.session = session
        self.row = row
        self.previous = previous
        self.done = False
        """True once the outcome is queued for the database."""

    async def _settle_previous(self) -> None:
        await self.ledger.settle(self.previous)

    async def _send(self, message: Outgoing) -> str:
        # The previous outcome is committed before this message can be accepted (over
        # SMTP: while its envelope goes out): at most one accepted message per connection
        # is ever unrecorded.
        return await self.session.send(message, before_data=self._settle_previous)

    async def run(
        self,
        compose: Compose,
        clock: Callable[[], datetime],
        policy: RetryPolicy,
        report: DeliveryReport,
        on_result: Callable[[OutboxRow, str, str], None] | None,
    ) -> asyncio.Future[None]:
        """Send (retrying temporary failures); returns the future of the outcome's commit."""
        row = self.row

        def then(state: str, detail: str) -> Callable[[], None]:
            def count() -> None:
                if state == "sent":
                    report.sent += 1
                elif state == "retry":
                    report.retry += 1
                else:
                    report.failed.append((row.email, detail))
                if on_result:
                    on_result(row, state, detail)

            return count

        message = compose(row, clock())
        for tried in range(1, policy.tries_per_run + 1):
            try:
                reply = await self._send(message)
            except PermanentDeliveryError as exc:
                self.done = True
                report.refused.append((row.id, row.email, exc.reason))
                values = outbox.failed_values(error=exc.reason)
                return self.ledger.record(row, values, then("failed", exc.reason))
            except TransientDeliveryError as exc:
                if tried < policy.tries_per_run:
                    log.info("%s: %s (try %d, again shortly)", row.email, exc.reason, tried)
                    await asyncio.sleep(policy.pause(tried))
                    continue
                self.done = True
                if row.attempts >= policy.max_attempts:
                    reason = f"gave up after {row.attempts} runs: {exc.reason}"
                    values = outbox.failed_values(error=reason)
                    return self.ledger.record(row, values, then("failed", reason))
                when = policy.next_try(clock(), row.attempts)
                values = outbox.retry_values(error=exc.reason, next_try=when)
                return self.ledger.record(row, values, then("retry", exc.reason))
            self.done = True
            values = outbox.sent_values(reply=reply, message_id=message.message_id, now=clock())
            return self.ledger.record(row, values, then("sent", reply))
        raise AssertionError("unreachable")


async def send_one(mailer: Mailer, message: Outgoing, *, policy: RetryPolicy | None = None) -> str:
    """Send a single message outside the outbox (a test copy), with the same retries."""
    policy = policy or RetryPolicy()
    async with mailer.session() as session:
        for tried in range(1, policy.tries_per_run + 1):
            try:
                return await session.send(message)
            except TransientDeliveryError:
                if tried == policy.tries_per_run:
                    raise
                await asyncio.sleep(policy.pause(tried))
    raise AssertionError("unreachable")
