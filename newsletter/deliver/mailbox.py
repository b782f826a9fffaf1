"""The bounce mailbox: reads the messages that reached the bounce address over IMAP
(stdlib ``imaplib``: TLS, STARTTLS, or plain for a server on this machine) and marks each
one done once it has been handled, so a mailbox is never read twice.

Done means flagged ``$NewsletterDone`` (and ``\\Seen``), or moved to
``bounces.processed_folder`` when one is set. Only messages without that flag are read.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Iterator
from types import TracebackType

from newsletter.config import BouncesConfig
from newsletter.errors import MailboxError

log = logging.getLogger("newsletter.deliver.mailbox")

DONE_FLAG = "$NewsletterDone"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_TIMEOUT = 60.0
_BATCH = 200
"""Messages read per poll at most: a flooded mailbox is worked through over several."""


class Mailbox:
    """One IMAP session on the configured folder (a context manager)."""

    def __init__(
        self,
        cfg: BouncesConfig,
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: how to check the server's certificate (default: the system's
        certificate authorities, host name checked)."""
        if not cfg.imap_host:
            raise MailboxError("no bounce mailbox is configured: set bounces.imap_host")
        if cfg.imap_security == "none" and cfg.imap_host not in _LOCAL_HOSTS:
            raise MailboxError(
                f"bounces.imap_security = 'none' sends the password in clear to {cfg.imap_host}:"
                " use 'tls' or 'starttls' (plain is only for a server on this machine)"
            )
        self.cfg = cfg
        secret = cfg.imap_password.get_secret_value() if cfg.imap_password else None
        self.password = password if password is not None else secret
        self.conn: imaplib.IMAP4 | None = None
        self.ssl_context = ssl_context

    def __enter__(self) -> Mailbox:
        cfg = self.cfg
        where = f"{cfg.imap_host}:{cfg.imap_port}"
        host = str(cfg.imap_host)
        context = self.ssl_context or ssl.create_default_context()
        try:
            if cfg.imap_security == "tls":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    host, cfg.imap_port, ssl_context=context, timeout=_TIMEOUT
                )
            else:
                conn = imaplib.IMAP4(host, cfg.imap_port, timeout=_TIMEOUT)
                if cfg.imap_security == "starttls":
                    conn.starttls(context)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise MailboxError(f"cannot reach the bounce mailbox at {where}: {exc}") from None
        self.conn = conn
        try:
            if cfg.imap_username:
                conn.login(cfg.imap_username, self.password or "")
            status, data = conn.select(_quote(cfg.imap_folder))
            if status != "OK":
                raise MailboxError(
                    f"{where}: cannot open folder {cfg.imap_folder!r} ({_said(data)})"
                )
            if cfg.processed_folder:
                conn.create(_quote(cfg.processed_folder))  # "already exists" is fine
        except imaplib.IMAP4.error as exc:
            self.close()
            raise MailboxError(
                f"{where}: the IMAP server refused us ({exc}); check bounces.imap_username "
                "and NEWSLETTER_BOUNCES_IMAP_PASSWORD"
            ) from None
        except (OSError, MailboxError):
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Log out (quietly: the server may be gone)."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(TimeoutError, OSError, imaplib.IMAP4.error):
            conn.logout()

    def new_messages(self) -> Iterator[tuple[str, bytes]]:
        """``(uid, raw message)`` of each message not yet done, oldest first."""
        conn = self._conn()
        status, data = conn.uid("SEARCH", "UNKEYWORD", DONE_FLAG)
        if status != "OK":
            raise MailboxError(f"the IMAP search failed ({_said(data)})")
        uids = [u.decode("ascii") for u in (data[0] or b"").split()[:_BATCH]] if data else []
        for uid in uids:
            status, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts or () if isinstance(p, tuple) and len(p) > 1), None)
            if status != "OK" or not isinstance(raw, bytes):
                log.warning("bounce mailbox: message %s could not be fetched; left for later", uid)
                continue
            yield uid, raw

    def mark_done(self, uid: str) -> None:
        """Flag a handled message (and move it when ``processed_folder`` is set)."""
        conn = self._conn()
        conn.uid("STORE", uid, "+FLAGS", f"(\\Seen {DONE_FLAG})")
        target = self.cfg.processed_folder
        if not target:
            return
        status, _ = conn.uid("MOVE", uid, _quote(target))
        if status != "OK":  # servers without MOVE (RFC 6851): copy, then delete
            status, data = conn.uid("COPY", uid, _quote(target))
            if status != "OK":
                raise MailboxError(f"cannot move messages to {target!r} ({_said(data)})")
            conn.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
            conn.expunge()

    def _conn(self) -> imaplib.IMAP4:
        if self.conn is None:
            raise MailboxError("the bounce mailbox is not open")
        return self.conn


def _quote(folder: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'


def _said(data: object) -> str:
    if isinstance(data, list) and data and isinstance(data[0], bytes):
        return data[0].decode("utf-8", "replace")
    return str(data)
