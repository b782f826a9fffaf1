"""The subscription endpoints: subscribe (double opt-in), confirm, unsubscribe (RFC 8058).

- ``POST /subscribe`` records a pending address and mails a confirmation link, within
  limits kept in the database (``store.web_limits``): per client (its IPv4 address or
  IPv6 /64) and per recipient (one mail an hour, a few a day). Whatever happens, the
  visitor sees the same page: the form tells nobody who is subscribed.
- ``GET /confirm/{token}`` shows a page with a button; only its ``POST`` confirms, so mail
  scanners that fetch links confirm nobody. The token carries a nonce stored with the
  address: a link works once, only the newest one works, and none issued before an
  unsubscribe does.
- ``POST /subscribe/resend`` (the check-inbox page's button) mails the newest
  confirmation link of a pending address again, within the same limits, and answers
  with the same page whatever happens.
- ``GET /unsubscribe/{token}`` shows a button; ``POST`` unsubscribes at once (RFC 8058).

Form posts from another site (``Origin``) are refused (``guard.same_origin``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter.errors import BadTokenError, ExpiredTokenError, NewsletterError
from newsletter.models import Subscriber
from newsletter.serve.forms import (
    chosen_topics,
    first_value,
    normalize_email,
    parse_interests,
    read_form,
    valid_format,
    valid_timezone,
)
from newsletter.serve.guard import client_network, same_origin
from newsletter.serve.welcome import welcome_mail
from newsletter.services.bounces import count_unsubscribe
from newsletter.services.subscriptions import leave_digest
from newsletter.services.tokens import parse_unsubscribe_value, read_token
from newsletter.store import web_limits
from newsletter.store.subscribers import get_subscriber, save_subscriber

if TYPE_CHECKING:
    from newsletter.serve.web import WebApp

log = logging.getLogger("newsletter.serve.web")

CLIENT_LIMIT = (5, timedelta(minutes=10))
"""Subscribe requests per client (IPv4 address or IPv6 /64) per window."""
CLIENT_DAY_LIMIT = (50, timedelta(days=1))
RECIPIENT_LIMIT = (1, timedelta(hours=1))
"""Confirmation mails to one address per window."""
RECIPIENT_DAY_LIMIT = (3, timedelta(days=1))
CLEANUP_EVERY = 600.0
"""Seconds between two clean-ups of expired limits and pending addresses (per process)."""


def _limited(app: WebApp, keys: list[tuple[str, tuple[int, timedelta]]]) -> bool:
    """Count one event under every key unless one of them is at its limit: True when
    limited (then nothing is counted under the keys after it)."""
    now = app.clock()
    for key, (limit, window) in keys[1:]:
        if not web_limits.would_allow(app.store, key, limit=limit, window=window, now=now):
            return True
    key, (limit, window) = keys[0]
    if not web_limits.hit(app.store, key, limit=limit, window=window, now=now):
        return True
    for key, (limit, window) in keys[1:]:
        web_limits.hit(app.store, key, limit=limit, window=window, now=now)
    return False


def _clean_up(app: WebApp) -> None:
    if time.monotonic() - app.last_cleanup < CLEANUP_EVERY:
        return
    app.last_cleanup = time.monotonic()
    _, pending = web_limits.clean_up(
        app.store, now=app.clock(), pending_max_age=app.pending_max_age
    )
    if pending:
        log.info("removed %d unconfirmed addresses older than %s", pending, app.pending_max_age)


def signup_routes(app: WebApp) -> list[Route]:
    """The subscribe, confirm and unsubscribe routes of the web app."""

    def in_thread(fn: Callable[..., Any], *args: Any, **kw: Any) -> Coroutine[Any, Any, Any]:
        return asyncio.to_thread(fn, *args, **kw)

    def cross_site() -> HTMLResponse:
        return app.message(
            "Not sent from this site",
            "This form can only be sent from its own page.",
            403,
            links=[("/subscribe", "Subscribe")],
        )

    def bad_link() -> HTMLResponse:
        return app.message(
            "This link is not valid",
            "The link may have been cut or changed. Use the link from the email exactly "
            "as it came, or subscribe again.",
            400,
            links=[("/subscribe", "Subscribe")],
        )

    async def subscribe_post(request: Request) -> Response:
        if not same_origin(request, app.base_url):
            return cross_site()
        client = client_network(request, app.trusted_proxies)
        client_keys = [
            (f"client:{client}", CLIENT_LIMIT),
            (f"client-day:{client}", CLIENT_DAY_LIMIT),
        ]
        if await in_thread(_limited, app, client_keys):
            log.info("subscribe request refused: client limit (%s)", client)
            return app.message(
                "Too many requests", "Please wait a few minutes before trying again.", 429
            )
        form = await read_form(request)
        raw_email = first_value(form, "email")
        raw_interests = (form.get("interests") or [""])[0]
        raw_tz = first_value(form, "timezone") or "UTC"
        fmt = valid_format(first_value(form, "format"))
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
            return app.subscribe_form(
                400,
                errors=errors,
                email=raw_email,
                chosen=chosen,
                interests=raw_interests,
                topics=topics,
                timezone=raw_tz,
                fmt=fmt,
            )
        if first_value(form, "website"):
            # The honeypot field is hidden from people; only bots fill it. Answer as for
            # anyone else and do nothing.
            return app.page("check_inbox.html.j2")
        await in_thread(_clean_up, app)
        rcpt_keys = [(f"rcpt:{email}", RECIPIENT_LIMIT), (f"rcpt-day:{email}", RECIPIENT_DAY_LIMIT)]
        if await in_thread(_limited, app, rcpt_keys):
            # The same page as when a mail goes out: the answer reveals nothing.
            log.info("subscribe request: no mail, the address had one recently")
            return app.page("check_inbox.html.j2")
        digests = tuple(chosen) if len(chosen) < len(known) else ()
        wanted = Subscriber(
            email=email,
            digests=digests,
            interests=interests,
            topics=topics,
            timezone=tz or "UTC",
            status="pending",
            format=fmt,
        )
        now = app.clock()
        existing = await in_thread(get_subscriber, app.store, email)
        if existing is None or existing.status == "pending":
            # A known address keeps its status until the owner confirms the change.
            await in_thread(save_subscriber, app.store, wanted, now=now)
        nonce = await in_thread(web_limits.issue_confirmation, app.store, email, now=now)
        token = app.confirm_token(wanted, nonce)
        data, mid = app.confirmation_mail(wanted, token)
        log.info("subscribe request: confirmation mailed")
        response = app.page("check_inbox.html.j2")
        response.background = BackgroundTask(_send_quietly, app, email, data, mid)
        return response

    async def resend_post(request: Request) -> Response:
        """Send the newest confirmation link again to a pending address, within the
        same limits as subscribing; the answer is the same whatever happens."""
        if not same_origin(request, app.base_url):
            return cross_site()
        client = client_network(request, app.trusted_proxies)
        client_keys = [
            (f"client:{client}", CLIENT_LIMIT),
            (f"client-day:{client}", CLIENT_DAY_LIMIT),
        ]
        if await in_thread(_limited, app, client_keys):
            return app.message(
                "Too many requests", "Please wait a few minutes before trying again.", 429
            )
        form = await read_form(request)
        email, err = normalize_email(first_value(form, "email"))
        answer = app.page("check_inbox.html.j2")
        if err:
            return answer
        pending = await in_thread(get_subscriber, app.store, email)
        if pending is None or pending.status != "pending":
            # Nothing to confirm (an active address asked for changes through the form
            # gets them with a new request): the same page, no mail.
            return answer
        rcpt_keys = [(f"rcpt:{email}", RECIPIENT_LIMIT), (f"rcpt-day:{email}", RECIPIENT_DAY_LIMIT)]
        if await in_thread(_limited, app, rcpt_keys):
            log.info("confirmation resend: no mail, the address had one recently")
            return answer
        nonce = await in_thread(web_limits.issue_confirmation, app.store, email, now=app.clock())
        data, mid = app.confirmation_mail(pending, app.confirm_token(pending, nonce))
        log.info("confirmation resend: mailed")
        answer.background = BackgroundTask(_send_quietly, app, email, data, mid)
        return answer

    def read_confirm(token: str) -> tuple[Subscriber, str, bool] | HTMLResponse:
        """The wanted subscription, the link's nonce and whether the link predates the
        format choice (then the stored format stays), or the page saying why not."""
        try:
            value = read_token(
                "confirm", token, app.secret, max_age=app.confirm_max_age, now=app.clock()
            )
            data = json.loads(value)
            nonce = str(data["n"])
            sub = Subscriber(
                email=str(data["e"]),
                digests=tuple(str(d) for d in data["d"]),
                interests=tuple(str(i) for i in data["i"]),
                # Links mailed before topics existed carry none: everything.
                topics=tuple(str(p) for p in data.get("p", ())),
                timezone=valid_timezone(str(data["t"])) or "UTC",
                status="active",
                # Links mailed before the form had a format carry none: keep the stored one.
                format=valid_format(str(data.get("f", ""))),
            )
            keeps_format = "f" not in data
        except ExpiredTokenError:
            return app.message(
                "This link has expired",
                "Confirmation links are valid for a few days. Please subscribe again.",
                400,
                links=[("/subscribe", "Subscribe again")],
            )
        except (BadTokenError, ValueError, KeyError, TypeError, AttributeError):
            return bad_link()
        return sub, nonce, keeps_format

    def titles_of(sub: Subscriber) -> list[str]:
        return [d.title for d in app.digests if not sub.digests or d.name in sub.digests]

    async def confirm_get(request: Request) -> Response:
        # GET and HEAD only show the button: link scanners fetch, people press.
        token = request.path_params["token"]
        found = read_confirm(token)
        if isinstance(found, HTMLResponse):
            return found
        sub = found[0]
        return app.page(
            "confirm.html.j2", email=sub.email, titles=titles_of(sub), action=f"/confirm/{token}"
        )

    async def confirm_post(request: Request) -> Response:
        if not same_origin(request, app.base_url):
            return cross_site()
        found = read_confirm(request.path_params["token"])
        if isinstance(found, HTMLResponse):
            return found
        wanted, nonce, keeps_format = found
        now = app.clock()
        spent = await in_thread(
            web_limits.use_confirmation,
            app.store,
            wanted.email,
            nonce,
            not_before=now - timedelta(seconds=app.confirm_max_age),
        )
        if not spent:
            existing = await in_thread(get_subscriber, app.store, wanted.email)
            if existing is not None and existing.status == "active":
                return app.page(
                    "confirmed.html.j2", titles=titles_of(existing), email=existing.email
                )
            return app.message(
                "This link no longer works",
                "It was used already, or a newer one was sent, or the address was "
                "unsubscribed since. Subscribe again for a new link.",
                400,
                links=[("/subscribe", "Subscribe again")],
            )
        existing = await in_thread(get_subscriber, app.store, wanted.email)
        if existing is not None:
            fmt = existing.format if keeps_format else wanted.format
            wanted = replace(wanted, name=existing.name, format=fmt)
        await in_thread(save_subscriber, app.store, wanted, now=now)
        log.info("subscription confirmed")
        data, mid = welcome_mail(app, wanted)
        response = app.page("confirmed.html.j2", titles=titles_of(wanted), email=wanted.email)
        response.background = BackgroundTask(_send_quietly, app, wanted.email, data, mid)
        return response

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
        # page's button; either way the signed token is what authorizes the change, so
        # no Origin check here (mail clients post from anywhere).
        form = await read_form(request)
        one_click = first_value(form, "List-Unsubscribe") == "One-Click"
        digest, email = found
        changed = await in_thread(
            leave_digest,
            app.store,
            email,
            digest,
            [d.name for d in app.digests],
            now=app.clock(),
        )
        await in_thread(web_limits.forget_confirmation, app.store, email)
        if changed:  # counted in `newsletter stats` against the last edition received
            how = "one-click unsubscribe" if one_click else "unsubscribe page"
            await in_thread(count_unsubscribe, app.store, email, digest, how=how, now=app.clock())
        log.info("unsubscribe digest=%s one_click=%s changed=%s", digest, one_click, changed)
        cfg = app.digest_cfg(digest)
        return app.page("unsubscribed.html.j2", email=email, title=cfg.title if cfg else digest)

    return [
        Route("/subscribe", subscribe_post, methods=["POST"]),
        Route("/subscribe/resend", resend_post, methods=["POST"]),
        Route("/confirm/{token}", confirm_get, methods=["GET"]),
        Route("/confirm/{token}", confirm_post, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_get, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
    ]


async def _send_quietly(app: WebApp, email: str, data: bytes, mid: str) -> None:
    # Runs after the answer went out: a failure must not show in the page (that would
    # tell the requester something), so it is logged for the operator.
    try:
        await app.send_mail(email, data, mid)
    except NewsletterError as exc:
        log.warning("mail not sent: %s", exc)
    except OSError as exc:
        log.warning("mail not sent: %s", exc)


__all__ = [
    "CLIENT_DAY_LIMIT",
    "CLIENT_LIMIT",
    "RECIPIENT_DAY_LIMIT",
    "RECIPIENT_LIMIT",
    "signup_routes",
]
