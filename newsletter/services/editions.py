"""Editions, end to end: select entries for a digest, build it, plan the edition, compose
each subscriber's message, send through the outbox, write the output files. The CLI
(``digest``, ``send``, ``preview``), the daemon and the web archive call these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import jinja2

from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.deliver.loop import DeliveryReport, RetryPolicy, deliver_edition
from newsletter.deliver.mailers import Mailer, Outgoing, SmtpMailer
from newsletter.models import Digest, Edition, Entry, MailFormat, Source
from newsletter.render.digest import FORMATS, Format, render_digest
from newsletter.render.email import (
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
from newsletter.render.templates import cached_environment
from newsletter.services.ingest import source_from_config
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.outbox import OutboxRow
from newsletter.store.subscribers import subscribers_of

if TYPE_CHECKING:
    # The summarizer pulls in numpy and scipy.sparse, a tenth of a second to import:
    # `newsletter fetch` never needs them, so it is imported only when a digest is built.
    from newsletter.summarize.digest import DigestOptions

log = logging.getLogger("newsletter")


def sources_from_args(args: Sequence[str]) -> list[Source]:
    """Sources given on the command line (URLs or paths), named after their host or file."""
    from newsletter.render.templates import hostname

    out: list[Source] = []
    used: set[str] = set()
    for arg in args:
        base = hostname(arg) or Path(arg).stem or "source"
        name = base
        n = 2
        while name in used:
            name = f"{base}-{n}"
            n += 1
        used.add(name)
        out.append(Source(name=name, url=arg))
    return out


def digest_options(
    cfg: DigestConfig,
    *,
    max_items: int | None = None,
    interests: Sequence[str] = (),
    topics: Sequence[str] = (),
) -> DigestOptions:
    """DigestOptions from a digest's configuration (and command-line overrides); a
    subscriber's ``interests`` rank higher and ``topics`` (configured topic names) are
    the only ones kept."""
    from newsletter.summarize.digest import DigestOptions
    from newsletter.summarize.group import Topic
    from newsletter.summarize.rank import RankSettings

    return DigestOptions(
        name=cfg.name,
        title=cfg.title,
        description=cfg.description,
        link=cfg.link,
        group_by=cfg.group_by,
        topics=tuple(Topic(t.name, t.keywords, t.patterns) for t in cfg.topics),
        max_items=max_items or cfg.max_items,
        max_sections=cfg.max_sections,
        summary_chars=cfg.summary_chars,
        rank=RankSettings(**cfg.ranking.model_dump()),
        interests=tuple(interests),
        only_topics=tuple(topics),
    )


def digest_sources(settings: Settings, cfg: DigestConfig) -> list[Source]:
    """The sources a digest reads: the ones it names, or every configured source."""
    chosen = [s for s in settings.sources if not cfg.sources or s.name in cfg.sources]
    return [source_from_config(s) for s in chosen]


def select_entries(
    store: Store,
    sources: Sequence[Source],
    *,
    now: datetime,
    since: timedelta | None = None,
) -> list[Entry]:
    """Entries of these sources whose time (published, else first seen) is within
    ``since`` of ``now``; all of them when ``since`` is None."""
    return store.entries(
        sources=[s.name for s in sources],
        since=(now - since) if since is not None else None,
    )


def with_titles(sources: Sequence[Source], store: Store) -> dict[str, Source]:
    """Sources keyed by name, with the feed's own title where the config gives none."""
    from dataclasses import replace

    states = store.source_states()
    out: dict[str, Source] = {}
    for s in sources:
        title = s.title or (states[s.name].title if s.name in states else None)
        out[s.name] = replace(s, title=title) if title else s
    return out


def make_digest(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    sources: Sequence[Source],
    *,
    now: datetime,
    since: str | None = None,
    max_items: int | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Digest:
    """Select entries from the store and build the digest (a one-off: nothing recorded)."""
    from newsletter.summarize.digest import build_digest

    window = parse_duration(since) if since else None
    entries = select_entries(store, sources, now=now, since=window)
    digest = build_digest(
        entries,
        now=now,
        options=digest_options(cfg, max_items=max_items),
        sources=with_titles(sources, store),
    )
    return with_llm_summaries(digest, settings, store, now=now, on_warning=on_warning)


def with_llm_summaries(
    digest: Digest,
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    on_warning: Callable[[str], None] | None = None,
) -> Digest:
    """The digest with LLM-written TL;DRs and section summaries when ``[llm]`` is enabled
    (cached per entry; any failure keeps the extractive summaries, with one warning)."""
    if not settings.llm.enabled:
        return digest
    from newsletter.services import llm

    digest, report = llm.summarize_digest_sync(
        digest, settings.llm, store, api_key=llm.api_key_from_env(settings.llm), now=now
    )
    warning = report.warning()
    if warning:
        (on_warning or log.warning)(warning)
    return digest


def write_outputs(
    digest: Digest,
    outputs: dict[Format, Path],
    *,
    template_dir: str | None = None,
) -> dict[Format, Path]:
    """Render the digest in each format and write it; returns what was written."""
    env = cached_environment(template_dir)
    written: dict[Format, Path] = {}
    for fmt, path in outputs.items():
        text = render_digest(digest, fmt, env=env)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file
        written[fmt] = path
    return written


def configured_outputs(cfg: DigestConfig) -> dict[Format, Path]:
    """The output files a digest's config names."""
    out: dict[Format, Path] = {}
    for fmt in FORMATS:
        value = getattr(cfg.outputs, fmt)
        if value:
            out[fmt] = Path(value).expanduser()
    return out


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
    pass

    sources = digest_sources(settings, cfg)
    last = store.last_edition(cfg.name)
    if last is not None:
        return store.entries(sources=[s.name for s in sources], seen_after=last.created_at)
    since = parse_duration(cfg.since) if cfg.since else None
    return select_entries(store, sources, now=now, since=since)


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
    pass
    from newsletter.summarize.digest import build_digest

    sources = with_titles(digest_sources(settings, cfg), store)

    def digest_for(key: ContentKey) -> Digest:
        return build_digest(
            plan.entries,
            now=plan.built_at,
            options=digest_options(cfg, interests=key.interests, topics=key.topics),
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
