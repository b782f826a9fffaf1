"""Reading DSNs (RFC 3464), ARF reports (RFC 5965) and unsubscribe mails
(deliver/bounces.py): the RFCs' examples about a message we really composed, and hostile
bytes that must never raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.deliver.bounces import (
    Report,
    Skipped,
    bounce_token,
    parse_report,
    read_bounce_token,
    verp_address,
)
from newsletter.store.database import Store
from tests.factories import BOUNCE_ADDRESS, SECRET, bounce_message, send_for_bounces


@pytest.fixture
def sent(tmp_path: Path) -> list[object]:
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        return send_for_bounces(store, tmp_path, ["ada@example.org", "bob@example.org"])


def test_a_token_reads_back_only_with_its_key() -> None:
    token = bounce_token(42, SECRET)
    assert read_bounce_token(token, SECRET) == 42
    assert read_bounce_token(token.upper(), SECRET) == 42  # a local part may be upper-cased
    assert read_bounce_token(token, "another key of 32 characters....") is None
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert read_bounce_token(forged, SECRET) is None
    assert read_bounce_token("43-" + token.split("-")[1], SECRET) is None
    assert read_bounce_token("not a token", SECRET) is None


def test_each_message_carries_its_token_and_a_verp_sender(sent: list) -> None:
    ada = sent[0]
    headers = ada.data.partition(b"\r\n\r\n")[0].decode()
    token = next(
        line.split(": ", 1)[1]
        for line in headers.split("\r\n")
        if line.startswith("X-Newsletter-Token")
    )
    assert ada.sender == verp_address(BOUNCE_ADDRESS, token)
    assert ada.sender.startswith("bounces+") and ada.sender.endswith("@news.example.org")
    assert read_bounce_token(token, SECRET) is not None
    assert len({m.sender for m in sent}) == len(sent)  # one address per message


def test_a_hard_bounce_dsn(sent: list) -> None:
    report = parse_report(bounce_message("dsn-hard", sent[0]))
    assert isinstance(report, Report)
    assert report.kind == "hard"
    assert report.recipient == "ada@example.org"
    assert report.reason.startswith("5.0.0 smtp; 550 'ada@example.org' is not a registered")
    assert report.source_id == "<dsn-hard.ada@example.org@mta.example.net>"
    token = sent[0].sender.split("+")[1].split("@")[0]
    assert token in report.tokens  # from the quoted headers and from the VERP address


def test_a_soft_bounce_dsn_with_the_whole_original(sent: list) -> None:
    report = parse_report(bounce_message("dsn-soft", sent[1]))
    assert isinstance(report, Report)
    assert (report.kind, report.recipient) == ("soft", "bob@example.org")
    assert report.reason == "4.0.0 smtp; 426 connection timed out"
    assert report.original_message_id == sent[1].message_id


def test_a_delay_warning_is_not_a_bounce(sent: list) -> None:
    report = parse_report(bounce_message("dsn-delayed", sent[0]))
    assert isinstance(report, Skipped) and "delayed" in report.why


def test_an_arf_abuse_report(sent: list) -> None:
    data = bounce_message("arf-abuse", sent[0], verp="abuse@example.net")
    report = parse_report(data)
    assert isinstance(report, Report)
    assert report.kind == "complaint"
    assert report.reason == "complaint (abuse) reported by SomeGenerator/1.0"
    assert report.recipient == "ada@example.org"
    token = sent[0].sender.split("+")[1].split("@")[0]
    assert token in report.tokens  # Original-Mail-From and the quoted X-Newsletter-Token
    # Like the RFC's example, the report has no Message-ID: its bytes name it.
    assert report.source_id.startswith("sha256:")
    assert parse_report(data).source_id == report.source_id


def test_a_not_spam_report_is_skipped(sent: list) -> None:
    data = bounce_message("arf-abuse", sent[0]).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: not-spam"
    )
    report = parse_report(data)
    assert isinstance(report, Skipped) and "not-spam" in report.why


def test_an_unsubscribe_mail() -> None:
    data = (
        b"From: Ada <ada@example.org>\r\nTo: unsubscribe@news.example.org\r\n"
        b"Message-ID: <u1@example.org>\r\nSubject: unsubscribe abc.DEF-123\r\n\r\n\r\n"
    )
    report = parse_report(data)
    assert isinstance(report, Report)
    assert (report.kind, report.unsubscribe_token, report.recipient) == (
        "unsubscribe",
        "abc.DEF-123",
        "ada@example.org",
    )


def test_an_unsubscribe_mail_with_an_encoded_subject() -> None:
    data = b"From: ada@example.org\r\nSubject: =?utf-8?q?unsubscribe_abc=2EDEF-123?=\r\n\r\n"
    report = parse_report(data)
    assert isinstance(report, Report) and report.unsubscribe_token == "abc.DEF-123"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "neither"),
        (b"Subject: hello\r\n\r\nhi", "neither"),
        (
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
            "without its message/delivery-status part",
        ),
        (
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: x\r\n\r\n"
            b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: bogus\r\n--b--\r\n",
            "without a failure",
        ),
        (b"Content-Type: multipart/report; report-type=disposition-notification\r\n\r\n", "type"),
    ],
    ids=["empty", "plain-mail", "no-status-part", "no-status-code", "read-receipt"],
)
def test_other_messages_are_skipped_with_a_reason(data: bytes, why: str) -> None:
    report = parse_report(data)
    assert isinstance(report, Skipped) and why in report.why
    assert report.source_id


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_hostile_bytes_never_raise(data: bytes) -> None:
    head = (
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n'
    )
    for raw in (data, head + data):
        assert isinstance(parse_report(raw), (Report, Skipped))
