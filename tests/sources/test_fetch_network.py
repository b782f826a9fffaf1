"""fetch against broken servers, over TLS and through proxies: real local servers (a raw
socket server sending bytes no HTTP library would, a throwaway CA made with openssl)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.sources.servers import closed_port, fetch_one, raw_server, recording_server


def assert_one_line(reason: str | None, starts: str) -> None:
    assert reason is not None
    assert reason.startswith(starts), reason
    assert "\n" not in reason
    assert len(reason) <= 200


@pytest.mark.parametrize(
    "reply",
    [
        b"\x00\x01 garbage, not HTTP\r\n\r\n",
        b"",  # closed before any response
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
        # Cut off while the body streams (past what the transport reads ahead).
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 300_000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"2710\r\n"
        + b"x" * 10_000
        + b"\r\n" * 30,
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nok",
    ],
    ids=["garbage", "closed", "short-body", "cut-off-stream", "bad-chunks", "bad-length"],
)
def test_a_broken_response_is_an_error_with_a_reason(reply: bytes) -> None:
    with raw_server(reply) as base:
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "error"
    assert result.body == b""
    assert_one_line(result.error, "the server broke the connection: ")


def test_header_values_that_are_not_ascii_are_read() -> None:
    reply = (
        b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nETag: "v2"\r\n'
        b"X-Latin-1: caf\xe9\r\nX-Utf-8: caf\xc3\xa9\r\n\r\n<rss/>"
    )

    with raw_server(reply) as base:
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "ok"
    assert result.body == b"<rss/>"
    assert result.etag == '"v2"'


def test_an_unknown_status_is_an_error() -> None:
    with raw_server(b"HTTP/1.1 599 Weird Thing\r\nContent-Length: 0\r\n\r\n") as base:
        result = fetch_one(f"{base}/feed.xml")

    assert result.status == "error"
    assert result.http_status == 599
    # httpx keeps the server's phrase for a status Python does not know.
    assert_one_line(result.error, "HTTP 599")


def test_a_port_out_of_range_is_an_error_with_a_reason() -> None:
    result = fetch_one("http://127.0.0.1:99999/feed.xml")

    assert result.status == "error"
    assert result.error is not None
    assert "port" in result.error
    assert_one_line(result.error, "")


# -- TLS and proxies --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a certificate it signed for 127.0.0.1 (made with the openssl
    command): ``ca.pem``, ``leaf.pem``, ``leaf.key``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (folder / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    ca = ["-subj", "/CN=newsletter test CA", "-addext", "basicConstraints=critical,CA:TRUE"]
    ca += ["-addext", "keyUsage=critical,keyCertSign"]
    signed = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "leaf.ext"]
    steps = [
        ["req", "-x509", *ec, *ca, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        ["req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "leaf.csr", *signed, "-out", "leaf.pem", "-days", "2"],
    ]
    try:
        for step in steps:
            subprocess.run([openssl, *step], cwd=folder, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"openssl could not make test certificates: {exc.stderr!r}")
    return folder


def server_tls(tls_files: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "leaf.pem", tls_files / "leaf.key")
    return context


def test_https_to_a_trusted_server(tls_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx adds the CA in SSL_CERT_FILE to what it trusts.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files / "ca.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    with recording_server(wrap=server_tls(tls_files)) as (base, _):
        result = fetch_one(f"{base}/secure.xml")

    assert result.status == "ok", result.error
    assert result.body == b"/secure.xml"
    assert result.final_url == f"{base}/secure.xml"


def test_https_to_an_untrusted_server_is_refused(
    tls_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    with recording_server(wrap=server_tls(tls_files)) as (base, seen):
        result = fetch_one(f"{base}/secure.xml")

    assert result.status == "error"
    assert_one_line(result.error, "could not connect: ")
    assert seen == []


def test_https_to_a_plain_http_server_is_an_error() -> None:
    with recording_server() as (base, _):
        result = fetch_one(base.replace("http://", "https://") + "/feed.xml")

    assert result.status == "error"
    assert_one_line(result.error, "could not connect: ")


PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"]


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.usefixtures("no_proxy_settings")
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_proxy_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # The feed's own address is closed: only through the proxy can the fetch succeed.
    feed = f"http://127.0.0.1:{closed_port()}/feed.xml"
    with recording_server() as (proxy, seen):
        monkeypatch.setenv(variable, proxy)
        result = fetch_one(feed)

    assert result.status == "ok", result.error
    assert result.body == feed.encode()  # the proxy saw the absolute URL
    assert [target for target, _ in seen] == [feed]


@pytest.mark.usefixtures("no_proxy_settings")
def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server() as (proxy, through_proxy), recording_server() as (site, direct):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        result = fetch_one(f"{site}/feed.xml")

    assert result.status == "ok", result.error
    assert [target for target, _ in direct] == ["/feed.xml"]
    assert through_proxy == []
