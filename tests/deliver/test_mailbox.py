"""The IMAP path: DSN and ARF messages (the RFCs' examples about messages we composed)
delivered to a real dovecot mailbox, read by ``services.bounces.poll_mailbox`` through
``deliver/mailbox.py``; each message is marked done so a second poll reads nothing, and a
broken message never stops the poll. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.deliver.mailbox import DONE_FLAG, Mailbox
from newsletter.errors import MailboxError
from newsletter.services.bounces import poll_mailbox
from newsletter.store import bounces as events
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import NOW, SECRET, bounce_message, make_settings, send_for_bounces
from tests.imap_server import ImapServer, dovecot
from tests.smtp_server import client_context


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[ImapServer]:
    with dovecot(tmp_path / "imap") as server:
        yield server


def settings_for(tmp_path: Path, imap: ImapServer, **more: object) -> Settings:
    bounces = {
        "imap_host": "127.0.0.1",
        "imap_port": imap.port,
        "imap_security": "none",
        "imap_username": imap.user,
        "imap_password": imap.password,
        **more,
    }
    return make_settings(tmp_path, bounces=bounces)


def test_reports_in_the_mailbox_stop_mail_and_are_read_once(
    store: Store, tmp_path: Path, imap: ImapServer
) -> None:
    sent = send_for_bounces(
        store, tmp_path, ["ada@example.org", "bob@example.org", "cy@example.org"]
    )
    by = {m.recipient: m for m in sent}
    imap.deliver(bounce_message("dsn-hard", by["ada@example.org"]))
    imap.deliver(bounce_message("arf-abuse", by["bob@example.org"], verp="fbl@example.net"))
    imap.deliver(bounce_message("dsn-delayed", by["cy@example.org"]))
    imap.deliver(b"Subject: out of office\r\n\r\nI am away.\r\n")
    imap.deliver(b"\x00\xff garbage \r\n\r\n\xfe")  # a broken message: logged, not a crash
    settings = settings_for(tmp_path, imap)

    tally = poll_mailbox(store, settings, secret=SECRET, now=NOW)

    assert tally.summary() == "5 read: 2 recorded, 3 skipped"
    ada, bob, cy = (get_subscriber(store, f"{n}@example.org") for n in ("ada", "bob", "cy"))
    assert ada is not None and ada.status == "bounced"
    assert bob is not None and bob.status == "unsubscribed"
    assert cy is not None and cy.status == "active"
    assert events.status_reason(store, "bob@example.org") == (
        "complaint (abuse) reported by SomeGenerator/1.0 (edition 1)"
    )
    # Every message is flagged done; the next poll reads nothing.
    assert all(DONE_FLAG in flags for flags, _ in imap.messages())
    assert poll_mailbox(store, settings, secret=SECRET, now=NOW).summary() == "0 read"
    assert len(events.events(store)) == 2


def test_done_messages_move_to_the_processed_folder(
    store: Store, tmp_path: Path, imap: ImapServer
) -> None:
    [ada] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    imap.deliver(bounce_message("dsn-soft", ada))
    settings = settings_for(tmp_path, imap, processed_folder="Processed")
    assert poll_mailbox(store, settings, secret=SECRET, now=NOW).summary() == "1 read: 1 recorded"
    assert imap.messages("INBOX") == []
    [(flags, raw)] = imap.messages("Processed")
    assert b"426 connection timed out" in raw and "\\Seen" in flags
    [event] = events.events(store)
    assert (event["kind"], event["email"]) == ("soft", "ada@example.org")


def test_a_wrong_password_is_a_clear_error(tmp_path: Path, imap: ImapServer) -> None:
    settings = settings_for(tmp_path, imap, imap_password="wrong")
    with (
        pytest.raises(MailboxError, match=r"refused us .*NEWSLETTER_BOUNCES_IMAP_PASSWORD"),
        Mailbox(settings.bounces),
    ):
        pass


def test_plain_imap_is_only_for_this_machine(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, bounces={"imap_host": "imap.example.org", "imap_security": "none"}
    )
    with pytest.raises(MailboxError, match=r"password in clear to imap\.example\.org"):
        Mailbox(settings.bounces)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_check_the_certificate(
    store: Store, tmp_path: Path, tls_certs: tuple[Path, Path], security: str
) -> None:
    [ada] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    with dovecot(tmp_path / "imap", tls=tls_certs) as imap:
        imap.deliver(bounce_message("dsn-hard", ada))
        port = imap.tls_port if security == "tls" else imap.port
        cfg = settings_for(tmp_path, imap, imap_security=security, imap_port=port).bounces
        with Mailbox(cfg, ssl_context=client_context(tls_certs[0])) as box:
            [(uid, raw)] = list(box.new_messages())
            assert b"is not a registered gateway user" in raw
            box.mark_done(uid)
        # The system's authorities do not know the test certificate: refused, clearly.
        with pytest.raises(MailboxError, match=r"cannot reach the bounce mailbox.*certificate"):
            Mailbox(cfg).__enter__()
        [(flags, _)] = imap.messages()
    assert DONE_FLAG in flags
