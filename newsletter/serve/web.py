"""The web endpoints: subscribe (double opt-in), confirm, unsubscribe (RFC 8058), the
archive of past editions and its feeds, and a health check. A Starlette app; uvicorn
serves it (``newsletter serve``, or ``newsletter run`` alongside the scheduler).

Routes::

    GET  /                       -> 303 /subscribe
    GET  /subscribe              the form (email, digests, interests, topics, time zone)
    POST /subscribe              records a pending address, mails a confirmation link
    POST /subscribe/resend       mails a pending address's confirmation link again
    GET  /confirm/{token}        a page with one button (never confirms: scanners GET)
    POST /confirm/{token}        activates the address (signed, single-use, expires)
    GET  /unsubscribe/{token}    a page with one button (never unsubscribes: scanners GET)
    POST /unsubscribe/{token}    unsubscribes at once: 200, no redirect, idempotent
    GET  /prefs/{token}          the preference page (``serve.prefs``): shows only
    POST /prefs/{token}          changes preferences, pauses, resumes, unsubscribes
    GET  /archive/...            past editions and their feeds (``serve.archive``)
    GET  /healthz                {"status": "ok"}, or 503 {"status": "error"} (why: the log)
    POST /bounces/...            bounce, complaint and unsubscribe webhooks (``serve.bounce_hooks``)

The subscription endpoints are in ``serve.signup``; what the app believes about a
request (body size and time, client address, origin) is ``serve.guard``'s business.
Redirects are built from ``web.base_url``, never from the request's ``Host``.

Privacy: a subscribe request gets the same answer (and the same mail, a confirmation
link) whether or not the address is known, so the form reveals nothing about who is
subscribed. Pages carry ``Referrer-Policy: same-origin`` so the tokens in their URLs
never leak to the sites an archive page links to. A confirmation link's age is read
on the app's clock. Form fields are read and checked by ``serve.forms``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Match, Route

from newsletter.clock import now_utc
from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.models import Subscriber
from newsletter.render.templates import make_environment, render_template
from newsletter.serve.archive import EditionArchive, archive_routes
from newsletter.serve.bounce_hooks import MAX_HOOK_BODY, bounce_routes
from newsletter.serve.guard import BODY_TIMEOUT, MAX_BODY, BodyGuard, IPNetwork, parse_networks
from newsletter.serve.prefs import prefs_routes
from newsletter.serve.signup import signup_routes
from newsletter.services.tokens import make_token
from newsletter.store.database import Store

if TYPE_CHECKING:
    from newsletter.deliver.mailers import Mailer

log = logging.getLogger("newsletter.serve.web")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Referers go to this site only (tokens in URLs never reach linked sites); same-origin
    # rather than no-referrer so that browsers send a real Origin with the forms' posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

# Fills the time zone field from the browser; without JavaScript the field stays UTC.
TZ_SCRIPT = """(function () {
  var f = document.getElementById("timezone");
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (f && tz && (!f.value || f.value === "UTC")) { f.value = tz; }
  } catch (e) {}
})();
"""

SendMail = Callable[[str, bytes, str], Awaitable[None]]
"""``send(recipient, message_bytes, message_id)``: delivers one message."""


@dataclass
class WebApp:
    """Everything the endpoints need; ``create_app`` wraps it in Starlette."""

    settings: Settings
    store: Store
    send_mail: SendMail
    secret: str
    clock: Callable[[], datetime] = now_utc
    env: jinja2.Environment = field(init=False)
    archive: EditionArchive = field(init=False)
    trusted_proxies: tuple[IPNetwork, ...] = field(init=False)
    pending_max_age: timedelta = field(init=False)
    last_cleanup: float = field(init=False, default=float("-inf"))
    """``time.monotonic()`` of the last clean-up of expired limits and pending rows."""

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the web app needs a signing key")
        self.env = make_environment(self.settings.template_dir)
        self.archive = EditionArchive(self.settings, self.store, self.env)
        self.trusted_proxies = parse_networks(self.settings.web.trusted_proxies)
        self.pending_max_age = parse_duration(self.settings.web.pending_max_age)

    @property
    def confirm_max_age(self) -> int:
        """Seconds a confirmation link stays valid (its age is read on the app's clock)."""
        return int(self.pending_max_age.total_seconds())

    @property
    def digests(self) -> tuple[DigestConfig, ...]:
        return self.settings.digests or (self.settings.digest(None),)

    def digest_cfg(self, name: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.name == name), None)

    @property
    def base_url(self) -> str:
        return self.settings.web.base_url.rstrip("/")

    # -- rendering -----------------------------------------------------------------------

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page from ``templates/web/`` with the security headers."""
        html = render_template(
            self.env, f"web/{name}", {"site_title": self._site_title(), **context}
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def url(self, path: str) -> str:
        """The public URL of one of the app's paths (from ``web.base_url``)."""
        return f"{self.base_url}{path}"

    def subscribe_form(
        self,
        status: int = 200,
        *,
        errors: Sequence[str] = (),
        email: str = "",
        chosen: Sequence[str] = (),
        interests: str = "",
        topics: Sequence[str] = (),
        timezone: str = "UTC",
        fmt: str = "html",
    ) -> HTMLResponse:
        from newsletter.serve.hints import schedule_hint
        from newsletter.services.subscriptions import topic_names

        return self.page(
            "subscribe.html.j2",
            status,
            digests=self.digests,
            errors=list(errors),
            email=email,
            chosen=set(chosen or [d.name for d in self.digests]),
            interests=interests,
            topic_names=topic_names(self.digests),
            topics=set(topics),
            timezone=timezone,
            format=fmt,
            hints={d.name: schedule_hint(d) for d in self.digests},
        )

    def message(
        self, title: str, text: str, status: int = 200, *, links: Sequence[tuple[str, str]] = ()
    ) -> HTMLResponse:
        return self.page("message.html.j2", status, title=title, text=text, links=list(links))

    def _site_title(self) -> str:
        ds = self.digests
        return ds[0].title if len(ds) == 1 else "Newsletter"

    # -- subscriptions -------------------------------------------------------------------

    def confirm_token(self, sub: Subscriber, nonce: str) -> str:
        """The signed token of a confirmation link: the wanted subscription and the
        nonce that makes the link single use (``store.web_limits``)."""
        value = json.dumps(
            {
                "n": nonce,
                "e": sub.email,
                "d": list(sub.digests),
                "i": list(sub.interests),
                "p": list(sub.topics),
                "t": sub.timezone,
                "f": sub.format,
            },
            separators=(",", ":"),
        )
        return make_token("confirm", value, self.secret, now=self.clock())

    def confirmation_mail(self, sub: Subscriber, token: str) -> tuple[bytes, str]:
        """The confirmation message (plain text and HTML) and its Message-ID."""
        titles = [c.title for c in self.digests if not sub.digests or c.name in sub.digests]
        context = {
            "confirm_url": f"{self.base_url}/confirm/{token}",
            "titles": titles,
            "email": sub.email,
            "days": max(1, self.confirm_max_age // 86400),
        }
        subject = f"Confirm your subscription to {', '.join(titles) or 'the newsletter'}"
        return self.mail_message(sub.email, subject, "web/confirm_email", context)

    def mail_message(
        self, to: str, subject: str, template: str, context: dict[str, Any]
    ) -> tuple[bytes, str]:
        """A message of the web app (``template`` + ``.txt.j2`` and ``.html.j2``) and its
        Message-ID."""
        mail = self.settings.mail
        context = {"site_title": self._site_title(), **context}
        msg = EmailMessage()
        msg["From"] = mail.from_address
        msg["To"] = to
        if mail.reply_to:
            msg["Reply-To"] = mail.reply_to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.clock())
        mid = make_msgid(domain=mail.domain)
        msg["Message-ID"] = mid
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(render_template(self.env, f"{template}.txt.j2", context))
        msg.add_alternative(
            render_template(self.env, f"{template}.html.j2", context), subtype="html"
        )
        return msg.as_bytes(policy=policy.SMTP), mid


def mailer_sender(settings: Settings, mailer: Mailer) -> SendMail:
    """A ``SendMail`` over a ``deliver.Mailer`` (the same mailer the digests use)."""
    from newsletter.deliver.loop import send_one
    from newsletter.deliver.mailers import Outgoing

    sender = parseaddr(settings.mail.from_address)[1]

    async def send(recipient: str, data: bytes, message_id: str) -> None:
        await send_one(
            mailer,
            Outgoing(
                sender=sender,
                recipient=recipient,
                data=data,
                message_id=message_id,
                label=f"confirm/{recipient}",
            ),
        )

    return send


# -- endpoints -----------------------------------------------------------------------------


def create_app(
    settings: Settings,
    store: Store,
    *,
    send_mail: SendMail | None = None,
    mailer: Mailer | None = None,
    secret: str | None = None,
    clock: Callable[[], datetime] = now_utc,
    body_timeout: float = BODY_TIMEOUT,
) -> Starlette:
    """The Starlette app. Confirmation mail goes through ``send_mail``, else through
    ``mailer`` (a ``deliver.Mailer``), else through the configured mailer. Links are
    signed with ``secret``, else with ``services.tokens.secret_key()`` (never a built-in
    key). Request bodies must arrive within ``body_timeout`` seconds."""
    from newsletter.services.tokens import secret_key

    if send_mail is None:
        if mailer is None:
            from newsletter.deliver.mailers import make_mailer

            mailer = make_mailer(settings)
        send_mail = mailer_sender(settings, mailer)
    app = WebApp(settings, store, send_mail, secret or secret_key(), clock)
    return _starlette(app, body_timeout)


def _starlette(app: WebApp, body_timeout: float) -> Starlette:
    async def home(request: Request) -> Response:
        return RedirectResponse(app.url("/subscribe"), status_code=303)

    async def subscribe_get(request: Request) -> Response:
        return app.subscribe_form()

    async def healthz(request: Request) -> Response:
        try:
            await asyncio.to_thread(app.store.editions, None, limit=1)
        except Exception as exc:  # any database failure means "not healthy"
            # The reason is the operator's, in the log; the world learns only "no".
            log.warning("health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "error"}, 503)
        return JSONResponse({"status": "ok"})

    async def tz_script(request: Request) -> Response:
        return PlainTextResponse(
            TZ_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    def slash_redirect(request: Request) -> Response | None:
        """A redirect to the same path with or without its trailing slash when that one
        exists, built from ``web.base_url`` (Starlette's own copies ``Host``)."""
        path = request.url.path
        if request.method not in ("GET", "HEAD") or path == "/":
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        scope = {**request.scope, "path": other}
        if not any(r.matches(scope)[0] is Match.FULL for r in routes):
            return None
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(app.url(other) + query, status_code=308)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            redirect = slash_redirect(request)
            if redirect is not None:
                return redirect
            return app.message(
                "Not found", "There is no page here.", 404, links=[("/archive/", "Archive")]
            )
        texts = {
            400: ("Bad request", "The request could not be read."),
            405: ("Method not allowed", "This page does not take that."),
            408: ("Too slow", "The request took too long to arrive."),
            413: ("Too large", "The request is too large."),
        }
        title, text = texts.get(status, ("Error", "Something went wrong."))
        log.info("%s %s -> %d", request.method, request.url.path, status)
        return app.message(title, text, status)

    routes = [
        Route("/", home),
        Route("/subscribe", subscribe_get, methods=["GET"]),
        *signup_routes(app),
        *prefs_routes(app),
        *archive_routes(app),
        *bounce_routes(app),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/static/tz.js", tz_script, methods=["GET"]),
    ]
    starlette = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
        middleware=[
            Middleware(
                BodyGuard,
                max_body=MAX_BODY,
                timeout=body_timeout,
                larger=[("/bounces/", MAX_HOOK_BODY)],
            )
        ],
    )
    starlette.router.redirect_slashes = False
    starlette.state.web = app
    return starlette


__all__ = [
    "WebApp",
    "create_app",
    "mailer_sender",
]
