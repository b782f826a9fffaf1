"""Delivery: mailers behind one small protocol, and the outbox loop that drives them.

Mailers::

    Mailer.session() -> async context manager of a MailSession (one connection)
    MailSession.send(Outgoing) -> the server's reply

``SmtpMailer`` (aiosmtplib; security none / starttls / tls; login; timeouts; optional rate
limit shared by its connections) and ``FileMailer`` (one ``.eml`` file per message, the
default, so a demo shows real messages without a server).

Errors: a 5xx reply raises ``PermanentDeliveryError`` (that recipient only); 4xx, timeouts
and dropped connections raise ``TransientDeliveryError`` (tried again with exponential
backoff and jitter, then left in the outbox as ``retry`` for a later run); a refused login
raises ``AuthenticationError``, which stops the run.

``deliver_edition`` runs ``pool_size`` workers, each with one reused connection, claiming
outbox rows atomically in small batches (see ``newsletter.outbox`` for the states and the
crash story). Outcomes are committed in groups: a worker sends the envelope of its next
message while the previous outcome is committed, and sends DATA only once it is, so at
most one message per connection is ever accepted by the server but not yet recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosmtplib
import jinja2

from newsletter import outbox
from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.errors import (
    AuthenticationError,
    ConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from newsletter.mail import (
    ContentKey,
    MailSettings,
    Recipient,
    RenderedEmail,
    content_key,
    mail_environment,
    message_bytes,
    message_id,
    render_email,
    unsubscribe_mailto,
    unsubscribe_url,
)
from newsletter.models import Digest, Edition, Entry, MailFormat
from newsletter.outbox import OutboxRow, subscribers_of
from newsletter.store import Store
from newsletter.tokens import make_token, unsubscribe_value

log = logging.getLogger("newsletter.deliver")
PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to go: envelope and wire bytes."""

    sender: str
    recipient: str
    data: bytes
    message_id: str = ""
    label: str = ""
    """A readable path-like name (``digest/period/address``) for the file mailer."""


class MailSession(Protocol):
    """One connection to a mail server (or a folder), used for many messages."""

    async def send(self, message: Outgoing) -> str:
        """Deliver one message; return the server's reply."""
        ...


class Mailer(Protocol):
    """Something that opens sessions: ``async with mailer.session() as s``."""

    name: str

    def session(self) -> contextlib.AbstractAsyncContextManager[MailSession]:
        """A session (one reused connection)."""
        ...


# -- file ----------------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


class FileMailer:
    """Writes each message as an ``.eml`` file under ``folder`` (atomically)."""

    name = "file"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()

    def path_for(self, message: Outgoing) -> Path:
        """Where a message goes: ``<folder>/<digest>/<period>/<address>.eml``."""
        label = message.label or message.message_id.strip("<>") or message.recipient
        parts = [_UNSAFE.sub("_", p)[:120] or "_" for p in label.split("/") if p]
        parts = [p for p in parts if p not in (".", "..")] or ["message"]
        return self.folder.joinpath(*parts[:-1], parts[-1] + ".eml")

    async def send(self, message: Outgoing) -> str:
        """Write the message; the reply names the file."""
        path = self.path_for(message)
        await asyncio.to_thread(_write_atomic, path, message.data)
        return f"250 written to {path}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """The mailer itself: a folder needs no connection."""
        yield self


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# -- smtp ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP server. ``password`` never comes from a config file."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    pool_size: int = 2
    rate_limit: float | None = None
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        pw = "'***'" if self.password else "None"
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, password={pw}, pool_size={self.pool_size})"
        )


def smtp_settings(settings: Settings, env: dict[str, str] | None = None) -> SmtpSettings:
    """SmtpSettings from the configuration; the password only from
    ``NEWSLETTER_SMTP_PASSWORD`` (a password in the config file is refused)."""
    s = settings.smtp
    environ = os.environ if env is None else env
    password = environ.get(PASSWORD_ENV) or None
    if s.password is not None and password is None:
        raise ConfigError(
            f"must not be stored in the config file: set the environment variable "
            f"{PASSWORD_ENV} instead",
            path=settings.path,
            setting="smtp.password",
            example=f"export {PASSWORD_ENV}=...",
        )
    if s.username and not password:
        raise ConfigError(
            f"is set but {PASSWORD_ENV} is not",
            path=settings.path,
            setting="smtp.username",
            example=f"export {PASSWORD_ENV}=...",
        )
    return SmtpSettings(
        host=s.host,
        port=s.port,
        security=s.security,
        username=s.username,
        password=password,
        timeout=s.timeout,
        pool_size=s.pool_size,
        rate_limit=s.rate_limit,
    )


class RateLimiter:
    """At most ``rate`` events per second across every task that waits on it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        """Wait for the next free slot."""
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


class SmtpSession:
    """One SMTP connection, opened on first use and again after it drops."""

    def __init__(self, settings: SmtpSettings, limiter: RateLimiter | None) -> None:
        self.settings = settings
        self.limiter = limiter
        self.client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=s.tls_context,
        )
        where = f"{s.host}:{s.port}"
        try:
            await client.connect()
            if s.username:
                await client.login(s.username, s.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _close(client)
            raise AuthenticationError(
                f"the SMTP server {where} refused the login of {s.username!r} "
                f"({_reply_text(exc.code, exc.message)}); check smtp.username and "
                f"{PASSWORD_ENV}"
            ) from None
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            aiosmtplib.SMTPServerDisconnected,
            OSError,
        ) as exc:
            await _close(client)
            raise TransientDeliveryError(where, f"cannot connect: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            if exc.code >= 500:
                # e.g. 530 "must issue STARTTLS first": a setup error, not bad luck.
                raise AuthenticationError(
                    f"the SMTP server {where} refused the session "
                    f"({_reply_text(exc.code, exc.message)}); check smtp.security and "
                    "smtp.username"
                ) from None
            raise TransientDeliveryError(where, f"cannot connect: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            # No STARTTLS or no AUTH on the server: the settings do not fit this server.
            await _close(client)
            raise AuthenticationError(
                f"the SMTP server {where} cannot do what the settings ask ({exc}); "
                "check smtp.security and smtp.username"
            ) from None
        self.client = client
        return client

    async def send(
        self, message: Outgoing, *, before_data: Callable[[], Awaitable[None]] | None = None
    ) -> str:
        """Send over the open connection (reconnecting if needed). ``before_data`` is
        awaited after the envelope is accepted and before DATA: the server cannot accept
        the message before it returns."""
        if self.limiter is not None:
            await self.limiter.wait()
        client = self.client
        if client is None or not client.is_connected:
            client = await self._connect()
        rcpt = message.recipient
        try:
            await client.mail(message.sender)
            await client.rcpt(rcpt)
            if before_data is not None:
                try:
                    await before_data()
                except BaseException:
                    await self._reset()
                    raise
            reply = await client.data(message.data)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or exc.code < 400:
                await self.close()
            else:
                await self._reset()
            raise _by_code(rcpt, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timeouts, dropped connections, TLS trouble: the connection is unusable.
            await self.close()
            what = type(exc).__name__
            raise TransientDeliveryError(rcpt, f"{what}: {exc}") from None
        return _reply_text(reply.code, reply.message)

    async def _reset(self) -> None:
        # After a refused recipient or message the connection stays usable once reset.
        if self.client is None:
            return
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        """Close the connection (QUIT when still possible)."""
        client, self.client = self.client, None
        if client is not None:
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
    else:
        client.close()


def _by_code(rcpt: str, code: int, message: str) -> PermanentDeliveryError | TransientDeliveryError:
    reply = _reply_text(code, message)
    if code >= 500:
        return PermanentDeliveryError(rcpt, reply)
    return TransientDeliveryError(rcpt, reply)


class SmtpMailer:
    """SMTP through aiosmtplib; each session is one reused connection."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """One connection, closed (QUIT) at the end."""
        session = SmtpSession(self.settings, self.limiter)
        try:
            yield session
        finally:
            await session.close()


def make_mailer(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> Mailer:
    """The configured mailer (``mail.delivery``: ``file`` or ``smtp``)."""
    if settings.mail.delivery == "file":
        return FileMailer(settings.mail.mail_dir)
    s = smtp_settings(settings)
    if tls_context is not None:
        from dataclasses import replace

        s = replace(s, tls_context=tls_context)
    return SmtpMailer(s)


# -- the outbox loop -----------------------------------------------------------------------


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
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        s = settings.smtp
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
    committed; ``settle`` waits for such a future, committing everything queued so far in
    one transaction when it is not committed yet (group commit: the outcomes the other
    connections queued meanwhile share the transaction). A sender settles the outcome of
    its previous message before it sends DATA for the next one, so each connection has at
    most one message accepted by the server but not yet recorded as sent: the duplicate
    window of the crash story stays one message per connection, while the next message is
    composed and its envelope sent before the commit.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: list[_Outcome] = []

    def record(
        self, row: OutboxRow, values: dict[str, Any], then: Callable[[], None] | None = None
    ) -> asyncio.Future[None]:
        """Queue one outcome (``outbox.sent_values`` and friends); ``then()`` runs once it
        is committed. Returns the future of that commit."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(_Outcome(row, values, done, then))
        return done

    async def settle(self, done: asyncio.Future[None] | None) -> None:
        """Wait until the outcome behind ``done`` is committed (committing now if needed)."""
        if done is None:
            return
        if not done.done():
            self.flush()
        await done

    def flush(self) -> None:
        """Commit every queued outcome in one transaction."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            outbox.finish_many(self.store, [(o.row, o.values) for o in batch])
        except Exception as exc:
            for o in batch:
                o.done.set_exception(exc)
            return
        for o in batch:
            try:
                if o.then is not None:
                    o.then()
            except Exception as exc:
                # It belongs to that outcome's sender, which sees it on settling.
                o.done.set_exception(exc)
            else:
                o.done.set_result(None)


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
    workers: int = 1,
    batch: int = 32,
    lease: timedelta = outbox.DEFAULT_LEASE,
    on_result: Callable[[OutboxRow, str, str], None] | None = None,
) -> DeliveryReport:
    """Send every due outbox row of an edition.

    ``compose(row, now)`` builds the message for a row. ``on_result(row, state, detail)``
    hears about each message (``sent``, ``retry``, ``failed``) once it is recorded.
    Raises ``AuthenticationError`` after giving back every claimed row when the server
    refuses the login. Each of the ``workers`` connections claims ``batch`` rows at a
    time; a claimed row that was never attempted is given back (or, after a crash,
    recovered by the next run), so the batch size does not widen the duplicate window.
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

    async def deliver_rows(session: MailSession, last: list[asyncio.Future[None]]) -> None:
        while not stop:
            rows = outbox.claim(store, edition_id, now=clock(), limit=batch, prefix=prefix)
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

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    report.seconds = time.perf_counter() - started
    if stop:
        first = stop[0]
        if isinstance(first, AuthenticationError):
            report.stopped = str(first)
        raise first
    return report


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
        if isinstance(self.session, SmtpSession):
            # The previous outcome is committed while this envelope goes out, and before
            # this DATA: at most one accepted message per connection is ever unrecorded.
            return await self.session.send(message, before_data=self._settle_previous)
        await self._settle_previous()
        return await self.session.send(message)

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


# -- one edition, end to end (the `send` command) --------------------------------------------


def period_for(cfg: DigestConfig, now: datetime) -> str:
    """The idempotency key of a daily edition: the local date in the digest's zone."""
    return now.astimezone(ZoneInfo(cfg.timezone)).date().isoformat()


@dataclass(frozen=True)
class EditionPlan:
    """The edition a send works on: stored (``edition``) or not yet (dry run, test copy)."""

    period: str
    entries: list[Entry]
    built_at: datetime
    """The ``now`` the digest is built with (the edition's creation time once stored, so
    every run builds the same digest)."""
    edition: Edition | None = None
    created: bool = False


def new_entries(store: Store, settings: Settings, cfg: DigestConfig, now: datetime) -> list[Entry]:
    """Entries first seen after the last edition (or within ``since`` for the first)."""
    from newsletter import pipeline

    sources = pipeline.digest_sources(settings, cfg)
    last = store.last_edition(cfg.name)
    if last is not None:
        return store.entries(sources=[s.name for s in sources], seen_after=last.created_at)
    since = parse_duration(cfg.since) if cfg.since else None
    return pipeline.select_entries(store, sources, now=now, since=since)


def plan_edition(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    *,
    now: datetime,
    create: bool = True,
    period: str | None = None,
) -> EditionPlan:
    """The current period's edition: the stored one, else built from new entries and
    (when ``create`` and there is something new) recorded once per (digest, period).
    ``period`` defaults to the local date of ``now`` in the digest's time zone; the
    scheduler passes its own key for schedules that fire more than once a day."""
    period = period or period_for(cfg, now)
    found = store.edition(cfg.name, period)
    if found is not None:
        return EditionPlan(period, store.edition_entries(found.id), found.created_at, found)
    entries = new_entries(store, settings, cfg, now)
    if not create or not entries:
        return EditionPlan(period, entries, now)
    edition, created = store.create_edition(
        cfg.name, period, [(e.source, e.id) for e in entries], now=now, title=cfg.title
    )
    # Read back what was recorded: another process may have created it first.
    return EditionPlan(
        period, store.edition_entries(edition.id), edition.created_at, edition, created
    )


class Composer:
    """Builds each message: one rendering per distinct content (interests, topics,
    format), shared by every subscriber with the same preferences; per message only the
    greeting and the signed unsubscribe link are filled in.

    ``digest_for`` builds the digest for a ``ContentKey``. ``topics``, when given, are the
    digest's configured topic names: a subscriber's topics outside them (topics of their
    other digests) are ignored, so they neither split renderings nor empty the digest."""

    def __init__(
        self,
        digest_for: Callable[[ContentKey], Digest],
        *,
        mail: MailSettings,
        period: str,
        secret: str,
        env: jinja2.Environment | None = None,
        list_title: str = "",
        topics: Collection[str] | None = None,
    ) -> None:
        self.digest_for = digest_for
        self.topics = None if topics is None else frozenset(topics)
        self.mail = mail
        self.period = period
        self.secret = secret
        self.env = env or mail_environment()
        self.list_title = list_title
        # The envelope sender is parsed out of ``mail.from_address``: once, not per message.
        self.sender = mail.sender
        self.renders: dict[ContentKey, RenderedEmail] = {}

    def rendered(
        self, interests: Sequence[str], fmt: MailFormat, topics: Sequence[str] = ()
    ) -> RenderedEmail:
        """The shared rendering for these preferences (made on first use)."""
        if self.topics is not None:
            topics = [t for t in topics if t in self.topics]
        key = content_key(interests, topics, fmt)
        if key not in self.renders:
            digest = self.digest_for(key)
            self.renders[key] = render_email(
                digest, period=self.period, settings=self.mail, fmt=fmt, env=self.env
            )
        return self.renders[key]

    def message(
        self,
        *,
        email: str,
        name: str,
        key: str,
        interests: Sequence[str],
        fmt: MailFormat,
        now: datetime,
        topics: Sequence[str] = (),
    ) -> Outgoing:
        """One recipient's message."""
        rendered = self.rendered(interests, fmt, topics)
        key = f"{key}/{email}"  # the Message-ID stays unique across databases
        token = make_token(
            "unsubscribe", unsubscribe_value(rendered.digest_name, email), self.secret
        )
        recipient = Recipient(
            email=email,
            name=name,
            key=key,
            unsubscribe_url=unsubscribe_url(self.mail, token),
            unsubscribe_mailto=unsubscribe_mailto(self.mail, token),
        )
        data = message_bytes(
            rendered, recipient, settings=self.mail, now=now, list_title=self.list_title
        )
        return Outgoing(
            sender=self.sender,
            recipient=email,
            data=data,
            message_id=message_id(self.mail, rendered, key or email),
            label=f"{rendered.digest_name}/{self.period}/{email}",
        )

    def __call__(self, row: OutboxRow, now: datetime) -> Outgoing:
        return self.message(
            email=row.email,
            name=row.name,
            key=str(row.subscriber_id),
            interests=row.interests,
            topics=row.topics,
            fmt=row.format,
            now=now,
        )


def composer_for(
    store: Store, settings: Settings, cfg: DigestConfig, plan: EditionPlan, *, secret: str
) -> Composer:
    """A Composer that builds the digest of ``plan`` for each subscriber's interests and
    topics."""
    from newsletter import pipeline
    from newsletter.digest import build_digest

    sources = pipeline.with_titles(pipeline.digest_sources(settings, cfg), store)

    def digest_for(key: ContentKey) -> Digest:
        return build_digest(
            plan.entries,
            now=plan.built_at,
            options=pipeline.digest_options(cfg, interests=key.interests, topics=key.topics),
            sources=sources,
        )

    return Composer(
        digest_for,
        mail=MailSettings.from_config(settings, cfg),
        period=plan.period,
        secret=secret,
        env=mail_environment(settings.template_dir),
        list_title=cfg.title,
        topics=[t.name for t in cfg.topics],
    )


@dataclass
class SendResult:
    """The outcome of ``send_edition``."""

    period: str
    edition: Edition | None
    created: bool
    recipients: int
    """Subscribers of the digest not sent to yet, before this run."""
    report: DeliveryReport | None = None
    counts: dict[str, int] = field(default_factory=dict)
    items: int = 0
    message_bytes: int = 0
    """Size of one message (dry run)."""


async def send_edition(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    mailer: Mailer,
    *,
    now: datetime,
    clock: Callable[[], datetime],
    secret: str,
    dry_run: bool = False,
    on_result: Callable[[OutboxRow, str, str], None] | None = None,
    period: str | None = None,
) -> SendResult:
    """Build the current edition if needed and deliver it to every active subscriber of
    the digest not sent to yet. ``dry_run`` writes nothing and sends nothing."""
    plan = plan_edition(store, settings, cfg, now=now, create=not dry_run, period=period)
    subscribers = subscribers_of(store, cfg.name)
    if plan.edition is None:
        pending = len(subscribers) if plan.entries else 0
    else:
        pending = outbox.pending_for(store, plan.edition.id, subscribers)
    result = SendResult(plan.period, plan.edition, plan.created, pending)
    if not plan.entries:
        return result
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    if dry_run:
        sample = composer.message(
            email="preview@example.org",
            name="",
            key="dry-run",
            interests=(),
            fmt="html",
            now=now,
        )
        result.message_bytes = len(sample.data)
        result.items = composer.rendered((), "html").items
        return result
    assert plan.edition is not None
    outbox.enqueue(store, plan.edition.id, subscribers, now=now)
    # Subscribers who chose topics may find none of them in this edition: no email then.
    # (Renderings are shared per preference set, so this check costs nothing extra.)
    empty = [
        sub.id
        for sub in subscribers
        if sub.topics
        and sub.id is not None
        and composer.rendered(sub.interests, sub.format, sub.topics).items == 0
    ]
    outbox.suppress_subscribers(
        store, plan.edition.id, empty, reason="nothing in the chosen topics this time"
    )
    workers = settings.smtp.pool_size if isinstance(mailer, SmtpMailer) else 1
    result.report = await deliver_edition(
        store,
        plan.edition.id,
        mailer,
        composer,
        clock=clock,
        policy=RetryPolicy.from_settings(settings),
        workers=workers,
        on_result=on_result,
    )
    result.counts = outbox.counts(store, plan.edition.id)
    result.items = composer.rendered((), "html").items if composer.renders else 0
    return result


__all__: Sequence[str] = [
    "Composer",
    "DeliveryReport",
    "EditionPlan",
    "FileMailer",
    "MailSession",
    "Mailer",
    "Outgoing",
    "RetryPolicy",
    "SendResult",
    "SmtpMailer",
    "SmtpSettings",
    "deliver_edition",
    "make_mailer",
    "period_for",
    "plan_edition",
    "send_edition",
    "send_one",
    "smtp_settings",
]
