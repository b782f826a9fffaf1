"""Signed tokens for links in emails (unsubscribe, confirm): itsdangerous, one salt per kind.

A token carries a value (e.g. ``"daily alice@example.org"``) and the time it was made;
``read_token`` checks the signature and, when ``max_age`` is given, the age. Both take
``now`` (the caller's clock; default: the system clock), so a token's age is whatever the
caller's clock says. The secret is ``NEWSLETTER_SECRET_KEY``; without it the CLI refuses
to send real mail.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from newsletter.errors import BadTokenError, ConfigError, ExpiredTokenError

SECRET_ENV = "NEWSLETTER_SECRET_KEY"
DEV_SECRET = "insecure-development-key"
"""Used only for the ``file`` mailer and previews when no secret is set."""


def _signer_at(now: datetime) -> type[TimestampSigner]:
    """A signer whose clock reads ``now`` (itsdangerous asks ``get_timestamp``)."""
    stamp = int(now.timestamp())

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return Signer


def _serializer(kind: str, secret: str, now: datetime | None) -> URLSafeTimedSerializer:
    if not secret:
        raise ValueError("the secret key must not be empty")
    signer = TimestampSigner if now is None else _signer_at(now)
    return URLSafeTimedSerializer(secret, salt=f"newsletter.{kind}", signer=signer)


def make_token(kind: str, value: str, secret: str, *, now: datetime | None = None) -> str:
    """A URL-safe signed token for ``value``, valid only for ``kind``, made at ``now``."""
    return str(_serializer(kind, secret, now).dumps(value))


def read_token(
    kind: str, token: str, secret: str, max_age: int | None = None, *, now: datetime | None = None
) -> str:
    """The value inside ``token``; ``BadTokenError`` when forged or of another kind,
    ``ExpiredTokenError`` when older than ``max_age`` seconds at ``now``."""
    try:
        value = _serializer(kind, secret, now).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise ExpiredTokenError(f"the {kind} link has expired") from exc
    except BadSignature as exc:
        raise BadTokenError(f"the {kind} link is not valid") from exc
    if not isinstance(value, str):
        raise BadTokenError(f"the {kind} link is not valid")
    return value


def unsubscribe_value(digest: str, email: str) -> str:
    """What an unsubscribe token carries: the digest name and the address."""
    return f"{digest} {email}"


def parse_unsubscribe_value(value: str) -> tuple[str, str]:
    """``(digest, email)`` from ``unsubscribe_value``'s output."""
    digest, _, email = value.partition(" ")
    if not digest or not email:
        raise BadTokenError("the unsubscribe link is not valid")
    return digest, email


def secret_key(env: Mapping[str, str] | None = None, *, required: bool = True) -> str:
    """The signing secret from ``NEWSLETTER_SECRET_KEY``.

    Without it: a ``ConfigError`` when ``required`` (real mail must carry links nobody can
    forge), else a fixed development key (the file mailer and previews).
    """
    value = (os.environ if env is None else env).get(SECRET_ENV, "")
    if value:
        return value
    if required:
        raise ConfigError(
            "is not set: unsubscribe links must be signed with a secret key",
            setting=SECRET_ENV,
            example=f"export {SECRET_ENV}=$(openssl rand -hex 32)",
        )
    return DEV_SECRET
