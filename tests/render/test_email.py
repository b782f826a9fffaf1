"""The digest email: MIME structure, headers, size, hostile input, and the exact bytes
that reach a real SMTP server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import MailConfig, SmtpConfig
from newsletter.deliver.loop import send_one
from newsletter.deliver.mailers import Outgoing, SmtpMailer
from newsletter.render.email import (
    ContentKey,
    MailSettings,
    cap_items,
    content_key,
    render_email,
    safe_url,
    subject_for,
)
from newsletter.render.message import Recipient, build_message, message_bytes, parse_message
from newsletter.services.editions import Composer
from newsletter.services.tokens import make_token, read_token
from tests.factories import sample_digest
from tests.smtp_server import SmtpSink

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
MAIL = MailSettings(
    MailConfig(
        domain="news.example.org",
        from_address="Daily Papers <daily@news.example.org>",
        reply_to="Editor <editor@news.example.org>",
    ),
    base_url="https://news.example.org",
)
TOKEN = make_token("unsubscribe", "daily ada@example.com", "secret-key")
UNSUB = f"https://news.example.org/unsubscribe/{TOKEN}"
MAILTO = f"mailto:unsubscribe@news.example.org?subject=unsubscribe%20{TOKEN}"
ADA = Recipient(
    email="ada@example.com", name="Ada", key="1", unsubscribe_url=UNSUB, unsubscribe_mailto=MAILTO
)


def wire(n: int = 5, fmt: Any = "html", recipient: Recipient = ADA, **kw: Any) -> bytes:
    rendered = render_email(sample_digest(n, **kw), period="2026-11-28", settings=MAIL, fmt=fmt)
    return message_bytes(rendered, recipient, settings=MAIL, now=NOW, list_title="Daily Papers")


def parsed(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def raw_headers(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def test_multipart_alternative_text_first_html_last_quoted_printable() -> None:
    msg = parsed(wire())
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for p in parts:
        assert p["Content-Transfer-Encoding"] == "quoted-printable"
        assert p.get_content_charset() == "utf-8"
    text, html = (p.get_content() for p in parts)
    assert text.startswith("Hi Ada,")
    assert "Daily Papers\r\n====" in text and "Paper number 0" in text
    assert "<table" in html and "Paper number 0" in html
    assert not msg.defects and not any(p.defects for p in parts)


def test_plain_text_is_never_empty() -> None:
    msg = parsed(wire(0))
    text = next(msg.iter_parts()).get_content()
    assert "Nothing new this time." in text and "Unsubscribe:" in text


def test_headers() -> None:
    data = wire()
    msg = parsed(data)
    assert msg["From"] == "Daily Papers <daily@news.example.org>"
    assert msg["Reply-To"] == "Editor <editor@news.example.org>"
    assert msg["To"] == "Ada <ada@example.com>"
    assert msg["Subject"] == "Daily Papers — Paper number 0 and 4 more"
    assert msg["Date"] == "Sat, 28 Nov 2026 07:00:00 +0000"
    assert re.fullmatch(r"<[A-Za-z0-9.-]+@news\.example\.org>", msg["Message-ID"])
    assert msg["List-Id"] == "Daily Papers <daily.news.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Precedence"] == "bulk"
    assert msg["MIME-Version"] == "1.0"
    # Every header line is ASCII, under 998 characters, CRLF-terminated.
    for line in raw_headers(data).split(b"\r\n"):
        assert line.isascii() and len(line) < 998


def test_message_id_is_stable_per_subscriber_and_edition() -> None:
    a, b = parsed(wire()), parsed(wire())
    other = parsed(wire(recipient=Recipient(email="bob@example.com", key="2")))
    assert a["Message-ID"] == b["Message-ID"] != other["Message-ID"]


def test_list_unsubscribe_is_written_verbatim() -> None:
    assert len(UNSUB) > 77  # long enough that Python's folding would RFC 2047-encode it
    headers = raw_headers(wire())
    assert f"List-Unsubscribe: <{UNSUB}>,\r\n <{MAILTO}>".encode() in headers
    assert b"=?" not in headers.split(b"List-Unsubscribe:", 1)[1].split(b"\r\nList-Unsub")[0]


def test_python_folding_would_have_broken_it() -> None:
    # Why message_bytes writes headers itself: the stdlib generator encodes long tokens.
    msg = EmailMessage()
    msg["List-Unsubscribe"] = f"<{UNSUB}>, <{MAILTO}>"
    assert UNSUB.encode() not in msg.as_bytes(policy=policy.SMTP)


def test_build_message_round_trips_headers_verbatim() -> None:
    msg = build_message(
        render_email(sample_digest(3), period="2026-11-28", settings=MAIL),
        ADA,
        settings=MAIL,
        now=NOW,
    )
    from newsletter.render.message import WIRE_POLICY

    assert f"<{UNSUB}>".encode() in msg.as_bytes(policy=WIRE_POLICY)


def test_list_unsubscribe_bytes_on_the_wire_through_a_real_server(smtp_sink: SmtpSink) -> None:
    data = wire()
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=smtp_sink.port, security="none"))
    out = Outgoing("daily@news.example.org", "ada@example.com", data)
    reply = asyncio.run(send_one(mailer, out))
    assert reply.startswith("250")
    received = smtp_sink.recorder.for_rcpt("ada@example.com")[0]
    assert f"List-Unsubscribe: <{UNSUB}>,\r\n <{MAILTO}>\r\n".encode() in received
    assert received.rstrip(b"\r\n") == data.rstrip(b"\r\n")
    msg = parsed(received)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_html_email_rules() -> None:
    html = next(p for p in parsed(wire()).iter_parts() if p.get_content_type() == "text/html")
    body = html.get_content()
    assert body.count("<style") == 1  # only the media queries / dark mode remain
    style = body.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@media" in style and "prefers-color-scheme" in style
    assert '<meta name="color-scheme" content="light dark">' in body
    assert 'width="600"' in body and "max-width:600px" in body.replace(" ", "")
    assert "display:none" in body  # the hidden preheader
    assert 'style="' in body.split("<h1", 1)[1][:200]  # CSS was inlined
    assert f'href="{UNSUB}"' in body  # a visible unsubscribe link
    assert "Unsubscribe</a>" in body


def test_images_have_alt_and_size() -> None:
    mail = MailSettings(
        MailConfig(logo_url="https://n.example.org/l.png"), base_url="https://n.example.org"
    )
    rendered = render_email(sample_digest(2), period="p", settings=mail)
    assert rendered.html is not None
    imgs = re.findall(r"<img[^>]*>", rendered.html)
    assert imgs
    for img in imgs:
        assert 'alt="' in img and 'width="' in img and 'height="' in img
        assert "max-width" in img


def test_two_hundred_items_stay_under_90_kb_and_say_so() -> None:
    # No length budget to speak of: only the size limit can cut this email short.
    config = MailConfig(max_items=1000, screens=100, highlights=20)
    mail = MailSettings(config, base_url="https://news.example.org")
    rendered = render_email(sample_digest(400), period="2026-11-28", settings=mail)
    assert rendered.html_size < 90_000
    assert 0 < rendered.items < 400 and rendered.omitted == 400 - rendered.items
    msg = parsed(message_bytes(rendered, ADA, settings=mail, now=NOW))
    html = msg.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert len(content.encode()) < 90_000
    assert f"{rendered.omitted} more stories did not fit in this email" in content
    assert "https://news.example.org/archive/daily/2026-11-28" in content


def test_cap_items_keeps_the_best() -> None:
    digest = sample_digest(10)
    capped = cap_items(digest, 3)
    assert [i.entry.title for i in capped.items] == [f"Paper number {i}" for i in range(3)]
    assert capped.omitted == 7


def test_title_with_crlf_cannot_inject_headers() -> None:
    evil = "Hello\r\nBcc: victim@example.net\r\n\r\n<script>alert(1)</script>"
    digest = sample_digest(2, title=evil, item_title=evil)
    rendered = render_email(digest, period="2026-11-28", settings=MAIL)
    evil_ada = Recipient(email="ada@example.com", name="Ada\r\nBcc: x@example.net", key="1")
    data = message_bytes(rendered, evil_ada, settings=MAIL, now=NOW, list_title=evil)
    msg = parsed(data)
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "Bcc: victim" in msg["Subject"]
    assert not any(line.lower().startswith(b"bcc:") for line in raw_headers(data).split(b"\r\n"))
    html = msg.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()
    assert "&lt;script&gt;" in html.get_content()


def test_unsafe_links_are_dropped() -> None:
    assert safe_url("javascript:alert(1)") == ""
    assert safe_url("https://example.org/\r\nx") == ""
    assert safe_url("https://example.org/a") == "https://example.org/a"


def test_subject_template() -> None:
    digest = sample_digest(3)
    assert subject_for("{title}: {count} new ({date})", digest, "2026-11-28") == (
        "Daily Papers: 3 new (2026-11-28)"
    )
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="subject"):
        subject_for("{nope}", digest, "2026-11-28")


def test_rendered_once_per_distinct_content() -> None:
    calls: list[ContentKey] = []

    def digest_for(key: ContentKey) -> Any:
        calls.append(key)
        return sample_digest(3)

    c = Composer(digest_for, mail=MAIL, period="2026-11-28", secret="k", topics=["ML", "Vision"])
    for i in range(50):
        c.message(email=f"u{i}@example.com", name="", key=str(i), interests=(), fmt="html", now=NOW)
    c.message(email="x@example.com", name="", key="x", interests=("ml",), fmt="html", now=NOW)
    c.message(email="y@example.com", name="", key="y", interests=(), fmt="markdown", now=NOW)
    # Same topics and interests in another order: the same rendering.
    for who, topics in (("a", ("ML", "Vision")), ("b", ("Vision", "ML", "ML"))):
        c.message(
            email=f"{who}@example.com",
            name="",
            key=who,
            interests=("rl", "ml"),
            topics=topics,
            fmt="html",
            now=NOW,
        )
    # A topic of another digest (not configured here) does not split the rendering.
    c.message(
        email="d@example.com",
        name="",
        key="d",
        interests=(),
        topics=("Other",),
        fmt="html",
        now=NOW,
    )
    c.message(
        email="e@example.com", name="", key="e", interests=(), topics=("ML",), fmt="html", now=NOW
    )
    assert calls == [
        ContentKey((), (), "html"),
        ContentKey(("ml",), (), "html"),
        ContentKey((), (), "markdown"),
        ContentKey(("ml", "rl"), ("ML", "Vision"), "html"),
        ContentKey((), ("ML",), "html"),
    ]
    assert len(c.renders) == 5


def test_content_key_ignores_order_and_repeats() -> None:
    assert content_key(["b", "a", "a"], ["Y", "X"], "html") == content_key(
        ["a", "b"], ["X", "Y", "Y"], "html"
    )
    assert content_key([], ["X"], "html") != content_key([], [], "html")
    assert content_key([], ["X"], "html") != content_key([], ["X"], "markdown")


def test_personal_links_are_signed_tokens() -> None:
    c = Composer(lambda i: sample_digest(2), mail=MAIL, period="2026-11-28", secret="k")
    out = c.message(email="ada@example.com", name="", key="1", interests=(), fmt="html", now=NOW)
    m = re.search(rb"<https://news\.example\.org/unsubscribe/([^>]+)>", out.data)
    assert m is not None
    assert read_token("unsubscribe", m.group(1).decode(), "k") == "daily ada@example.com"


def test_chunked_encoding_equals_whole_body_encoding() -> None:
    import binascii
    import html as html_lib

    rendered = render_email(sample_digest(20), period="2026-11-28", settings=MAIL)
    data = message_bytes(rendered, ADA, settings=MAIL, now=NOW)
    greet, unsub, manage = rendered.placeholders
    text = rendered.text.replace(greet, "Hi Ada,").replace(unsub, UNSUB).replace(manage, "")
    assert rendered.html is not None
    page = rendered.html.replace(greet, "Hi Ada,").replace(unsub, html_lib.escape(UNSUB))
    page = page.replace(manage, "")
    for body in (text, page):
        assert binascii.b2a_qp(body.encode(), istext=True) in data
    for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"):
        assert len(line) <= 76


title_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=title_text, item=title_text, name=title_text)
def test_arbitrary_titles_render_a_valid_message(title: str, item: str, name: str) -> None:
    digest = sample_digest(2, title=title, item_title=item)
    rendered = render_email(digest, period="2026-11-28", settings=MAIL)
    who = Recipient(email="ada@example.com", name=name, key="1", unsubscribe_url=UNSUB)
    data = message_bytes(rendered, who, settings=MAIL, now=NOW, list_title=title)
    head = raw_headers(data)
    assert head.isascii()
    assert all(len(line) < 998 for line in data.split(b"\r\n"))
    msg = parse_message(data)
    assert not msg.defects
    names = [k.lower() for k in msg]
    assert sorted(set(names)) == sorted(names)  # no injected or repeated headers
    assert "bcc" not in names
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text = next(msg.iter_parts()).get_content()
    assert text.strip()
