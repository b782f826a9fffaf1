"""Download sources: concurrent, polite, conditional fetching (the network edge).

``fetch_all`` takes ``FetchRequest`` values (a URL plus the validators stored from the
last fetch) and returns one ``FetchResult`` per request, in request order. It never raises
for a single bad source: a refused connection, a timeout, an HTTP error, an oversized body
or a missing file each becomes a result with a status and a human reason, so one broken
source never stops the others.

Politeness: one shared ``httpx.AsyncClient``, at most ``concurrency`` requests in flight
and at most ``per_host`` per host, a clear ``User-Agent``, and conditional GET
(``If-None-Match`` / ``If-Modified-Since``) so unchanged feeds cost a ``304``.

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
import email.utils
import http
import mimetypes
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
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
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {settings.timeout:g}s"
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


def _request_headers(request: FetchRequest, settings: FetchSettings) -> dict[str, str]:
    # Accept-Encoding is left to the client: httpx advertises exactly the codings it can
    # decode (gzip and deflate; br and zstd too when brotli / zstandard are installed).
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    return headers


async def _fetch_http(
    client: httpx.AsyncClient, request: FetchRequest, settings: FetchSettings
) -> FetchResult:
    """Fetch one URL, following redirects by hand so each hop's status is known."""
    outgoing = client.build_request("GET", request.url, headers=_request_headers(request, settings))
    all_permanent = True
    hops = 0
    while True:
        response = await client.send(outgoing, stream=True, follow_redirects=False)
        try:
            if response.next_request is not None:
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
                outgoing = response.next_request
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


# -- one request, many requests ---------------------------------------------------------------


async def _fetch_one(
    client: httpx.AsyncClient, request: FetchRequest, settings: FetchSettings
) -> FetchResult:
    """Fetch one request; every failure becomes a result."""
    started = time.monotonic()
    try:
        if _is_http(request.url):
            async with asyncio.timeout(settings.timeout):
                result = await _fetch_http(client, request, settings)
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


def _new_client(settings: FetchSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent},
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(
            max_connections=settings.concurrency,
            max_keepalive_connections=settings.concurrency,
        ),
        follow_redirects=False,
    )


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
    finishes (for progress display). A ``client`` passed in is used as is and left open;
    otherwise one is created and closed here. Never raises for a failing source; an
    exception raised by ``on_result`` cancels the run and propagates.
    """
    results: list[FetchResult | None] = [None] * len(requests)
    global_slots = asyncio.Semaphore(settings.concurrency)
    host_slots: dict[str, asyncio.Semaphore] = {}

    async def run(index: int, request: FetchRequest, http_client: httpx.AsyncClient) -> None:
        host = host_slots.setdefault(_host_key(request.url), asyncio.Semaphore(settings.per_host))
        # Host slot first: a task waiting on a busy host must not hold a global slot
        # that a request to an idle host could use.
        async with host, global_slots:
            result = await _fetch_one(http_client, request, settings)
        results[index] = result
        if on_result is not None:
            on_result(result)

    async def run_all(http_client: httpx.AsyncClient) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for index, request in enumerate(requests):
                    group.create_task(run(index, request, http_client))
        except ExceptionGroup as errors:
            # Fetching never raises, so this came from on_result: hand the caller its own
            # exception rather than a group it did not ask for.
            raise errors.exceptions[0] from None

    if client is not None:
        await run_all(client)
    else:
        async with _new_client(settings) as own_client:
            await run_all(own_client)
    return [r for r in results if r is not None]


def fetch_all_sync(
    requests: Sequence[FetchRequest],
    settings: FetchSettings = FetchSettings(),
    *,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """``fetch_all`` for callers without an event loop (the CLI, the scheduler)."""
    return asyncio.run(fetch_all(requests, settings, on_result=on_result))
