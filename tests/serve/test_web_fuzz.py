"""Hypothesis over the web endpoints' inputs: random paths and tokens, methods, headers
(content types, boundaries, Origin, X-Forwarded-For, Content-Length), form fields and raw
bodies, against the real app (httpx's ASGI transport) on a real SQLite store.

Whatever comes in: never a 500, nothing logged with a traceback or at ERROR, the answer
bounded in size, and the store's limit table bounded by the number of requests."""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.services.tokens import make_token, unsubscribe_value
from newsletter.store.database import Store
from newsletter.store.schema import web_limits_table
from tests.factories import make_subscriber, seed
from tests.serve.test_web import SECRET, Site, make_settings

NOW = datetime(2030, 6, 1, 7, 0, tzinfo=UTC)

# -- strategies --------------------------------------------------------------------------------

text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)  # any character, including controls and quotes
ascii_text = st.text(string.printable.strip() + " ", max_size=40)

tokens = st.one_of(
    ascii_text.map(lambda t: t.replace("/", "").replace("?", "").replace("#", "") or "x"),
    st.builds(lambda v: make_token("confirm", v, SECRET, now=NOW), text),
    st.builds(
        lambda v: make_token("confirm", v, SECRET, now=NOW),
        st.sampled_from(
            [
                '{"n":"x","e":"a@example.org","d":[],"i":[],"t":"UTC"}',
                '{"n":1,"e":[],"d":"x","i":{},"t":null}',
                '{"e":"a@example.org"}',
                "[]",
                "null",
            ]
        ),
    ),
    st.builds(
        lambda d, e: make_token("unsubscribe", unsubscribe_value(d, e), SECRET),
        st.sampled_from(["daily", "weekly", "nope", ""]),
        text,
    ),
    st.builds(
        lambda e: make_token("prefs", e, SECRET),
        st.one_of(st.just("known@example.org"), text),
    ),
)

paths = st.one_of(
    st.sampled_from(
        [
            "/",
            "/subscribe",
            "/subscribe/",
            "/subscribe/resend",
            "/healthz",
            "/archive",
            "/archive/",
            "/archive/daily",
            "/archive/daily/",
            "/archive/daily/2030-06-01",
            "/daily/feed.xml",
            "/weekly/atom.xml",
            "/static/tz.js",
        ]
    ),
    tokens.map(lambda t: f"/confirm/{t}"),
    tokens.map(lambda t: f"/unsubscribe/{t}"),
    tokens.map(lambda t: f"/prefs/{t}"),
    st.lists(ascii_text.map(lambda t: t.replace("?", "").replace("#", "")), max_size=4).map(
        lambda parts: "/" + "/".join(parts)
    ),
)

field_names = st.one_of(
    st.sampled_from(
        [
            "email",
            "digest",
            "interests",
            "topic",
            "timezone",
            "website",
            "List-Unsubscribe",
            "format",
            "action",
            "weeks",
        ]
    ),
    text,
)
field_values = st.one_of(
    text,
    st.sampled_from(
        ["ada@example.org", "daily", "weekly", "Europe/Paris", "One-Click", "", "x" * 5000]
    ),
)
fields = st.lists(st.tuples(field_names, field_values), max_size=30)

content_types = st.one_of(
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "multipart/form-data; boundary=",
            'multipart/form-data; boundary="a b"',
            "text/plain",
            "application/json",
            "",
        ]
    ),
    ascii_text,
)
ips = st.one_of(
    st.ip_addresses().map(str), st.sampled_from(["10.9.0.1", "::1", "127.0.0.1", "unknown"])
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "origin": st.one_of(
            st.sampled_from(["https://news.example.org", "null", "https://evil.example"]),
            ascii_text,
        ),
        "sec-fetch-site": st.sampled_from(["same-origin", "cross-site", "none", "x"]),
        "x-forwarded-for": st.one_of(
            st.lists(ips, max_size=4).map(", ".join), ascii_text.map(lambda t: t.strip())
        ),
        "host": st.sampled_from(["evil.example", "news.example.org", "a b"]),
        "accept-language": ascii_text,
    },
).map(lambda h: {k: v.replace("\r", "").replace("\n", "") for k, v in h.items()})


def multipart(parts: list[tuple[str, str]], boundary: str) -> bytes:
    out = b""
    for name, value in parts:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode("utf-8", "replace")
    return out + f"--{boundary}--\r\n".encode()


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, content type): a form of random fields, encoded or not as it says."""
    kind = draw(st.sampled_from(["urlencoded", "multipart", "raw"]))
    parts = draw(fields)
    if kind == "urlencoded":
        from urllib.parse import urlencode

        return urlencode(parts).encode(), "application/x-www-form-urlencoded"
    if kind == "multipart":
        boundary = draw(
            st.text(string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70)
        )
        return multipart(parts, boundary), f"multipart/form-data; boundary={boundary}"
    return draw(st.binary(max_size=2000)), draw(content_types)


# -- the app -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    with Store(f"sqlite:///{folder / 'db.sqlite'}") as store:
        settings_ = make_settings(web={"trusted_proxies": ["10.9.0.0/16", "::1"]})
        # An active address, so that signed preference links reach its page's forms.
        seed(store, now=NOW, subscribers=[make_subscriber("known@example.org")])
        yield Site(store, settings_)


def check(site: Site, caplog: pytest.LogCaptureFixture, method: str, path: str, **kw: Any) -> None:
    caplog.clear()
    path = "/" + quote(path, safe="/%:@!$&'()*+,;=-._~").lstrip("/")  # "//x" is a host
    r = site.request(method, path, **kw)
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    assert len(r.content) < 256 * 1024
    bad = [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]
    assert not bad, [rec.getMessage() for rec in bad]


FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS"]), path=paths, hdrs=headers)
def test_any_path_and_headers(
    fuzz_site: Site, caplog: pytest.LogCaptureFixture, method: str, path: str, hdrs: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    check(fuzz_site, caplog, method, path, headers=hdrs, follow_redirects=False)


@FUZZ
@given(
    path=st.one_of(
        st.sampled_from(["/subscribe", "/subscribe/resend"]),
        tokens.map(lambda t: f"/confirm/{t}"),
        tokens.map(lambda t: f"/unsubscribe/{t}"),
        tokens.map(lambda t: f"/prefs/{t}"),
    ),
    body=bodies(),
    hdrs=headers,
    ip=ips,
)
def test_any_form_post(
    fuzz_site: Site,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: tuple[bytes, str],
    hdrs: dict[str, str],
    ip: str,
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    content, ctype = body
    check(
        fuzz_site,
        caplog,
        "POST",
        path,
        content=content,
        headers={**hdrs, "content-type": ctype},
        ip=ip,
        follow_redirects=False,
    )


@FUZZ
@given(parts=fields, ip=ips)
def test_any_subscribe_form_fields(
    fuzz_site: Site, caplog: pytest.LogCaptureFixture, parts: list[tuple[str, str]], ip: str
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    data: dict[str, list[str]] = {}
    for k, v in parts:
        data.setdefault(k, []).append(v)
    data.setdefault("email", ["fuzz@example.org"])
    check(fuzz_site, caplog, "POST", "/subscribe", data=data, ip=ip)
    with fuzz_site.store.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(web_limits_table)).scalar()
    # Bounded work: at most four limit rows per request (client, client-day, rcpt, rcpt-day).
    assert (rows or 0) <= 4 * 1000
