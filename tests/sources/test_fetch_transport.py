"""fetch: which transport the client is built on, and the reasons pyreqwest's errors become.

The behaviour of both transports against real servers is in test_fetch.py, which runs
every test on each of them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any, Self

import httpx
import pytest

from newsletter.sources import fetch
from newsletter.sources.fetch import FetchSettings, _exception_reason

SETTINGS = FetchSettings(timeout=2.0)


def transport_of_new_client() -> httpx.AsyncBaseTransport:
    """What fetch_all sends through when given no client."""

    async def build() -> httpx.AsyncBaseTransport:
        reqwest = fetch._reqwest_transport(SETTINGS)
        if reqwest is not None:
            await reqwest.aclose()
            return reqwest
        async with fetch._httpx_client(SETTINGS) as client:
            transport: httpx.AsyncBaseTransport = client._transport
            return transport

    return asyncio.run(build())


# -- choosing the transport -------------------------------------------------------------------


def test_importing_fetch_does_not_import_pyreqwest() -> None:
    # The CLI imports fetch for every command; pyreqwest loads when a fetch starts.
    code = "import sys, newsletter.sources.fetch; print(sorted(m for m in sys.modules if 'reqwest' in m))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_pyreqwest_is_used_when_installed() -> None:
    pytest.importorskip("pyreqwest")

    assert isinstance(transport_of_new_client(), fetch._ReqwestTransport)


def test_httpx_transport_is_used_when_pyreqwest_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("pyreqwest", "pyreqwest.client", "pyreqwest.compatibility.httpx"):
        monkeypatch.setitem(sys.modules, name, None)  # what a missing package looks like

    assert fetch._reqwest_transport(SETTINGS) is None
    assert isinstance(transport_of_new_client(), httpx.AsyncHTTPTransport)


class BrokenBuilder:
    """A ClientBuilder whose build fails, as without a TLS backend or after a fork."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self

    def build(self) -> Self:
        raise RuntimeError("A pyreqwest runtime was initialized before fork()")


def test_httpx_transport_is_used_when_pyreqwest_cannot_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client_module = pytest.importorskip("pyreqwest.client")
    monkeypatch.setattr(client_module, "ClientBuilder", BrokenBuilder)

    assert fetch._reqwest_transport(SETTINGS) is None
    assert isinstance(transport_of_new_client(), httpx.AsyncHTTPTransport)


# -- reasons ----------------------------------------------------------------------------------


def causes(*messages: str) -> dict[str, Any]:
    return {"causes": [{"message": m} for m in messages]}


SEND = "error sending request for url (http://feeds.example/rss)"


def reqwest_errors() -> list[tuple[BaseException, str]]:
    """pyreqwest errors as its transport raises them: most mapped to an httpx error (with
    the original as the cause), those raised while a body streams as they are."""
    rx = pytest.importorskip("pyreqwest.exceptions")

    def mapped(httpx_error: type[httpx.RequestError], error: BaseException) -> BaseException:
        exc = httpx_error(str(error))
        exc.__cause__ = error
        return exc

    refused = causes(SEND, "client error (Connect)", "tcp connect error", "Connection refused")
    tls = causes(SEND, "client error (Connect)", "invalid peer certificate: UnknownIssuer")
    closed = causes(SEND, "client error (SendRequest)", "connection closed before message")
    body = ("request or response body error", "error reading a body from connection")
    return [
        (
            mapped(httpx.ConnectError, rx.ConnectError("connection error", refused)),
            "could not connect: Connection refused",
        ),
        (
            mapped(httpx.ConnectError, rx.ConnectError("connection error", tls)),
            "could not connect: invalid peer certificate: UnknownIssuer",
        ),
        (
            mapped(httpx.ConnectError, rx.ConnectError("connection error", closed)),
            "the server broke the connection: connection closed before message",
        ),
        (
            mapped(
                httpx.DecodingError,
                rx.DecodeError("error decoding response", causes(SEND, "invalid HTTP version")),
            ),
            "the server broke the connection: invalid HTTP version",
        ),
        # Raised while the body streams: not mapped to httpx errors.
        (
            rx.ReadError("response body connection error", causes("unexpected EOF in chunk")),
            "the server broke the connection: unexpected EOF in chunk",
        ),
        (
            rx.RequestError("error sending request", causes(*body, "end of file")),
            "the server broke the connection: end of file",
        ),
        (
            rx.ReadTimeoutError("response body timeout", causes("operation timed out")),
            "timed out after 2s",
        ),
        (rx.ClientClosedError("Client was closed", {"causes": None}), "Client was closed"),
        (
            rx.RequestPanicError("Request panicked", causes("oh no")),
            "Request panicked: oh no",
        ),
        (
            rx.BuilderError("builder error", causes("URL scheme is not allowed")),
            "builder error: URL scheme is not allowed",
        ),
    ]


def test_pyreqwest_errors_become_one_line_reasons() -> None:
    for exc, reason in reqwest_errors():
        assert _exception_reason(exc, SETTINGS) == reason, repr(exc)


def test_a_long_cause_is_cut_to_one_short_line() -> None:
    rx = pytest.importorskip("pyreqwest.exceptions")
    exc = rx.ReadError("response body connection error", causes("x" * 1000))

    reason = _exception_reason(exc, SETTINGS)

    assert reason.startswith("the server broke the connection: xxx")
    assert len(reason) == 200


def test_a_group_of_one_is_unwrapped() -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port 0-65535")])

    assert _exception_reason(group, SETTINGS) == "OverflowError: port 0-65535"


def test_reasons_work_without_pyreqwest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyreqwest.exceptions", None)

    assert _exception_reason(httpx.ConnectError("nope"), SETTINGS) == "could not connect: nope"


# -- exit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("closed_ago", "sleeps"),
    [(None, False), (0.0, True), (10.0, False)],
    ids=["never-used", "just-closed", "long-ago"],
)
def test_exit_waits_briefly_after_a_pyreqwest_client_closed(
    monkeypatch: pytest.MonkeyPatch, closed_ago: float | None, sleeps: bool
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    closed_at = None if closed_ago is None else time.monotonic() - closed_ago
    monkeypatch.setattr(fetch, "_reqwest_closed_at", closed_at)

    fetch._settle_reqwest()

    assert bool(slept) == sleeps
    assert all(0 < s <= fetch._REQWEST_SETTLE_SECONDS for s in slept)


def test_local_files_alone_start_no_http_client(tmp_path: Any) -> None:
    # A run of local files (the demo, one-off digests of saved feeds) starts no client:
    # no runtime threads, so a parse pool can still fork, and no wait at exit.
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")
    code = (
        "import sys, threading; from newsletter.sources.fetch import FetchRequest, fetch_all_sync; "
        f"r = fetch_all_sync([FetchRequest('f', {str(feed)!r})]); "
        "print(r[0].status, 'pyreqwest' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "ok False"
