"""The preference page in a real browser (issue 13, finding 15): Debian's chromium driven
by Playwright against the app served by uvicorn, mail through a real aiosmtpd server.

A digest mail's "Manage your subscription" link -> change topics and format on the page
-> the next edition arrives as chosen (Markdown, one topic) -> pause for a week on the
page -> no mail until the pause ends (the send's clock is injected) -> mail again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.deliver.mailers import make_mailer
from newsletter.serve.web import create_app
from newsletter.services.delivery import send_edition
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import (
    digest_config,
    local_smtp,
    make_settings,
    make_subscriber,
    seed,
    topic_stories,
)
from tests.serve.test_browser import OUT, READER, WebServer, in_thread, wait_for_mail
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.browser

SECRET = "browser-test-secret"


def settings_for(tmp_path: Path, smtp_port: int, web_url: str) -> Settings:
    return make_settings(
        tmp_path,
        sources=[{"name": "feed", "url": "https://example.org/feed.xml"}],
        digests=[
            digest_config(
                title="Morning papers",
                topics=[
                    {"name": "Quantum", "keywords": ["quantum"]},
                    {"name": "Robots", "keywords": ["robotics"]},
                ],
            )
        ],
        mail={"from_address": "Morning papers <digest@example.org>", "domain": "example.org"},
        smtp=local_smtp(smtp_port, tries_per_run=1),
        web={"base_url": web_url, "allow_http_one_click": True},
    )


def send_at(store: Store, settings: Settings, now: datetime, tag: str) -> None:
    """Two stories of each kind first seen at ``now``, then the edition of that day."""
    entries = topic_stories(now, tag)
    seed(store, now=now, entries=entries)
    in_thread(
        send_edition(
            store,
            settings,
            settings.digests[0],
            make_mailer(settings),
            now=now,
            clock=lambda: now,
            secret=SECRET,
            period=f"{now:%Y-%m-%d}",
        )
    )


def plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def kinds_in(msg: EmailMessage) -> set[str]:
    return set(re.findall(r"https://example\.org/(\w+)/", plain(msg)))


def test_change_topics_and_format_then_pause_from_a_received_mail_in_chromium(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chromium: Any,
    smtp_sink: SmtpSink,
    store: Store,
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    OUT.mkdir(parents=True, exist_ok=True)
    recorder = smtp_sink.recorder
    web = WebServer()
    settings = settings_for(tmp_path, smtp_sink.port, web.url)
    web.serve(create_app(settings, store, mailer=make_mailer(settings)))
    now = datetime.now(UTC)
    seed(store, now=now, subscribers=[make_subscriber(READER)])
    try:
        # 1. An edition arrives, both topics, HTML; its footer links to the preferences.
        send_at(store, settings, now, "a")
        [first] = wait_for_mail(recorder, READER, 1)
        assert first.is_multipart() and kinds_in(first) == {"quantum", "robots"}
        link = re.search(r"http://\S+/prefs/[^\s>]+", plain(first))
        assert link, "no manage link in the mail"

        # 2. The page from the link: choose one topic and Markdown, save.
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(link.group(0))
        assert page.get_by_role("heading", name="Your subscription").is_visible()
        page.get_by_label("Quantum").check()
        page.get_by_label("Markdown").check()
        page.screenshot(path=str(OUT / "prefs-desktop.png"), full_page=True)
        page.get_by_role("button", name="Save my choices").click()
        page.wait_for_load_state()
        assert page.get_by_text("Saved.").is_visible()
        sub = get_subscriber(store, READER)
        assert sub is not None and (sub.topics, sub.format) == (("Quantum",), "markdown")

        # 3. The next edition follows the choices: Markdown, Quantum only.
        send_at(store, settings, now + timedelta(days=1), "b")
        [_, second] = wait_for_mail(recorder, READER, 2)
        assert second.is_multipart() and "### [" in plain(second)  # Markdown, and its HTML
        assert kinds_in(second) == {"quantum"}

        # 4. Pause for a week on the page: no mail until it ends.
        page.get_by_label("Pause for").select_option("1")
        page.get_by_role("button", name="Pause", exact=True).click()
        page.wait_for_load_state()
        assert page.get_by_role("button", name="Resume now").is_visible()
        sub = get_subscriber(store, READER)
        assert sub is not None and sub.paused_until is not None
        send_at(store, settings, now + timedelta(days=2), "c")
        send_at(store, settings, sub.paused_until - timedelta(days=1), "d")
        send_at(store, settings, sub.paused_until + timedelta(hours=1), "e")
        mails = wait_for_mail(recorder, READER, 3)
        assert len(mails) == 3
        assert re.search(r"https://example\.org/quantum/e\d", plain(mails[2]))
        page.close()
    finally:
        web.close()
