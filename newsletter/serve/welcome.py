"""The welcome mail, sent once an address confirms: what it will receive, when, and the
signed link to the preference page (``serve.prefs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.models import Subscriber
from newsletter.serve.hints import schedule_hint
from newsletter.serve.prefs import prefs_token

if TYPE_CHECKING:
    from newsletter.serve.web import WebApp


def welcome_mail(app: WebApp, sub: Subscriber) -> tuple[bytes, str]:
    """The welcome message for a newly confirmed ``sub`` and its Message-ID."""
    chosen = [d for d in app.digests if not sub.digests or d.name in sub.digests]
    token = prefs_token(app.secret, sub.email, now=app.clock())
    context = {
        "email": sub.email,
        "digests": [(d.title, schedule_hint(d)) for d in chosen],
        "format": "Markdown" if sub.format == "markdown" else "HTML",
        "timezone": sub.timezone,
        "manage_url": app.url(f"/prefs/{token}"),
        "archive_url": app.url("/archive/"),
    }
    titles = ", ".join(d.title for d in chosen) or "the newsletter"
    return app.mail_message(sub.email, f"Welcome to {titles}", "web/welcome_email", context)


__all__ = ["welcome_mail"]
