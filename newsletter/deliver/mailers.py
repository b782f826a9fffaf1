"""Mailers behind one small protocol: ``FileMailer`` (``.eml`` files), ``SmtpMailer``
(aiosmtplib), ``MemoryMailer`` (a list, for tests and for embedding).

Mailers::

    Mailer.connections -> how many sessions the outbox loop opens at once
    Mailer.session() -> async context manager of a MailSession (one connection)
    MailSession.send(Outgoing, before_data=...) -> the server's reply

``before_data``, when given, is awaited before the message can be accepted: an SMTP
session sends the envelope first and awaits it before DATA (so the outbox commits the
previous outcome while the envelope is on the wire); a session with no envelope awaits
it first. Either way no message is accepted before it returns.

Errors: a 5xx reply raises ``PermanentDeliveryError`` (that recipient only); 4xx, timeouts
and dropped connections raise ``TransientDeliveryError``; a refused login raises
``AuthenticationError``, which stops the run, and so does ``MailSetupError``, raised when
connecting fails in a way no retry can fix (a TLS handshake with a plain server, a refused
port, a host name that does not resolve).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from newsletter.config import Settings, SmtpConfig
from newsletter.errors import (
    AuthenticationError,
    ConfigError,
    MailSetupError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

log = logging.getLogger("newsletter.deliver")


PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to go: envelope and wire bytes."""

    sender: str
    recipient: str
    data: bytes
    message_id: str = ""
    label: str = ""
    """A readable path-like name (``digest/period/address``) for the file mailer."""


BeforeData = Callable[[], Awaitable[None]]
"""Awaited by a session before the message can be accepted (see the module docstring)."""


class MailSession(Protocol):
    """One connection to a mail server (or a folder), used for many messages."""

    async def send(self, message: Outgoing, *, before_data: BeforeData | None = None) -> str:
        """Deliver one message; return the server's reply. ``before_data`` (when given)
        is awaited before the message can be accepted."""
        ...


class Mailer(Protocol):
    """Something that opens sessions: ``async with mailer.session() as s``."""

    @property
    def name(self) -> str:
        """A short name for logs (``file``, ``smtp``, ``memory``)."""
        ...

    @property
    def connections(self) -> int:
        """How many sessions the outbox loop may open at once (SMTP: ``pool_size``)."""
        ...

    def session(self) -> contextlib.AbstractAsyncContextManager[MailSession]:
        """A session (one reused connection)."""
        ...


_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


class FileMailer:
    """Writes each message as an ``.eml`` file under ``folder`` (atomically)."""

    name = "file"
    connections = 1

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()

    def path_for(self, message: Outgoing) -> Path:
        """Where a message goes: ``<folder>/<digest>/<period>/<address>.eml``."""
        label = message.label or message.message_id.strip("<>") or message.recipient
        parts = [_UNSAFE.sub("_", p)[:120] or "_" for p in label.split("/") if p]
        parts = [p for p in parts if p not in (".", "..")] or ["message"]
        return self.folder.joinpath(*parts[:-1], parts[-1] + ".eml")

    async def send(self, message: Outgoing, *, before_data: BeforeData | None = None) -> str:
        """Write the message; the reply names the file."""
        if before_data is not None:
            await before_data()
        path = self.path_for(message)
        await asyncio.to_thread(_write_atomic, path, message.data)
        return f"250 written to {path}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """The mailer itself: a folder needs no connection."""
        yield self


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


Reply = Callable[[Outgoing], Awaitable[str | None] | str | None]
"""A ``MemoryMailer`` handler: the reply for a message (``None``: a standard one), or
it raises ``TransientDeliveryError`` / ``PermanentDeliveryError`` to refuse it."""


class MemoryMailer:
    """Keeps every accepted message in ``messages``: for tests and for programs that
    embed the pipeline (like httpx's ``MockTransport``). ``handler``, when given, sees
    each message first and may refuse it (raise a ``DeliveryError``), answer with its
    own reply, or take its time (an async handler)."""

    name = "memory"

    def __init__(self, handler: Reply | None = None, *, connections: int = 1) -> None:
        self.handler = handler
        self.connections = connections
        self.messages: list[Outgoing] = []

    @property
    def recipients(self) -> list[str]:
        """The recipient of each accepted message, in order."""
        return [m.recipient for m in self.messages]

    async def send(self, message: Outgoing, *, before_data: BeforeData | None = None) -> str:
        """Accept the message (unless the handler refuses it)."""
        if before_data is not None:
            await before_data()
        answer = self.handler(message) if self.handler is not None else None
        reply = await answer if inspect.isawaitable(answer) else answer
        self.messages.append(message)
        return reply or f"250 kept in memory ({len(self.messages)})"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """The mailer itself: a list needs no connection."""
        yield self


def check_password(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """The SMTP password comes only from ``NEWSLETTER_SMTP_PASSWORD`` (the settings
    hold it from there): a password in the config file is refused (``ConfigError``), and
    so is a user name without a password."""
    s = settings.smtp
    environ = os.environ if env is None else env
    password = environ.get(PASSWORD_ENV) or None
    if s.password is not None and password is None:
        raise ConfigError(
            f"must not be stored in the config file: set the environment variable "
            f"{PASSWORD_ENV} instead",
            path=settings.path,
            setting="smtp.password",
            example=f"export {PASSWORD_ENV}=...",
        )
    if s.username and not password:
        raise ConfigError(
            f"is set but {PASSWORD_ENV} is not",
            path=settings.path,
            setting="smtp.username",
            example=f"export {PASSWORD_ENV}=...",
        )


class SendRateLimiter:
    """At most ``rate`` events per second across every task that waits on it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        """Wait for the next free slot."""
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


class SmtpSession:
    """One SMTP connection, opened on first use and again after it drops."""

    def __init__(
        self,
        config: SmtpConfig,
        limiter: SendRateLimiter | None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.tls_context = tls_context
        self.client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.config
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=self.tls_context,
        )
        where = f"{s.host}:{s.port}"
        try:
            await client.connect()
            if s.username:
                password = s.password.get_secret_value() if s.password is not None else ""
                await client.login(s.username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _close(client)
            raise AuthenticationError(
                f"the SMTP server {where} refused the login of {s.username!r} "
                f"({_reply_text(exc.code, exc.message)}); check smtp.username and "
                f"{PASSWORD_ENV}"
            ) from None
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            aiosmtplib.SMTPServerDisconnected,
            OSError,
        ) as exc:
            await _close(client)
            setup = _setup_error(exc, where, s.security)
            if setup is not None:
                raise setup from None
            raise TransientDeliveryError(where, f"cannot connect: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            if exc.code >= 500:
                # e.g. 530 "must issue STARTTLS first": a setup error, not bad luck.
                raise AuthenticationError(
                    f"the SMTP server {where} refused the session "
                    f"({_reply_text(exc.code, exc.message)}); check smtp.security and "
                    "smtp.username"
                ) from None
            raise TransientDeliveryError(where, f"cannot connect: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            # No STARTTLS or no AUTH on the server: the settings do not fit this server.
            await _close(client)
            raise AuthenticationError(
                f"the SMTP server {where} cannot do what the settings ask ({exc}); "
                "check smtp.security and smtp.username"
            ) from None
        self.client = client
        return client

    async def send(self, message: Outgoing, *, before_data: BeforeData | None = None) -> str:
        """Send over the open connection (reconnecting if needed). ``before_data`` is
        awaited after the envelope is accepted and before DATA: the server cannot accept
        the message before it returns."""
        if self.limiter is not None:
            await self.limiter.wait()
        client = self.client
        if client is None or not client.is_connected:
            client = await self._connect()
        rcpt = message.recipient
        try:
            await client.mail(message.sender)
            await client.rcpt(rcpt)
            if before_data is not None:
                try:
                    await before_data()
                except BaseException:
                    await self._reset()
                    raise
            reply = await client.data(message.data)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or exc.code < 400:
                await self.close()
            else:
                await self._reset()
            raise _by_code(rcpt, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timeouts, dropped connections, TLS trouble: the connection is unusable.
            await self.close()
            what = type(exc).__name__
            raise TransientDeliveryError(rcpt, f"{what}: {exc}") from None
        return _reply_text(reply.code, reply.message)

    async def _reset(self) -> None:
        # After a refused recipient or message the connection stays usable once reset.
        if self.client is None:
            return
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        """Close the connection (QUIT when still possible)."""
        client, self.client = self.client, None
        if client is not None:
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
    else:
        client.close()


def _setup_error(exc: BaseException, where: str, security: str) -> MailSetupError | None:
    """A ``MailSetupError`` when connecting failed in a way no retry can fix (the TLS
    handshake, a refused port, a host name that does not resolve); ``None`` for what may
    pass (timeouts, dropped connections)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ssl.SSLError) for e in chain):
        hint = (
            'security = "tls" expects implicit TLS (usually port 465); a server that '
            'starts in plain text wants "starttls" (port 587) or "none"'
            if security == "tls"
            else "check smtp.security and the server's certificate"
        )
        return MailSetupError(f"the TLS handshake with the SMTP server {where} failed: {hint}")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return MailSetupError(
            f"the SMTP server {where} refused the connection: nothing listens on that port;"
            " check smtp.host and smtp.port"
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return MailSetupError(f"the SMTP host of {where} cannot be resolved (DNS); check smtp.host")
    return None


def _by_code(rcpt: str, code: int, message: str) -> PermanentDeliveryError | TransientDeliveryError:
    reply = _reply_text(code, message)
    if code >= 500:
        return PermanentDeliveryError(rcpt, reply)
    return TransientDeliveryError(rcpt, reply)


class SmtpMailer:
    """SMTP through aiosmtplib; each session is one reused connection. The password is
    ``config.password`` (``make_mailer`` sees that it came from the environment)."""

    name = "smtp"

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.tls_context = tls_context
        self.limiter = SendRateLimiter(config.rate_limit) if config.rate_limit else None

    @property
    def connections(self) -> int:
        """``smtp.pool_size``."""
        return self.config.pool_size

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """One connection, closed (QUIT) at the end."""
        session = SmtpSession(self.config, self.limiter, self.tls_context)
        try:
            yield session
        finally:
            await session.close()


def make_mailer(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> Mailer:
    """The configured mailer (``mail.delivery``: ``file`` or ``smtp``)."""
    if settings.mail.delivery == "file":
        return FileMailer(settings.mail.mail_dir)
    check_password(settings)
    return SmtpMailer(settings.smtp, tls_context=tls_context)
