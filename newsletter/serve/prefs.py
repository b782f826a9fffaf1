"""The preference page: ``/prefs/{token}``, reached by the signed link in every email
("Manage your subscription"). It shows and changes a subscriber's newsletters, topics,
interests, format and time zone; pauses their mail for some weeks (``paused_until``:
every send skips them until then) or resumes it; and unsubscribes from everything.

The token (``services.tokens``, kind ``prefs``) carries the address and is the only
authorization, as for the unsubscribe link. ``GET`` only shows; every change is a
``POST`` from the page itself (``guard.same_origin``), so a scanner that opens the link
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter.errors import BadTokenError
from newsletter.models import Subscriber
from newsletter.serve.forms import (
    chosen_topics,
    first_value,
    parse_interests,
    read_form,
    valid_format,
    valid_timezone,
)
from newsletter.serve.guard import same_origin
from newsletter.serve.hints import schedule_hint
from newsletter.services.bounces import count_unsubscribe
from newsletter.services.tokens import make_token, read_token
from newsletter.store import web_limits
from newsletter.store.subscribers import get_subscriber, save_subscriber, set_status

if TYPE_CHECKING:
    from newsletter.serve.web import WebApp

log = logging.getLogger("newsletter.serve.web")

PAUSE_WEEKS = (1, 2, 4, 8, 12)
"""The pauses the page offers, in weeks."""


def prefs_token(secret: str, email: str, *, now: datetime) -> str:
    """The signed token of an address's preference link."""
    return make_token("prefs", email, secret, now=now)


def prefs_routes(app: WebApp) -> list[Route]:
    """``GET`` and ``POST /prefs/{token}``."""

    def address(token: str) -> str | None:
        try:
            return read_token("prefs", token, app.secret)
        except BadTokenError:
            return None

    async def subscriber_of(request: Request) -> Subscriber | HTMLResponse:
        email = address(request.path_params["token"])
        if email is None:
            return app.message(
                "This link is not valid",
                "The link may have been cut or changed. Use the link from the email "
                "exactly as it came.",
                400,
                links=[("/subscribe", "Subscribe")],
            )
        sub = await asyncio.to_thread(get_subscriber, app.store, email)
        if sub is None or sub.status != "active":
            return app.message(
                "Not subscribed",
                "This address receives nothing from us now. Subscribe again to choose "
                "what it receives.",
                links=[("/subscribe", "Subscribe")],
            )
        return sub

    def show(
        request: Request,
        sub: Subscriber,
        status: int = 200,
        *,
        notice: str = "",
        errors: Sequence[str] = (),
        form: dict[str, Any] | None = None,
    ) -> HTMLResponse:
        from newsletter.services.subscriptions import topic_names

        known = [d.name for d in app.digests]
        values: dict[str, Any] = {
            "chosen": set(sub.digests or known),
            "topics": set(sub.topics),
            "interests": ", ".join(sub.interests),
            "format": sub.format,
            "timezone": sub.timezone,
            "local_hour": sub.local_hour,
            **(form or {}),
        }
        now = app.clock()
        paused = sub.paused_until if sub.paused_at(now) else None
        return app.page(
            "prefs.html.j2",
            status,
            email=sub.email,
            action=request.url.path,
            digests=app.digests,
            hints={d.name: schedule_hint(d) for d in app.digests},
            local_digests=[d.title or d.name for d in app.digests if d.local_hour is not None],
            topic_names=topic_names(app.digests),
            paused_until=f"{paused:%-d %B %Y}" if paused else "",
            pause_weeks=PAUSE_WEEKS,
            notice=notice,
            errors=list(errors),
            **values,
        )

    async def prefs_get(request: Request) -> Response:
        found = await subscriber_of(request)
        if isinstance(found, HTMLResponse):
            return found
        return show(request, found)

    async def prefs_post(request: Request) -> Response:
        if not same_origin(request, app.base_url):
            return app.message(
                "Not sent from this site", "This form can only be sent from its own page.", 403
            )
        found = await subscriber_of(request)
        if isinstance(found, HTMLResponse):
            return found
        sub = found
        form = await read_form(request)
        action = first_value(form, "action")
        now = app.clock()
        if action == "save":
            return await save(request, sub, form, now)
        if action == "pause":
            weeks = first_value(form, "weeks")
            if not weeks.isdigit() or int(weeks) not in PAUSE_WEEKS:
                return show(request, sub, 400, errors=["Choose how many weeks to pause."])
            until = now + timedelta(weeks=int(weeks))
            sub = await asyncio.to_thread(
                save_subscriber, app.store, replace(sub, paused_until=until), now=now
            )
            log.info("preferences: paused for %s weeks", weeks)
            return show(request, sub, notice=f"Paused: no mail until {until:%-d %B %Y}.")
        if action == "resume":
            sub = await asyncio.to_thread(
                save_subscriber, app.store, replace(sub, paused_until=None), now=now
            )
            return show(request, sub, notice="Resumed: the next edition will reach you.")
        if action == "leave":
            await asyncio.to_thread(set_status, app.store, sub.email, "unsubscribed", now=now)
            await count_left(sub, [], now)
            await asyncio.to_thread(web_limits.forget_confirmation, app.store, sub.email)
            log.info("preferences: unsubscribed from everything")
            return app.message(
                "Unsubscribed",
                f"{sub.email} will receive nothing more from us.",
                links=[("/subscribe", "Subscribe again")],
            )
        return show(request, sub, 400, errors=["Choose what to change."])

    async def count_left(sub: Subscriber, kept: Sequence[str], now: datetime) -> None:
        """Count each newsletter the subscriber left here in ``newsletter stats``, as the
        unsubscribe page and one-click do (``kept``: the ones still chosen)."""
        was = sub.digests or tuple(d.name for d in app.digests)
        for digest in (d for d in was if d not in kept):
            await asyncio.to_thread(
                count_unsubscribe, app.store, sub.email, digest, how="preferences", now=now
            )

    async def save(
        request: Request, sub: Subscriber, form: dict[str, list[str]], now: datetime
    ) -> Response:
        known = [d.name for d in app.digests]
        chosen = known if len(known) == 1 else [d for d in form.get("digest", []) if d in known]
        raw_interests = (form.get("interests") or [""])[0]
        raw_tz = first_value(form, "timezone") or "UTC"
        fmt = valid_format(first_value(form, "format"))
        topics = chosen_topics(form.get("topic", []), app.digests, chosen)
        errors = []
        if not chosen:
            errors.append("Choose at least one newsletter (or unsubscribe from everything below).")
        interests, err = parse_interests(raw_interests)
        if err:
            errors.append(err)
        tz = valid_timezone(raw_tz)
        if tz is None:
            errors.append("Choose a time zone like Europe/Paris or America/New_York.")
        raw_hour = first_value(form, "local_hour").strip()
        hour = int(raw_hour) if raw_hour.isdigit() and int(raw_hour) <= 23 else None
        if raw_hour and hour is None:
            errors.append("Choose an hour from 00:00 to 23:00.")
        if errors or tz is None:
            values = {
                "chosen": set(chosen),
                "topics": set(topics),
                "interests": raw_interests,
                "format": fmt,
                "timezone": raw_tz,
                "local_hour": hour,
            }
            return show(request, sub, 400, errors=errors, form=values)
        wanted = replace(
            sub,
            digests=tuple(chosen) if len(chosen) < len(known) else (),
            topics=topics,
            interests=interests,
            format=fmt,
            timezone=tz,
            local_hour=hour,
        )
        before = sub
        sub = await asyncio.to_thread(save_subscriber, app.store, wanted, now=now)
        await count_left(before, chosen, now)
        log.info("preferences saved")
        return show(request, sub, notice="Saved. The next edition follows your choices.")

    return [
        Route("/prefs/{token}", prefs_get, methods=["GET"]),
        Route("/prefs/{token}", prefs_post, methods=["POST"]),
    ]


__all__ = ["PAUSE_WEEKS", "prefs_routes", "prefs_token"]
