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
    GET  /archive/               every digest's past editions
    GET  /archive/{digest}/      one digest's past editions
    GET  /archive/{digest}/{period}   one edition
    GET  /{digest}/feed.xml      RSS 2.0 of the editions; /{digest}/atom.xml: Atom
    GET  /healthz                {"status": "ok"} when the database answers

Privacy: a subscribe request gets the same answer (and the same mail, a confirmation
link) whether or not the address is known, so the form reveals nothing about who is
subscribed. Pages carry ``Referrer-Policy: no-referrer`` so the tokens in their URLs
never leak to the sites an archive page links to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from newsletter.errors import NewsletterError
from newsletter.models import Subscriber
from newsletter.render.archive import (
    ArchivedEdition,
    FeedMeta,
    archive_edition,
    archive_index,
    editions_feed,
)
from newsletter.render.templates import make_environment, render_template
from newsletter.services.tokens import (
    BadTokenError,
    ExpiredTokenError,
    make_token,
    parse_unsubscribe_value,
    read_token,
)
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber, save_subscriber, set_status

log = logging.getLogger("newsletter.serve.web")

CONFIRM_MAX_AGE = 3 * 24 * 3600
"""Seconds a confirmation link stays valid."""
MAX_BODY = 64 * 1024
MAX_INTERESTS = 10
MAX_INTEREST_CHARS = 60
FEED_EDITIONS = 30
SUBSCRIBE_LIMIT = 5
"""POST /subscribe requests per client address within ``SUBSCRIBE_WINDOW`` seconds."""
SUBSCRIBE_WINDOW = 600.0
_CACHE_SIZE = 64
_SPLIT_INTERESTS = re.compile(r"[,\n;]+")

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


class RateLimiter:
    """At most ``limit`` events per key within ``window`` seconds (a sliding window in
    memory: enough for one process; a proxy in front can do more)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Record one event for ``key``; False when over the limit."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle clients
            for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                del self._hits[k]
        return True


@dataclass
class WebApp:
    """Everything the endpoints need; ``create_app`` wraps it in Starlette."""

    settings: Settings
    store: Store
    send_mail: SendMail
    secret: str
    clock: Callable[[], datetime] = now_utc
    limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(SUBSCRIBE_LIMIT, SUBSCRIBE_WINDOW)
    )
    env: jinja2.Environment = field(init=False)
    _cache: OrderedDict[int, ArchivedEdition] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.env = make_environment(self.settings.template_dir)

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

    # -- archive -------------------------------------------------------------------------

    def archived(self, edition_id: int) -> ArchivedEdition | None:
        """An edition rebuilt and rendered (cached: editions never change)."""
        if edition_id in self._cache:
            self._cache.move_to_end(edition_id)
            return self._cache[edition_id]
        return None

    def archive(self, digest: str, period: str) -> ArchivedEdition | None:
        from newsletter.services import editions

        cfg = self.digest_cfg(digest)
        if cfg is None:
            return None
        edition = self.store.edition(digest, period)
        if edition is None:
            return None
        cached = self.archived(edition.id)
        if cached is not None:
            return cached
        sources = editions.with_titles(editions.digest_sources(self.settings, cfg), self.store)
        item = archive_edition(
            edition,
            self.store.edition_entries(edition.id),
            options=editions.digest_options(cfg),
            env=self.env,
            sources=sources,
        )
        self._cache[edition.id] = item
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return item

    def feed(self, digest: str, fmt: str) -> bytes | None:
        """The editions feed of a configured digest (``None`` for an unknown one)."""
        cfg = self.digest_cfg(digest)
        if cfg is None or fmt not in ("rss", "atom"):
            return None
        items = [
            a
            for e in self.store.editions(digest, limit=FEED_EDITIONS)
            if (a := self.archive(e.digest, e.period)) is not None
        ]
        meta = FeedMeta(cfg.name, cfg.title, cfg.description, self.base_url)
        return editions_feed(meta, items, "rss" if fmt == "rss" else "atom")

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
        return make_token("confirm", value, self.secret)

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


def mailer_sender(settings: Settings, mailer: Any) -> SendMail:
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


# -- request helpers -----------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, list[str]]:
    """The form fields of a POST: url-encoded or multipart/form-data (RFC 8058 allows
    both for one-click unsubscribe), at most ``MAX_BODY`` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, "The request is too large.")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        msg = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode("latin-1") + body
        )
        out: dict[str, list[str]] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str) and part.get_filename() is None:
                    payload = part.get_payload(decode=True)
                    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
                    out.setdefault(name, []).append(text)
        return out
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=100)


def client_key(request: Request) -> str:
    """Who is asking, for rate limiting (uvicorn's ``--proxy-headers`` resolves proxies)."""
    return request.client.host if request.client else "unknown"


def _first(form: Mapping[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    return values[0].strip()


def parse_interests(text: str) -> tuple[tuple[str, ...], str | None]:
    """Comma-separated keywords -> (interests, error)."""
    seen: dict[str, str] = {}
    for raw in _SPLIT_INTERESTS.split(text):
        word = " ".join(raw.split())
        if word:
            seen.setdefault(word.casefold(), word)
    interests = tuple(seen.values())
    if len(interests) > MAX_INTERESTS:
        return interests, f"Give at most {MAX_INTERESTS} interests."
    if any(len(i) > MAX_INTEREST_CHARS for i in interests):
        return interests, f"Each interest can be at most {MAX_INTEREST_CHARS} characters."
    return interests, None


def chosen_topics(
    values: Sequence[str], digests: Sequence[DigestConfig], chosen: Sequence[str]
) -> tuple[str, ...]:
    """The checked topics that are configured topics of the chosen digests (anything
    else was not on the form, and is dropped), in order, without repeats."""
    from newsletter.services.subscriptions import topic_names

    valid = set(topic_names(d for d in digests if d.name in chosen))
    return tuple(dict.fromkeys(v for v in values if v in valid))


def normalize_email(value: str) -> tuple[str, str | None]:
    """(normalized address, error): the same normalization as ``subscribers add``, so
    one person is one subscriber whichever way they came in."""
    from newsletter.services.subscriptions import AddressError, normalize_address

    if not value:
        return value, "Enter your email address."
    try:
        return normalize_address(value), None
    except AddressError:
        return value, "That does not look like an email address (like name@example.org)."


def valid_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value


# -- endpoints -----------------------------------------------------------------------------


def create_app(
    settings: Settings,
    store: Store,
    *,
    send_mail: SendMail | None = None,
    mailer: Any = None,
    secret: str | None = None,
    clock: Callable[[], datetime] = now_utc,
    limiter: RateLimiter | None = None,
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
        raw_email = _first(form, "email")
        raw_interests = (form.get("interests") or [""])[0]
        raw_tz = _first(form, "timezone") or "UTC"
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
        if _first(form, "website"):
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
            value = read_token("confirm", token, app.secret, max_age=CONFIRM_MAX_AGE)
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
        one_click = _first(form, "List-Unsubscribe") == "One-Click"
        digest, email = found
        changed = await asyncio.to_thread(
            unsubscribe,
            app.store,
            email,
            digest,
            [d.name for d in app.digests],
            now=app.clock(),
        )
        log.info("unsubscribe digest=%s one_click=%s changed=%s", digest, one_click, changed)
        cfg = app.digest_cfg(digest)
        return app.page("unsubscribed.html.j2", email=email, title=cfg.title if cfg else digest)

    async def archive_all(request: Request) -> Response:
        titles = {d.name: d.title for d in app.digests}
        editions = await asyncio.to_thread(app.store.editions, None, limit=1000)
        return app.page("archive.html.j2", groups=archive_index(editions, titles), one=None)

    async def archive_digest(request: Request) -> Response:
        name = request.path_params["digest"]
        cfg = app.digest_cfg(name)
        if cfg is None:
            raise HTTPException(404)
        editions = await asyncio.to_thread(app.store.editions, name, limit=1000)
        return app.page(
            "archive.html.j2", groups=archive_index(editions, {name: cfg.title}), one=cfg
        )

    async def archive_edition_page(request: Request) -> Response:
        item = await asyncio.to_thread(
            app.archive, request.path_params["digest"], request.path_params["period"]
        )
        if item is None:
            raise HTTPException(404)
        return HTMLResponse(item.html, headers=SECURITY_HEADERS)

    def feed_endpoint(fmt: str, media: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            data = await asyncio.to_thread(app.feed, request.path_params["digest"], fmt)
            if data is None:
                raise HTTPException(404)
            return Response(
                data,
                media_type=media,
                headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"},
            )

        return endpoint

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
        Route("/archive/", archive_all, methods=["GET"]),
        Route("/archive", lambda r: RedirectResponse("/archive/", 308), methods=["GET"]),
        Route("/archive/{digest}/", archive_digest, methods=["GET"]),
        Route("/archive/{digest}/{period}", archive_edition_page, methods=["GET"]),
        Route("/{digest}/feed.xml", feed_endpoint("rss", "application/rss+xml"), methods=["GET"]),
        Route("/{digest}/atom.xml", feed_endpoint("atom", "application/atom+xml"), methods=["GET"]),
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


def unsubscribe(
    store: Store, email: str, digest: str, configured: Sequence[str], *, now: datetime
) -> bool:
    """Take ``email`` off ``digest``; with no digest left the address is unsubscribed.
    Returns whether anything changed (False again and again: it is idempotent)."""
    sub = get_subscriber(store, email)
    if sub is None or sub.status in ("unsubscribed", "bounced"):
        return False
    current = list(sub.digests) or list(configured)
    if digest not in current:
        return False
    remaining = tuple(d for d in current if d != digest)
    if not remaining:
        set_status(store, email, "unsubscribed", now=now)
        return True
    from dataclasses import replace

    save_subscriber(store, replace(sub, digests=remaining), now=now)
    return True


__all__ = [
    "RateLimiter",
    "WebApp",
    "chosen_topics",
    "create_app",
    "mailer_sender",
    "normalize_email",
    "parse_interests",
    "read_form",
    "unsubscribe",
]
