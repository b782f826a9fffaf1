"""Download sources: concurrent, polite, conditional fetching (the network edge).

``fetch_all`` takes ``FetchRequest`` values (a URL plus the validators stored from the
last fetch) and returns one ``FetchResult`` per request, in request order. It never raises
for a single bad source: a refused connection, a timeout, an HTTP error, an oversized body
or a missing file each becomes a result with a status and a human reason, so one broken
source never stops the others.

Politeness: one shared connection pool, at most ``concurrency`` requests in flight
and at most ``per_host`` per host, a clear ``User-Agent``, conditional GET
(``If-None-Match`` / ``If-Modified-Since``) so unchanged feeds cost a ``304``, and
connections kept alive while a site has requests to come (the last one says
``Connection: close``).

Requests and responses are httpx's, sent straight to pyreqwest's httpx transport
(reqwest, in Rust) when that package imports: httpx's own transport (httpcore over anyio)
spends about 2 ms of CPU per request, and its client another third of a millisecond,
which was most of a warm run where every feed answers ``304``. Where pyreqwest has no
wheel, an ``httpx.AsyncClient`` on httpx's own transport does the same job, only slower.

Statuses::

    ok            body fetched (2xx, or a local file read)
    not_modified  304: the stored copy is current
    gone          410: the source is gone for good, stop asking
    retry_later   429 / 503: ``retry_after`` says when, if the server said
    error         anything else: ``error`` says why

Parsing is not done here: bodies are returned as bytes, garbage included.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import http
import logging
import mimetypes
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    # httpx's __init__ imports its command-line tool (rich, pygments) when click is
    # installed: a tenth of a second on every run for a tool we never call. A None entry
    # makes that optional import fail as if click were missing; removing it afterwards
    # lets `import httpx._main` work later for anyone who wants it.
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]
else:
    import httpx

from newsletter import __version__

if TYPE_CHECKING:
    from pyreqwest.exceptions import PyreqwestError

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter/newsletter)"
DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_REDIRECTS = 5

# Feeds first, but never refuse anything: some servers answer a narrow Accept with 406.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)

ENCODINGS = "gzip, deflate"

_PERMANENT_REDIRECTS = frozenset({301, 308})
_RETRY_LATER = frozenset({429, 503})
# Long enough to say what went wrong, short enough for a one-line progress message.
_MAX_REASON_CHARS = 200

FetchStatus = Literal["ok", "not_modified", "gone", "error", "retry_later"]


@dataclass(frozen=True)
class FetchSettings:
    """Limits for one fetch run. ``timeout`` bounds each request in total (connect, every
    redirect hop and the body), not each socket operation."""

    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    user_agent: str = DEFAULT_USER_AGENT
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        if self.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if self.max_bytes < 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and max_redirects must not be negative")


@dataclass(frozen=True)
class FetchRequest:
    """One source to fetch: ``url`` is ``http(s)://``, ``file://`` or a local path;
    ``etag`` / ``last_modified`` are the validators stored from the last fetch."""

    source: str
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What happened to one request.

    ``etag`` / ``last_modified`` are the validators to store for next time (on a 304 the
    request's own validators are carried over unless the server sent fresh ones).
    ``final_url`` is where the body came from after redirects; ``new_url`` is set only when
    every redirect hop was permanent (301/308), meaning the stored URL should change.
    """

    request: FetchRequest
    status: FetchStatus
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None
    new_url: str | None = None
    http_status: int | None = None
    error: str | None = None
    retry_after: datetime | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether a body was fetched."""
        return self.status == "ok"


# -- pure helpers ---------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The moment a ``Retry-After`` header points to: ``now`` plus delta-seconds, or an
    HTTP date (as aware UTC). ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def format_size(n: int) -> str:
    """A byte count the way a person says it: ``10 MB``, ``512 kB``, ``100 bytes``."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} MB"
    if n >= 1_000:
        return f"{n / 1_000:g} kB"
    return f"{n} bytes"


def _too_large(max_bytes: int) -> str:
    return f"body larger than {format_size(max_bytes)}"


def _http_reason(code: int, server_phrase: str) -> str:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = server_phrase.strip()[:_MAX_REASON_CHARS]
    return f"HTTP {code} {phrase}".rstrip()


def _host_key(url: str) -> str:
    # Hosts are the unit of politeness; an unparsable URL gets its own (failing) slot.
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _origin_key(url: str) -> str:
    """What a kept-alive connection can serve: scheme, host and port."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        return f"{scheme}://{parts.hostname}:{port}"
    except ValueError:
        return url


def _is_http(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://"))


def _local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; ``None`` for any other scheme."""
    if url[:5].lower() == "file:":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(url2pathname(unquote(parts.path)))
    if "://" in url:
        return None
    return Path(url).expanduser()


def _exception_reason(exc: BaseException, settings: FetchSettings) -> str:
    # anyio reports some connect failures (a port out of range) as a group of one.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {settings.timeout:g}s"
    if (reason := _reqwest_reason(exc)) is not None:
        return reason[:_MAX_REASON_CHARS]
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL: {exc}"
    if isinstance(exc, httpx.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {exc or type(exc).__name__}"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the body: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the connection: {exc or type(exc).__name__}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:_MAX_REASON_CHARS]


def _reqwest_error(exc: BaseException) -> PyreqwestError | None:
    """The pyreqwest error behind ``exc``: ``exc`` itself (errors raised while a body
    streams are not mapped to httpx's) or the cause of the httpx error it was mapped to."""
    if sys.modules.get("pyreqwest.exceptions") is None:
        return None  # nothing from pyreqwest ran, so nothing from it was raised
    from pyreqwest.exceptions import PyreqwestError

    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, PyreqwestError):
            return candidate
    return None


def _reqwest_reason(exc: BaseException) -> str | None:
    """A one-line reason for a pyreqwest error, or ``None`` if ``exc`` is not one.

    pyreqwest's own messages are generic ("connection error", "error decoding response");
    the last of the causes it lists is reqwest's precise one ("Connection refused (os error
    111)", "invalid HTTP version parsed", "end of file before message length reached").
    """
    err = _reqwest_error(exc)
    if err is None:
        return None
    from pyreqwest import exceptions as rx

    causes: list[str] = []
    if isinstance(err, rx.DetailedPyreqwestError):
        causes = [cause["message"] for cause in err.details.get("causes") or ()]
    detail = causes[-1] if causes else err.message
    if isinstance(err, rx.ConnectError) and any("(Connect)" in cause for cause in causes):
        # Refused, no such host, TLS handshake or certificate, proxy: before any request.
        return f"could not connect: {detail}"
    if isinstance(err, rx.TransportError | rx.DecodeError) or type(err) is rx.RequestError:
        # Closed before or during the response, or bytes that are not HTTP. reqwest decodes
        # no Content-Encoding here (httpx does), so a DecodeError is about HTTP framing.
        return f"the server broke the connection: {detail}"
    return f"{err.message}: {detail}" if detail != err.message else err.message


# -- local files ----------------------------------------------------------------------------


def _read_file(request: FetchRequest, path: Path, max_bytes: int) -> FetchResult:
    """Read a local source (blocking: run it in a thread)."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                return FetchResult(request, "error", error=_too_large(max_bytes))
            # Read one byte past the cap: files can grow, and /dev-like files lie about size.
            body = f.read(max_bytes + 1)
    except FileNotFoundError:
        return FetchResult(request, "error", error=f"file not found: {path}")
    except IsADirectoryError:
        return FetchResult(request, "error", error=f"is a directory, not a file: {path}")
    except PermissionError:
        return FetchResult(request, "error", error=f"permission denied: {path}")
    except OSError as exc:
        return FetchResult(request, "error", error=f"could not read {path}: {exc.strerror or exc}")
    if len(body) > max_bytes:
        return FetchResult(request, "error", error=_too_large(max_bytes))
    return FetchResult(
        request,
        "ok",
        body=body,
        content_type=mimetypes.guess_type(path.name)[0],
        final_url=request.url,
    )


# -- HTTP -----------------------------------------------------------------------------------


def _request_headers(
    request: FetchRequest, settings: FetchSettings, *, close: bool = False
) -> dict[str, str]:
    # gzip and deflate: what httpx always decodes (br and zstd need optional packages).
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": ENCODINGS}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    headers["Connection"] = "close" if close else "keep-alive"
    return headers


Send = Callable[[httpx.Request], Awaitable[httpx.Response]]
"""Sends one request and returns the response unread (its body still streaming)."""


def _client_sender(client: httpx.AsyncClient) -> Send:
    """Requests through a client: its transport, proxies and auth."""

    async def send(request: httpx.Request) -> httpx.Response:
        return await client.send(request, stream=True, follow_redirects=False)

    return send


def _transport_sender(transport: httpx.AsyncBaseTransport) -> Send:
    """Requests straight to a transport. A client's own layers (a cookie jar, auth, event
    hooks, redirect bookkeeping) do nothing a feed fetch needs, and cost a third of a
    millisecond per request: half the CPU of a warm run's 304s on pyreqwest."""

    async def send(request: httpx.Request) -> httpx.Response:
        response = await transport.handle_async_request(request)
        response.request = request
        return response

    return send


async def _no_http(request: httpx.Request) -> httpx.Response:
    """The sender of a run without http(s) sources, which never sends."""
    raise AssertionError(f"no HTTP client for {request.url}")


def _redirect_url(url: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect's ``Location`` points, as httpx's client resolves it: relative
    to the request, a host-less absolute URL on the same host, the fragment kept."""
    try:
        target = httpx.URL(location)
    except httpx.InvalidURL as exc:
        raise httpx.RemoteProtocolError(f"Invalid URL in location header: {exc}.") from None
    if target.scheme and not target.host:
        target = target.copy_with(host=url.host)
    if target.is_relative_url:
        target = url.join(target)
    if url.fragment and not target.fragment:
        target = target.copy_with(fragment=url.fragment)
    return target


async def _fetch_http(
    send: Send, request: FetchRequest, settings: FetchSettings, *, close: bool
) -> FetchResult:
    """Fetch one URL, following redirects by hand so each hop's status is known.
    ``close`` asks the server to close the connection afterwards."""
    headers = _request_headers(request, settings, close=close)
    # httpx's own transport reads its timeouts here; ours is asyncio.timeout, around it all.
    extensions = {"timeout": httpx.Timeout(settings.timeout).as_dict()}
    outgoing = httpx.Request("GET", request.url, headers=headers, extensions=extensions)
    all_permanent = True
    hops = 0
    while True:
        response = await send(outgoing)
        try:
            if response.has_redirect_location:
                hops += 1
                if hops > settings.max_redirects:
                    return FetchResult(
                        request,
                        "error",
                        final_url=str(response.url),
                        http_status=response.status_code,
                        error=f"too many redirects (more than {settings.max_redirects})",
                    )
                all_permanent = all_permanent and response.status_code in _PERMANENT_REDIRECTS
                target = _redirect_url(outgoing.url, response.headers["Location"])
                outgoing = httpx.Request("GET", target, headers=headers, extensions=extensions)
                continue
            return await _result_from_response(
                request, response, settings, moved=all_permanent and hops > 0
            )
        finally:
            await response.aclose()


async def _result_from_response(
    request: FetchRequest, response: httpx.Response, settings: FetchSettings, *, moved: bool
) -> FetchResult:
    """Turn the last response of a redirect chain into a result, reading the body if 2xx."""
    code = response.status_code
    final_url = str(response.url)
    headers = response.headers
    base = FetchResult(
        request,
        "error",
        content_type=headers.get("Content-Type"),
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        final_url=final_url,
        new_url=final_url if moved else None,
        http_status=code,
        error=_http_reason(code, response.reason_phrase),
    )
    if code == 304:
        # A 304 has no body, but until its (empty) end is read the connection counts as
        # busy and closing the response closes it: reading it keeps the connection for
        # the next request (a warm run is nearly all 304s).
        await response.aread()
        return replace(
            base,
            status="not_modified",
            etag=base.etag or request.etag,
            last_modified=base.last_modified or request.last_modified,
            error=None,
        )
    if code == 410:
        return replace(base, status="gone")
    if code in _RETRY_LATER:
        retry_after = parse_retry_after(headers.get("Retry-After"), datetime.now(UTC))
        return replace(base, status="retry_later", retry_after=retry_after)
    if not 200 <= code < 300:
        return base

    too_large = replace(base, error=_too_large(settings.max_bytes))
    declared = headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        return too_large
    # Count decoded bytes: a small gzip body can inflate far past the cap.
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > settings.max_bytes:
            return too_large
        chunks.append(chunk)
    return replace(base, status="ok", body=b"".join(chunks), error=None)


# -- the HTTP client ----------------------------------------------------------------------------

# pyreqwest finishes some work on its runtime thread (taking the GIL) just after a request
# is over; if the interpreter is finalizing by then, Python ends that thread and the process
# aborts ("Fatal Python error: PyGILState_Release ... finalizing"). Measured here: a script
# exiting right after fetch_all met a server that broke the connection aborted in a quarter
# of runs on a loaded machine, and in none of 300 with this wait at exit (5 ms sufficed).
_REQWEST_SETTLE_SECONDS = 0.03
_reqwest_closed_at: float | None = None
_atexit_registered = False


def _settle_reqwest() -> None:
    """At exit: wait out what is left of the settle time after the last pyreqwest client."""
    if _reqwest_closed_at is not None:
        remaining = _reqwest_closed_at + _REQWEST_SETTLE_SECONDS - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


def _httpx_client(settings: FetchSettings) -> httpx.AsyncClient:
    """A client on httpx's own transport (httpcore): the fallback when pyreqwest cannot be
    had. It reads proxies from the environment (``HTTP(S)_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``), as reqwest does."""
    return httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent},
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(
            max_connections=settings.concurrency,
            max_keepalive_connections=settings.concurrency,
        ),
        follow_redirects=False,
    )


class _ReqwestTransport(httpx.AsyncBaseTransport):
    """pyreqwest's httpx transport, with httpx's own client standing in for the responses
    pyreqwest cannot represent: it hands headers over as ``str`` and rejects a response
    whose header values are not plain ASCII (a UTF-8 or Latin-1 ``Content-Disposition``, a
    ``Server`` with an accent), which httpx reads as Latin-1. Such a request is made again
    through the stand-in, created on first need."""

    def __init__(
        self,
        reqwest: httpx.AsyncBaseTransport,
        settings: FetchSettings,
        valid_url: Callable[[str], bool],
    ) -> None:
        self._reqwest = reqwest
        self._settings = settings
        self._valid_url = valid_url
        self._stand_in: httpx.AsyncClient | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            # What httpx's transport says; reqwest's is "builder error: URL scheme is not
            # allowed". (A redirect can point anywhere, file:// included.)
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{request.url.scheme}://'."
            )
        try:
            return await self._reqwest.handle_async_request(request)
        except ValueError as exc:
            # pyreqwest's own errors include a ValueError (BuilderError): those stand.
            if _reqwest_error(exc) is not None:
                raise
            if not self._valid_url(str(request.url)):
                # httpx let it through, reqwest's URL parser did not ("http://[bad/").
                raise httpx.InvalidURL(str(exc)) from exc
            log.debug("pyreqwest could not represent %s (%s); asking httpx", request.url, exc)
        if self._stand_in is None:
            self._stand_in = _httpx_client(self._settings)
        return await self._stand_in.send(request, stream=True, follow_redirects=False)

    async def aclose(self) -> None:
        global _reqwest_closed_at
        try:
            await self._reqwest.aclose()
            if self._stand_in is not None:
                await self._stand_in.aclose()
        finally:
            _reqwest_closed_at = time.monotonic()


def _reqwest_transport(settings: FetchSettings) -> httpx.AsyncBaseTransport | None:
    """pyreqwest's transport set up for ``fetch_all``, or ``None`` when pyreqwest is not
    installed (no wheel for the platform, a distro package without it) or cannot start."""
    try:
        from pyreqwest.client import ClientBuilder
        from pyreqwest.compatibility.httpx import HttpxTransport
        from pyreqwest.http import Url
    except ImportError:
        return None
    try:
        client = (
            ClientBuilder()
            # _fetch_http follows redirects itself, to learn whether every hop was permanent.
            .follow_redirects(False)
            # httpx decodes Content-Encoding above the transport (and asks only for what it
            # can decode); the size cap counts decoded bytes as they stream, so a gzip bomb
            # is stopped. Decoding here as well would decode twice or hide the encoding.
            .gzip(False)
            .deflate(False)
            .brotli(False)
            .zstd(False)
            # Statuses are ours to read (410, 429, 304), and feeds get no cookies.
            .error_for_status(False)
            .default_cookie_store(False)
            .http1_only()
            # fetch_all already holds requests to these limits; the pool keeps, per host, as
            # many idle connections as that host may have requests in flight.
            .max_connections(settings.concurrency)
            .pool_max_idle_per_host(settings.per_host)
            # No timeout here: asyncio.timeout(settings.timeout) in _fetch_one bounds the
            # whole request. (httpx passes its own per request too, as a backstop.)
            # Proxies: reqwest reads HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (socks5 too) and
            # NO_PROXY, upper or lower case, as httpx does (httpx's own reading is off when
            # it is given a transport, so reqwest's is the one that applies).
            # Certificates: reqwest trusts the OS's store (on Linux the system bundle, and
            # SSL_CERT_FILE / SSL_CERT_DIR when set; on macOS and Windows the OS verifier),
            # httpx trusts certifi's bundle or SSL_CERT_FILE.
            .build()
        )
    except Exception as exc:  # no TLS backend or runtime (a fork after first use): fall back
        log.debug("pyreqwest unavailable (%s); using httpx's own transport", exc)
        return None
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_settle_reqwest)
        _atexit_registered = True
    return _ReqwestTransport(HttpxTransport(client), settings, Url.is_valid)


# -- one request, many requests ---------------------------------------------------------------


async def _fetch_one(
    send: Send,
    request: FetchRequest,
    settings: FetchSettings,
    *,
    last_for_host: bool = False,
) -> FetchResult:
    """Fetch one request; every failure becomes a result."""
    started = time.monotonic()
    try:
        if _is_http(request.url):
            async with asyncio.timeout(settings.timeout):
                result = await _fetch_http(send, request, settings, close=last_for_host)
        elif (path := _local_path(request.url)) is not None:
            result = await asyncio.to_thread(_read_file, request, path, settings.max_bytes)
        else:
            result = FetchResult(
                request, "error", error=f"unsupported URL (use http, https or file): {request.url}"
            )
    # One bad source must never stop the run, whatever it throws; cancellation
    # (a BaseException) still propagates.
    except Exception as exc:
        result = FetchResult(request, "error", error=_exception_reason(exc, settings))
    return replace(result, elapsed=time.monotonic() - started)


async def fetch_all(
    requests: Sequence[FetchRequest],
    settings: FetchSettings = FetchSettings(),
    *,
    client: httpx.AsyncClient | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every request concurrently and return their results in request order.

    At most ``settings.concurrency`` requests run at once, and at most
    ``settings.per_host`` against one host. ``on_result`` is called with each result as it
    finishes (for progress display). A ``client`` passed in is used (its transport,
    proxies and auth) and left open; otherwise pyreqwest's transport is used directly, or
    httpx's own client where pyreqwest cannot be had. The last request to each site asks for the
    connection to be closed after it. Never raises for a failing source; an exception
    raised by ``on_result`` cancels the run and propagates.
    """
    results: list[FetchResult | None] = [None] * len(requests)
    global_slots = asyncio.Semaphore(settings.concurrency)
    host_slots: dict[str, asyncio.Semaphore] = {}
    origins = [_origin_key(request.url) for request in requests]
    not_started = Counter(origins)

    async def run(index: int, request: FetchRequest, send: Send) -> None:
        host = host_slots.setdefault(_host_key(request.url), asyncio.Semaphore(settings.per_host))
        origin = origins[index]
        # Host slot first: a task waiting on a busy host must not hold a global slot
        # that a request to an idle host could use.
        async with host, global_slots:
            not_started[origin] -= 1
            # The last request to an origin says Connection: close, as nothing would
            # reuse the connection. This matters for reqwest, whose pool has no overall
            # cap: it would keep an idle socket per origin until the run ends, and a few
            # hundred sites would near the open-file limit (256 by default on macOS).
            last = not_started[origin] == 0
            result = await _fetch_one(send, request, settings, last_for_host=last)
        results[index] = result
        if on_result is not None:
            on_result(result)

    async def run_all(send: Send) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for index, request in enumerate(requests):
                    group.create_task(run(index, request, send))
        except ExceptionGroup as errors:
            # Fetching never raises, so this came from on_result: hand the caller its own
            # exception rather than a group it did not ask for.
            raise errors.exceptions[0] from None

    if client is not None:
        await run_all(_client_sender(client))
    elif not any(_is_http(r.url) for r in requests):
        await run_all(_no_http)  # local files only: no client, no runtime threads to start
    elif (transport := _reqwest_transport(settings)) is not None:
        try:
            await run_all(_transport_sender(transport))
        finally:
            await transport.aclose()
    else:
        async with _httpx_client(settings) as own_client:
            await run_all(_client_sender(own_client))
    return [r for r in results if r is not None]


def fetch_all_sync(
    requests: Sequence[FetchRequest],
    settings: FetchSettings = FetchSettings(),
    *,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """``fetch_all`` for callers without an event loop (the CLI, the scheduler)."""
    return asyncio.run(fetch_all(requests, settings, on_result=on_result))
