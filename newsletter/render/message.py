"""One subscriber's message as bytes: the headers (From, To, List-Unsubscribe with its
one-click POST, Message-ID, the bounce token), the multipart body of a ``RenderedEmail``
filled in per recipient, and the policy the bytes are parsed back with. What a digest
looks like is ``render.email``; this module only assembles and addresses it."""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, parseaddr

from newsletter.errors import ConfigError
from newsletter.render.email import MailSettings, RenderedEmail, clean_header_text, greeting
from newsletter.render.mime import encoded_text, fill, header, part


@dataclass(frozen=True, slots=True)
class Recipient:
    """The per-message parts: who, and their personal links."""

    email: str
    name: str = ""
    key: str = ""
    """Stable per subscriber (the id): goes into the Message-ID."""
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    manage_url: str = ""
    """The signed link to the preference page (``/prefs/{token}``)."""
    bounce_token: str = ""
    """Ties a bounce or complaint to this message (``X-Newsletter-Token``; deliver/bounces)."""


def message_id(settings: MailSettings, rendered: RenderedEmail, key: str) -> str:
    """A Message-ID stable per (digest, period, subscriber) under the configured domain:
    a copy sent again after a crash carries the same id, so mailboxes can fold it."""
    raw = f"{rendered.digest_name}\x1f{rendered.period}\x1f{key}"
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]
    local = re.sub(r"[^A-Za-z0-9.-]", "-", f"{rendered.digest_name}.{rendered.period}")
    return f"<{local}.{digest}@{settings.mail.domain}>"


@functools.lru_cache(maxsize=64)
def _address(value: str) -> str:
    name, addr = parseaddr(clean_header_text(value, 320))
    if not addr or "@" not in addr or not addr.isascii():
        raise ConfigError(
            f"{value!r} is not an email address",
            setting="mail.from_address",
            example='from_address = "Daily papers <papers@example.org>"',
        )
    return formataddr((clean_header_text(name, 80), addr), charset="utf-8")


def message_bytes(
    rendered: RenderedEmail,
    recipient: Recipient,
    *,
    settings: MailSettings,
    now: datetime,
    list_title: str = "",
) -> bytes:
    """The complete message for one recipient, CRLF line endings, ready for SMTP DATA."""
    ph_greet, ph_unsub, ph_manage = rendered.placeholders
    hello = greeting(recipient.name)
    unsub_text = recipient.unsubscribe_url or recipient.unsubscribe_mailto
    manage = recipient.manage_url
    text = fill(rendered.text_chunks, {ph_greet: hello, ph_unsub: unsub_text, ph_manage: manage})
    out = [
        header("From", _address(settings.mail.from_address)),
        header("To", formataddr((clean_header_text(recipient.name, 80), recipient.email), "utf-8")),
    ]
    if settings.mail.reply_to:
        out.append(header("Reply-To", _address(settings.mail.reply_to)))
    out += [
        header("Subject", encoded_text("Subject", rendered.subject)),
        header("Date", format_datetime(now)),
        header("Message-ID", message_id(settings, rendered, recipient.key or recipient.email)),
        header("MIME-Version", "1.0"),
        header(
            "List-Id",
            formataddr(
                (
                    clean_header_text(list_title or rendered.digest_name, 80),
                    f"{rendered.digest_name}.{settings.mail.domain}",
                ),
                "utf-8",
            ),
        ),
    ]
    links = [f"<{u}>" for u in (recipient.unsubscribe_url, recipient.unsubscribe_mailto) if u]
    if links:
        # Folded by hand between the two links, never inside one: each stays verbatim.
        out.append(header("List-Unsubscribe", ",\r\n ".join(links)))
    url, http_ok = recipient.unsubscribe_url, settings.allow_http_one_click
    if url.startswith("https://") or (http_ok and url.startswith("http://")):
        out.append(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    out += [header("Auto-Submitted", "auto-generated"), header("Precedence", "bulk")]
    if recipient.bounce_token:
        out.append(header("X-Newsletter-Token", clean_header_text(recipient.bounce_token, 80)))
    if rendered.html is None:
        return b"".join(out) + part("text/plain", text)
    body_html = fill(
        rendered.html_chunks,
        {
            ph_greet: html.escape(hello),
            ph_unsub: html.escape(unsub_text, quote=True),
            ph_manage: html.escape(manage, quote=True),
        },
    )
    b = rendered.boundary
    out.append(header("Content-Type", f'multipart/alternative; boundary="{b}"'))
    return b"".join(
        [
            *out,
            b"\r\n",
            f"--{b}\r\n".encode("ascii"),
            part("text/plain", text),
            f"\r\n--{b}\r\n".encode("ascii"),
            part("text/html", body_html),
            f"\r\n--{b}--\r\n".encode("ascii"),
        ]
    )


def build_message(
    rendered: RenderedEmail,
    recipient: Recipient,
    *,
    settings: MailSettings,
    now: datetime,
    list_title: str = "",
) -> EmailMessage:
    """The message as an ``EmailMessage`` (parsed from ``message_bytes``). Serialize it
    with ``message_bytes`` or ``as_bytes(policy=WIRE_POLICY)`` to keep headers verbatim."""
    data = message_bytes(rendered, recipient, settings=settings, now=now, list_title=list_title)
    return parse_message(data)


WIRE_POLICY = policy.SMTP.clone(refold_source="none")
"""Keeps parsed headers exactly as they are when the message is written again."""


def parse_message(data: bytes) -> EmailMessage:
    """Parse message bytes (headers kept verbatim for re-serialization)."""
    msg = BytesParser(policy=WIRE_POLICY).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


__all__ = [
    "WIRE_POLICY",
    "Recipient",
    "build_message",
    "message_bytes",
    "message_id",
    "parse_message",
]
