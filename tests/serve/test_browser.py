"""End to end in a real browser: Debian's chromium driven by Playwright against the app
served by uvicorn, mail through a real aiosmtpd server.

Subscribe on the form -> confirmation mail -> confirm link -> the confirm button -> a
send -> the digest's
HTML opened in the browser (screenshots at desktop and 375 px wide under out/browser/)
-> unsubscribe with the button -> the next send skips the address.
"""

from __future__ import annotations

import asyncio
import email
import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.deliver.mailers import make_mailer
from newsletter.serve.daemon import Daemon
from newsletter.serve.runner import serve_until_stopped
from newsletter.serve.web import create_app
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import (
    FEEDS,
    digest_config,
    local_smtp,
    make_entry,
    make_settings,
    seed,
    source_config,
)
from tests.smtp_server import Recorder, SmtpSink
from tests.support import HANG_GUARD, wait_until

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "browser"
FEED = FEEDS / "atom-handmade.xml"
READER = "reader@example.org"


class WebServer:
    """The app under uvicorn in a thread (its own event loop), on a socket bound here to
    port 0: the port is known before the app is made (its links need the public URL), and
    the socket already listens, so requests wait in its backlog until uvicorn serves."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.errors: list[BaseException] = []

    def serve(self, app: Any) -> WebServer:
        self.thread = threading.Thread(target=self._run, args=(app,), daemon=True)
        self.thread.start()
        assert self.ready.wait(HANG_GUARD), "the web server's thread did not start"
        return self

    def _run(self, app: Any) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.ready.set()
            await serve_until_stopped(
                None, web_app=app, sock=self.sock, stop=self.stop_event, install_signals=False
            )

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.errors.append(exc)
            self.ready.set()

    def close(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(HANG_GUARD)
        self.sock.close()
        assert not self.errors, self.errors


def in_thread(coro: Any) -> Any:
    """Run a coroutine to completion in another thread: Playwright's sync API keeps an
    event loop running in this one."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join(60)
    if errors:
        raise errors[0]
    return result[0] if result else None


def wait_for_mail(recorder: Recorder, address: str, count: int) -> list[EmailMessage]:
    def found() -> list[Any]:
        with recorder.lock:
            return [m for m in recorder.messages if address in m.rcpt_tos]

    wait_until(lambda: len(found()) >= count, message=f"no message #{count} for {address}")
    return [
        email.message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
        for m in found()
    ]


def text_of(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def settings_for(tmp_path: Path, smtp_port: int, web_url: str) -> Settings:
    return make_settings(
        tmp_path,
        sources=[source_config("feed", FEED, title="Handmade feed")],
        digests=[
            digest_config(
                title="Morning papers",
                description="What people read today.",
                schedule="0 7 * * *",
                timezone="Europe/Paris",
            )
        ],
        mail={"from_address": "Morning papers <digest@example.org>", "domain": "example.org"},
        smtp=local_smtp(smtp_port, tries_per_run=1),
        # One-click over http only because this is a local test (RFC 8058 wants https).
        web={"base_url": web_url, "allow_http_one_click": True},
    )


def test_subscribe_confirm_read_unsubscribe_in_chromium(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chromium: Any,
    smtp_sink: SmtpSink,
    store: Store,
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "browser-test-secret")
    OUT.mkdir(parents=True, exist_ok=True)
    recorder = smtp_sink.recorder
    # The app needs its public URL (for the links in mails) before it is served.
    web = WebServer()
    url = web.url
    settings = settings_for(tmp_path, smtp_sink.port, url)
    mailer = make_mailer(settings)
    web.serve(create_app(settings, store, mailer=mailer))
    try:
        page = chromium.new_page(
            viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
        )

        # 1. Subscribe on the form (works without JavaScript; the time zone is
        #    pre-filled by the browser).
        page.goto(f"{url}/subscribe")
        page.get_by_label("Email address").fill(READER)
        page.get_by_label("Interests").fill("agents, evaluation")
        tz = page.get_by_label("Time zone").input_value()
        assert tz == "America/New_York", "the browser did not pre-fill the time zone"
        page.screenshot(path=str(OUT / "subscribe-desktop.png"), full_page=True)
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Check your inbox").is_visible()
        assert get_subscriber(store, READER).status == "pending"  # type: ignore[union-attr]

        # 2. The confirmation mail from the real SMTP server; open its link.
        [confirm] = wait_for_mail(recorder, READER, 1)
        link = re.search(r"http://\S+/confirm/\S+", text_of(confirm, "plain"))
        assert link, "no confirm link in the mail"
        page.goto(link.group(0))
        # Opening the link confirms nothing (mail scanners open links too): the person
        # presses the button.
        assert page.get_by_role("heading", name="Confirm your subscription").is_visible()
        assert get_subscriber(store, READER).status == "pending"  # type: ignore[union-attr]
        page.get_by_role("button", name="Confirm subscription").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="You are subscribed").is_visible()
        sub = get_subscriber(store, READER)
        assert sub is not None and sub.status == "active"
        assert sub.interests == ("agents", "evaluation")
        assert sub.timezone == "America/New_York"

        # 3. Fetch the feed and trigger a send of the current edition.
        now = datetime.now(UTC)
        daemon = Daemon(settings, store, mailer, "browser-test-secret")
        in_thread(daemon.poll())
        in_thread(daemon.send_digest("daily", fire=now))
        mails = wait_for_mail(recorder, READER, 3)  # confirmation, welcome, digest
        [welcome] = [m for m in mails if m["Subject"].startswith("Welcome")]
        [digest] = [m for m in mails[1:] if m is not welcome]
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # 4. The received digest's HTML in the browser, desktop and phone widths.
        html_file = OUT / "digest-email.html"
        html_file.write_text(text_of(digest, "html"), encoding="utf-8")
        page.goto(html_file.as_uri())
        assert page.title()
        page.screenshot(path=str(OUT / "digest-desktop.png"), full_page=True)
        phone = chromium.new_page(viewport={"width": 375, "height": 812})
        phone.goto(html_file.as_uri())
        phone.screenshot(path=str(OUT / "digest-375.png"), full_page=True)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the digest is {overflow}px wider than a 375px screen"
        phone.close()

        # 5. Unsubscribe with the button behind the List-Unsubscribe link.
        header = str(digest["List-Unsubscribe"])
        unsub = re.search(r"<(http://[^>]+)>", header)
        assert unsub, header
        page.goto(unsub.group(1))
        assert get_subscriber(store, READER).status == "active"  # type: ignore[union-attr]
        page.screenshot(path=str(OUT / "unsubscribe-desktop.png"))
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
        assert get_subscriber(store, READER).status == "unsubscribed"  # type: ignore[union-attr]

        # 6. The next send skips the address (another reader still gets it).
        seed(store, now=now, subscribers=["other@example.org"])
        tomorrow = now + timedelta(days=1)
        story = make_entry(
            "tomorrow-1",
            source="feed",
            title="Tomorrow's story",
            link="https://example.org/tomorrow",
            published=tomorrow,
            text="Next day.",
        )
        seed(store, now=tomorrow, entries=[story])
        later = Daemon(settings, store, mailer, "browser-test-secret", clock=lambda: tomorrow)
        in_thread(later.send_digest("daily", fire=tomorrow))
        wait_for_mail(recorder, "other@example.org", 1)
        assert len([m for m in recorder.messages if READER in m.rcpt_tos]) == 3
        page.close()
    finally:
        web.close()
    for name in ("subscribe-desktop.png", "digest-desktop.png", "digest-375.png"):
        assert (OUT / name).stat().st_size > 1000
