"""Issue 13, finding 15, through HTTP against the real app and a real SQLite store: the
subscribe form's format choice and truthful time-zone hints, the preference page (a
signed link in every email), the welcome mail, and sending the confirmation again."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from newsletter.store.database import Store
from tests.serve.test_web import Site, form, make_settings


@pytest.fixture
def site(store: Store) -> Site:
    return Site(store)


def mail_text(data: bytes) -> str:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def subscribed(site: Site, address: str = "ada@example.org", **extra: Any) -> None:
    """Subscribe through the form and press the confirm button."""
    assert site.post("/subscribe", data=form(address, **extra)).status_code == 200
    assert site.confirm(site.mail.confirm_path()).status_code == 200


# -- the subscribe form --------------------------------------------------------------------


def test_the_form_offers_the_format_and_the_choice_is_kept(site: Site) -> None:
    page = site.get("/subscribe").text
    assert 'name="format" value="html" checked' in page
    assert 'name="format" value="markdown"' in page
    subscribed(site, format="markdown")
    sub = site.subscriber("ada@example.org")
    assert sub is not None and (sub.status, sub.format) == ("active", "markdown")


def test_a_form_with_errors_keeps_the_chosen_format(site: Site) -> None:
    r = site.post("/subscribe", data=form("not an address", format="markdown"))
    assert r.status_code == 400
    assert 'name="format" value="markdown" checked' in r.text


def test_the_time_zone_hint_says_when_each_digest_is_sent(store: Store) -> None:
    settings = make_settings(
        digests=[
            {"name": "daily", "title": "Daily", "local_hour": 7},
            {
                "name": "weekly",
                "title": "Weekly",
                "schedule": "0 7 * * 1",
                "timezone": "Europe/Paris",
            },
            {"name": "noon", "title": "Noon", "schedule": "30 12 * * *", "timezone": "Asia/Tokyo"},
        ]
    )
    page = Site(store, settings).get("/subscribe").text
    assert "arrives in your morning" not in page
    assert "Daily: arrives at 7:00 in your time zone." in page
    assert "Weekly: sent at 07:00 Europe/Paris, on Mondays." in page
    assert "Noon: sent at 12:30 Asia/Tokyo." in page
