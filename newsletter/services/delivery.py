"""How an edition leaves: every send goes through here, over any ``deliver.Mailer``::

    send_edition     ``newsletter send``, the daemon's scheduled job (``digest:<name>``)
    send_to          the daemon's local-hour job: the subscribers whose hour has come
    resume_edition   the daemon's outbox job: messages left for a retry
    send_test_copy   ``newsletter send --to``: one copy, outside the outbox
    preview          ``newsletter preview``: the HTML email, nothing sent

Each plans the edition and composes its messages with ``services.editions``; each
delivery runs ``deliver.loop.deliver_edition`` with the ``[smtp]`` retry policy over as
many connections as the mailer has (``Mailer.connections``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config import DigestConfig, Settings
from newsletter.deliver.loop import DeliveryReport, RetryPolicy, deliver_edition, send_one
from newsletter.deliver.mailers import Mailer, Outgoing
from newsletter.models import Edition, Subscriber
from newsletter.render.email import RenderedEmail
from newsletter.render.message import parse_message
from newsletter.services.bounces import record_refusals
from newsletter.services.editions import Composer, EditionPlan, composer_for, plan_edition
from newsletter.services.subscriptions import normalize_address
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.outbox import OutboxRow
from newsletter.store.subscribers import subscribers_of

OnResult = Callable[[OutboxRow, str, str], None]
"""``on_result(row, state, detail)``: hears about each message once it is recorded."""


@dataclass
class SendResult:
    """What a send did (``send_edition``, ``send_to``)."""

    period: str
    edition: Edition | None
    created: bool
    recipients: int
    """Subscribers not sent to yet, before this run."""
    report: DeliveryReport | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """Outbox rows of the edition by state, after this run."""
    queued: int = 0
    """Messages added to the outbox by this run."""
    items: int = 0
    message_bytes: int = 0
    """Size of one message (dry run)."""
    held: str = ""
    """Why the edition waits although there are new items (a sending rule)."""
    no_subscribers: bool = False
    """Nobody to send to: the edition was not recorded (``require_subscribers``)."""


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
    on_result: OnResult | None = None,
    period: str | None = None,
    only: Sequence[Subscriber] | None = None,
    require_subscribers: bool = False,
) -> SendResult:
    """Build the current edition if needed and deliver it to every active subscriber of
    the digest (or those of ``only``) not sent to yet. ``dry_run`` writes nothing and
    sends nothing. ``require_subscribers``: with nobody to send to, no edition is
    recorded (its entries wait for the next one); the scheduled sends record it anyway,
    for the archive and its feeds."""
    subscribers = list(only) if only is not None else subscribers_of(store, cfg.name, now=now)
    idle = require_subscribers and not subscribers
    create = not dry_run and not idle
    plan = plan_edition(store, settings, cfg, now=now, create=create, period=period)
    if plan.edition is None:
        pending = len(subscribers) if plan.entries else 0
    else:
        pending = outbox.pending_for(store, plan.edition.id, subscribers)
    result = SendResult(plan.period, plan.edition, plan.created, pending, held=plan.held)
    if not plan.entries or plan.held:
        return result
    if idle and not dry_run:
        result.no_subscribers = True
        return result
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    if dry_run:
        sample = composer.sample(email="preview@example.org", key="dry-run", now=now)
        result.message_bytes = len(sample.data)
        result.items = composer.rendered((), "html").items
        return result
    await _deliver(
        store,
        settings,
        plan,
        subscribers,
        mailer,
        composer,
        result,
        now=now,
        clock=clock,
        on_result=on_result,
    )
    return result


async def send_current(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    mailer: Mailer,
    *,
    now: datetime,
    clock: Callable[[], datetime],
    secret: str,
    dry_run: bool = False,
    on_result: OnResult | None = None,
) -> list[SendResult]:
    """``newsletter send``: the current edition, for everyone not sent to yet.

    A digest sent at each subscriber's local hour (``local_hour``) has one edition per
    local date, as the daemon keys them: each subscriber gets the edition of the date it
    is where they live, so a manual send never mails someone a second edition of a day
    the daemon already sent them. Nobody to send to: nothing is recorded."""
    if cfg.local_hour is None:
        groups: dict[str | None, list[Subscriber] | None] = {None: None}
    else:
        groups = dict(sorted(local_dates(subscribers_of(store, cfg.name, now=now), now).items()))
        if not groups:
            groups = {None: []}
    results = []
    for period, subs in groups.items():
        results.append(
            await send_edition(
                store,
                settings,
                cfg,
                mailer,
                now=now,
                clock=clock,
                secret=secret,
                dry_run=dry_run,
                on_result=on_result,
                period=period,
                only=subs,
                require_subscribers=True,
            )
        )
    return results


def local_dates(
    subscribers: Sequence[Subscriber], now: datetime
) -> dict[str | None, list[Subscriber]]:
    """Subscribers by the date it is where they live (their edition's period)."""
    out: dict[str | None, list[Subscriber]] = {}
    for sub in subscribers:
        try:
            zone = ZoneInfo(sub.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        out.setdefault(now.astimezone(zone).date().isoformat(), []).append(sub)
    return out


async def send_to(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    mailer: Mailer,
    subscribers: Sequence[Subscriber],
    *,
    period: str,
    now: datetime,
    clock: Callable[[], datetime],
    secret: str,
) -> SendResult:
    """Deliver the edition of ``period`` (recorded now if new entries wait) to these
    subscribers only, those not sent to yet: the local-hour sends, where each subscriber's
    hour comes at a different time."""
    plan = plan_edition(store, settings, cfg, now=now, period=period)
    result = SendResult(plan.period, plan.edition, plan.created, len(subscribers))
    if plan.edition is None:
        return result
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    await _deliver(
        store, settings, plan, subscribers, mailer, composer, result, now=now, clock=clock
    )
    return result


async def resume_edition(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    edition: Edition,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    secret: str,
) -> DeliveryReport:
    """Deliver what a stored edition still owes: retries whose time has come, messages an
    interrupted run left behind. Queues nobody new."""
    plan = EditionPlan.stored(edition, store.edition_entries(edition.id))
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    report = await deliver_edition(
        store,
        edition.id,
        mailer,
        composer,
        clock=clock,
        policy=RetryPolicy.from_config(settings.smtp),
    )
    record_refusals(store, settings.bounces, report.refused, now=clock())
    return report


def editions_owing(store: Store, digest: str, *, recent: int) -> list[Edition]:
    """The ``recent`` latest editions of ``digest`` that still have messages to deliver."""
    owing = []
    for edition in store.editions(digest, limit=recent):
        counts = outbox.counts(store, edition.id)
        if counts["queued"] or counts["retry"] or counts["sending"]:
            owing.append(edition)
    return owing


async def _deliver(
    store: Store,
    settings: Settings,
    plan: EditionPlan,
    subscribers: Sequence[Subscriber],
    mailer: Mailer,
    composer: Composer,
    result: SendResult,
    *,
    now: datetime,
    clock: Callable[[], datetime],
    on_result: OnResult | None = None,
) -> None:
    """Queue ``subscribers`` for the stored edition of ``plan`` and deliver; fills in
    ``result``."""
    assert plan.edition is not None
    edition_id = plan.edition.id
    # Every send passes here: a subscriber whose pause holds gets nothing, whoever asked.
    subscribers = [s for s in subscribers if not s.paused_at(now)]
    result.queued = outbox.enqueue(store, edition_id, subscribers, now=now)
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
        store, edition_id, empty, reason="nothing in the chosen topics this time"
    )
    result.report = await deliver_edition(
        store,
        edition_id,
        mailer,
        composer,
        clock=clock,
        policy=RetryPolicy.from_config(settings.smtp),
        on_result=on_result,
    )
    record_refusals(store, settings.bounces, result.report.refused, now=clock())
    result.counts = outbox.counts(store, edition_id)
    result.items = composer.rendered((), "html").items if composer.renders else 0


# -- one message outside the outbox --------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One message of the current edition, outside the outbox (a test copy, a preview)."""

    period: str
    message: Outgoing
    rendered: RenderedEmail
    reply: str = ""
    """The server's reply, once sent."""

    @property
    def html(self) -> str:
        """The HTML part, as the reader's mail program gets it."""
        body = parse_message(self.message.data).get_body(("html",))
        return body.get_content() if body is not None else ""


def preview(
    store: Store, settings: Settings, cfg: DigestConfig, *, now: datetime, secret: str
) -> Sample:
    """The current edition's HTML email (as it stands: nothing is recorded)."""
    plan = plan_edition(store, settings, cfg, now=now, create=False)
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    message = composer.sample(email="preview@example.org", key="preview", now=now)
    return Sample(plan.period, message, composer.rendered((), "html"))


async def send_test_copy(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    mailer: Mailer | None,
    address: str,
    *,
    now: datetime,
    secret: str,
) -> Sample:
    """Send one copy of the current edition to ``address`` (``AddressError`` when it is
    not an address), outside the outbox: nothing is recorded. With ``mailer`` None the
    copy is only made (a dry run)."""
    address = normalize_address(address)
    plan = plan_edition(store, settings, cfg, now=now, create=False)
    composer = composer_for(store, settings, cfg, plan, secret=secret)
    message = composer.sample(email=address, key=f"test-{now.timestamp():.0f}", now=now)
    sample = Sample(plan.period, message, composer.rendered((), "html"))
    if mailer is None:
        return sample
    reply = await send_one(mailer, message, policy=RetryPolicy.from_config(settings.smtp))
    return replace(sample, reply=reply)
