"""The web app through HTTP (httpx's ASGI transport against the real Starlette app):
double opt-in (confirmed by the page's button), forged tokens, double submits, RFC 8058
one-click bodies, privacy of re-subscribing, rate limiting, the archive and its feeds,
HTML escaping. The security findings of issue 11 are in ``test_web_security.py``."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import feedparser
import httpx
import pytest

from newsletter.config import Settings, settings_from_dict
from newsletter.deliver.mailers import MemoryMailer
from newsletter.models import Subscriber
from newsletter.serve import guard, signup, web
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store.database import Store
from newsletter.store.subscribers import all_subscribers, get_subscriber, subscribers_of
from tests.factories import make_entry, make_subscriber, seed, seed_edition

SECRET = "test-secret"
NOW = datetime(2030, 6, 1, 7, 0, tzinfo=UTC)
XSS = '<script>alert("x")</script>'


def fixed_clock() -> datetime:
    """The clock of most tests: always NOW."""
    return NOW


class Mailbox(MemoryMailer):
    """The app's real mail path (``mailer_sender`` over a mailer), kept in memory."""

    @property
    def sent(self) -> list[tuple[str, bytes]]:
        return [(m.recipient, m.data) for m in self.messages]

    def confirm_path(self, index: int = -1) -> str:
        """The link of the ``index``-th confirmation mail (welcome mails are skipped)."""
        mails = [email.message_from_bytes(data, policy=policy.default) for _, data in self.sent]
        msg = [m for m in mails if str(m["Subject"]).startswith("Confirm")][index]
        body = msg.get_body(("plain",))
        assert body is not None
        m = re.search(r"https?://[^/\s]+(/confirm/\S+)", body.get_content())
        assert m, "no confirm link"
        return m.group(1)


def make_settings(**extra: Any) -> Settings:
    return settings_from_dict(
        {
            "sources": [{"name": "feed", "url": "feed.xml", "title": "The <Feed>"}],
            "digests": [
                {"name": "daily", "title": "Daily <papers>", "description": "Fresh & new"},
                {"name": "weekly", "title": "Weekly"},
            ],
            "web": {"base_url": "https://news.example.org"},
            **extra,
        },
        env={},
    )


class Site:
    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        clock: Callable[[], datetime] = fixed_clock,
    ) -> None:
        self.store = store
        self.settings = settings or make_settings()
        self.mail = Mailbox()
        self.app = web.create_app(
            self.settings, store, mailer=self.mail, secret=SECRET, clock=clock
        )

    def request(self, method: str, path: str, ip: str = "10.0.0.1", **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(ip, 5555))
            async with httpx.AsyncClient(
                transport=transport, base_url="https://news.example.org"
            ) as c:
                return await c.request(method, path, **kw)

        return asyncio.run(go())

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def confirm(self, path: str) -> httpx.Response:
        """What a person does with a confirmation link: open it, press the button."""
        page = self.get(path)
        if page.status_code != 200:
            return page
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action, "no confirm button on the page"
        return self.post(action.group(1))

    def subscriber(self, address: str) -> Subscriber | None:
        return get_subscriber(self.store, address)


@pytest.fixture
def site(store: Store) -> Site:
    return Site(store)


def form(address: str = "ada@example.org", **extra: Any) -> dict[str, Any]:
    return {
        "email": address,
        "digest": ["daily"],
        "interests": "llm, agents",
        "timezone": "Europe/Paris",
        **extra,
    }


def add_active(site: Site, address: str, digests: tuple[str, ...] = ("daily",)) -> None:
    seed(site.store, now=NOW, subscribers=[make_subscriber(address, digests=digests)])


def unsub_token(digest: str, address: str, secret: str = SECRET) -> str:
    return make_token("unsubscribe", unsubscribe_value(digest, address), secret)


# -- subscribe, confirm ----------------------------------------------------------------------


def test_subscribe_form_is_plain_accessible_html(site: Site) -> None:
    r = site.get("/subscribe")
    assert r.status_code == 200
    html = r.text
    assert '<form method="post" action="/subscribe"' in html
    assert '<label for="email">' in html and 'id="email"' in html
    assert '<html lang="en">' in html
    assert "Daily &lt;papers&gt;" in html  # a configured title, escaped
    assert r.headers["referrer-policy"] == "same-origin"
    assert site.get("/").headers["location"] == "https://news.example.org/subscribe"
    assert site.get("/static/tz.js").headers["content-type"].startswith("text/javascript")


def test_double_opt_in(site: Site) -> None:
    r = site.post("/subscribe", data=form("Ada@Example.org"))
    assert r.status_code == 200 and "Check your inbox" in r.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.status == "pending"
    assert subscribers_of(site.store, "daily") == []  # not active before confirming
    [(to, data)] = site.mail.sent
    assert to == "ada@example.org"
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Subject"].startswith("Confirm your subscription")
    r = site.confirm(site.mail.confirm_path())
    assert r.status_code == 200 and "You are subscribed" in r.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None
    assert (sub.status, sub.digests, sub.interests, sub.timezone) == (
        "active",
        ("daily",),
        ("llm", "agents"),
        "Europe/Paris",
    )
    # Opening the link again, or pressing the button again, is harmless.
    assert site.confirm(site.mail.confirm_path()).status_code == 200
    assert len(all_subscribers(site.store)) == 1


def test_double_submit_makes_one_pending_subscriber(site: Site) -> None:
    first = site.post("/subscribe", data=form())
    second = site.post("/subscribe", data=form())
    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    assert [s.email for s in all_subscribers(site.store)] == ["ada@example.org"]
    assert len(site.mail.sent) == 1  # one confirmation mail per address per hour
    assert site.confirm(site.mail.confirm_path(0)).status_code == 200
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", ["active", "unsubscribed", "bounced"])
def test_resubscribing_reveals_nothing_and_changes_nothing_until_confirmed(
    site: Site, status: str
) -> None:
    seed(
        site.store,
        now=NOW,
        subscribers=[make_subscriber("known@example.org", digests=("weekly",), status=status)],
    )
    known = site.post("/subscribe", data=form("known@example.org"))
    unknown = site.post("/subscribe", data=form("new@example.org"))
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert set(known.headers) == set(unknown.headers)
    before = site.subscriber("known@example.org")
    assert before is not None and before.status == status and before.digests == ("weekly",)
    # The owner of the address gets a link; following it applies the new choice.
    known_mail = next(i for i, (to, _) in enumerate(site.mail.sent) if to == "known@example.org")
    site.confirm(site.mail.confirm_path(known_mail))
    after = site.subscriber("known@example.org")
    assert after is not None and after.status == "active" and after.digests == ("daily",)


def test_all_digests_chosen_is_stored_as_every_digest(site: Site) -> None:
    site.post("/subscribe", data=form(digest=["daily", "weekly"]))
    site.confirm(site.mail.confirm_path())
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.digests == ()  # empty = every digest
    assert [s.email for s in subscribers_of(site.store, "weekly")] == ["ada@example.org"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-address"}, "does not look like an email address"),
        ({"email": ""}, "Enter your email address"),
        ({"digest": []}, "Choose at least one newsletter"),
        ({"digest": ["nope"]}, "Choose at least one newsletter"),
        ({"timezone": "Mars/Olympus"}, "Choose a time zone"),
        ({"timezone": "x" * 5000}, "Choose a time zone"),  # was a 500 (found by Hypothesis)
        ({"interests": ",".join(f"w{i}" for i in range(11))}, "at most 10 interests"),
        ({"interests": "x" * 61}, "at most 60 characters"),
    ],
    ids=[
        "bad-email",
        "no-email",
        "no-digest",
        "unknown-digest",
        "bad-tz",
        "long-tz",
        "too-many",
        "too-long",
    ],
)
def test_invalid_forms_are_shown_again_with_the_reason(
    site: Site, fields: dict[str, Any], message: str
) -> None:
    r = site.post("/subscribe", data={**form(), **fields})
    assert r.status_code == 400
    assert message in r.text
    assert 'role="alert"' in r.text
    assert all_subscribers(site.store) == [] and site.mail.sent == []


def test_every_user_value_is_escaped_on_the_form(site: Site) -> None:
    r = site.post(
        "/subscribe",
        data={
            "email": f'"><b>{XSS}',
            "digest": ["daily"],
            "interests": f"ok, {XSS}",
            "timezone": f"'{XSS}",
        },
    )
    assert r.status_code == 400
    assert "<script>" not in r.text and "<b>" not in r.text
    assert "&lt;script&gt;" in r.text
    assert "&#34;&gt;&lt;b&gt;" in r.text or "&quot;&gt;&lt;b&gt;" in r.text


def test_honeypot_gets_the_same_answer_and_nothing_happens(site: Site) -> None:
    r = site.post("/subscribe", data=form(website="http://spam.example"))
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert all_subscribers(site.store) == [] and site.mail.sent == []


def test_subscribe_is_rate_limited_per_client(site: Site) -> None:
    codes = [
        site.post("/subscribe", data=form(f"a{i}@example.org")).status_code
        for i in range(signup.CLIENT_LIMIT[0] + 1)
    ]
    assert codes == [200] * signup.CLIENT_LIMIT[0] + [429]
    assert "Too many requests" in site.post("/subscribe", data=form()).text
    # Another client is not affected; reading the form is never limited.
    assert site.post("/subscribe", data=form("b@example.org"), ip="10.0.0.2").status_code == 200
    assert site.get("/subscribe").status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "x" + t,
        lambda t: t.replace(".", "", 1),
        lambda t: make_token(
            "confirm", '{"e":"eve@example.org","d":[],"i":[],"t":"UTC"}', "wrong-secret"
        ),
        lambda t: make_token(
            "unsubscribe", '{"e":"eve@example.org","d":[],"i":[],"t":"UTC"}', SECRET
        ),
    ],
    ids=["altered-signature", "prefixed", "cut", "other-secret", "other-kind"],
)
def test_forged_confirm_tokens_get_400_and_change_nothing(site: Site, mangle: Any) -> None:
    site.post("/subscribe", data=form())
    token = site.mail.confirm_path().rsplit("/", 1)[1]
    for method in ("GET", "POST"):
        r = site.request(method, f"/confirm/{mangle(token)}")
        assert r.status_code == 400 and "not valid" in r.text
    assert site.subscriber("ada@example.org").status == "pending"  # type: ignore[union-attr]
    assert site.subscriber("eve@example.org") is None


def test_expired_confirm_link(store: Store) -> None:
    now = [NOW]
    site = Site(store, make_settings(web={"pending_max_age": "1h"}), clock=lambda: now[0])
    site.post("/subscribe", data=form())
    now[0] = NOW + timedelta(hours=1, seconds=1)
    for method in ("GET", "POST"):
        r = site.request(method, site.mail.confirm_path())
        assert r.status_code == 400 and "expired" in r.text
    assert site.subscriber("ada@example.org").status == "pending"  # type: ignore[union-attr]


# -- unsubscribe (RFC 8058) ------------------------------------------------------------------


def test_a_confirm_link_lives_three_days_on_the_apps_clock(store: Store) -> None:
    """A link's age is read on the app's clock: 2 days after it was mailed it confirms,
    4 days after it has expired (``web.pending_max_age`` is 3 days by default)."""
    now = [NOW]
    site = Site(store, clock=lambda: now[0])
    site.post("/subscribe", data=form("early@example.org"))
    site.post("/subscribe", data=form("late@example.org"))
    early, late = site.mail.confirm_path(0), site.mail.confirm_path(1)
    now[0] = NOW + timedelta(days=2)
    assert site.confirm(early).status_code == 200
    assert site.subscriber("early@example.org").status == "active"  # type: ignore[union-attr]
    now[0] = NOW + timedelta(days=4)
    r = site.confirm(late)
    assert r.status_code == 400 and "expired" in r.text
    assert site.subscriber("late@example.org").status == "pending"  # type: ignore[union-attr]


def test_get_never_unsubscribes(site: Site) -> None:
    add_active(site, "ada@example.org")
    token = unsub_token("daily", "ada@example.org")
    r = site.get(f"/unsubscribe/{token}")
    assert r.status_code == 200
    assert '<form method="post"' in r.text and "<button" in r.text
    assert "Daily &lt;papers&gt;" in r.text
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        {
            "content": b"List-Unsubscribe=One-Click",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {"files": {"List-Unsubscribe": (None, "One-Click")}},
        {"content": b""},
    ],
    ids=["urlencoded", "multipart", "empty-body"],
)
def test_one_click_post_unsubscribes_with_200_no_redirect_idempotent(
    site: Site, body: dict[str, Any]
) -> None:
    add_active(site, "ada@example.org")
    token = unsub_token("daily", "ada@example.org")
    for _ in range(2):
        r = site.post(f"/unsubscribe/{token}", follow_redirects=False, **body)
        assert r.status_code == 200
        assert "location" not in r.headers
        assert "You are unsubscribed" in r.text
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.status == "unsubscribed"
    assert subscribers_of(site.store, "daily") == []  # the next send skips it


def test_unsubscribing_from_one_digest_keeps_the_others(site: Site) -> None:
    add_active(site, "ada@example.org", digests=())  # every digest
    site.post(f"/unsubscribe/{unsub_token('daily', 'ada@example.org')}")
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.status == "active" and sub.digests == ("weekly",)
    assert subscribers_of(site.store, "daily") == []
    site.post(f"/unsubscribe/{unsub_token('weekly', 'ada@example.org')}")
    assert site.subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_unknown_address_gets_the_same_answer(site: Site) -> None:
    r = site.post(f"/unsubscribe/{unsub_token('daily', 'ghost@example.org')}")
    assert r.status_code == 200 and site.subscriber("ghost@example.org") is None


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "token",
    [
        lambda: unsub_token("daily", "ada@example.org")[:-3] + "xyz",
        lambda: unsub_token("daily", "ada@example.org", secret="wrong"),
        lambda: make_token("confirm", unsubscribe_value("daily", "ada@example.org"), SECRET),
        lambda: make_token("unsubscribe", "no-space", SECRET),
        lambda: "garbage",
    ],
    ids=["altered", "other-secret", "other-kind", "bad-value", "garbage"],
)
def test_forged_unsubscribe_tokens_get_400_and_change_nothing(
    site: Site, method: str, token: Any
) -> None:
    add_active(site, "ada@example.org")
    r = site.request(method, f"/unsubscribe/{token()}", content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 400 and "not valid" in r.text
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


def test_unsubscribe_page_escapes_values_from_the_token(site: Site) -> None:
    token = unsub_token(f"x{XSS}", f"{XSS}@example.org")
    for r in (site.get(f"/unsubscribe/{token}"), site.post(f"/unsubscribe/{token}")):
        assert r.status_code == 200
        assert "<script>" not in r.text and "&lt;script&gt;" in r.text


def test_too_large_body_is_refused(site: Site) -> None:
    r = site.post(
        "/subscribe",
        content=b"a=" + b"x" * (guard.MAX_BODY + 10),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


# -- archive and feeds -----------------------------------------------------------------------


def add_edition(store: Store, period: str, when: datetime, titles: list[str]) -> None:
    entries = [
        make_entry(
            f"{period}-{i}",
            source="feed",
            title=t,
            link=f"https://example.org/{period}/{i}",
            hours_ago=1,
            now=when,
            text=f"About {t}.",
        )
        for i, t in enumerate(titles)
    ]
    seed_edition(store, period, entries, now=when, title="Daily <papers>")


def test_archive_lists_and_shows_editions(site: Site) -> None:
    add_edition(site.store, "2030-05-31", NOW - timedelta(days=1), ["Older story"])
    add_edition(site.store, "2030-06-01", NOW, [f"Fresh {XSS}", "Second story"])
    index = site.get("/archive/")
    assert index.status_code == 200
    assert index.text.index("2030-06-01") < index.text.index("2030-05-31")
    assert 'href="/archive/daily/2030-06-01"' in index.text
    assert 'href="/daily/feed.xml"' in index.text
    assert "Daily &lt;papers&gt;" in index.text and "<papers>" not in index.text
    assert site.get("/archive/daily/").status_code == 200
    assert site.get("/archive").headers["location"] == "https://news.example.org/archive/"
    page = site.get("/archive/daily/2030-06-01")
    assert page.status_code == 200
    assert "Second story" in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert site.get("/archive/daily/1999-01-01").status_code == 404
    assert site.get("/archive/nope/2030-06-01").status_code == 404
    assert site.get("/archive/nope/").status_code == 404


@pytest.mark.parametrize(
    ("path", "media"),
    [("/daily/feed.xml", "application/rss+xml"), ("/daily/atom.xml", "application/atom+xml")],
)
def test_feeds_have_one_item_per_edition(site: Site, path: str, media: str) -> None:
    add_edition(site.store, "2030-05-31", NOW - timedelta(days=1), ["Older story"])
    add_edition(site.store, "2030-06-01", NOW, [f"Fresh {XSS}", "Second story"])
    r = site.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.link for e in parsed.entries] == [
        "https://news.example.org/archive/daily/2030-06-01",
        "https://news.example.org/archive/daily/2030-05-31",
    ]
    assert [e.id for e in parsed.entries] == [e.link for e in parsed.entries]
    assert parsed.entries[0].published_parsed[:3] == (2030, 6, 1)
    content = parsed.entries[0].content[0].value
    assert "Second story" in content and "<script>" not in content
    # The guid is stable: the same on every request.
    assert feedparser.parse(site.get(path).content).entries[0].id == parsed.entries[0].id
    assert site.get("/nope/feed.xml").status_code == 404


def test_healthz(site: Site) -> None:
    r = site.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_unknown_page_is_a_404_page(site: Site) -> None:
    r = site.get("/no/such/page")
    assert r.status_code == 404 and "Not found" in r.text


# -- topics ------------------------------------------------------------------------------------


def topic_settings() -> Settings:
    return make_settings(
        digests=[
            {
                "name": "daily",
                "title": "Daily",
                "topics": [
                    {"name": "Quantum", "keywords": ["quantum"]},
                    {"name": f"Robots {XSS}", "keywords": ["robotics"]},
                ],
            },
            {"name": "weekly", "title": "Weekly", "topics": [{"name": "Climate"}]},
        ]
    )


def test_no_topic_checkboxes_without_configured_topics(site: Site) -> None:
    assert 'name="topic"' not in site.get("/subscribe").text


def test_subscribe_with_topics_keeps_them_through_confirmation(store: Store) -> None:
    site = Site(store, topic_settings())
    html = site.get("/subscribe").text
    assert html.count('name="topic"') == 3
    assert "<script>" not in html and "Robots &lt;script&gt;" in html
    r = site.post(
        "/subscribe",
        # A topic of the weekly digest (not chosen) and one never offered are dropped.
        data=form(topic=[f"Robots {XSS}", "Quantum", "Climate", "Forged"]),
    )
    assert r.status_code == 200, r.text
    pending = site.subscriber("ada@example.org")
    assert pending is not None and pending.topics == (f"Robots {XSS}", "Quantum")
    assert site.confirm(site.mail.confirm_path()).status_code == 200
    sub = site.subscriber("ada@example.org")
    assert sub is not None
    assert (sub.status, sub.digests, sub.topics) == (
        "active",
        ("daily",),
        (f"Robots {XSS}", "Quantum"),
    )


def test_no_topic_checked_means_everything(store: Store) -> None:
    site = Site(store, topic_settings())
    assert site.post("/subscribe", data=form()).status_code == 200
    site.confirm(site.mail.confirm_path())
    sub = site.subscriber("ada@example.org")
    assert sub is not None and sub.status == "active" and sub.topics == ()


def test_checked_topics_stay_checked_when_the_form_comes_back(store: Store) -> None:
    site = Site(store, topic_settings())
    r = site.post("/subscribe", data=form("not an address", topic=["Quantum"]))
    assert r.status_code == 400
    assert re.search(r'value="Quantum" checked', r.text)
    assert not re.search(r'value="Robots [^"]*" checked', r.text)


def test_a_confirm_link_from_before_single_use_links_no_longer_confirms(store: Store) -> None:
    # Links mailed by earlier releases carry no nonce: they could be replayed, so they
    # are refused (subscribing again mails a new one).
    site = Site(store, topic_settings())
    value = '{"e":"old@example.org","d":["daily"],"i":[],"t":"UTC"}'
    token = make_token("confirm", value, SECRET, now=NOW)
    for method in ("GET", "POST"):
        assert site.request(method, f"/confirm/{token}").status_code == 400
    assert site.subscriber("old@example.org") is None
