"""The web findings of issue 11, one regression test (or a few) each, against the real app
(httpx's ASGI transport, or uvicorn on a socket where the server's own behaviour is the
point) and a real SQLite store. Each failed on the code before the fix."""

from __future__ import annotations

import logging
import socket
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.render.email import MailSettings
from newsletter.render.message import Recipient, message_bytes
from newsletter.serve import web
from newsletter.services import tokens
from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store.database import Store
from newsletter.store.subscribers import set_status
from tests.factories import sample_digest
from tests.serve.test_browser import WebServer
from tests.serve.test_web import NOW, SECRET, Site, add_active, form, make_settings
from tests.support import HANG_GUARD


@pytest.fixture
def site(store: Store) -> Site:
    return Site(store)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# -- 4. confirm: GET never confirms; a link works once ----------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fetching_a_confirm_link_confirms_nobody(site: Site, method: str) -> None:
    site.post("/subscribe", data=form())
    path = site.mail.confirm_path()
    for _ in range(3):  # a scanner, a preview, a second scanner
        assert site.request(method, path).status_code == 200
    assert site.subscriber("ada@example.org").status == "pending"  # type: ignore[union-attr]
    page = site.get(path)
    assert f'<form method="post" action="{path}"' in page.text
    assert "Confirm subscription" in page.text
    assert site.post(path).status_code == 200
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


def test_a_used_confirm_link_does_not_resubscribe_after_unsubscribing(site: Site) -> None:
    site.post("/subscribe", data=form())
    path = site.mail.confirm_path()
    assert site.confirm(path).status_code == 200
    token = make_token("unsubscribe", unsubscribe_value("daily", "ada@example.org"), SECRET)
    site.post(f"/unsubscribe/{token}")
    assert site.subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    r = site.post(path)
    assert r.status_code == 400 and "no longer works" in r.text
    assert site.subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_a_link_issued_before_an_unsubscribe_does_not_confirm(store: Store) -> None:
    # Unsubscribed by other means (the CLI) after the link was mailed, before it was used.
    now = [NOW]
    site = Site(store, clock=lambda: now[0])
    add_active(site, "ada@example.org")
    site.post("/subscribe", data=form())
    now[0] = NOW + timedelta(minutes=5)
    set_status(store, "ada@example.org", "unsubscribed", now=now[0])
    now[0] = NOW + timedelta(minutes=10)
    assert site.post(site.mail.confirm_path()).status_code == 400
    assert site.subscriber("ada@example.org").status == "unsubscribed"  # type: ignore[union-attr]


# -- 5. no public signing key -------------------------------------------------------------------


def test_without_a_secret_the_app_never_signs_with_a_known_key(store: Store) -> None:
    app = web.create_app(make_settings(), store, send_mail=_no_mail)
    forged = make_token(
        "unsubscribe", unsubscribe_value("daily", "ada@example.org"), "insecure-development-key"
    )
    site = Site.__new__(Site)
    site.app, site.store = app, store
    add_active(site, "ada@example.org")
    assert site.post(f"/unsubscribe/{forged}").status_code == 400
    assert site.subscriber("ada@example.org").status == "active"  # type: ignore[union-attr]


def test_the_generated_key_is_random_private_and_shared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "newsletter")
    key = tokens.secret_key(env={})
    path = tokens.key_file()
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32 and key != "insecure-development-key"
    assert str(path) in caplog.text and "generated" in caplog.text
    # Every command (send, preview, serve, run --web) reads the same key.
    assert tokens.secret_key(env={}) == key
    assert tokens.secret_key(env={"NEWSLETTER_SECRET_KEY": "from-env"}) == "from-env"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        tokens.secret_key(env={})
    other = tmp_path / "elsewhere" / "key"
    assert tokens.secret_key(env={}, path=other) != key


async def _no_mail(recipient: str, data: bytes, message_id: str) -> None:
    pass


# -- 6. confirmation mail as a weapon ------------------------------------------------------------


def test_one_confirmation_mail_per_address_per_hour_and_a_few_a_day(store: Store) -> None:
    now = [NOW]
    site = Site(store, clock=lambda: now[0])
    for i in range(4):  # four clients, one address, within the hour
        r = site.post("/subscribe", data=form("victim@example.org"), ip=f"10.0.1.{i}")
        assert r.status_code == 200 and "Check your inbox" in r.text
    assert len(site.mail.sent) == 1
    for hour in range(1, 6):
        now[0] = NOW + timedelta(hours=hour)
        site.post("/subscribe", data=form("victim@example.org"), ip=f"10.0.2.{hour}")
    assert len(site.mail.sent) == 3  # the daily cap


def test_the_limits_hold_across_processes_and_restarts(store: Store) -> None:
    first, second = Site(store), Site(store)  # two servers on one database, or a restart
    for i in range(5):
        assert first.post("/subscribe", data=form(f"a{i}@example.org")).status_code == 200
    assert second.post("/subscribe", data=form("b@example.org")).status_code == 429


def test_an_ipv6_client_is_its_slash_64(site: Site) -> None:
    codes = [
        site.post("/subscribe", data=form(f"a{i}@example.org"), ip=f"2001:db8:1:2::{i:x}")
        for i in range(1, 7)
    ]
    assert [r.status_code for r in codes] == [200] * 5 + [429]
    other = site.post("/subscribe", data=form("b@example.org"), ip="2001:db8:1:3::1")
    assert other.status_code == 200


def test_forwarded_for_is_believed_only_from_configured_proxies(store: Store) -> None:
    site = Site(store, make_settings(web={"trusted_proxies": ["10.9.0.0/16"]}))
    # Through the proxy: each client is its own.
    for i in range(6):
        r = site.post(
            "/subscribe",
            data=form(f"a{i}@example.org"),
            ip="10.9.0.1",
            headers={"X-Forwarded-For": f"1.2.3.4, 198.51.100.{i}"},
        )
        assert r.status_code == 200
    # From anywhere else the header is ignored: all are the peer.
    codes = [
        site.post(
            "/subscribe",
            data=form(f"b{i}@example.org"),
            ip="203.0.113.9",
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(6)
    ]
    assert codes == [200] * 5 + [429]


def test_the_server_ignores_forwarded_for_from_a_local_peer(store: Store) -> None:
    # uvicorn's own proxy_headers trusted any local peer: each forged X-Forwarded-For was
    # a new client.
    server = WebServer()
    app = web.create_app(make_settings(), store, send_mail=_no_mail, secret=SECRET)
    server.serve(app)
    try:
        codes = [
            _raw_post(server.url, form(f"a{i}@example.org"), {"X-Forwarded-For": f"1.1.1.{i}"})
            for i in range(6)
        ]
    finally:
        server.close()
    assert codes == [200] * 5 + [429]


def _raw_post(url: str, data: dict[str, Any], headers: dict[str, str]) -> int:
    import httpx

    return httpx.post(
        f"{url}/subscribe", data=data, headers=headers, timeout=HANG_GUARD
    ).status_code


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://news.example.org"},  # another scheme is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_cross_site_form_posts_are_refused(site: Site, headers: dict[str, str]) -> None:
    r = site.post("/subscribe", data=form(), headers=headers)
    assert r.status_code == 403
    assert site.subscriber("ada@example.org") is None and site.mail.sent == []
    ok = site.post("/subscribe", data=form(), headers={"Origin": "https://news.example.org"})
    assert ok.status_code == 200 and len(site.mail.sent) == 1
    r = site.post(site.mail.confirm_path(), headers=headers)
    assert r.status_code == 403
    assert site.subscriber("ada@example.org").status == "pending"  # type: ignore[union-attr]


def test_unconfirmed_addresses_expire(store: Store) -> None:
    now = [NOW]
    site = Site(store, clock=lambda: now[0])
    site.post("/subscribe", data=form("never@example.org"))
    add_active(site, "kept@example.org")
    now[0] = NOW + timedelta(days=3, minutes=1)
    site.app.state.web.last_cleanup = float("-inf")
    site.post("/subscribe", data=form("new@example.org"), ip="10.0.0.7")
    assert site.subscriber("never@example.org") is None
    assert site.subscriber("kept@example.org") is not None
    assert site.subscriber("new@example.org") is not None


# -- 7. form parsing ------------------------------------------------------------------------------


def nested_multipart(depth: int) -> tuple[bytes, str]:
    """A form whose field holds a multipart body nested ``depth`` levels deep."""
    body = b"x"
    for i in range(depth):
        disposition = 'Content-Disposition: form-data; name="email"\r\n' if i == depth - 1 else ""
        body = (
            f"--{i}\r\n{disposition}Content-Type: multipart/mixed; boundary={i - 1}\r\n\r\n"
            f"".encode()
            + body
            + f"\r\n--{i}--".encode()
        )
    return body, f"multipart/form-data; boundary={depth - 1}"


def test_a_deeply_nested_multipart_body_costs_little(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    body, ctype = nested_multipart(900)
    assert len(body) < 64 * 1024  # under the body limit
    start = time.process_time()
    r = site.post("/subscribe", content=body, headers={"content-type": ctype})
    spent = time.process_time() - start
    assert r.status_code == 400
    # The stdlib parser took 0.5-1.8 s of CPU for this body; Starlette's a few ms.
    assert spent < 0.2, spent
    no_tracebacks(caplog)


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
def test_too_many_fields_is_a_400_without_traceback(
    site: Site, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    fields = [(f"f{i}", "x") for i in range(300)]
    if kind == "urlencoded":
        r = site.post("/subscribe", data=dict(fields))
    else:
        r = site.post("/subscribe", files={k: (None, v) for k, v in fields})
    assert r.status_code == 400
    no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"garbage"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nx\r\n--x--\r\n',
        ),
    ],
    ids=["no-boundary", "no-parts", "a-file"],
)
def test_a_malformed_form_is_a_400(
    site: Site, caplog: pytest.LogCaptureFixture, ctype: str, body: bytes
) -> None:
    r = site.post("/subscribe", content=body, headers={"content-type": ctype})
    assert r.status_code == 400
    no_tracebacks(caplog)


# -- 10, 12. health check and redirects ----------------------------------------------------------


def test_healthz_says_only_ok_or_not(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    with site.store.begin() as conn:
        conn.execute(sa.text("DROP TABLE edition_entries"))
        conn.execute(sa.text("DROP TABLE editions"))
    r = site.get("/healthz")
    assert r.status_code == 503 and r.json() == {"status": "error"}
    assert "editions" in caplog.text  # the reason is in the log


def test_the_trailing_slash_redirect_ignores_host(site: Site) -> None:
    for path in ("/archive/daily", "/archive"):
        r = site.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code in (307, 308)
        assert r.headers["location"].startswith("https://news.example.org/archive")
    r = site.get("/subscribe/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.headers["location"] == "https://news.example.org/subscribe"


# -- 13. request bodies have a deadline ---------------------------------------------------------


def _slow_request(url: str, length: int) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HANG_GUARD) as sock:
        sock.settimeout(5)
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {length}\r\n\r\nemail=a".encode()
        )
        return sock.recv(65536)


def test_a_body_that_never_comes_holds_nothing(store: Store) -> None:
    server = WebServer()
    app = web.create_app(
        make_settings(), store, send_mail=_no_mail, secret=SECRET, body_timeout=0.5
    )
    server.serve(app)
    try:
        # Announced too large: refused before reading.
        assert _slow_request(server.url, 2_000_000_000).startswith(b"HTTP/1.1 413")
        # Announced small, sent slowly: cut off at the deadline.
        assert _slow_request(server.url, 100).startswith(b"HTTP/1.1 408")
    finally:
        server.close()


# -- 14. the limiter's work does not grow with its keys ------------------------------------------


def test_a_limit_check_reads_one_row_by_its_key(store: Store) -> None:
    from newsletter.store import web_limits
    from newsletter.store.schema import web_limits_table

    with store.begin() as conn:
        conn.execute(
            sa.insert(web_limits_table),
            [
                {
                    "key": f"client:10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "window_start": NOW,
                    "count": 1,
                    "expires_at": NOW + timedelta(minutes=10),
                }
                for i in range(20_000)
            ],
        )
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "web_limits" in statement and not statement.startswith("EXPLAIN"):
            rows = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            plans.extend(str(r[-1]) for r in rows.fetchall())

    sa.event.listen(store.engine, "before_cursor_execute", explain)
    try:
        for _ in range(3):
            web_limits.hit(
                store, "client:192.0.2.1", limit=5, window=timedelta(minutes=10), now=NOW
            )
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", explain)
    assert plans and not [p for p in plans if p.startswith("SCAN")], plans


# -- 16. one-click unsubscribe over https only -------------------------------------------------


def test_one_click_is_offered_over_https_only() -> None:
    rendered = _rendered()

    def headers(url: str, allow: bool = False) -> str:
        data = message_bytes(
            rendered,
            Recipient("ada@example.org", unsubscribe_url=f"{url}/unsubscribe/t"),
            settings=MailSettings(base_url=url, allow_http_one_click=allow),
            now=NOW,
        )
        return data.split(b"\r\n\r\n", 1)[0].decode()

    assert "List-Unsubscribe-Post" in headers("https://news.example.org")
    assert "List-Unsubscribe-Post" not in headers("http://news.example.org")
    assert "List-Unsubscribe: <http://news.example.org/unsubscribe/t>" in headers(
        "http://news.example.org"
    )
    assert "List-Unsubscribe-Post" in headers("http://127.0.0.1:8025", allow=True)


def _rendered() -> Any:
    from newsletter.render.email import render_email

    return render_email(sample_digest(2), period="p", settings=MailSettings())


def test_settings_check_trusted_proxies() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        settings_from_dict({"web": {"trusted_proxies": ["not-an-address"]}}, env={})
    s = settings_from_dict({"web": {"trusted_proxies": ["10.0.0.0/8", "::1"]}}, env={})
    assert s.web.trusted_proxies == ("10.0.0.0/8", "::1")
    assert settings_from_dict({}, env={}).web.trusted_proxies == ()


def test_check_says_when_one_click_is_left_out(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from newsletter.cli import main
    from tests.factories import write_config

    def check(**web_settings: Any) -> str:
        cfg = write_config(tmp_path, web=web_settings)
        result = CliRunner().invoke(main, ["check", "--config", str(cfg)])
        assert result.exit_code == 0, result.output
        return result.output

    assert "List-Unsubscribe-Post" in check(base_url="http://news.example.org")
    assert "List-Unsubscribe-Post" not in check(base_url="https://news.example.org")
    allowed = check(base_url="http://127.0.0.1:8025", allow_http_one_click=True)
    assert "List-Unsubscribe-Post" not in allowed
