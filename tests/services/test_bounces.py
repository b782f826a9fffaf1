"""The bounce processor (services/bounces.py) on SQLite and PostgreSQL: hard bounces
deactivate after ``hard_limit``, soft bounces after a streak of editions, a complaint
unsubscribes at once, each with its reason; a report counts once; forged tokens change
nothing; per-edition figures follow."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from newsletter.config import BouncesConfig
from newsletter.deliver.bounces import Report
from newsletter.deliver.mailers import Outgoing, SmtpMailer
from newsletter.services.bounces import process_message, process_report
from newsletter.services.delivery import send_edition
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store import bounces as events
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import (
    BOUNCE_ADDRESS,
    NOW,
    SECRET,
    bounce_message,
    local_smtp,
    make_entry,
    make_settings,
    seed,
    send_for_bounces,
)
from tests.pg import on_both_databases
from tests.smtp_server import SmtpSink

database_url = on_both_databases()
DIGESTS = ["daily"]


def process(store: Store, data: bytes, cfg: BouncesConfig | None = None, days: int = 0) -> str:
    out = process_message(
        store,
        data,
        cfg=cfg or BouncesConfig(),
        secret=SECRET,
        digests=DIGESTS,
        now=NOW + timedelta(days=days, hours=1),
    )
    return out.result


def status(store: Store, email: str) -> tuple[str, str | None]:
    sub = get_subscriber(store, email)
    assert sub is not None
    return sub.status, events.status_reason(store, email)


def test_a_hard_bounce_deactivates_with_its_reason(store: Store, tmp_path: Path) -> None:
    ada, _ = send_for_bounces(store, tmp_path, ["ada@example.org", "bob@example.org"])
    assert process(store, bounce_message("dsn-hard", ada)) == "recorded"
    state, reason = status(store, "ada@example.org")
    assert state == "bounced"
    assert (
        reason
        == "1 hard bounce; last: 5.0.0 smtp; 550 'ada@example.org' is not a registered gateway user"
    )
    assert status(store, "bob@example.org") == ("active", None)
    # Read again (the mailbox was not marked, a webhook retried): counted once.
    assert process(store, bounce_message("dsn-hard", ada)) == "duplicate"
    [event] = events.events(store)
    assert (event["kind"], event["email"], event["subscriber_id"]) == ("hard", "ada@example.org", 1)


def test_the_hard_limit_counts_editions(store: Store, tmp_path: Path) -> None:
    cfg = BouncesConfig(hard_limit=2)
    [first] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    assert process(store, bounce_message("dsn-hard", first), cfg) == "recorded"
    assert status(store, "ada@example.org")[0] == "active"
    [second] = send_for_bounces(store, tmp_path, ["ada@example.org"], now=NOW + timedelta(days=1))
    assert process(store, bounce_message("dsn-hard", second, report_id="r2@mta"), cfg) == "recorded"
    state, reason = status(store, "ada@example.org")
    assert state == "bounced" and reason is not None and reason.startswith("2 hard bounces")


def test_soft_bounces_deactivate_after_a_streak(store: Store, tmp_path: Path) -> None:
    cfg = BouncesConfig(soft_streak=3)
    sent = []
    for day in range(4):
        [msg] = send_for_bounces(
            store, tmp_path, ["ada@example.org"], now=NOW + timedelta(days=day)
        )
        sent.append(msg)
    # Days 0, 2 and 3 bounce; day 1 got through, which breaks the streak at day 2.
    for day in (0, 2):
        assert (
            process(store, bounce_message("dsn-soft", sent[day], report_id=f"s{day}@m"), cfg)
            == "recorded"
        )
        assert status(store, "ada@example.org")[0] == "active"
    [fifth] = send_for_bounces(store, tmp_path, ["ada@example.org"], now=NOW + timedelta(days=4))
    for n, msg in ((3, sent[3]), (4, fifth)):
        assert (
            process(store, bounce_message("dsn-soft", msg, report_id=f"s{n}@m"), cfg) == "recorded"
        )
    state, reason = status(store, "ada@example.org")
    assert state == "bounced"
    assert reason == "3 editions in a row bounced; last: 4.0.0 smtp; 426 connection timed out"


def test_a_complaint_unsubscribes_at_once(store: Store, tmp_path: Path) -> None:
    [ada] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    assert process(store, bounce_message("arf-abuse", ada, verp="fbl@example.net")) == "recorded"
    state, reason = status(store, "ada@example.org")
    assert state == "unsubscribed"
    assert reason == "complaint (abuse) reported by SomeGenerator/1.0 (edition 1)"


def test_a_forged_or_foreign_token_changes_nothing(store: Store, tmp_path: Path) -> None:
    [ada] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    token = ada.sender.split("+")[1].split("@")[0]
    outbox_id = token.split("-")[0]
    forged = bounce_message("dsn-hard", ada).replace(
        token.encode(), f"{outbox_id}-{'0' * 16}".encode()
    )
    assert process(store, forged) == "unmatched"
    # A report naming our Message-ID but no token: only signed webhooks may use that.
    report = Report(kind="hard", source_id="x1", reason="550", original_message_id=ada.message_id)
    out = process_report(
        store, report, cfg=BouncesConfig(), secret=SECRET, digests=DIGESTS, now=NOW
    )
    assert out.result == "unmatched"
    assert status(store, "ada@example.org") == ("active", None)
    assert events.events(store) == []


def test_an_unsubscribe_mail_takes_the_address_off_the_digest(store: Store, tmp_path: Path) -> None:
    send_for_bounces(store, tmp_path, ["ada@example.org"])
    token = make_token(
        "unsubscribe", unsubscribe_value("daily", "ada@example.org"), SECRET, now=NOW
    )
    mail = (
        f"From: ada@example.org\r\nTo: unsubscribe@news.example.org\r\nMessage-ID: <u1@x>\r\n"
        f"Subject: unsubscribe {token}\r\n\r\n"
    ).encode()
    assert process(store, mail) == "recorded"
    assert status(store, "ada@example.org") == ("unsubscribed", "unsubscribe mail (daily)")
    assert process(store, mail) == "duplicate"
    bad = mail.replace(b"<u1@x>", b"<u2@x>").replace(token.encode(), token[:-3].encode() + b"xyz")
    assert process(store, bad) == "unmatched"


def test_edition_figures(store: Store, tmp_path: Path) -> None:
    sent = send_for_bounces(
        store, tmp_path, ["ada@example.org", "bob@example.org", "cy@example.org", "di@example.org"]
    )
    by = {m.recipient: m for m in sent}
    process(store, bounce_message("dsn-hard", by["ada@example.org"]))
    process(store, bounce_message("dsn-soft", by["bob@example.org"]))
    process(store, bounce_message("dsn-soft", by["bob@example.org"], report_id="again@m"))
    process(store, bounce_message("arf-abuse", by["cy@example.org"]))
    token = make_token("unsubscribe", unsubscribe_value("daily", "di@example.org"), SECRET, now=NOW)
    process(store, f"Message-ID: <u@x>\r\nSubject: unsubscribe {token}\r\n\r\n".encode())
    [stats] = events.edition_stats(store, [1])
    assert (stats.digest, stats.queued, stats.sent, stats.failed) == ("daily", 0, 4, 0)
    assert (stats.bounced, stats.complained, stats.unsubscribed) == (2, 1, 1)


def test_through_a_real_smtp_server_the_envelope_names_the_message(
    store: Store, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # The send goes out over SMTP; the DSN is written about the bytes the server got
    # and addressed to the envelope sender it saw (MAIL FROM), as a real MTA would.
    settings = make_settings(
        tmp_path,
        bounces={"address": BOUNCE_ADDRESS},
        smtp=local_smtp(smtp_sink.port),
    )
    seed(
        store,
        now=NOW,
        entries=[make_entry("A story", source="papers", now=NOW, hours_ago=0)],
        subscribers=["ada@example.org", "bob@example.org"],
    )
    asyncio.run(
        send_edition(
            store,
            settings,
            settings.digests[0],
            SmtpMailer(settings.smtp),
            now=NOW,
            clock=lambda: NOW,
            secret=SECRET,
        )
    )
    got = {r.rcpt_tos[0]: r for r in smtp_sink.recorder.messages}
    assert set(got) == {"ada@example.org", "bob@example.org"}
    ada = got["ada@example.org"]
    assert ada.mail_from.startswith("bounces+") and ada.mail_from.endswith("@news.example.org")
    assert ada.mail_from != got["bob@example.org"].mail_from
    wire = Outgoing(sender=ada.mail_from, recipient="ada@example.org", data=ada.data)
    assert process(store, bounce_message("dsn-hard", wire)) == "recorded"
    assert status(store, "ada@example.org")[0] == "bounced"
    assert status(store, "bob@example.org") == ("active", None)


def test_an_address_the_server_refuses_at_send_is_a_hard_bounce(
    store: Store, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # No DSN ever comes back for a refusal at RCPT: the sender itself must count it, or
    # the list keeps mailing a dead address. A refusal about the message is not counted.
    settings = make_settings(tmp_path, smtp=local_smtp(smtp_sink.port))
    smtp_sink.recorder.script["gone@example.org"] = ["rcpt:550 5.1.1 no such user"]
    smtp_sink.recorder.script["big@example.org"] = ["552 5.3.4 message too big"]
    seed(
        store,
        now=NOW,
        entries=[make_entry("A story", source="papers", now=NOW, hours_ago=0)],
        subscribers=["ada@example.org", "gone@example.org", "big@example.org"],
    )
    result = asyncio.run(
        send_edition(
            store,
            settings,
            settings.digests[0],
            SmtpMailer(settings.smtp),
            now=NOW,
            clock=lambda: NOW,
            secret=SECRET,
        )
    )
    assert result.report is not None
    assert sorted(e for _, e, _ in result.report.refused) == ["big@example.org", "gone@example.org"]
    assert status(store, "gone@example.org") == (
        "bounced",
        "1 hard bounce; last: refused at send: 550 5.1.1 no such user",
    )
    assert status(store, "big@example.org") == ("active", None)
    assert status(store, "ada@example.org") == ("active", None)
    [stats] = events.edition_stats(store, [1])
    assert stats.bounced == 1
