"""Download sources: concurrent, polite, conditional fetching (the network edge).

A ``Fetcher`` takes ``FetchRequest`` values (a URL plus the validators stored from the
last fetch) and returns one ``FetchResult`` per request, in request order. It never raises
for a single bad source: a refused connection, a timeout, an HTTP error, an oversized body
or a missing file each becomes a result with a status and a human reason, so one broken
source never stops the others.

``HttpFetcher`` is the real one: httpx's ``AsyncClient`` on its own transport, created on
first use and kept until ``aclose`` (the daemon keeps one for its whole life, so its
connection pool and TLS set-up serve every poll). ``MemoryFetcher``
(``newsletter.sources.memory``) answers from a dict of URLs, for tests and for users.
``fetch_all`` is a one-off: an ``HttpFetcher`` for one batch, closed after it.

Politeness: one shared connection pool, at most ``concurrency`` requests in flight
and at most ``per_host`` per host, a clear ``User-Agent``, conditional GET
(``If-None-Match`` / ``If-Modified-Since``) so unchanged feeds cost a ``304``, and
connections kept alive while a site has requests to come in a batch (the last one says
``Connection: close``).

Limits come from the validated ``FetchConfig`` (``[fetch]`` in the config file).

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
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Literal, Protocol, Self
from urllib.parse import urlsplit

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

from newsletter.config import FetchConfig
from newsletter.sources.localfiles import format_size as format_size  # re-exported
from newsletter.sources.localfiles import local_path, read_file, too_large

# Feeds first, but never refuse anything: some servers answer a narrow Accept with 406.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)

# gzip and deflate: what httpx always decodes (br and zstd need optional packages).
ENCODINGS = "gzip, deflate"

_PERMANENT_REDIRECTS = frozenset({301, 308})
_RETRY_LATER = frozenset({429, 503})
# Long enough to say what went wrong, short enough for a one-line progress message.
_MAX_REASON_CHARS = 200

FetchStatus = Literal["ok", "not_modified", "gone", "error", "retry_later"]
OnResult = Callable[["FetchResult"], None]
"""Called with each result as it finishes (progress display, parsing as bodies arrive)."""


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


def _exception_reason(exc: BaseException, config: FetchConfig) -> str:
    # anyio reports some connect failures (a port out of range) as a group of one.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {config.timeout:g}s"
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


# -- HTTP -----------------------------------------------------------------------------------


def _request_headers(
    request: FetchRequest, config: FetchConfig, *, close: bool = False
) -> dict[str, str]:
    headers = {"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": ENCODINGS}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    headers["Connection"] = "close" if close else "keep-alive"
    return headers


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
    client: httpx.AsyncClient, request: FetchRequest, config: FetchConfig, *, close: bool
) -> FetchResult:
    """Fetch one URL, following redirects by hand so each hop's status is known.
    ``close`` asks the server to close the connection afterwards."""
    headers = _request_headers(request, config, close=close)
    outgoing = client.build_request("GET", request.url, headers=headers)
    all_permanent = True
    hops = 0
    while True:
        response = await client.send(outgoing, stream=True, follow_redirects=False)
        try:
            if response.has_redirect_location:
                hops += 1
                if hops > config.max_redirects:
                    return FetchResult(
                        request,
                        "error",
                        final_url=str(response.url),
                        http_status=response.status_code,
                        error=f"too many redirects (more than {config.max_redirects})",
                    )
                all_permanent = all_permanent and response.status_code in _PERMANENT_REDIRECTS
                target = _redirect_url(outgoing.url, response.headers["Location"])
                outgoing = client.build_request("GET", target, headers=headers)
                continue
            return await _result_from_response(
                request, response, config, moved=all_permanent and hops > 0
            )
        finally:
            await response.aclose()


async def _result_from_response(
    request: FetchRequest, response: httpx.Response, config: FetchConfig, *, moved: bool
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

    oversized = replace(base, error=too_large(config.max_bytes))
    declared = headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > config.max_bytes:
        return oversized
    # Count decoded bytes: a small gzip body can inflate far past the cap.
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > config.max_bytes:
            return oversized
        chunks.append(chunk)
    return replace(base, status="ok", body=b"".join(chunks), error=None)


# -- fetchers ---------------------------------------------------------------------------------


class Fetcher(Protocol):
    """What the fetch stage needs: a batch of requests in, one result per request out,
    never raising for a failing source.

    ``fetch`` returns the results in request order (``on_result`` also sees each as it
    finishes). ``stream`` hands each result to ``on_result`` as it finishes and keeps
    none: a caller that consumes bodies as they come (ingest) does not hold a whole
    batch of bodies. For both, an exception raised by ``on_result`` cancels the batch
    and propagates."""

    async def fetch(
        self, requests: Sequence[FetchRequest], *, on_result: OnResult | None = None
    ) -> list[FetchResult]: ...

    async def stream(self, requests: Sequence[FetchRequest], on_result: OnResult) -> None: ...


def http_client(config: FetchConfig) -> httpx.AsyncClient:
    """The client ``HttpFetcher`` makes: httpx's own transport, one pool of up to
    ``concurrency`` connections, proxies from the environment (``HTTP(S)_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``) and certifi's CA bundle (or ``SSL_CERT_FILE``)."""
    return httpx.AsyncClient(
        headers={"User-Agent": config.user_agent},
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(
            max_connections=config.concurrency,
            max_keepalive_connections=config.concurrency,
        ),
        follow_redirects=False,
    )


class HttpFetcher:
    """Fetches ``http(s)://`` URLs with one httpx client, and ``file://`` URLs and plain
    paths from disk.

    The client is made on the first HTTP request (a batch of local files needs none) and
    kept until ``aclose``: one connection pool and one TLS set-up for every batch. A
    ``client`` passed in is used instead (its transport, proxies and auth) and left open.
    Use it from one event loop (``async with HttpFetcher(config) as fetcher``).
    """

    def __init__(
        self, config: FetchConfig | None = None, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config if config is not None else FetchConfig()
        self._client = client
        self._owns_client = client is None
        self.clients_made = 0
        """How many clients this fetcher has made (one for its life, unless closed)."""

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client, made now if it was not yet."""
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = self._make_client()
            self.clients_made += 1
        return self._client

    def _make_client(self) -> httpx.AsyncClient:
        return http_client(self.config)

    async def aclose(self) -> None:
        """Close the client this fetcher made (a client passed in is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def fetch_one(self, request: FetchRequest, *, last_for_host: bool = False) -> FetchResult:
        """Fetch one request; every failure becomes a result."""
        config = self.config
        started = time.monotonic()
        try:
            if _is_http(request.url):
                async with asyncio.timeout(config.timeout):
                    result = await _fetch_http(self.client, request, config, close=last_for_host)
            elif (path := local_path(request.url)) is not None:
                roots, cap = config.local_root, config.max_bytes
                result = await asyncio.to_thread(read_file, request, path, cap, roots)
            else:
                result = FetchResult(
                    request,
                    "error",
                    error=f"unsupported URL (use http, https or file): {request.url}",
                )
        # One bad source must never stop the run, whatever it throws; cancellation
        # (a BaseException) still propagates.
        except Exception as exc:
            result = FetchResult(request, "error", error=_exception_reason(exc, config))
        return replace(result, elapsed=time.monotonic() - started)

    async def fetch(
        self, requests: Sequence[FetchRequest], *, on_result: OnResult | None = None
    ) -> list[FetchResult]:
        """Fetch every request concurrently and return their results in request order
        (see ``stream``)."""
        results: list[FetchResult | None] = [None] * len(requests)

        def keep(index: int, result: FetchResult) -> None:
            results[index] = result
            if on_result is not None:
                on_result(result)

        await self._run(requests, keep)
        return [r for r in results if r is not None]

    async def stream(self, requests: Sequence[FetchRequest], on_result: OnResult) -> None:
        """Fetch every request concurrently, handing each result to ``on_result`` as it
        finishes; none is kept here.

        At most ``concurrency`` requests run at once, and at most ``per_host`` against one
        host. The last request of the batch to each site asks for the connection to be
        closed after it. Never raises for a failing source; an exception raised by
        ``on_result`` cancels the batch and propagates.
        """
        await self._run(requests, lambda _, result: on_result(result))

    async def _run(
        self, requests: Sequence[FetchRequest], deliver: Callable[[int, FetchResult], None]
    ) -> None:
        config = self.config
        global_slots = asyncio.Semaphore(config.concurrency)
        host_slots: dict[str, asyncio.Semaphore] = {}
        origins = [_origin_key(request.url) for request in requests]
        not_started = Counter(origins)

        async def run(index: int, request: FetchRequest) -> None:
            host = host_slots.setdefault(_host_key(request.url), asyncio.Semaphore(config.per_host))
            origin = origins[index]
            # Host slot first: a task waiting on a busy host must not hold a global slot
            # that a request to an idle host could use.
            async with host, global_slots:
                not_started[origin] -= 1
                # The last request to an origin says Connection: close, as nothing in
                # this batch would reuse the connection: a few hundred sites would
                # otherwise keep as many idle sockets until the pool expires them.
                last = not_started[origin] == 0
                result = await self.fetch_one(request, last_for_host=last)
            deliver(index, result)

        try:
            async with asyncio.TaskGroup() as group:
                for index, request in enumerate(requests):
                    group.create_task(run(index, request))
        except ExceptionGroup as errors:
            # Fetching never raises, so this came from on_result: hand the caller its own
            # exception rather than a group it did not ask for.
            raise errors.exceptions[0] from None


async def fetch_all(
    requests: Sequence[FetchRequest],
    config: FetchConfig | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    on_result: OnResult | None = None,
) -> list[FetchResult]:
    """One batch through a new ``HttpFetcher`` (closed afterwards; a ``client`` passed in
    is used and left open). See ``HttpFetcher.fetch``."""
    async with HttpFetcher(config, client=client) as fetcher:
        return await fetcher.fetch(requests, on_result=on_result)


def fetch_all_sync(
    requests: Sequence[FetchRequest],
    config: FetchConfig | None = None,
    *,
    on_result: OnResult | None = None,
) -> list[FetchResult]:
    """``fetch_all`` for callers without an event loop."""
    return asyncio.run(fetch_all(requests, config, on_result=on_result))
