"""The bounce webhooks: where a mail server or a sending service hands us bounces,
complaints and unsubscribe requests over HTTP (the other way in is the IMAP mailbox).

Routes::

    POST /bounces/raw      one raw RFC 822 message (a DSN, an ARF report, an unsubscribe
                           mail), e.g. piped from the MTA; signed
    POST /bounces/events   JSON events in our documented shape (deliver/bounce_events.py); signed
    POST /bounces/mailgun  Mailgun's webhook body; Mailgun's own signature inside it

"Signed": ``X-Newsletter-Signature: sha256=<hex HMAC-SHA256 of the body with
bounces.webhook_secret>``. An endpoint whose key is not configured answers 404; a wrong
signature 401 (and too many of them from one client 429); a body not in the shape 400.
Answers are JSON: ``{"results": [{"id": ..., "result": ..., "detail": ...}]}``.
Every call counts against the client's limit, like the forms (``store.web_limits``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from newsletter.deliver import bounce_events
from newsletter.deliver.bounces import Report, Skipped, parse_report
from newsletter.errors import BounceEventError
from newsletter.serve.guard import client_network
from newsletter.services.bounces import Tally, process_reports
from newsletter.store import web_limits

if TYPE_CHECKING:
    from newsletter.serve.web import WebApp

log = logging.getLogger("newsletter.serve.bounce_hooks")

MAX_HOOK_BODY = 2 * 1024 * 1024
"""The largest body a bounce webhook reads (a DSN may quote the whole message)."""
CLIENT_LIMIT = (600, timedelta(minutes=1))
"""Calls per client and window (a sending service posts one event per call)."""
BAD_SIGNATURE_LIMIT = (20, timedelta(hours=1))
"""Wrongly signed calls per client and window, before every call is refused."""
MAILGUN_MAX_AGE = timedelta(hours=12)
"""How old a Mailgun signature's timestamp may be (Mailgun retries for up to 8 hours)."""


def bounce_routes(app: WebApp) -> list[Route]:
    """The webhook routes of the web app."""
    cfg = app.settings.bounces

    def limited(request: Request) -> bool:
        now, client = app.clock(), client_network(request, app.trusted_proxies)
        bad_key = f"bounce-bad:{client}"
        bad_limit, bad_window = BAD_SIGNATURE_LIMIT
        if not web_limits.would_allow(
            app.store, bad_key, limit=bad_limit, window=bad_window, now=now
        ):
            return True
        limit, window = CLIENT_LIMIT
        return not web_limits.hit(
            app.store, f"bounce:{client}", limit=limit, window=window, now=now
        )

    def bad_signature(request: Request) -> None:
        client = client_network(request, app.trusted_proxies)
        limit, window = BAD_SIGNATURE_LIMIT
        web_limits.hit(
            app.store, f"bounce-bad:{client}", limit=limit, window=window, now=app.clock()
        )
        log.warning("bounce webhook %s: wrong signature from %s", request.url.path, client)

    async def guarded(request: Request, key: str | None) -> bytes | Response:
        if not key:
            return JSONResponse({"error": "not configured"}, 404)
        if await asyncio.to_thread(limited, request):
            return JSONResponse({"error": "too many requests"}, 429)
        return await request.body()

    def run(reports: list[Report | Skipped], *, trust_message_id: bool) -> Tally:
        return process_reports(
            app.store,
            reports,
            cfg=cfg,
            secret=app.secret,
            digests=[d.name for d in app.digests],
            now=app.clock(),
            trust_message_id=trust_message_id,
        )

    async def answer(reports: list[Report | Skipped], *, trust_message_id: bool) -> Response:
        tally = await asyncio.to_thread(run, reports, trust_message_id=trust_message_id)
        log.info("bounce webhook: %s", tally.summary())
        results = [
            {"id": o.source_id, "result": o.result, "detail": o.detail} for o in tally.outcomes
        ]
        return JSONResponse({"results": results})

    def secret() -> str:
        return cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else ""

    async def signed(request: Request) -> bytes | Response:
        body = await guarded(request, secret())
        if isinstance(body, Response):
            return body
        given = request.headers.get(bounce_events.SIGNATURE_HEADER, "")
        if not bounce_events.signature_ok(body, given, secret()):
            await asyncio.to_thread(bad_signature, request)
            return JSONResponse(
                {"error": f"wrong or missing {bounce_events.SIGNATURE_HEADER}"}, 401
            )
        return body

    async def raw_post(request: Request) -> Response:
        body = await signed(request)
        if isinstance(body, Response):
            return body
        return await answer([parse_report(body)], trust_message_id=False)

    async def events_post(request: Request) -> Response:
        body = await signed(request)
        if isinstance(body, Response):
            return body
        try:
            reports = bounce_events.parse_events(body)
        except BounceEventError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        # Signed with our key: the sender is trusted to name a Message-ID.
        return await answer(reports, trust_message_id=True)

    async def mailgun_post(request: Request) -> Response:
        key = cfg.mailgun_signing_key.get_secret_value() if cfg.mailgun_signing_key else ""
        body = await guarded(request, key)
        if isinstance(body, Response):
            return body
        try:
            data = bounce_events.loads(body)
        except BounceEventError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        stamp = bounce_events.mailgun_timestamp(data)
        fresh = (
            stamp is not None
            and abs(app.clock().timestamp() - stamp) <= MAILGUN_MAX_AGE.total_seconds()
        )
        if not (bounce_events.mailgun_signature_ok(data, key) and fresh):
            await asyncio.to_thread(bad_signature, request)
            return JSONResponse({"error": "wrong, missing or stale Mailgun signature"}, 401)
        try:
            report = bounce_events.parse_mailgun(data)
        except BounceEventError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return await answer([report], trust_message_id=True)

    return [
        Route("/bounces/raw", raw_post, methods=["POST"]),
        Route("/bounces/events", events_post, methods=["POST"]),
        Route("/bounces/mailgun", mailgun_post, methods=["POST"]),
    ]
