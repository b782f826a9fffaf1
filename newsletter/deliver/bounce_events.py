"""Bounce events from HTTP: our own JSON shape and Mailgun's webhooks, with their
signatures. Pure: a body and a key in, ``Report``s out (``serve/bounce_hooks.py`` is the
HTTP edge).

Our shape (``POST /bounces/events``, signed ``X-Newsletter-Signature: sha256=<hex of
HMAC-SHA256(webhook_secret, body)>``)::

    {"events": [{"id": "evt-1", "type": "hard_bounce", "token": "42-0123456789abcdef",
                 "email": "ada@example.org", "reason": "550 5.1.1 no such user"}]}

``type`` is ``hard_bounce``, ``soft_bounce``, ``complaint`` or ``unsubscribe``; ``id``
is unique per event (a resent event is counted once); ``token`` is the message's
``X-Newsletter-Token``; ``message_id`` (the message's Message-ID) may stand in for it.

Mailgun (``POST /bounces/mailgun``): the webhook's JSON body, ``signature`` checked as
Mailgun documents (HMAC-SHA256 of timestamp + token with the webhook signing key);
``failed`` events (``severity`` permanent: hard, temporary: soft), ``complained`` and
``unsubscribed``, tied to our message by its Message-ID.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from newsletter.deliver.bounces import BounceKind, Report, Skipped
from newsletter.errors import BounceEventError

SIGNATURE_HEADER = "X-Newsletter-Signature"
_TYPES: dict[str, BounceKind] = {
    "hard_bounce": "hard",
    "soft_bounce": "soft",
    "complaint": "complaint",
    "unsubscribe": "unsubscribe",
}
_MAX_EVENTS = 1000


def sign_body(body: bytes, secret: str) -> str:
    """The ``X-Newsletter-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, header: str, secret: str) -> bool:
    """Whether ``header`` is ``body``'s signature with ``secret`` (constant time)."""
    return bool(secret) and hmac.compare_digest(sign_body(body, secret), header.strip())


def parse_events(body: bytes) -> list[Report | Skipped]:
    """Our JSON shape -> reports (``BounceEventError`` when it is not that shape)."""
    data = _json(body)
    items = data.get("events", [data]) if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) > _MAX_EVENTS:
        raise BounceEventError(f'expected {{"events": [...]}} with at most {_MAX_EVENTS} events')
    out: list[Report | Skipped] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BounceEventError(f"event {i} is not an object")
        event_id = _text(item.get("id"))
        kind = _TYPES.get(_text(item.get("type")))
        if not event_id:
            raise BounceEventError(f'event {i} has no "id"')
        if kind is None:
            out.append(
                Skipped(
                    f"event:{event_id}", f"type {item.get('type')!r} is not one of {sorted(_TYPES)}"
                )
            )
            continue
        token = _text(item.get("token"))
        out.append(
            Report(
                kind=kind,
                source_id=f"event:{event_id}",
                reason=_text(item.get("reason"))[:500] or _text(item.get("type")).replace("_", " "),
                tokens=(token,) if token else (),
                recipient=_text(item.get("email")).lower(),
                unsubscribe_token=token if kind == "unsubscribe" else "",
                original_message_id=_text(item.get("message_id")),
            )
        )
    return out


def mailgun_signature_ok(data: Any, signing_key: str) -> bool:
    """Mailgun's check: ``signature`` is the hex HMAC-SHA256 of ``timestamp + token``."""
    sig = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(sig, dict) or not signing_key:
        return False
    timestamp, token, given = (_text(sig.get(k)) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        return False
    mac = hmac.new(signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), "sha256")
    return hmac.compare_digest(mac.hexdigest(), given)


def mailgun_timestamp(data: Any) -> int | None:
    """The signed timestamp (seconds), to refuse old replays."""
    try:
        return int(data["signature"]["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None


def parse_mailgun(data: Any) -> Report | Skipped:
    """One Mailgun webhook event (already parsed JSON, signature already checked)."""
    event = data.get("event-data") if isinstance(data, dict) else None
    if not isinstance(event, dict):
        raise BounceEventError('expected a Mailgun webhook body with "event-data"')
    event_id = _text(event.get("id")) or _text(_object(data.get("signature")).get("token"))
    source_id = f"mailgun:{event_id}"
    name = _text(event.get("event"))
    status = _object(event.get("delivery-status"))
    headers = _object(_object(event.get("message")).get("headers"))
    message_id = _text(headers.get("message-id"))
    recipient = _text(event.get("recipient")).lower()
    if name == "failed":
        kind: BounceKind = "hard" if _text(event.get("severity")) == "permanent" else "soft"
        code = _text(status.get("code"))
        text = _text(status.get("description")) or _text(status.get("message"))
        reason = f"{code} {text}".strip() or _text(event.get("reason")) or "failed"
    elif name == "complained":
        kind, reason = "complaint", "complaint reported through Mailgun"
    elif name == "unsubscribed":
        kind, reason = "unsubscribe", "unsubscribed through Mailgun"
    else:
        return Skipped(source_id, f"a Mailgun {name or 'unnamed'!r} event")
    return Report(
        kind=kind,
        source_id=source_id,
        reason=reason[:500],
        recipient=recipient,
        original_message_id=message_id,
    )


def loads(body: bytes) -> Any:
    """The JSON of a body (``BounceEventError`` when it is not JSON)."""
    return _json(body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BounceEventError(f"the body is not JSON ({exc})") from None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())
