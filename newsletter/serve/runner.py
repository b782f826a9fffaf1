"""Running the daemon and/or the web app in one process until SIGTERM or Ctrl-C:
uvicorn in the daemon's event loop, the daemon's graceful stop (``Daemon.stop``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.serve.daemon import Daemon, log_event


class _EmbeddedServer:
    """uvicorn in the daemon's event loop, leaving signal handling to the daemon.

    It listens on ``sock`` when given (a socket the caller bound), else binds ``host`` and
    ``port`` itself; port 0 takes any free port (``urls`` says which)."""

    def __init__(self, app: Any, host: str, port: int, sock: socket.socket | None = None) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The daemon owns SIGTERM/SIGINT: it stops the server itself.
                yield

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            # The app reads X-Forwarded-For itself, from web.trusted_proxies only
            # (uvicorn's default trusts any local peer).
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=5,
            # A request's headers must be under 64 KB; its body is bounded by the app.
            h11_max_incomplete_event_size=64 * 1024,
        )
        self.server = Server(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        sockets = [self.sock] if self.sock is not None else None
        self.task = asyncio.ensure_future(self.server.serve(sockets=sockets))

    def urls(self) -> list[str]:
        """The address of every socket the started server listens on, as a URL."""
        urls = []
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                urls.append(f"http://{shown}:{port}/")
        return urls

    async def started(self) -> None:
        while not self.server.started:
            if self.task is not None and self.task.done():
                self.task.result()  # raises why it could not start (port in use...)
                raise NewsletterError("the web server stopped at start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def serve_until_stopped(
    daemon: Daemon | None,
    *,
    web_app: Any = None,
    host: str = "127.0.0.1",
    port: int = 8025,
    sock: socket.socket | None = None,
    stop: asyncio.Event | None = None,
    install_signals: bool = True,
) -> None:
    """Run the daemon and/or the web app until SIGTERM, SIGINT or ``stop`` is set.

    The web app listens on ``sock`` when given, else on ``host``:``port`` (0: any free
    port). Once it listens, one line per address says where:
    ``event=web_listening url=http://127.0.0.1:8025/``."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
    server = _EmbeddedServer(web_app, host, port, sock) if web_app is not None else None
    try:
        if server is not None:
            server.start()
            await server.started()
            for url in server.urls():
                log_event("web_listening", url=url)
        if daemon is not None:
            await daemon.start()
        await stop.wait()
        log_event("stop_requested")
    finally:
        if daemon is not None:
            await daemon.stop()
        if server is not None:
            await server.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)


__all__ = ["serve_until_stopped"]
