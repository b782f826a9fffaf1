"""Issue 13, finding 15, through HTTP against the real app and a real SQLite store: the
subscribe form's format choice and truthful time-zone hints, the preference page (a
signed link in every email), the welcome mail, and sending the confirmation again."""

from __future__ import annotations

import asyncio
import email
import re
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from newsletter.deliver.mailers import MemoryMailer
from newsletter.services.delivery import send_edition
from newsletter.services.tokens import make_token, read_token
from newsletter.store.bounces import events as bounce_events
from newsletter.store.database import Store
from newsletter.store.subscribers import subscribers_of
from tests.factories import make_subscriber, seed, topic_stories
from tests.serve.test_web import NOW, SECRET, XSS, Site, add_active, form, make_settings


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


# -- the preference page -------------------------------------------------------------------

ORIGIN = {"Origin": "https://news.example.org"}


def topic_settings() -> Any:
    return make_settings(
        digests=[
            {
                "name": "daily",
                "title": "Daily",
                "topics": [
                    {"name": "Quantum", "keywords": ["quantum"]},
                    {"name": "Robots", "keywords": ["robotics"]},
                ],
            },
            {"name": "weekly", "title": "Weekly"},
        ]
    )


def send_daily(site: Site, now: datetime, tag: str) -> list[tuple[str, bytes]]:
    """Two stories of each kind first seen at ``now``; the daily edition of that day
    sent through the real delivery service: the messages, (recipient, bytes)."""
    entries = topic_stories(now, tag)
    seed(site.store, now=now, entries=entries)
    mailer = MemoryMailer()
    cfg = site.settings.digests[0]
    asyncio.run(
        send_edition(
            site.store,
            site.settings,
            cfg,
            mailer,
            now=now,
            clock=lambda: now,
            secret=SECRET,
            period=f"{now:%Y-%m-%d}",
        )
    )
    return [(m.recipient, m.data) for m in mailer.messages]


def manage_path(data: bytes) -> str:
    m = re.search(r"https://news\.example\.org(/prefs/[^\s>]+)", mail_text(data))
    assert m, "no manage link in the mail"
    return m.group(1)


def kinds_in(data: bytes) -> set[str]:
    return set(re.findall(r"https://example\.org/(\w+)/", mail_text(data)))


def test_every_digest_mail_links_to_the_preference_page(store: Store) -> None:
    site = Site(store, topic_settings())
    seed(site.store, now=NOW, subscribers=[make_subscriber("ada@example.org")])
    [(_, data)] = send_daily(site, NOW, "a")
    msg = email.message_from_bytes(data, policy=policy.default)
    html_part = msg.get_body(("html",))
    assert html_part is not None and "Manage your subscription" in html_part.get_content()
    path = manage_path(data)
    assert read_token("prefs", path.removeprefix("/prefs/"), SECRET) == "ada@example.org"


def test_change_topics_and_format_from_the_link_then_the_next_edition_follows(
    store: Store,
) -> None:
    site = Site(store, topic_settings())
    seed(site.store, now=NOW, subscribers=[make_subscriber("ada@example.org")])
    [(_, first)] = send_daily(site, NOW, "a")
    assert kinds_in(first) == {"quantum", "robots"}
    assert email.message_from_bytes(first).is_multipart()
    path = manage_path(first)
    page = site.get(path)
    assert page.status_code == 200 and "ada@example.org" in page.text
    assert 'name="format" value="html" checked' in page.text
    before = site.subscriber("ada@example.org")
    changed = site.post(
        path,
        headers=ORIGIN,
        data={
            "action": "save",
            "digest": ["daily", "weekly"],
            "topic": ["Quantum"],
            "interests": "codes",
            "format": "markdown",
            "timezone": "Europe/Paris",
        },
    )
    assert changed.status_code == 200 and "Saved" in changed.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None and before is not None
    assert (sub.topics, sub.format, sub.timezone, sub.interests, sub.digests) == (
        ("Quantum",),
        "markdown",
        "Europe/Paris",
        ("codes",),
        (),
    )
    [(_, second)] = send_daily(site, NOW + timedelta(days=1), "b")
    assert kinds_in(second) == {"quantum"}
    msg = email.message_from_bytes(second)
    # Markdown: the Markdown as the text part, with its HTML rendering beside it.
    assert msg.get_content_type() == "multipart/alternative" and "### [" in mail_text(second)


def test_opening_the_page_changes_nothing_and_a_cross_site_post_is_refused(site: Site) -> None:
    add_active(site, "ada@example.org")
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    before = site.subscriber("ada@example.org")
    assert site.get(path).status_code == 200
    assert site.request("HEAD", path).status_code in (200, 405)
    evil = site.post(
        path,
        headers={"Origin": "https://evil.example"},
        data={"action": "leave"},
    )
    assert evil.status_code == 403
    assert site.subscriber("ada@example.org") == before


@pytest.mark.parametrize(
    "path",
    [
        "/prefs/forged",
        "/prefs/" + make_token("unsubscribe", "ada@example.org", SECRET),
        "/prefs/" + make_token("prefs", "ada@example.org", "another-secret"),
    ],
)
def test_a_forged_link_shows_nothing(site: Site, path: str) -> None:
    add_active(site, "ada@example.org")
    r = site.get(path)
    assert r.status_code == 400 and "ada@example.org" not in r.text
    assert site.post(path, data={"action": "leave"}).status_code == 400
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


def test_pause_and_resume(site: Site) -> None:
    add_active(site, "ada@example.org")
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    r = site.post(path, headers=ORIGIN, data={"action": "pause", "weeks": "2"})
    assert r.status_code == 200 and "15 June 2030" in r.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.paused_until == NOW + timedelta(weeks=2)
    assert subscribers_of(site.store, "daily", now=NOW) == []
    assert "Resume now" in site.get(path).text
    assert (
        site.post(path, headers=ORIGIN, data={"action": "pause", "weeks": "999"}).status_code == 400
    )
    r = site.post(path, headers=ORIGIN, data={"action": "resume"})
    assert r.status_code == 200
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.paused_until is None


def test_unsubscribe_from_one_digest_or_from_everything(site: Site) -> None:
    add_active(site, "ada@example.org", digests=())
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    base = {"action": "save", "timezone": "UTC", "format": "html"}
    r = site.post(path, headers=ORIGIN, data={**base, "digest": ["weekly"]})
    assert r.status_code == 200
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.digests == ("weekly",)
    none = site.post(path, headers=ORIGIN, data=base)
    assert none.status_code == 400 and "at least one newsletter" in none.text
    gone = site.post(path, headers=ORIGIN, data={"action": "leave"})
    assert gone.status_code == 200 and "Unsubscribed" in gone.text
    assert site.subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert "Not subscribed" in site.get(path).text
    # Each newsletter left here counts in `newsletter stats`, as on the unsubscribe page.
    left = bounce_events(site.store, email="ada@example.org")
    assert [(e["kind"], e["reason"]) for e in left] == [("unsubscribe", "preferences")] * 2
    assert [str(e["source_id"]).split(":")[1] for e in left] == ["daily", "weekly"]


def test_bad_values_are_refused_and_escaped(site: Site) -> None:
    add_active(site, "ada@example.org")
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    r = site.post(
        path,
        headers=ORIGIN,
        data={"action": "save", "digest": ["daily"], "timezone": XSS, "interests": XSS},
    )
    assert r.status_code == 400 and XSS not in r.text and "time zone" in r.text
    assert site.subscriber("ada@example.org").timezone == "UTC"  # type: ignore[union-attr]


# -- the welcome mail ----------------------------------------------------------------------


def test_a_welcome_mail_with_the_manage_link_follows_the_confirmation(site: Site) -> None:
    subscribed(site, format="markdown")
    [_, (to, welcome)] = site.mail.sent
    msg = email.message_from_bytes(welcome, policy=policy.default)
    assert to == "ada@example.org" and msg["Subject"].startswith("Welcome")
    text = mail_text(welcome)
    assert "Format: Markdown. Time zone: Europe/Paris." in text
    assert "sent at 07:00 UTC" in text
    m = re.search(r"https://news\.example\.org(/prefs/\S+)", text)
    assert m is not None
    page = site.get(m.group(1))
    assert page.status_code == 200 and 'name="format" value="markdown" checked' in page.text
    # Pressing the confirm button again sends no second welcome.
    site.confirm(site.mail.confirm_path())
    assert len(site.mail.sent) == 2


# -- send the confirmation again -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_send_the_confirmation_again_within_the_recipient_limits(store: Store) -> None:
    clock = Clock()
    site = Site(store, clock=clock)
    page = site.post("/subscribe", data=form())
    assert 'action="/subscribe/resend"' in page.text and "Send the confirmation again" in page.text
    first = site.mail.confirm_path()
    again = {"email": "Ada@Example.org"}
    # Within the hour of the first mail: the same page, no mail (one an hour per address).
    r = site.post("/subscribe/resend", data=again)
    assert r.status_code == 200 and r.text == page.text and len(site.mail.sent) == 1
    clock.now = NOW + timedelta(minutes=61)
    assert site.post("/subscribe/resend", data=again).text == page.text
    assert len(site.mail.sent) == 2
    second = site.mail.confirm_path()
    assert second != first
    assert site.confirm(first).status_code == 400  # only the newest link works
    assert site.confirm(second).status_code == 200
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.status == "active" and sub.interests == ("llm", "agents")


def test_the_daily_recipient_limit_holds_for_resends(store: Store) -> None:
    clock = Clock()
    site = Site(store, clock=clock)
    site.post("/subscribe", data=form())
    for hours in range(1, 6):
        clock.now = NOW + timedelta(hours=hours, minutes=1)
        site.post("/subscribe/resend", data={"email": "ada@example.org"})
    assert len(site.mail.sent) == 3  # three a day


@pytest.mark.parametrize("status", ["active", "unsubscribed", None])
def test_a_resend_for_an_address_with_nothing_to_confirm_sends_nothing(
    store: Store, status: str | None
) -> None:
    site = Site(store)
    if status:
        seed(site.store, now=NOW, subscribers=[make_subscriber("x@example.org", status=status)])
    unknown = site.post("/subscribe/resend", data={"email": "nobody@example.org"})
    known = site.post("/subscribe/resend", data={"email": "x@example.org"})
    assert known.status_code == unknown.status_code == 200 and known.text == unknown.text
    assert site.mail.sent == []


def test_a_cross_site_resend_is_refused(site: Site) -> None:
    site.post("/subscribe", data=form())
    r = site.post(
        "/subscribe/resend",
        headers={"Origin": "https://evil.example"},
        data={"email": "ada@example.org"},
    )
    assert r.status_code == 403


def test_the_hour_of_arrival_is_chosen_on_the_page_for_local_hour_digests(store: Store) -> None:
    settings = make_settings(digests=[{"name": "daily", "title": "Daily", "local_hour": 7}])
    site = Site(store, settings)
    add_active(site, "ada@example.org")
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    page = site.get(path).text
    assert 'name="local_hour"' in page and "The newsletter's own hour" in page
    base = {"action": "save", "digest": "daily", "format": "html", "timezone": "Europe/Paris"}
    r = site.post(path, headers=ORIGIN, data={**base, "local_hour": "6"})
    assert r.status_code == 200, r.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.local_hour == 6
    assert site.post(path, headers=ORIGIN, data={**base, "local_hour": "31"}).status_code == 400
    r = site.post(path, headers=ORIGIN, data={**base, "local_hour": ""})
    sub = site.subscriber("ada@example.org")
    assert r.status_code == 200 and sub is not None and sub.local_hour is None


def test_no_hour_is_offered_for_a_digest_on_a_fixed_schedule(site: Site) -> None:
    add_active(site, "ada@example.org")
    path = "/prefs/" + make_token("prefs", "ada@example.org", SECRET)
    assert 'name="local_hour"' not in site.get(path).text
