"""What a visitor sends: the form body (url-encoded or multipart, parsed with limits)
and its fields checked (address, interests, topics, time zone)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.exceptions import HTTPException
from starlette.requests import Request

from newsletter.config import DigestConfig
from newsletter.errors import AddressError
from newsletter.models import MailFormat
from newsletter.serve.guard import MAX_BODY

MAX_FIELDS = 200
"""Fields in one form (the subscribe form has a handful, plus one per topic)."""
MAX_INTERESTS = 10
MAX_INTEREST_CHARS = 60
_SPLIT_INTERESTS = re.compile(r"[,\n;]+")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: Request) -> dict[str, list[str]]:
    """The text fields of a POST, url-encoded or multipart/form-data (RFC 8058 allows
    both for one-click unsubscribe), parsed by Starlette (python-multipart) with limits:
    at most ``MAX_FIELDS`` fields, no files, parts no larger than the body limit
    (``guard.BodyGuard`` bounds the body's size and time). A malformed or over-limit form
    is an ``HTTPException(400)``; another content type has no fields."""
    ctype = request.headers.get("content-type", "")
    if ctype.partition(";")[0].strip().lower() not in _FORM_TYPES:
        return {}
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY)
    except (ValueError, KeyError, IndexError, UnicodeError) as exc:
        # python-multipart's own checks raise HTTPException(400) through Starlette; a
        # header it cannot even split lands here.
        raise HTTPException(400, "The form could not be read.") from exc
    out: dict[str, list[str]] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                out.setdefault(key, []).append(value)
    finally:
        await form.close()
    return out


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


def valid_format(value: str) -> MailFormat:
    """The mail format a form chose: ``markdown`` when it says so, else ``html``."""
    return "markdown" if value.strip().lower() == "markdown" else "html"


def valid_timezone(value: str) -> str | None:
    """``value`` when it names a time zone (IANA names are short: at most 64 characters,
    the column's size), else None."""
    if not value or len(value) > 64:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return value


__all__ = [
    "MAX_FIELDS",
    "chosen_topics",
    "first_value",
    "normalize_email",
    "parse_interests",
    "read_form",
    "valid_format",
    "valid_timezone",
]
