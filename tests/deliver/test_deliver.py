"""Delivery against a real SMTP server (aiosmtpd, bound to port 0): retries, failures,
STARTTLS + AUTH, connection reuse, the outbox loop and the file mailer."""

from __future__ import annotations

import asyncio
import email
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import MailConfig, SmtpConfig
from newsletter.deliver.loop import RetryPolicy, deliver_edition
from newsletter.deliver.mailers import FileMailer, MemoryMailer, Outgoing, SmtpMailer
from newsletter.errors import (
    AuthenticationError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from newsletter.render.email import MailSettings
from newsletter.services.editions import Composer
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.subscribers import set_status
from tests.factories import make_subscriber, sample_digest, seed_outbox
from tests.smtp_server import PASSWORD, USERNAME, SmtpSink, client_context, smtp_server
from tests.support import HANG_GUARD, wait_until

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
FAST = RetryPolicy(tries_per_run=3, backoff=0.01, retry_delay=timedelta(minutes=5))
MAIL = MailSettings(
    MailConfig(domain="news.example.org", from_address="Daily <daily@news.example.org>"),
    base_url="https://news.example.org",
)


def composer(n: int = 3) -> Composer:
    digest = sample_digest(n)
    return Composer(
        lambda interests: digest,
        mail=MAIL,
        period="2026-11-28",
        secret="k",
        list_title="Daily Papers",
    )


def setup_edition(store: Store, addresses: list[str]) -> int:
    people = [make_subscriber(a, name=a.split("@")[0]) for a in addresses]
    return seed_outbox(store, people, now=NOW)


def smtp(port: int, **kw: Any) -> SmtpMailer:
    return SmtpMailer(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=5, **kw))


def run(
    store: Store, eid: int, mailer: Any, workers: int = 1, policy: RetryPolicy = FAST, **kw: Any
) -> Any:
    return asyncio.run(
        deliver_edition(
            store, eid, mailer, composer(), clock=lambda: NOW, policy=policy, workers=workers, **kw
        )
    )


def test_every_subscriber_gets_one_message_over_reused_connections(
    store: Store, smtp_sink: SmtpSink
) -> None:
    addrs = [f"user{i}@example.com" for i in range(20)]
    eid = setup_edition(store, addrs)
    report = run(store, eid, smtp(smtp_sink.port), workers=3)
    assert report.sent == 20 and report.ok
    assert smtp_sink.recorder.count() == dict.fromkeys(addrs, 1)
    assert outbox.counts(store, eid)["sent"] == 20
    assert all(r.reply and r.reply.startswith("250") for r in outbox.rows(store, eid))


@pytest.mark.parametrize(
    ("script", "state", "received"),
    [
        (["451 4.3.0 try again later"], "sent", 1),
        (["421 4.3.2 closing, too busy"], "sent", 1),
        (["drop"], "sent", 1),
        (["rcpt:450 4.2.1 mailbox busy", "rcpt:450 4.2.1 mailbox busy"], "sent", 1),
        (["451 4.3.0 later"] * 3, "retry", 0),
        (["550 5.1.1 no such user"], "failed", 0),
        (["rcpt:550 5.1.1 no such user"], "failed", 0),
    ],
    ids=[
        "451-then-ok",
        "421-then-ok",
        "drop-then-ok",
        "rcpt-450-twice",
        "451-always",
        "550-at-data",
        "550-at-rcpt",
    ],
)
def test_replies_are_retried_or_fail_that_recipient_only(
    store: Store, smtp_sink: SmtpSink, script: list[str], state: str, received: int
) -> None:
    eid = setup_edition(store, ["bad@example.com", "good@example.com"])
    rec = smtp_sink.recorder
    rec.script["bad@example.com"] = script
    report = run(store, eid, smtp(smtp_sink.port))
    states = {r.email: r.state for r in outbox.rows(store, eid)}
    assert states == {"bad@example.com": state, "good@example.com": "sent"}
    assert rec.count()["bad@example.com"] == received
    assert rec.count()["good@example.com"] == 1
    assert (len(report.failed) == 1) == (state == "failed")
    if state == "retry":
        row = outbox.rows(store, eid, "retry")[0]
        assert "451" in (row.last_error or "")


def test_a_stalled_server_times_out_and_is_retried(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, ["slow@example.com"])
    rec = smtp_sink.recorder
    rec.script["slow@example.com"] = ["stall"]
    rec.stall_seconds = HANG_GUARD  # the client's timeout ends the stall, never the server
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=smtp_sink.port, security="none", timeout=0.5)
    )
    report = run(store, eid, mailer)
    assert report.sent == 1
    assert rec.count()["slow@example.com"] == 1
    assert rec.stalls == 1


def test_the_configured_timeout_fires_when_the_server_stops_answering(
    store: Store, smtp_sink: SmtpSink
) -> None:
    """The server accepts MAIL FROM, then never answers RCPT (its stall outlasts the
    test): the client gives up after ``smtp.timeout`` itself (a timeout, no reply
    involved) and the message waits in the outbox; one try per run, so no retry hides it.
    The server sees the client hang up in the middle of its stall."""
    eid = setup_edition(store, ["slow@example.com"])
    rec = smtp_sink.recorder
    rec.script["slow@example.com"] = ["rcpt:stall"]
    rec.stall_seconds = HANG_GUARD
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=smtp_sink.port, security="none", timeout=0.3)
    )
    report = run(store, eid, mailer, policy=RetryPolicy(tries_per_run=1))
    assert report.retry == 1 and report.sent == 0
    row = outbox.rows(store, eid)[0]
    assert row.state == "retry"
    assert row.last_error is not None and "Timed out" in row.last_error, row.last_error
    # Given up on the client's timeout: the server was still stalling when it hung up.
    wait_until(lambda: rec.hung_up == 1, message="the server never saw the client hang up")
    assert rec.stalls == 1
    assert rec.messages == []


def test_retry_rows_wait_for_their_time_then_go(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, ["later@example.com"])
    port, rec = smtp_sink.port, smtp_sink.recorder
    rec.script["later@example.com"] = ["451 busy"] * 3
    assert run(store, eid, smtp(port)).retry == 1
    # Not due yet: a run right away sends nothing.
    assert run(store, eid, smtp(port)).sent == 0
    row = outbox.rows(store, eid)[0]
    assert row.state == "retry" and row.attempts == 1
    report = asyncio.run(
        deliver_edition(
            store,
            eid,
            smtp(port),
            composer(),
            clock=lambda: NOW + timedelta(hours=1),
            policy=FAST,
        )
    )
    assert report.sent == 1
    assert rec.count()["later@example.com"] == 1


def tls_mailer(port: int, certs: tuple[Path, Path], **config: Any) -> SmtpMailer:
    """A mailer that trusts the test certificate."""
    return SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=port, timeout=5, **config),
        tls_context=client_context(certs[0]),
    )


def test_starttls_and_auth(store: Store, tls_certs: tuple[Path, Path]) -> None:
    eid = setup_edition(store, ["a@example.com", "b@example.com"])
    with smtp_server(tls=tls_certs, starttls=True, auth=True) as (ctl, rec):
        mailer = tls_mailer(
            ctl.port, tls_certs, security="starttls", username=USERNAME, password=PASSWORD
        )
        report = run(store, eid, mailer, workers=2)
    assert report.sent == 2
    assert rec.count() == {"a@example.com": 1, "b@example.com": 1}


def test_implicit_tls(store: Store, tls_certs: tuple[Path, Path]) -> None:
    eid = setup_edition(store, ["a@example.com"])
    with smtp_server(tls=tls_certs, implicit_tls=True) as (ctl, rec):
        assert run(store, eid, tls_mailer(ctl.port, tls_certs, security="tls")).sent == 1
    assert rec.count()["a@example.com"] == 1


def test_refused_login_stops_the_run_and_keeps_every_row(
    store: Store, tls_certs: tuple[Path, Path]
) -> None:
    eid = setup_edition(store, [f"u{i}@example.com" for i in range(5)])
    with smtp_server(tls=tls_certs, starttls=True, auth=True) as (ctl, rec):
        mailer = tls_mailer(
            ctl.port, tls_certs, security="starttls", username=USERNAME, password="wrong"
        )
        with pytest.raises(AuthenticationError, match="refused the login"):
            run(store, eid, mailer, workers=2)
    assert rec.messages == []
    counts = outbox.counts(store, eid)
    assert counts["sending"] == 0 and counts["sent"] == 0
    assert all(r.attempts == 0 for r in outbox.rows(store, eid))


def test_rate_limit_spaces_messages(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, [f"u{i}@example.com" for i in range(5)])
    mailer = smtp(smtp_sink.port, rate_limit=20.0)
    limiter = mailer.limiter
    assert limiter is not None
    slots: list[float] = []  # the start each send was given (monotonic seconds)
    wait = limiter.wait

    async def recording_wait() -> None:
        await wait()
        slots.append(limiter._next - limiter.interval)

    limiter.wait = recording_wait  # type: ignore[method-assign]
    report = run(store, eid, mailer, workers=2)
    assert report.sent == 5
    # Every send, on either connection, waited for its own slot, 1/20 s after the last.
    assert len(slots) == 5
    assert all(b - a >= 1 / 20 - 1e-9 for a, b in pairwise(slots))
    # And the run took the four intervals at least: a lower bound, which a slow machine
    # can only exceed (no upper bound here: speed is bench/send.py's business).
    assert report.seconds >= 4 / 20 * 0.9


def test_suppressed_when_the_subscriber_left(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, ["stay@example.com", "left@example.com"])
    set_status(store, "left@example.com", "unsubscribed", now=NOW)
    report = run(store, eid, smtp(smtp_sink.port))
    assert report.sent == 1 and report.suppressed == 1
    assert {r.email: r.state for r in outbox.rows(store, eid)}["left@example.com"] == "suppressed"
    assert "left@example.com" not in smtp_sink.recorder.count()


def test_rows_left_in_sending_are_sent_again_after_a_crash(
    store: Store, smtp_sink: SmtpSink
) -> None:
    eid = setup_edition(store, [f"u{i}@example.com" for i in range(6)])
    # A run that died after claiming: rows in `sending` owned by a process that is gone.
    rows = outbox.claim(store, eid, now=NOW, limit=3, prefix="localhost-gone:999999999:x")
    assert len(rows) == 3 and outbox.counts(store, eid)["sending"] == 3
    report = run(store, eid, smtp(smtp_sink.port), lease=timedelta(seconds=0))
    assert report.recovered == 3 and report.sent == 6
    assert smtp_sink.recorder.count() == {f"u{i}@example.com": 1 for i in range(6)}


def test_live_claims_of_another_process_are_left_alone(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, ["a@example.com", "b@example.com"])
    # Claimed a moment ago by a process on another host: its lease still runs.
    outbox.claim(store, eid, now=NOW, limit=1, prefix="otherhost:1:x")
    report = run(store, eid, smtp(smtp_sink.port))
    assert report.sent == 1
    assert outbox.counts(store, eid)["sending"] == 1


def test_sent_rows_are_never_sent_again(store: Store, smtp_sink: SmtpSink) -> None:
    eid = setup_edition(store, ["a@example.com", "b@example.com"])
    run(store, eid, smtp(smtp_sink.port))
    again = run(store, eid, smtp(smtp_sink.port))
    assert again.sent == 0
    assert smtp_sink.recorder.count() == {"a@example.com": 1, "b@example.com": 1}


def test_claims_are_exclusive(store: Store) -> None:
    eid = setup_edition(store, [f"u{i}@example.com" for i in range(10)])
    a = outbox.claim(store, eid, now=NOW, limit=6, prefix="h:1:a")
    b = outbox.claim(store, eid, now=NOW, limit=6, prefix="h:1:b")
    assert len(a) == 6 and len(b) == 4
    assert not {r.id for r in a} & {r.id for r in b}


def test_file_mailer_writes_eml_files(store: Store, tmp_path: Path) -> None:
    eid = setup_edition(store, ["a@example.com", "b@example.com"])
    report = run(store, eid, FileMailer(tmp_path / "mail"))
    assert report.sent == 2
    files = sorted((tmp_path / "mail").rglob("*.eml"))
    assert [f.name for f in files] == ["a@example.com.eml", "b@example.com.eml"]
    assert files[0].parent == tmp_path / "mail" / "daily" / "2026-11-28"
    msg = email.message_from_bytes(files[0].read_bytes())
    assert msg["To"] == "a <a@example.com>"
    assert msg.get_content_type() == "multipart/alternative"


# -- the Mailer protocol, in memory ----------------------------------------------------------


def test_memory_mailer_keeps_what_it_accepts_and_its_handler_can_refuse(store: Store) -> None:
    eid = setup_edition(store, ["a@example.com", "busy@example.com", "gone@example.com"])

    def handler(message: Outgoing) -> str | None:
        if message.recipient == "busy@example.com":
            raise TransientDeliveryError(message.recipient, "451 later")
        if message.recipient == "gone@example.com":
            raise PermanentDeliveryError(message.recipient, "550 no such user")
        return None

    mailer = MemoryMailer(handler)
    report = run(store, eid, mailer)
    assert mailer.recipients == ["a@example.com"]
    assert email.message_from_bytes(mailer.messages[0].data)["To"] == "a <a@example.com>"
    assert (report.sent, report.retry, report.failed) == (
        1,
        1,
        [("gone@example.com", "550 no such user")],
    )
    states = {r.email: r.state for r in outbox.rows(store, eid)}
    assert states == {
        "a@example.com": "sent",
        "busy@example.com": "retry",
        "gone@example.com": "failed",
    }


def test_a_message_is_accepted_only_once_the_previous_one_is_recorded(store: Store) -> None:
    """The outbox loop hands every session ``before_data``: a session without an
    envelope awaits it before accepting, so each earlier message is already recorded as
    sent (the duplicate window of a crash stays one message per connection)."""
    addresses = [f"u{i}@example.com" for i in range(6)]
    eid = setup_edition(store, addresses)
    unrecorded: list[str] = []

    def handler(message: Outgoing) -> None:
        sent = {r.email for r in outbox.rows(store, eid, "sent")}
        unrecorded.extend(a for a in mailer.recipients if a not in sent)

    mailer = MemoryMailer(handler)
    assert run(store, eid, mailer).sent == 6
    assert unrecorded == []
    assert sorted(mailer.recipients) == addresses


def test_the_loop_opens_as_many_sessions_as_the_mailer_has_connections(store: Store) -> None:
    eid = setup_edition(store, [f"u{i}@example.com" for i in range(12)])
    busy = {"now": 0, "peak": 0}
    three = asyncio.Event()

    async def held(message: Outgoing) -> None:
        # The first sends wait until three are in flight at once: only three sessions
        # sending side by side open the gate (a session sends one message at a time).
        busy["now"] += 1
        busy["peak"] = max(busy["peak"], busy["now"])
        if busy["now"] == 3:
            three.set()
        await asyncio.wait_for(three.wait(), HANG_GUARD)
        busy["now"] -= 1

    mailer = MemoryMailer(held, connections=3)
    report = asyncio.run(
        deliver_edition(store, eid, mailer, composer(), clock=lambda: NOW, policy=FAST, batch=2)
    )
    assert report.sent == 12 and len(mailer.messages) == 12
    assert busy["peak"] == 3
    assert SmtpMailer(SmtpConfig(pool_size=4)).connections == 4
    assert FileMailer("unused").connections == 1
