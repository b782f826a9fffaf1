"""Webhook bodies (deliver/bounce_events.py): our JSON shape and Mailgun's, their
signatures, and hostile JSON that must end as reports or a clear ``BounceEventError``."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.deliver.bounce_events import (
    mailgun_signature_ok,
    parse_events,
    parse_mailgun,
    sign_body,
    signature_ok,
)
from newsletter.deliver.bounces import Report, Skipped
from newsletter.errors import BounceEventError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_our_signature() -> None:
    body = b'{"events": []}'
    assert signature_ok(body, sign_body(body, "k"), "k")
    assert not signature_ok(body, sign_body(body, "k"), "other")
    assert not signature_ok(body + b" ", sign_body(body, "k"), "k")
    assert not signature_ok(body, "", "")  # no key: nothing is ever accepted


def test_our_events_read_as_reports() -> None:
    body = json.dumps(
        {
            "events": [
                {
                    "id": "a",
                    "type": "soft_bounce",
                    "token": "7-0123456789abcdef",
                    "email": "Ada@Example.org",
                },
                {"id": "b", "type": "delivered"},
            ]
        }
    ).encode()
    soft, other = parse_events(body)
    assert isinstance(soft, Report) and (soft.kind, soft.source_id, soft.recipient) == (
        "soft",
        "event:a",
        "ada@example.org",
    )
    assert soft.tokens == ("7-0123456789abcdef",) and soft.reason == "soft bounce"
    assert isinstance(other, Skipped) and "'delivered'" in other.why


def signed_mailgun(event: dict[str, Any], key: str = "mg-key") -> dict[str, Any]:
    timestamp, token = "1700000000", "t" * 50
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"event": "failed", "severity": "permanent"}, "hard"),
        ({"event": "failed", "severity": "temporary"}, "soft"),
        ({"event": "complained"}, "complaint"),
        ({"event": "unsubscribed"}, "unsubscribe"),
    ],
    ids=["permanent", "temporary", "complained", "unsubscribed"],
)
def test_mailgun_events(event: dict[str, Any], kind: str) -> None:
    data = signed_mailgun({"id": "ev1", "recipient": "ada@example.org", **event})
    assert mailgun_signature_ok(data, "mg-key") and not mailgun_signature_ok(data, "other")
    report = parse_mailgun(data)
    assert isinstance(report, Report) and (report.kind, report.source_id) == (kind, "mailgun:ev1")


def test_other_mailgun_events_are_skipped() -> None:
    assert isinstance(parse_mailgun(signed_mailgun({"id": "x", "event": "opened"})), Skipped)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_hostile_json_is_reports_or_a_clear_error(value: Any) -> None:
    body = json.dumps(value).encode()
    for wrapped in (body, json.dumps({"events": [value]}).encode()):
        try:
            out = parse_events(wrapped)
        except BounceEventError as exc:
            assert str(exc)
        else:
            assert all(isinstance(r, (Report, Skipped)) for r in out)
    with contextlib.suppress(BounceEventError):
        assert isinstance(parse_mailgun({"event-data": value}), (Report, Skipped))
    assert not mailgun_signature_ok(value, "k")
