"""The HTTP path for bounces (serve/bounce_hooks.py), through uvicorn on a real socket:
DSN and ARF messages (the RFCs' examples about messages we composed) posted raw, our JSON
events and Mailgun's webhook, each with its signature; forged, unsigned and stale calls
change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter.deliver.bounce_events import sign_body
from newsletter.serve import bounce_hooks
from newsletter.serve.web import create_app
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store import bounces as events
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import NOW, SECRET, bounce_message, make_settings, send_for_bounces
from tests.pg import on_both_databases
from tests.serve.test_browser import WebServer

database_url = on_both_databases()
HOOK_SECRET = "hook-secret-0123456789"
MAILGUN_KEY = "key-mailgun-0123456789"
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org"]


class Hooks:
    """The app serving the webhooks, and what was sent before."""

    def __init__(self, store: Store, tmp_path: Path, **bounces: Any) -> None:
        self.store = store
        self.sent = {m.recipient: m for m in send_for_bounces(store, tmp_path, PEOPLE)}
        settings = make_settings(tmp_path, bounces=bounces)
        app = create_app(
            settings,
            store,
            send_mail=_no_mail,
            secret=SECRET,
            clock=lambda: NOW + timedelta(hours=1),
        )
        self.server = WebServer().serve(app)
        self.client = httpx.Client(base_url=self.server.url, timeout=30)

    def post(
        self, path: str, body: bytes, signature: str | None = None, **headers: str
    ) -> httpx.Response:
        if signature is not None:
            headers["X-Newsletter-Signature"] = signature
        return self.client.post(path, content=body, headers=headers)

    def status(self, email: str) -> str:
        sub = get_subscriber(self.store, email)
        assert sub is not None
        return sub.status

    def close(self) -> None:
        self.client.close()
        self.server.close()


async def _no_mail(recipient: str, data: bytes, message_id: str) -> None:
    raise AssertionError("the webhooks send no mail")


@pytest.fixture
def hooks(store: Store, tmp_path: Path) -> Iterator[Hooks]:
    h = Hooks(store, tmp_path, webhook_secret=HOOK_SECRET, mailgun_signing_key=MAILGUN_KEY)
    yield h
    h.close()


def results(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["result"] for r in response.json()["results"]]


def test_raw_dsn_and_arf_messages(hooks: Hooks) -> None:
    dsn = bounce_message("dsn-hard", hooks.sent["ada@example.org"])
    arf = bounce_message("arf-abuse", hooks.sent["bob@example.org"], verp="fbl@example.net")
    assert results(hooks.post("/bounces/raw", dsn, sign_body(dsn, HOOK_SECRET))) == ["recorded"]
    assert results(hooks.post("/bounces/raw", arf, sign_body(arf, HOOK_SECRET))) == ["recorded"]
    assert (hooks.status("ada@example.org"), hooks.status("bob@example.org")) == (
        "bounced",
        "unsubscribed",
    )
    # The MTA posts the same message again: counted once.
    assert results(hooks.post("/bounces/raw", dsn, sign_body(dsn, HOOK_SECRET))) == ["duplicate"]
    assert [e["kind"] for e in events.events(hooks.store)] == ["hard", "complaint"]


def test_unsigned_or_forged_calls_change_nothing(hooks: Hooks) -> None:
    dsn = bounce_message("dsn-hard", hooks.sent["cy@example.org"])
    assert hooks.post("/bounces/raw", dsn).status_code == 401
    assert hooks.post("/bounces/raw", dsn, sign_body(dsn, "another secret")).status_code == 401
    assert hooks.post("/bounces/raw", dsn, sign_body(dsn + b" ", HOOK_SECRET)).status_code == 401
    body = json.dumps(
        {"events": [{"id": "e1", "type": "complaint", "email": "cy@example.org"}]}
    ).encode()
    assert hooks.post("/bounces/events", body, sign_body(body, "wrong")).status_code == 401
    assert hooks.status("cy@example.org") == "active"
    assert events.events(hooks.store) == []


def test_json_events_in_our_shape(hooks: Hooks) -> None:
    ada, bob = hooks.sent[PEOPLE[0]], hooks.sent[PEOPLE[1]]
    ada_token = ada.sender.split("+")[1].split("@")[0]
    unsub = make_token("unsubscribe", unsubscribe_value("daily", "cy@example.org"), SECRET, now=NOW)
    body = json.dumps(
        {
            "events": [
                {
                    "id": "e1",
                    "type": "hard_bounce",
                    "token": ada_token,
                    "reason": "550 5.1.1 no such user",
                },
                {"id": "e2", "type": "complaint", "message_id": bob.message_id},
                {"id": "e3", "type": "unsubscribe", "token": unsub},
                {"id": "e4", "type": "opened", "token": ada_token},
                {"id": "e5", "type": "hard_bounce", "token": "1-0000000000000000"},
            ]
        }
    ).encode()
    response = hooks.post("/bounces/events", body, sign_body(body, HOOK_SECRET))
    assert results(response) == ["recorded", "recorded", "recorded", "skipped", "unmatched"]
    assert [hooks.status(p) for p in PEOPLE] == ["bounced", "unsubscribed", "unsubscribed"]
    assert (
        events.status_reason(hooks.store, "ada@example.org")
        == "1 hard bounce; last: 550 5.1.1 no such user"
    )
    [stats] = events.edition_stats(hooks.store, [1])
    assert (stats.sent, stats.bounced, stats.complained, stats.unsubscribed) == (3, 1, 1, 1)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"events": "no"}', b'{"events": [{"type": "hard_bounce"}]}', b"[1, 2]"],
    ids=["not-json", "not-a-list", "no-id", "a-list"],
)
def test_a_body_not_in_the_shape_is_400(hooks: Hooks, body: bytes) -> None:
    response = hooks.post("/bounces/events", body, sign_body(body, HOOK_SECRET))
    assert response.status_code == 400 and response.json()["error"]


def mailgun_body(
    event: dict[str, Any], *, key: str = MAILGUN_KEY, at: float | None = None
) -> bytes:
    timestamp = str(int((NOW + timedelta(hours=1)).timestamp() if at is None else at))
    token = hashlib.sha256(json.dumps(event).encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event,
        }
    ).encode()


def mailgun_failure(sent: Any, severity: str) -> dict[str, Any]:
    """A ``failed`` event as Mailgun's webhook documentation shows it."""
    return {
        "id": f"mg-{severity}-{sent.recipient}",
        "event": "failed",
        "severity": severity,
        "reason": "bounce",
        "recipient": sent.recipient,
        "delivery-status": {
            "code": 550,
            "message": "5.1.1 The email account does not exist",
            "description": "",
        },
        "message": {"headers": {"message-id": sent.message_id.strip("<>"), "to": sent.recipient}},
    }


def test_mailgun_events_with_their_signature(hooks: Hooks) -> None:
    ada, bob, cy = (hooks.sent[p] for p in PEOPLE)
    assert results(
        hooks.post("/bounces/mailgun", mailgun_body(mailgun_failure(ada, "permanent")))
    ) == ["recorded"]
    assert results(
        hooks.post("/bounces/mailgun", mailgun_body(mailgun_failure(bob, "temporary")))
    ) == ["recorded"]
    complaint = {
        "id": "mg-c",
        "event": "complained",
        "recipient": cy.recipient,
        "message": {"headers": {"message-id": cy.message_id.strip("<>")}},
    }
    assert results(hooks.post("/bounces/mailgun", mailgun_body(complaint))) == ["recorded"]
    assert [hooks.status(p) for p in PEOPLE] == ["bounced", "active", "unsubscribed"]
    assert events.status_reason(hooks.store, "ada@example.org") == (
        "1 hard bounce; last: 550 5.1.1 The email account does not exist"
    )
    kinds = {(e["email"], e["kind"]) for e in events.events(hooks.store)}
    assert kinds == {
        ("ada@example.org", "hard"),
        ("bob@example.org", "soft"),
        ("cy@example.org", "complaint"),
    }


def test_a_forged_or_stale_mailgun_signature_is_refused(hooks: Hooks) -> None:
    ada = hooks.sent["ada@example.org"]
    forged = mailgun_body(mailgun_failure(ada, "permanent"), key="not-the-key")
    stale = mailgun_body(
        mailgun_failure(ada, "permanent"), at=(NOW - timedelta(days=2)).timestamp()
    )
    for body in (forged, stale, b'{"event-data": {}}'):
        assert hooks.post("/bounces/mailgun", body).status_code == 401
    assert hooks.status("ada@example.org") == "active"


def test_an_endpoint_without_its_key_is_404(store: Store, tmp_path: Path) -> None:
    h = Hooks(store, tmp_path)
    try:
        body = b"{}"
        for path in ("/bounces/raw", "/bounces/events", "/bounces/mailgun"):
            assert h.post(path, body, sign_body(body, "")).status_code == 404
    finally:
        h.close()


def test_whole_messages_fit_and_too_many_bad_signatures_are_refused(hooks: Hooks) -> None:
    big = bounce_message("dsn-soft", hooks.sent["ada@example.org"]) + b"x" * 300_000
    assert hooks.post("/bounces/raw", big, sign_body(big, HOOK_SECRET)).status_code == 200
    huge = b"x" * (bounce_hooks.MAX_HOOK_BODY + 1)
    assert hooks.post("/bounces/raw", huge, sign_body(huge, HOOK_SECRET)).status_code == 413
    limit, _ = bounce_hooks.BAD_SIGNATURE_LIMIT
    for _ in range(limit):
        assert hooks.post("/bounces/raw", b"x", "sha256=00").status_code == 401
    good = bounce_message("dsn-hard", hooks.sent["bob@example.org"])
    assert hooks.post("/bounces/raw", good, sign_body(good, HOOK_SECRET)).status_code == 429
    assert hooks.status("bob@example.org") == "active"


def test_a_one_click_unsubscribe_counts_against_the_last_edition(hooks: Hooks) -> None:
    token = make_token("unsubscribe", unsubscribe_value("daily", "cy@example.org"), SECRET, now=NOW)
    response = hooks.client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert hooks.status("cy@example.org") == "unsubscribed"
    [stats] = events.edition_stats(hooks.store, [1])
    assert (stats.sent, stats.unsubscribed, stats.bounced) == (3, 1, 0)
    [event] = events.events(hooks.store)
    assert (event["kind"], event["reason"], event["edition_id"]) == (
        "unsubscribe",
        "one-click unsubscribe",
        1,
    )
