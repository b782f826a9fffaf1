"""A real SMTP server for tests: aiosmtpd in a thread, bound to port 0 (the kernel picks a
free port and the server reads it back: nothing can take it between picking and binding).

``Recorder`` keeps every accepted message (envelope + exact bytes) and can be scripted per
recipient: answer a 4xx/5xx reply, drop the connection, or stall, for the first N
attempts. ``tls_files`` makes a self-signed certificate with the ``openssl`` command (or
``cryptography`` when installed). Also runnable as a sink process for benchmarks:
``python tests/smtp_server.py PORT``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "mailer"
PASSWORD = "s3cret-Passw0rd"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    """The message exactly as it came over the wire (after dot-unstuffing)."""


@dataclass
class Recorder:
    """An aiosmtpd handler that records messages and follows a per-recipient script.

    ``script[address]`` is a list of actions used one per attempt, then "ok" forever:
    ``"ok"``, an SMTP reply like ``"451 4.3.0 try later"`` (given at DATA),
    ``"rcpt:550 5.1.1 no such user"`` (given at RCPT), ``"drop"`` (close the connection
    instead of answering DATA), ``"stall"`` (do not answer DATA for ``stall_seconds``,
    then 451), ``"rcpt:stall"`` (the same at RCPT).

    ``stalls`` counts the stalls begun, ``hung_up`` those the client ended by closing the
    connection before the server answered (a client that gave up on its own timeout).
    """

    script: dict[str, list[str]] = field(default_factory=dict)
    stall_seconds: float = 3.0
    messages: list[Received] = field(default_factory=list)
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stalls: int = 0
    hung_up: int = 0

    async def _stall(self) -> str:
        with self.lock:
            self.stalls += 1
        try:
            await asyncio.sleep(self.stall_seconds)
        except asyncio.CancelledError:
            # aiosmtpd cancels the session's handler when the client closes the connection.
            with self.lock:
                self.hung_up += 1
            raise
        return "451 4.4.2 too slow"

    def _action(self, address: str, stage: str) -> str:
        steps = self.script.get(address, [])
        n = self.attempts[address]
        action = steps[n] if n < len(steps) else "ok"
        if stage == "rcpt":
            return action[5:] if action.startswith("rcpt:") else "ok"
        return "ok" if action.startswith("rcpt:") else action

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        action = self._action(address, "rcpt")
        if action != "ok":
            with self.lock:
                self.attempts[address] += 1
            if action == "stall":
                return await self._stall()
            return action
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        address = envelope.rcpt_tos[0]
        action = self._action(address, "data")
        with self.lock:
            self.attempts[address] += 1
        if action == "drop":
            server.transport.close()
            return "421 dropped"  # never reaches the client: the connection is gone
        if action == "stall":
            return await self._stall()
        if action != "ok":
            return action
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK queued"

    def count(self) -> collections.Counter[str]:
        """Accepted messages per recipient."""
        c: collections.Counter[str] = collections.Counter()
        for m in self.messages:
            c.update(m.rcpt_tos)
        return c

    def for_rcpt(self, address: str) -> list[bytes]:
        return [m.data for m in self.messages if address in m.rcpt_tos]


class CleanController(Controller):
    """aiosmtpd's Controller stops its loop without letting open connections finish
    closing; their sockets then raise ResourceWarning whenever the garbage collector finds
    them, failing some unrelated later test under ``filterwarnings = error``. This one
    closes every connection and lets the loop finish that before stopping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("port", 0)
        super().__init__(*args, **kwargs)
        self._protocols: list[Any] = []

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        """Listen on ``self.port`` (0: a port the kernel picks), then keep the bound port in
        ``self.port``: the start-up check and the tests connect to it."""
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = int(server.sockets[0].getsockname()[1])
        return server

    def factory(self) -> Any:
        protocol = super().factory()
        self._protocols.append(protocol)
        return protocol

    def open_connections(self) -> int:
        """Connections not closed yet (aiosmtpd drops a session's transport once its
        connection is lost)."""
        return sum(1 for p in self._protocols if getattr(p, "transport", None) is not None)

    async def _close_connections(self) -> None:
        if self.server is not None:
            self.server.close()
        for protocol in self._protocols:
            transport = getattr(protocol, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
        # Closing completes on the next loop iterations (connection_lost closes the socket).
        await asyncio.sleep(0.05)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            done = asyncio.run_coroutine_threadsafe(self._close_connections(), self.loop)
            # Stopping must happen even if closing failed: a warning is the lesser harm.
            with contextlib.suppress(Exception):
                done.result(timeout=5)
        super().stop(no_assert)


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1:``port``; ``recorder`` keeps what it
    accepted and can be scripted (``recorder.script[address] = [...]``, see ``Recorder``)."""

    port: int
    recorder: Recorder
    controller: CleanController

    def idle(self) -> bool:
        """Whether every connection a client opened is closed (what was in flight when a
        sender died has been received, or never will be)."""
        return self.controller.open_connections() == 0


def free_port() -> int:
    """A port that was free a moment ago: for bench/send.py's sink process only. Tests bind
    port 0 and read the port back instead (a port picked here can be taken before use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    handler: Recorder | None = None,
    *,
    tls: tuple[Path, Path] | None = None,
    starttls: bool = False,
    implicit_tls: bool = False,
    auth: bool = False,
) -> Iterator[tuple[CleanController, Recorder]]:
    """Run aiosmtpd on 127.0.0.1, port 0; yields (controller, handler), the bound port in
    ``controller.port``."""
    handler = handler or Recorder()
    kwargs: dict[str, Any] = {"decode_data": False, "data_size_limit": 50_000_000}
    server_ctx: ssl.SSLContext | None = None
    if tls is not None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(tls[0]), str(tls[1]))
    if starttls:
        kwargs.update(tls_context=server_ctx, require_starttls=True)
    if auth:
        kwargs.update(authenticator=_authenticator, auth_required=True, auth_require_tls=True)
    controller = CleanController(
        handler,
        hostname="127.0.0.1",
        port=0,
        server_hostname="localhost",
        ssl_context=server_ctx if implicit_tls else None,
        ready_timeout=10,
        **kwargs,
    )
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def tls_files(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts the test certificate."""
    return ssl.create_default_context(cafile=str(cert))


class CountingSink:
    """A fast handler for benchmarks: counts messages and bytes, keeps nothing."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        return "250 OK"


def sample_digest(n: int = 5, **kwargs: Any) -> Any:
    """``tests.factories.sample_digest``, for bench/send.py, which imports it from here.
    Imported when called, so this file still runs as a script without the project on the
    path."""
    from tests.factories import sample_digest as make

    return make(n, **kwargs)


if __name__ == "__main__":  # a sink in its own process: python tests/smtp_server.py PORT
    # It prints "ready", then answers each line on stdin with the messages accepted so
    # far, and stops when stdin closes.
    sink_port = int(sys.argv[1])
    counting = CountingSink()
    sink = CleanController(
        counting,
        hostname="127.0.0.1",
        port=sink_port,
        decode_data=False,
        data_size_limit=50_000_000,
    )
    sink.start()
    print("ready", flush=True)
    try:
        for _ in sys.stdin:
            print(counting.messages, flush=True)
    finally:
        sink.stop()
