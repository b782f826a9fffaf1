"""The bounce processor: a report (from the mailbox or an HTTP endpoint) -> an event
stored once, and the subscriber stopped when the thresholds say so.

- a *hard* bounce deactivates the address (status ``bounced``) after
  ``bounces.hard_limit`` editions hard-bounced (default 1);
- a *soft* bounce after ``bounces.soft_streak`` consecutive editions bounced (default 3:
  an edition delivered in between ends the streak);
- a *complaint* unsubscribes the address from everything at once;
- an *unsubscribe* mail (or event) takes it off the digest its signed token names.

Each change stores its reason (``subscribers.status_reason``). A report is tied to its
subscriber and edition only by a bounce token signed with our key (or, for the signed
webhooks of a sending service, by the Message-ID it names); anything else is logged and
ignored, so a forged bounce cannot unsubscribe anyone.
"""

from __future__ import annotations

import imaplib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from newsletter.config import BouncesConfig, Settings
from newsletter.deliver.bounces import Report, Skipped, parse_report, read_bounce_token
from newsletter.errors import BadTokenError, MailboxError
from newsletter.services.subscriptions import leave_digest
from newsletter.services.tokens import parse_unsubscribe_value, read_token
from newsletter.store import bounces as events
from newsletter.store.database import Store

log = logging.getLogger("newsletter.services.bounces")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one report: ``recorded``, ``duplicate``, ``skipped`` or
    ``unmatched`` (no valid token), and what changed."""

    source_id: str
    result: str
    detail: str = ""


@dataclass
class Tally:
    """What a batch of reports (a poll, a webhook call) did."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        """How many reports ended as ``result``."""
        return sum(1 for o in self.outcomes if o.result == result)

    def summary(self) -> str:
        """``3 read: 2 recorded, 1 skipped`` (for the log and the command)."""
        kinds = ("recorded", "duplicate", "unmatched", "skipped")
        parts = [f"{self.count(k)} {k}" for k in kinds if self.count(k)]
        return f"{len(self.outcomes)} read" + (": " + ", ".join(parts) if parts else "")


def process_message(
    store: Store,
    data: bytes,
    *,
    cfg: BouncesConfig,
    secret: str,
    digests: Sequence[str],
    now: datetime,
) -> Outcome:
    """Read one raw message (DSN, ARF or unsubscribe mail) and act on it."""
    return process_report(
        store, parse_report(data), cfg=cfg, secret=secret, digests=digests, now=now
    )


def process_report(
    store: Store,
    report: Report | Skipped,
    *,
    cfg: BouncesConfig,
    secret: str,
    digests: Sequence[str],
    now: datetime,
    trust_message_id: bool = False,
) -> Outcome:
    """Act on one report. ``trust_message_id``: the report came through a signed
    webhook, so the Message-ID it names may tie it to a message (anyone can send a
    mail that quotes a Message-ID; only we can sign a token)."""
    if isinstance(report, Skipped):
        log.info("bounce %s skipped: %s", report.source_id, report.why)
        return Outcome(report.source_id, "skipped", report.why)
    target = _target(store, report, secret, trust_message_id)
    if report.kind == "unsubscribe":
        return _unsubscribe(store, report, target, secret=secret, digests=digests, now=now)
    if target is None:
        why = "no bounce token signed with our key (unsigned, forged or from another sender)"
        log.warning("bounce %s (%s) ignored: %s", report.source_id, report.kind, why)
        return Outcome(report.source_id, "unmatched", why)
    stored = events.record_event(
        store,
        source_id=report.source_id,
        kind=report.kind,
        email=target.email,
        reason=report.reason,
        target=target,
        now=now,
    )
    if not stored:
        return Outcome(report.source_id, "duplicate", "already counted")
    detail = _apply(store, cfg, report, target, now=now)
    log.info(
        "bounce %s: %s for %s (edition %s): %s%s",
        report.source_id,
        report.kind,
        target.email,
        target.edition_id,
        report.reason,
        f"; {detail}" if detail else "",
    )
    return Outcome(report.source_id, "recorded", detail or f"{report.kind} recorded")


def process_reports(
    store: Store,
    reports: Iterable[Report | Skipped],
    *,
    cfg: BouncesConfig,
    secret: str,
    digests: Sequence[str],
    now: datetime,
    trust_message_id: bool = False,
) -> Tally:
    """``process_report`` over many."""
    tally = Tally()
    for report in reports:
        tally.outcomes.append(
            process_report(
                store,
                report,
                cfg=cfg,
                secret=secret,
                digests=digests,
                now=now,
                trust_message_id=trust_message_id,
            )
        )
    return tally


def poll_mailbox(store: Store, settings: Settings, *, secret: str, now: datetime) -> Tally:
    """Read every new message of the bounce mailbox, act on each and mark it done.

    A message that cannot be handled because of the store is left unmarked (read again
    next time); a broken message is marked done (reading it again would not help)."""
    from newsletter.deliver.mailbox import Mailbox

    cfg = settings.bounces
    digests = [d.name for d in settings.digests]
    tally = Tally()
    with Mailbox(cfg) as box:
        try:
            for uid, raw in box.new_messages():
                tally.outcomes.append(
                    process_message(store, raw, cfg=cfg, secret=secret, digests=digests, now=now)
                )
                box.mark_done(uid)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"the bounce mailbox broke off: {exc}") from None
    log.info("bounce mailbox %s: %s", cfg.imap_host, tally.summary())
    return tally


def count_unsubscribe(store: Store, email: str, digest: str, *, how: str, now: datetime) -> None:
    """Count an unsubscribe made elsewhere (the web page's button, one-click) against the
    last edition of ``digest`` the address received, for ``newsletter stats``."""
    target = events.latest_target(store, email, digest)
    events.record_event(
        store,
        source_id=f"{how}:{digest}:{email}:{now.isoformat()}",
        kind="unsubscribe",
        email=email,
        reason=how,
        target=target,
        now=now,
    )


def edition_stats(
    store: Store, *, digest: str | None = None, edition: str | None = None, limit: int = 10
) -> list[events.EditionStats]:
    """What became of the messages of the latest ``limit`` editions (of ``digest``), or
    of the one ``edition`` names (an id or a period): ``newsletter stats``."""
    ids = events.edition_ids(store, digest=digest, edition=edition, limit=limit)
    return events.edition_stats(store, ids)


def recent_events(
    store: Store, *, email: str | None = None, limit: int = 50
) -> list[dict[str, object]]:
    """The latest ``limit`` bounce, complaint and unsubscribe events (of ``email``),
    oldest first: ``newsletter bounces list``."""
    return events.events(store, email=email, latest=limit)


def _target(
    store: Store, report: Report, secret: str, trust_message_id: bool
) -> events.Target | None:
    for token in report.tokens:
        outbox_id = read_bounce_token(token, secret)
        if outbox_id is not None:
            found = events.target_of(store, outbox_id)
            if found is not None:
                return found
        else:
            log.info("bounce %s: token %r is not ours", report.source_id, token[:60])
    if trust_message_id and report.original_message_id:
        return events.target_by_message_id(store, report.original_message_id)
    return None


def _apply(
    store: Store, cfg: BouncesConfig, report: Report, target: events.Target, *, now: datetime
) -> str:
    """Deactivate when the thresholds are reached; what changed ('' for nothing)."""
    sid = target.subscriber_id
    if report.kind == "complaint":
        reason = f"{report.reason} (edition {target.edition_id})"
        changed = events.deactivate(store, sid, "unsubscribed", reason, now=now)
        return "unsubscribed" if changed else ""
    if report.kind == "hard":
        n = events.hard_bounces(store, sid)
        if n >= cfg.hard_limit:
            reason = f"{n} hard bounce{'s' if n > 1 else ''}; last: {report.reason}"
            return (
                "deactivated" if events.deactivate(store, sid, "bounced", reason, now=now) else ""
            )
        return f"{n} of {cfg.hard_limit} hard bounces"
    streak = events.bounce_streak(store, sid, target.edition_id)
    if streak >= cfg.soft_streak:
        reason = f"{streak} editions in a row bounced; last: {report.reason}"
        return "deactivated" if events.deactivate(store, sid, "bounced", reason, now=now) else ""
    return f"{streak} of {cfg.soft_streak} editions in a row"


def _unsubscribe(
    store: Store,
    report: Report,
    target: events.Target | None,
    *,
    secret: str,
    digests: Sequence[str],
    now: datetime,
) -> Outcome:
    """By the signed unsubscribe token of the mailto link; else (a service's event) by
    the message the report names: off that edition's digest."""
    try:
        digest, email = parse_unsubscribe_value(
            read_token("unsubscribe", report.unsubscribe_token, secret)
        )
    except BadTokenError:
        found = events.edition_digest(store, target.edition_id) if target else None
        if target is None or found is None:
            why = "the unsubscribe token is not ours (forged or damaged)"
            log.warning("unsubscribe %s ignored: %s", report.source_id, why)
            return Outcome(report.source_id, "unmatched", why)
        digest, email = found, target.email
    return record_unsubscribe(
        store,
        email,
        digest,
        source_id=report.source_id,
        reason=report.reason,
        digests=digests,
        now=now,
        target=target,
    )


def record_unsubscribe(
    store: Store,
    email: str,
    digest: str,
    *,
    source_id: str,
    reason: str,
    digests: Sequence[str],
    now: datetime,
    target: events.Target | None = None,
) -> Outcome:
    """Take ``email`` off ``digest`` and count it against ``target``'s edition, else the
    last edition of ``digest`` it received."""
    if target is None or target.email != email:
        target = events.latest_target(store, email, digest)
    if not events.record_event(
        store,
        source_id=source_id,
        kind="unsubscribe",
        email=email,
        reason=reason,
        target=target,
        now=now,
    ):
        return Outcome(source_id, "duplicate", "already counted")
    changed = leave_digest(store, email, digest, list(digests), now=now)
    if changed:
        events.note_reason(store, email, f"{reason} ({digest})", now=now)
    log.info("unsubscribe %s: %s from %s (changed=%s)", source_id, email, digest, changed)
    return Outcome(source_id, "recorded", f"{email} left {digest}" if changed else "no change")


_ADDRESS_REFUSAL = re.compile(r"^\s*(?:55[013]\b|5\d\d\s+5\.1\.\d)")
"""A refusal that is about the address (550/551/553, or enhanced status 5.1.x: no such
user, bad mailbox), not about the message (552 too big, 554 / 5.7.x policy)."""


def is_address_refusal(reply: str) -> bool:
    """Whether an SMTP 5xx reply says the address itself will never accept mail."""
    return bool(_ADDRESS_REFUSAL.match(reply))


def record_refusals(
    store: Store,
    cfg: BouncesConfig,
    refused: Iterable[tuple[int, str, str]],
    *,
    now: datetime,
) -> list[Outcome]:
    """Count each address the mail server refused at send time (``DeliveryReport.refused``)
    as a hard bounce, once per message, under the same thresholds as a DSN: a list that
    keeps mailing dead addresses loses its reputation even if no DSN ever comes back."""
    outcomes = []
    for outbox_id, email, reply in refused:
        source_id = f"smtp-refusal:{outbox_id}"
        if not is_address_refusal(reply):
            outcomes.append(
                Outcome(source_id, "skipped", "refused for the message, not the address")
            )
            continue
        report = Report(kind="hard", source_id=source_id, reason=f"refused at send: {reply}")
        target = events.target_of(store, outbox_id)
        if target is None:  # the row was deleted meanwhile: nothing to tie it to
            outcomes.append(Outcome(source_id, "unmatched", "no such outbox row"))
            continue
        stored = events.record_event(
            store,
            source_id=source_id,
            kind="hard",
            email=email,
            reason=report.reason,
            target=target,
            now=now,
        )
        if not stored:
            outcomes.append(Outcome(source_id, "duplicate", "already counted"))
            continue
        detail = _apply(store, cfg, report, target, now=now)
        log.info("%s refused at send (edition %s): %s; %s", email, target.edition_id, reply, detail)
        outcomes.append(Outcome(source_id, "recorded", detail or "hard bounce recorded"))
    return outcomes
