"""Signed tokens for links in emails (unsubscribe, confirm): itsdangerous, one salt per kind.

A token carries a value (e.g. ``"daily alice@example.org"``) and the time it was made;
``read_token`` checks the signature and, when ``max_age`` is given, the age. Both take
``now`` (the caller's clock; default: the system clock), so a token's age is whatever the
caller's clock says. The secret is ``NEWSLETTER_SECRET_KEY``, else a random key generated
once in the data folder (``secret_key``): nothing signs with a key anyone could know.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from newsletter.errors import BadTokenError, ConfigError, ExpiredTokenError
from newsletter.paths import APP_NAME

log = logging.getLogger("newsletter.services.tokens")

SECRET_ENV = "NEWSLETTER_SECRET_KEY"
KEY_FILE = "secret_key"
"""The generated key's file name in the data folder (``key_file``)."""


def _signer_at(stamp: int) -> type[TimestampSigner]:
    """A signer whose clock reads ``stamp`` (itsdangerous asks ``get_timestamp``)."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return Signer


# Kept for the second they are stamped with: a send signs two links per message, and
# making the signer class and the serializer cost several times the signing itself.
@functools.lru_cache(maxsize=32)
def _serializer_at(kind: str, secret: str, stamp: int | None) -> URLSafeTimedSerializer:
    signer = TimestampSigner if stamp is None else _signer_at(stamp)
    return URLSafeTimedSerializer(secret, salt=f"newsletter.{kind}", signer=signer)


def _serializer(kind: str, secret: str, now: datetime | None) -> URLSafeTimedSerializer:
    if not secret:
        raise ValueError("the secret key must not be empty")
    return _serializer_at(kind, secret, None if now is None else int(now.timestamp()))


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


def key_file() -> Path:
    """Where a generated signing key is kept: ``<user data dir>/newsletter/secret_key``."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / KEY_FILE


def secret_key(env: Mapping[str, str] | None = None, *, path: Path | None = None) -> str:
    """The signing secret: ``NEWSLETTER_SECRET_KEY``, else the key in ``path`` (default
    ``key_file()``), generated there on first use (32 random bytes, mode 0600) and
    announced in the log. Every command that signs or checks a link (``send``,
    ``preview``, ``serve``, ``run --web``) reads it here, so they agree; there is no
    built-in key. A key file that others may read is refused (``ConfigError``).
    """
    value = (os.environ if env is None else env).get(SECRET_ENV, "")
    if value:
        return value
    path = path or key_file()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    log.warning(
        "%s is not set: generated a signing key in %s (mode 0600); links are signed with "
        "it from now on. Set %s instead to share one key between hosts.",
        SECRET_ENV,
        path,
        SECRET_ENV,
    )
    return _read_key(path)


def _read_key(path: Path) -> str:
    st = path.stat()
    if st.st_mode & 0o077:
        raise ConfigError(
            f"the signing key file {path} can be read by other users: "
            f"run `chmod 600 {path}` (or set {SECRET_ENV})",
            setting=SECRET_ENV,
            example=f"chmod 600 {path}",
        )
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 32:
        raise ConfigError(
            f"the signing key file {path} holds no key: delete it to generate a new one",
            setting=SECRET_ENV,
            example=f"export {SECRET_ENV}=$(openssl rand -hex 32)",
        )
    return value
