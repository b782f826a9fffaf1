"""The web endpoints: subscribe (double opt-in), confirm, unsubscribe (RFC 8058), the
archive of past editions and its feeds, and a health check. A Starlette app; uvicorn
serves it (``newsletter serve``, or ``newsletter run`` alongside the scheduler).

Routes::

    GET  /                       -> 303 /subscribe
    GET  /subscribe              the form (email, digests, interests, topics, time zone)
    POST /subscribe              records a pending address, mails a confirmation link
    GET  /confirm/{token}        activates the address (signed token, expires)
    GET  /unsubscribe/{token}    a page with one button (never unsubscribes: scanners GET)
    POST /unsubscribe/{token}    unsubscribes at once: 200, no redirect, idempotent
    GET  /archive/...            past editions and their feeds (``serve.archive``)
    GET  /healthz                {"status": "ok"} when the database answers

Privacy: a subscribe request gets the same answer (and the same mail, a confirmation
link) whether or not the address is known, so the form reveals nothing about who is
subscribed. Pages carry ``Referrer-Policy: no-referrer`` so the tokens in their URLs
never leak to the sites an archive page links to. A confirmation link's age is read
on the app's clock. Form fields are read and checked by ``serve.forms``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from newsletter.clock import now_utc
from newsletter.config import DigestConfig, Settings
from newsletter.errors import BadTokenError, ExpiredTokenError, NewsletterError
from newsletter.models import Subscriber
from newsletter.render.templates import make_environment, render_template
from newsletter.serve.archive import EditionArchive, archive_routes
from newsletter.serve.forms import (
    SUBSCRIBE_LIMIT,
    SUBSCRIBE_WINDOW,
    SubscribeRateLimiter,
    chosen_topics,
    client_key,
    first_value,
    normalize_email,
    parse_interests,
    read_form,
    valid_timezone,
)
from newsletter.services.subscriptions import leave_digest
from newsletter.services.tokens import make_token, parse_unsubscribe_value, read_token
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber, save_subscriber

if TYPE_CHECKING:
    from newsletter.deliver.mailers import Mailer

log = logging.getLogger("newsletter.serve.web")

CONFIRM_MAX_AGE = 3 * 24 * 3600
"""Seconds a confirmation link stays valid (its age is read on the app's clock)."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
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
    limiter: SubscribeRateLimiter = field(
        default_factory=lambda: SubscribeRateLimiter(SUBSCRIBE_LIMIT, SUBSCRIBE_WINDOW)
    )
    env: jinja2.Environment = field(init=False)
    archive: EditionArchive = field(init=False)

    def __post_init__(self) -> None:
        self.env = make_environment(self.settings.template_dir)
        self.archive = EditionArchive(self.settings, self.store, self.env)

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

    def message(
        self, title: str, text: str, status: int = 200, *, links: Sequence[tuple[str, str]] = ()
    ) -> HTMLResponse:
        return self.page("message.html.j2", status, title=title, text=text, links=list(links))

    def _site_title(self) -> str:
        ds = self.digests
        return ds[0].title if len(ds) == 1 else "Newsletter"

    # -- subscriptions -------------------------------------------------------------------

    def confirm_token(self, sub: Subscriber) -> str:
        value = json.dumps(
            {
                "e": sub.email,
                "d": list(sub.digests),
                "i": list(sub.interests),
                "p": list(sub.topics),
                "t": sub.timezone,
            },
            separators=(",", ":"),
        )
        return make_token("confirm", value, self.secret, now=self.clock())

    def confirmation_mail(self, sub: Subscriber, token: str) -> tuple[bytes, str]:
        """The confirmation message (plain text and HTML) and its Message-ID."""
        mail = self.settings.mail
        titles = [c.title for c in self.digests if not sub.digests or c.name in sub.digests]
        context = {
            "confirm_url": f"{self.base_url}/confirm/{token}",
            "titles": titles,
            "email": sub.email,
            "days": CONFIRM_MAX_AGE // 86400,
            "site_title": self._site_title(),
        }
        msg = EmailMessage()
        msg["From"] = mail.from_address
        msg["To"] = sub.email
        if mail.reply_to:
            msg["Reply-To"] = mail.reply_to
        msg["Subject"] = f"Confirm your subscription to {', '.join(titles) or 'the newsletter'}"
        msg["Date"] = format_datetime(self.clock())
        mid = make_msgid(domain=mail.domain)
        msg["Message-ID"] = mid
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(render_template(self.env, "web/confirm_email.txt.j2", context))
        msg.add_alternative(
            render_template(self.env, "web/confirm_email.html.j2", context), subtype="html"
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
    limiter: SubscribeRateLimiter | None = None,
) -> Starlette:
    """The Starlette app. Confirmation mail goes through ``send_mail``, else through
    ``mailer`` (a ``deliver.Mailer``), else through the configured mailer."""
    from newsletter.services.tokens import secret_key

    if send_mail is None:
        if mailer is None:
            from newsletter.deliver.mailers import make_mailer

            mailer = make_mailer(settings)
        send_mail = mailer_sender(settings, mailer)
    key = secret or secret_key(required=settings.mail.delivery == "smtp")
    app = WebApp(settings, store, send_mail, key, clock)
    if limiter is not None:
        app.limiter = limiter
    return _starlette(app)


def _starlette(app: WebApp) -> Starlette:
    async def home(request: Request) -> Response:
        return RedirectResponse("/subscribe", status_code=303)

    def subscribe_form(
        status: int = 200,
        *,
        errors: Sequence[str] = (),
        email: str = "",
        chosen: Sequence[str] = (),
        interests: str = "",
        topics: Sequence[str] = (),
        timezone: str = "UTC",
    ) -> HTMLResponse:
        from newsletter.services.subscriptions import topic_names

        return app.page(
            "subscribe.html.j2",
            status,
            digests=app.digests,
            errors=list(errors),
            email=email,
            chosen=set(chosen or [d.name for d in app.digests]),
            interests=interests,
            topic_names=topic_names(app.digests),
            topics=set(topics),
            timezone=timezone,
        )

    async def subscribe_get(request: Request) -> Response:
        return subscribe_form()

    async def subscribe_post(request: Request) -> Response:
        if not app.limiter.allow(client_key(request)):
            return app.message(
                "Too many requests",
                "Please wait a few minutes before trying again.",
                429,
            )
        form = await read_form(request)
        raw_email = first_value(form, "email")
        raw_interests = (form.get("interests") or [""])[0]
        raw_tz = first_value(form, "timezone") or "UTC"
        known = [d.name for d in app.digests]
        chosen = [d for d in form.get("digest", []) if d in known]
        if len(known) == 1:
            chosen = known
        errors = []
        email, err = normalize_email(raw_email)
        if err:
            errors.append(err)
        if not chosen:
            errors.append("Choose at least one newsletter.")
        interests, err = parse_interests(raw_interests)
        if err:
            errors.append(err)
        topics = chosen_topics(form.get("topic", []), app.digests, chosen)
        tz = valid_timezone(raw_tz)
        if tz is None:
            errors.append("Choose a time zone like Europe/Paris or America/New_York.")
        if errors:
            return subscribe_form(
                400,
                errors=errors,
                email=raw_email,
                chosen=chosen,
                interests=raw_interests,
                topics=topics,
                timezone=raw_tz,
            )
        if first_value(form, "website"):
            # The honeypot field is hidden from people; only bots fill it. Answer as for
            # anyone else and do nothing.
            return app.page("check_inbox.html.j2")
        digests = tuple(chosen) if len(chosen) < len(known) else ()
        wanted = Subscriber(
            email=email,
            digests=digests,
            interests=interests,
            topics=topics,
            timezone=tz or "UTC",
            status="pending",
        )
        now = app.clock()
        existing = await asyncio.to_thread(get_subscriber, app.store, email)
        if existing is None or existing.status == "pending":
            # A known address keeps its status until the owner confirms the change.
            await asyncio.to_thread(save_subscriber, app.store, wanted, now=now)
        token = app.confirm_token(wanted)
        data, mid = app.confirmation_mail(wanted, token)
        log.info("subscribe request: confirmation mailed")
        response = app.page("check_inbox.html.j2")
        response.background = BackgroundTask(_send_quietly, app, email, data, mid)
        return response

    async def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            value = read_token(
                "confirm", token, app.secret, max_age=CONFIRM_MAX_AGE, now=app.clock()
            )
            data = json.loads(value)
            email = str(data["e"])
            digests = tuple(str(d) for d in data["d"])
            interests = tuple(str(i) for i in data["i"])
            # Links mailed before topics existed carry none: everything.
            topics = tuple(str(p) for p in data.get("p", ()))
            tz = valid_timezone(str(data["t"])) or "UTC"
        except ExpiredTokenError:
            return app.message(
                "This link has expired",
                "Confirmation links are valid for a few days. Please subscribe again.",
                400,
                links=[("/subscribe", "Subscribe again")],
            )
        except (BadTokenError, ValueError, KeyError, TypeError):
            return bad_link()
        existing = await asyncio.to_thread(get_subscriber, app.store, email)
        sub = Subscriber(
            email=email,
            name=existing.name if existing else "",
            digests=digests,
            interests=interests,
            topics=topics,
            timezone=tz,
            status="active",
            format=existing.format if existing else "html",
        )
        await asyncio.to_thread(save_subscriber, app.store, sub, now=app.clock())
        log.info("subscription confirmed")
        titles = [d.title for d in app.digests if not digests or d.name in digests]
        return app.page("confirmed.html.j2", titles=titles, email=email)

    def bad_link() -> HTMLResponse:
        return app.message(
            "This link is not valid",
            "The link may have been cut or changed. Use the link from the email exactly "
            "as it came, or subscribe again.",
            400,
            links=[("/subscribe", "Subscribe")],
        )

    def read_unsubscribe(token: str) -> tuple[str, str] | None:
        try:
            return parse_unsubscribe_value(read_token("unsubscribe", token, app.secret))
        except BadTokenError:
            return None

    async def unsubscribe_get(request: Request) -> Response:
        token = request.path_params["token"]
        found = read_unsubscribe(token)
        if found is None:
            return bad_link()
        digest, email = found
        cfg = app.digest_cfg(digest)
        return app.page(
            "unsubscribe.html.j2",
            email=email,
            title=cfg.title if cfg else digest,
            action=f"/unsubscribe/{token}",
        )

    async def unsubscribe_post(request: Request) -> Response:
        token = request.path_params["token"]
        found = read_unsubscribe(token)
        if found is None:
            return bad_link()
        # The body is "List-Unsubscribe=One-Click" from mail clients (RFC 8058) or the
        # page's button; either way the signed token is what authorizes the change.
        form = await read_form(request)
        one_click = first_value(form, "List-Unsubscribe") == "One-Click"
        digest, email = found
        changed = await asyncio.to_thread(
            leave_digest,
            app.store,
            email,
            digest,
            [d.name for d in app.digests],
            now=app.clock(),
        )
        log.info("unsubscribe digest=%s one_click=%s changed=%s", digest, one_click, changed)
        cfg = app.digest_cfg(digest)
        return app.page("unsubscribed.html.j2", email=email, title=cfg.title if cfg else digest)

    async def healthz(request: Request) -> Response:
        try:
            await asyncio.to_thread(app.store.editions, None, limit=1)
        except Exception as exc:  # any database failure means "not healthy"
            return JSONResponse({"status": "error", "database": str(exc)[:200]}, 503)
        return JSONResponse({"status": "ok"})

    async def tz_script(request: Request) -> Response:
        return PlainTextResponse(
            TZ_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return app.message(
                "Not found", "There is no page here.", 404, links=[("/archive/", "Archive")]
            )
        if status == 405:
            return app.message("Method not allowed", "This page does not take that.", 405)
        if status == 413:
            return app.message("Too large", "The request is too large.", 413)
        return app.message("Error", "Something went wrong.", status)

    routes = [
        Route("/", home),
        Route("/subscribe", subscribe_get, methods=["GET"]),
        Route("/subscribe", subscribe_post, methods=["POST"]),
        Route("/confirm/{token}", confirm, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_get, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        *archive_routes(app),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/static/tz.js", tz_script, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    starlette.state.web = app
    return starlette


async def _send_quietly(app: WebApp, email: str, data: bytes, mid: str) -> None:
    # Runs after the answer went out: a failure must not show in the page (that would
    # tell the requester something), so it is logged for the operator.
    try:
        await app.send_mail(email, data, mid)
    except NewsletterError as exc:
        log.warning("confirmation mail not sent: %s", exc)
    except OSError as exc:
        log.warning("confirmation mail not sent: %s", exc)


__all__ = [
    "WebApp",
    "create_app",
    "mailer_sender",
]
