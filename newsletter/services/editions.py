"""Editions: plan the current edition (recorded once per digest and period), build its
digest for everyone or for one reader, and compose each subscriber's message.

``edition_digest`` is the one way an edition's digest is built: for each email (through
``composer_for``) and for its archive page (``archived_edition``, the web archive and its
feeds), so the two read the same. Sending is in ``newsletter.services.delivery``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import jinja2

from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.deliver.bounces import bounce_token, verp_address
from newsletter.deliver.mailers import Outgoing
from newsletter.models import Digest, Edition, Entry, MailFormat, Source
from newsletter.render.email import (
    ContentKey,
    MailSettings,
    RenderedEmail,
    content_key,
    mail_environment,
    manage_url,
    render_email,
    unsubscribe_mailto,
    unsubscribe_url,
)
from newsletter.render.message import Recipient, message_bytes, message_id
from newsletter.services.digests import digest_sources, select_entries, with_titles
from newsletter.services.notes import with_note
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store.database import Store
from newsletter.store.outbox import OutboxRow

log = logging.getLogger("newsletter")

if TYPE_CHECKING:
    from newsletter.render.archive import ArchivedEdition

    # The summarizer pulls in numpy and scipy.sparse, a tenth of a second to import:
    # `newsletter fetch` never needs them, so it is imported only when a digest is built.
    from newsletter.summarize.digest import Preferences


FULL_EDITION_ITEMS = 1_000_000
"""The web edition's cap: none in practice (an edition holds at most ``max_candidates``)."""


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
    held: str = ""
    """Why no edition was recorded although there are new entries (a sending rule: too
    few items); empty otherwise."""
    digest: Digest | None = None
    """The digest for everyone, when it was built to plan the edition (reused once)."""
    dropped: int = 0
    """New entries left out by the candidate caps when the edition was planned."""

    @classmethod
    def stored(
        cls,
        edition: Edition,
        entries: list[Entry],
        created: bool = False,
        digest: Digest | None = None,
        dropped: int = 0,
    ) -> EditionPlan:
        """The plan of a recorded edition and its recorded entries."""
        return cls(
            edition.period,
            entries,
            edition.created_at,
            edition,
            created,
            digest=digest,
            dropped=dropped,
        )


def new_entries(store: Store, settings: Settings, cfg: DigestConfig, now: datetime) -> list[Entry]:
    """Entries first seen after the last edition (or within ``since`` for the first),
    as the digest's sending rules let them in (``apply_rules``)."""
    sources = digest_sources(settings, cfg)
    last = store.last_edition(cfg.name)
    if last is not None:
        found = store.entries(sources=[s.name for s in sources], seen_after=last.created_at)
    else:
        since = parse_duration(cfg.since) if cfg.since else None
        found = select_entries(store, sources, now=now, since=since)
    return apply_rules(cfg, found)


def _keyword_re(keywords: Sequence[str], patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern: any keyword as a whole word or phrase, or any pattern."""
    parts = [
        r"(?<!\w)" + r"[\s\-]+".join(re.escape(w) for w in k.split()) + r"(?!\w)"
        for k in keywords
        if k.strip()
    ]
    parts += [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def apply_rules(cfg: DigestConfig, entries: Sequence[Entry]) -> list[Entry]:
    """The digest's sending rules on new entries: ``include``/``include_patterns`` (only
    entries that mention one), ``exclude``/``exclude_patterns`` (none that mention one),
    then ``max_per_source`` (each source's newest). Order is kept."""
    include = _keyword_re(cfg.include, cfg.include_patterns)
    exclude = _keyword_re(cfg.exclude, cfg.exclude_patterns)
    kept = []
    for e in entries:
        text = f"{e.title}\n{e.text}"
        if include is not None and not include.search(text):
            continue
        if exclude is not None and exclude.search(text):
            continue
        kept.append(e)
    cap = cfg.max_per_source
    if cap is None:
        return kept
    newest = sorted(kept, key=_entry_time, reverse=True)
    counts: dict[str, int] = {}
    chosen: set[tuple[str, str]] = set()
    for e in newest:
        if counts.get(e.source, 0) < cap:
            counts[e.source] = counts.get(e.source, 0) + 1
            chosen.add((e.source, e.id))
    return [e for e in kept if (e.source, e.id) in chosen]


def _entry_time(e: Entry) -> datetime:
    return e.when or datetime.min.replace(tzinfo=UTC)


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
    from newsletter.summarize.digest import cap_candidates

    period = period or period_for(cfg, now)
    found = store.edition(cfg.name, period)
    if found is not None:
        return EditionPlan.stored(found, store.edition_entries(found.id))
    entries, dropped = cap_candidates(
        new_entries(store, settings, cfg, now),
        per_source=cfg.max_candidates_per_source,
        total=cfg.max_candidates,
    )
    if not entries:
        # Another process may have recorded this period's edition since the look above
        # (its entries are then no longer new): that edition is this run's too.
        found = store.edition(cfg.name, period)
        if found is not None:
            return EditionPlan.stored(found, store.edition_entries(found.id))
    if dropped:
        log.warning(
            "digest %s: %d older entries left out of the %s edition (over max_candidates=%d"
            " or max_candidates_per_source=%d)",
            cfg.name,
            dropped,
            period,
            cfg.max_candidates,
            cfg.max_candidates_per_source,
        )
    if entries and len(entries) < cfg.min_items:
        held = (
            f"{len(entries)} new item{'s' if len(entries) != 1 else ''}, fewer than "
            f"min_items = {cfg.min_items}: the edition waits for more"
        )
        return EditionPlan(period, entries, now, held=held, dropped=dropped)
    if not create or not entries:
        return EditionPlan(period, entries, now, dropped=dropped)
    # The digest is built before the edition is recorded: an edition whose content cannot
    # be built must not be left behind for every later run to trip over (issue 11).
    sources = with_titles(digest_sources(settings, cfg), store)
    digest = edition_digest(cfg, EditionPlan(period, entries, now), sources=sources)
    edition, created = store.create_edition(
        cfg.name, period, [(e.source, e.id) for e in entries], now=now, title=cfg.title
    )
    # Read back what was recorded: another process may have created it first.
    recorded = store.edition_entries(edition.id)
    reuse = replace(digest, title=edition.title or digest.title) if created else None
    return EditionPlan.stored(edition, recorded, created, reuse, dropped)


def edition_digest(
    cfg: DigestConfig,
    plan: EditionPlan,
    *,
    sources: Mapping[str, Source],
    preferences: Preferences | None = None,
) -> Digest:
    """The digest of an edition, for everyone or for one reader's ``preferences``: built
    from the edition's entries at its own time, under its recorded title, with the
    editor's note of its period (``services.notes``), so the mail and the archive page
    read the same every time they are built."""
    from newsletter.summarize.digest import EVERYONE, build_digest

    if plan.digest is not None and (preferences is None or preferences == EVERYONE):
        return plan.digest
    digest = build_digest(
        plan.entries,
        now=plan.built_at,
        config=cfg,
        preferences=preferences or EVERYONE,
        sources=sources,
    )
    title = plan.edition.title if plan.edition is not None else None
    digest = with_note(digest, cfg, plan.period)
    return replace(digest, title=title) if title else digest


def archived_edition(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    edition: Edition,
    *,
    env: jinja2.Environment,
) -> ArchivedEdition:
    """A stored edition's archive page: its digest rebuilt with every story of the
    edition (no ``max_items`` cap: the email's footer sends readers here for the stories
    it had no room for) and rendered."""
    plan = EditionPlan.stored(edition, store.edition_entries(edition.id))
    sources = with_titles(digest_sources(settings, cfg), store)
    full = cfg.model_copy(update={"max_items": FULL_EDITION_ITEMS})
    # Imported here: feedgen and lxml come with it, which sending never needs.
    from newsletter.render.archive import archive_page

    digest = edition_digest(full, plan, sources=sources)
    return archive_page(edition, digest, env=env, highlights=settings.mail.highlights)


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
        bounce_address: str | None = None,
    ) -> None:
        self.digest_for = digest_for
        self.bounce_address = bounce_address
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
        outbox_id: int | None = None,
    ) -> Outgoing:
        """One recipient's message; with ``outbox_id``, signed with its bounce token (a
        header, and the envelope sender when a bounce address is set: VERP)."""
        rendered = self.rendered(interests, fmt, topics)
        key = f"{key}/{email}"  # the Message-ID stays unique across databases
        token = make_token(
            "unsubscribe", unsubscribe_value(rendered.digest_name, email), self.secret, now=now
        )
        recipient = Recipient(
            email=email,
            name=name,
            key=key,
            unsubscribe_url=unsubscribe_url(self.mail, token),
            unsubscribe_mailto=unsubscribe_mailto(self.mail, token),
            manage_url=manage_url(self.mail, make_token("prefs", email, self.secret, now=now)),
            bounce_token=bounce_token(outbox_id, self.secret) if outbox_id is not None else "",
        )
        data = message_bytes(
            rendered, recipient, settings=self.mail, now=now, list_title=self.list_title
        )
        sender = self.sender
        if self.bounce_address and recipient.bounce_token:
            sender = verp_address(self.bounce_address, recipient.bounce_token)
        return Outgoing(
            sender=sender,
            recipient=email,
            data=data,
            message_id=message_id(self.mail, rendered, key or email),
            label=f"{rendered.digest_name}/{self.period}/{email}",
        )

    def sample(self, *, email: str, key: str, now: datetime) -> Outgoing:
        """A message with no personal preferences (HTML): a test copy, a preview."""
        return self.message(email=email, name="", key=key, interests=(), fmt="html", now=now)

    def __call__(self, row: OutboxRow, now: datetime) -> Outgoing:
        return self.message(
            email=row.email,
            name=row.name,
            key=str(row.subscriber_id),
            interests=row.interests,
            topics=row.topics,
            fmt=row.format,
            now=now,
            outbox_id=row.id,
        )


def composer_for(
    store: Store, settings: Settings, cfg: DigestConfig, plan: EditionPlan, *, secret: str
) -> Composer:
    """A Composer that builds the digest of ``plan`` for each subscriber's interests and
    topics."""
    from newsletter.summarize.digest import Preferences

    sources = with_titles(digest_sources(settings, cfg), store)

    def digest_for(key: ContentKey) -> Digest:
        preferences = Preferences(key.interests, key.topics)
        return edition_digest(cfg, plan, sources=sources, preferences=preferences)

    return Composer(
        digest_for,
        mail=MailSettings.for_digest(settings, cfg),
        period=plan.period,
        secret=secret,
        env=mail_environment(settings.template_dir),
        list_title=cfg.title,
        topics=[t.name for t in cfg.topics],
        bounce_address=settings.bounces.address,
    )
