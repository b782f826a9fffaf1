"""What the web app believes about a request it cannot check by signature: how big its
body may be and how long it may take to arrive (``BodyGuard``), who sent it
(``client_network``: forwarded headers only from configured proxies) and from which site
(``same_origin``: cross-site form posts are refused).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_BODY = 64 * 1024
"""The largest request body read (the forms are a few hundred bytes)."""
BODY_TIMEOUT = 10.0
"""Seconds a request body may take to arrive, all of it."""
IPV6_PREFIX = 64
"""An IPv6 client is its /64: one home or host gets many addresses of one /64."""


class BodyGuard:
    """ASGI middleware bounding every request body: a declared ``Content-Length`` over
    ``max_body`` is refused before anything is read (413); a body that grows past it is
    cut off (413); and all of it must arrive within ``timeout`` seconds of the first read
    (408), so a client announcing a large body and sending a few bytes holds nothing.

    The refusals are ``HTTPException``s raised from ``receive()`` in the endpoint reading
    the body, so the app's error pages answer them. ``larger`` raises the limit for paths
    under a prefix (the bounce webhooks receive whole messages)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = MAX_BODY,
        timeout: float = BODY_TIMEOUT,
        larger: Sequence[tuple[str, int]] = (),
    ):
        self.app = app
        self.max_body = max_body
        self.timeout = timeout
        self.larger = tuple(larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        max_body = next((n for p, n in self.larger if path.startswith(p)), self.max_body)
        declared = Headers(scope=scope).get("content-length")
        too_large = False
        if declared is not None:
            declared = declared.strip()
            too_large = not declared.isdigit() or int(declared) > max_body
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        received = 0
        done = False

        async def bounded() -> Message:
            nonlocal deadline, received, done
            if done:
                return await receive()
            if too_large:
                raise HTTPException(413, "The request is too large.")
            if deadline is None:
                deadline = loop.time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "The request body took too long.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise HTTPException(413, "The request is too large.")
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        await self.app(scope, bounded, send)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``web.trusted_proxies`` as networks (validated by the config already)."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _address(text: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_address(request: Request, trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    ``X-Forwarded-For`` hops are read from the right (the nearest proxy's view), skipping
    trusted proxies, and the first other address is the client. From any other peer the
    header is ignored (anyone can write it)."""
    peer = _address(request.client.host) if request.client else None
    if peer is None or not any(peer in net for net in trusted):
        return peer
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    client = peer
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            break
        client = addr
        if not any(addr in net for net in trusted):
            break
    return client


def client_network(request: Request, trusted: Sequence[IPNetwork]) -> str:
    """The rate-limit key of a client: its IPv4 address, or its IPv6 /64."""
    addr = client_address(request, trusted)
    if addr is None:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_PREFIX), strict=False))
    return str(addr)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers write ``Origin`` (default ports
    dropped, lower case)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def same_origin(request: Request, base_url: str) -> bool:
    """Whether a form post may come from this request: a browser says where the form was
    (``Origin``; when that is ``null``, ``Sec-Fetch-Site``), and it must be this site
    (``web.base_url``).
    A request without either header is no browser's cross-site post (a browser sends
    ``Origin`` with every POST), so it passes: mail clients' one-click posts, curl."""
    origin = (request.headers.get("origin") or "").strip().lower()
    site = (request.headers.get("sec-fetch-site") or "").strip().lower()
    if origin and origin != "null":
        return origin == origin_of(base_url)
    if site:
        return site in ("same-origin", "none")
    # "Origin: null" (a sandboxed frame, a no-referrer page) without Sec-Fetch-Site says
    # nothing about where the form was: refused; no header at all: not a browser.
    return not origin


__all__ = [
    "BODY_TIMEOUT",
    "MAX_BODY",
    "BodyGuard",
    "client_address",
    "client_network",
    "origin_of",
    "parse_networks",
    "same_origin",
]
