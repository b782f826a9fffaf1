"""Reading what comes back: delivery status notifications (RFC 3464), feedback reports
(ARF, RFC 5965) and unsubscribe mails sent to the ``List-Unsubscribe`` mailto address.

Pure: bytes in, a ``Report`` (or a ``Skipped`` saying why not) out; nothing here opens a
mailbox or the database (``services/bounces.py`` does). Each message we send carries a
*bounce token*, ``<outbox id>-<signature>``, in an ``X-Newsletter-Token`` header and, with
a bounce address configured, in its envelope sender (VERP: ``bounces+<token>@domain``).
A DSN is addressed to that envelope sender and quotes the original headers, an ARF report
quotes the original message and its envelope sender: either way the token comes back,
and ``read_bounce_token`` only believes one signed with our key.

Classification: a DSN recipient with ``Action: failed`` is a *hard* bounce when its
``Status`` is 5.x.x (except 5.2.2, mailbox full, which is *soft*), *soft* when 4.x.x;
``Action: delayed`` is only a warning (the MTA still tries; its final report will come)
and is skipped. An ARF report of type abuse, fraud, virus or other is a *complaint*;
``not-spam`` and ``auth-failure`` reports are skipped. A message whose subject is
``unsubscribe <token>`` is an *unsubscribe* request (the token is the signed unsubscribe
token of ``render/email.unsubscribe_mailto``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Literal

BounceKind = Literal["hard", "soft", "complaint", "unsubscribe"]
KINDS: tuple[BounceKind, ...] = ("hard", "soft", "complaint", "unsubscribe")
TOKEN_HEADER = "X-Newsletter-Token"
_TOKEN_RE = re.compile(r"^([1-9][0-9]{0,17})-([0-9a-f]{16})$")
_VERP_RE = re.compile(r"\+([1-9][0-9]{0,17}-[0-9a-f]{16})@", re.IGNORECASE)
_STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_SOFT_PERMANENT = frozenset({"5.2.2"})  # mailbox full: says "5", means "try later"
_MAX_REASON = 500
# Headers in which a DSN's envelope recipient (our VERP address) shows up, by MTA.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Return-Path")


# -- the token ----------------------------------------------------------------------------------


def bounce_token(outbox_id: int, secret: str) -> str:
    """``<outbox id>-<16 hex of HMAC-SHA256>``: lower case letters, digits and a hyphen,
    so it survives in an address's local part (VERP) and in a header."""
    return f"{outbox_id}-{_signature(outbox_id, secret)}"


def read_bounce_token(token: str, secret: str) -> int | None:
    """The outbox id inside a token signed with ``secret``; None for anything else."""
    m = _TOKEN_RE.match(token.strip().lower())
    if m is None:
        return None
    outbox_id = int(m.group(1))
    return outbox_id if hmac.compare_digest(m.group(2), _signature(outbox_id, secret)) else None


def verp_address(bounce_address: str, token: str) -> str:
    """``bounces@example.org`` + token -> ``bounces+<token>@example.org``."""
    local, _, domain = bounce_address.partition("@")
    return f"{local}+{token}@{domain}"


def _signature(outbox_id: int, secret: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"newsletter.bounce:{outbox_id}".encode(), "sha256")
    return mac.hexdigest()[:16]


# -- the result -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """One bounce, complaint or unsubscribe request read from a message or an event."""

    kind: BounceKind
    source_id: str
    """The report's Message-ID (or a service's event id): the key that keeps it counted once."""
    reason: str
    tokens: tuple[str, ...] = ()
    """Candidate bounce tokens found in it (checked by the caller against the key)."""
    recipient: str = ""
    """The address the report is about, when it says (``Final-Recipient``, ``From``)."""
    unsubscribe_token: str = ""
    original_message_id: str = ""
    """The Message-ID of the message it is about (trusted only from signed webhooks)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message that is not a report we act on, and why (for the log)."""

    source_id: str
    why: str


# -- parsing ------------------------------------------------------------------------------------


def parse_report(data: bytes) -> Report | Skipped:
    """Read one raw RFC 822 message. Never raises: a broken message is ``Skipped``."""
    fallback = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(data)
        source_id = _clean(str(msg.get("Message-ID", "") or "")) or fallback
    except Exception as exc:  # the stdlib parser is lenient; this is the last resort
        return Skipped(fallback, f"cannot be parsed ({type(exc).__name__})")
    try:
        return _classify(msg, source_id)
    except Exception as exc:  # a hostile message must never stop the reader
        return Skipped(source_id, f"cannot be read ({type(exc).__name__}: {exc})"[:200])


def _classify(msg: Message, source_id: str) -> Report | Skipped:
    ctype = msg.get_content_type()
    report_type = str(msg.get_param("report-type", "") or "").lower()
    if ctype == "multipart/report" and report_type == "delivery-status":
        return _dsn(msg, source_id)
    if ctype == "multipart/report" and report_type == "feedback-report":
        return _arf(msg, source_id)
    subject = _clean(_decoded(msg.get("Subject", "")))
    m = re.match(r"^(?:re:\s*)?unsubscribe\s+(\S+)\s*$", subject, re.IGNORECASE)
    if m:
        return Report(
            kind="unsubscribe",
            source_id=source_id,
            reason="unsubscribe mail",
            recipient=parseaddr(str(msg.get("From", "")))[1].lower(),
            unsubscribe_token=m.group(1),
        )
    if ctype == "multipart/report":
        return Skipped(source_id, f"a report of type {report_type or 'none'!r}")
    return Skipped(source_id, "neither a delivery report, a feedback report nor an unsubscribe")


def _dsn(msg: Message, source_id: str) -> Report | Skipped:
    fields = _part(msg, "message/delivery-status")
    if fields is None:
        return Skipped(source_id, "a delivery report without its message/delivery-status part")
    blocks = _blocks(fields)
    worst: tuple[BounceKind, str, str] | None = None
    for block in blocks[1:] or blocks:
        action = str(block.get("Action", "")).strip().lower()
        status = _STATUS_RE.search(str(block.get("Status", "")))
        if action != "failed" or status is None:
            continue
        code = ".".join(status.groups())
        kind: BounceKind = "hard" if code[0] == "5" and code not in _SOFT_PERMANENT else "soft"
        diagnostic = _clean(str(block.get("Diagnostic-Code", "")))
        recipient = _typed_address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        reason = f"{code} {diagnostic}".strip()
        if worst is None or (kind == "hard" and worst[0] == "soft"):
            worst = (kind, reason, recipient)
    if worst is None:
        actions = {str(b.get("Action", "")).strip().lower() for b in blocks} - {""}
        return Skipped(
            source_id,
            f"a delivery report without a failure ({', '.join(sorted(actions)) or 'no action'})",
        )
    kind, reason, recipient = worst
    original = _original_headers(msg)
    return Report(
        kind=kind,
        source_id=source_id,
        reason=reason[:_MAX_REASON],
        tokens=_tokens(msg, original),
        recipient=recipient,
        original_message_id=_clean(str(original.get("Message-ID", ""))) if original else "",
    )


def _arf(msg: Message, source_id: str) -> Report | Skipped:
    fields = _part(msg, "message/feedback-report")
    if fields is None:
        return Skipped(source_id, "a feedback report without its message/feedback-report part")
    block = _blocks(fields)[0] if _blocks(fields) else Message()
    feedback = str(block.get("Feedback-Type", "")).strip().lower()
    if feedback not in _COMPLAINT_TYPES:
        return Skipped(source_id, f"a feedback report of type {feedback or 'none'!r}")
    agent = _clean(str(block.get("User-Agent", "")))
    original = _original_headers(msg)
    mail_from = str(block.get("Original-Mail-From", ""))
    recipient = _typed_address(block.get("Original-Rcpt-To"))
    if not recipient and original is not None:
        recipient = parseaddr(str(original.get("To", "")))[1].lower()
    reason = f"complaint ({feedback})" + (f" reported by {agent}" if agent else "")
    return Report(
        kind="complaint",
        source_id=source_id,
        reason=reason[:_MAX_REASON],
        tokens=_tokens(msg, original, extra=(mail_from,)),
        recipient=recipient,
        original_message_id=_clean(str(original.get("Message-ID", ""))) if original else "",
    )


def _part(msg: Message, ctype: str) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == ctype:
            return part
    return None


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib parses message/delivery-status this way
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser().parsestr(c.strip() + "\n") for c in chunks if c.strip()]


def _original_headers(msg: Message) -> Message | None:
    """The headers of the message a report is about (message/rfc822 or
    text/rfc822-headers, the report's third part)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            return HeaderParser().parsestr(text)
    return None


def _tokens(msg: Message, original: Message | None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    found: list[str] = []
    if original is not None:
        found += [str(v).strip() for v in original.get_all(TOKEN_HEADER, [])]
        found += _verp_tokens(str(v) for v in original.get_all("Return-Path", []))
    found += _verp_tokens(str(v) for name in _ENVELOPE_HEADERS for v in msg.get_all(name, []))
    found += _verp_tokens(extra)
    return tuple(dict.fromkeys(t.lower() for t in found if t))


def _verp_tokens(values: Iterable[str]) -> list[str]:
    out = []
    for value in values:
        for _, addr in getaddresses([value]):
            m = _VERP_RE.search(addr)
            if m:
                out.append(m.group(1))
    return out


def _typed_address(value: object) -> str:
    """``rfc822; ada@example.org`` -> ``ada@example.org``."""
    text = str(value or "")
    _, _, addr = text.rpartition(";")
    return parseaddr(addr.strip())[1].lower()


def _decoded(value: object) -> str:
    """A header's text with RFC 2047 encoded words decoded (a mail client may encode a
    subject it was handed)."""
    try:
        return str(make_header(decode_header(str(value or ""))))
    except (ValueError, LookupError, UnicodeError):
        return str(value or "")


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


__all__ = [
    "KINDS",
    "TOKEN_HEADER",
    "BounceKind",
    "Report",
    "Skipped",
    "bounce_token",
    "parse_report",
    "read_bounce_token",
    "verp_address",
]
