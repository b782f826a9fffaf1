"""What a visitor sends: the form body (url-encoded or multipart, size-capped), its
fields checked (address, interests, topics, time zone) and the subscribe rate limit."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.exceptions import HTTPException
from starlette.requests import Request

from newsletter.config import DigestConfig
from newsletter.errors import AddressError

MAX_BODY = 64 * 1024
MAX_INTERESTS = 10
MAX_INTEREST_CHARS = 60
SUBSCRIBE_LIMIT = 5
"""POST /subscribe requests per client address within ``SUBSCRIBE_WINDOW`` seconds."""
SUBSCRIBE_WINDOW = 600.0
_SPLIT_INTERESTS = re.compile(r"[,\n;]+")


class SubscribeRateLimiter:
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


def first_value(form: Mapping[str, list[str]], key: str) -> str:
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
    from newsletter.services.subscriptions import normalize_address

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


__all__ = [
    "MAX_BODY",
    "SUBSCRIBE_LIMIT",
    "SUBSCRIBE_WINDOW",
    "SubscribeRateLimiter",
    "chosen_topics",
    "client_key",
    "first_value",
    "normalize_email",
    "parse_interests",
    "read_form",
    "valid_timezone",
]
