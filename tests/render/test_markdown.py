"""Markdown output: escapes only where Markdown would misread, checked by rendering the
Markdown through Python-Markdown and comparing the text a reader sees."""

from __future__ import annotations

import asyncio
import html
import re
from email.message import EmailMessage

import markdown
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from newsletter.config import MailConfig, SmtpConfig
from newsletter.deliver.loop import send_one
from newsletter.deliver.mailers import Outgoing, SmtpMailer
from newsletter.models import Digest
from newsletter.render.digest import render_digest
from newsletter.render.email import MailSettings, render_email
from newsletter.render.message import Recipient, message_bytes, parse_message
from newsletter.render.templates import md_escape, md_wrap
from tests.factories import merged_paper_digest, sample_digest
from tests.smtp_server import SmtpSink

CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]")

# Where the templates put escaped text, and where it shows in Python-Markdown's HTML.
CONTEXTS = {
    "paragraph": ("{}", r"<p>(.*)</p>"),
    "heading link": ("### [{}](https://x.org/)", r'<h3><a href="https://x.org/">(.*)</a></h3>'),
    "inline link": (
        "Also on: [{}](https://x.org/)",
        r'<p>Also on: <a href="https://x.org/">(.*)</a></p>',
    ),
    "emphasis": ("_{}_", r"<p><em>(.*)</em></p>"),
    "list item": ("- {}", r"<ul>\n<li>(.*)</li>\n</ul>"),
}


def shown(source: str, pattern: str) -> str:
    """The text a reader sees of ``source`` rendered by Python-Markdown, which must be the
    one element ``pattern`` expects, with no markup inside."""
    out = markdown.markdown(source)
    m = re.fullmatch(pattern, out, re.DOTALL)
    assert m is not None, out
    assert "<" not in m.group(1), out
    return html.unescape(m.group(1))


@pytest.mark.parametrize(
    "text",
    [
        "Release 0.0.1",
        "0.0.1 is out",
        "dependabot[bot] bumps lxml",
        "a | b | c",
        "snake_case_name and 5 * 3",
        "C:\\Users\\ada",
        "AT&T and a < b > c",
    ],
)
def test_ordinary_text_is_not_escaped(text: str) -> None:
    assert md_escape(text) == text
    assert shown(md_escape(text), CONTEXTS["paragraph"][1]) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("*bold* and _em_", "\\*bold\\* and \\_em\\_"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("# head", "\\# head"),
        ("> quote", "\\> quote"),
        ("- item", "\\- item"),
        ("---", "\\---"),
        ("1. first", "1\\. first"),
        ("2026. A year", "2026\\. A year"),
        ("`code`", "\\`code\\`"),
        ("&copy; 2026", "&amp;copy; 2026"),
        ("[ref]: https://x.org", "\\[ref\\]: https://x.org"),
        ("unbalanced ] bracket", "unbalanced \\] bracket"),
    ],
)
def test_markup_is_escaped(text: str, escaped: str) -> None:
    assert md_escape(text) == escaped
    assert shown(escaped, CONTEXTS["paragraph"][1]) == text


hostile = st.text(alphabet=" ab1.*_[]()<>&;#!`\\|-+=:~/", max_size=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile | st.text(max_size=40), context=st.sampled_from(sorted(CONTEXTS)))
def test_python_markdown_shows_exactly_the_text(text: str, context: str) -> None:
    flat = " ".join(CONTROL.sub(" ", text).split())  # control characters are dropped
    if not flat:
        return
    source, pattern = CONTEXTS[context]
    assert shown(source.format(md_escape(text)), pattern) == flat


def test_markdown_digest_keeps_version_numbers_and_bot_names() -> None:
    from dataclasses import replace

    digest = sample_digest(2, item_title="dependabot[bot] bumps lxml to 0.0.1 | 5.3")
    digest = replace(
        digest,
        sections=tuple(
            replace(s, items=tuple(replace(i, summary="0.0.1 fixes a | b") for i in s.items))
            for s in digest.sections
        ),
    )
    out = render_digest(digest, "markdown")
    assert "[dependabot[bot] bumps lxml to 0.0.1 | 5.3](https://example.org/papers/0)" in out
    assert "\n0.0.1 fixes a | b\n" in out
    assert "\\" not in out
    page = markdown.markdown(out)
    assert (
        '<a href="https://example.org/papers/0">dependabot[bot] bumps lxml to 0.0.1 | 5.3</a>'
        in page
    )


# -- Markdown-format subscribers: the Markdown, and its HTML rendering --------------------

MAIL = MailSettings(
    MailConfig(domain="news.example.org", from_address="Daily <daily@news.example.org>"),
    base_url="https://news.example.org",
)
UNSUB = "https://news.example.org/unsubscribe/tok.en-1"
MANAGE = "https://news.example.org/prefs/tok.en-2"
ADA = Recipient(
    email="ada@example.org", name="Ada", key="1", unsubscribe_url=UNSUB, manage_url=MANAGE
)


def markdown_mail(digest: Digest) -> EmailMessage:
    rendered = render_email(digest, period="2026-11-28", settings=MAIL, fmt="markdown")
    now = digest.generated_at
    return parse_message(message_bytes(rendered, ADA, settings=MAIL, now=now))


def test_markdown_subscribers_get_the_markdown_and_its_html() -> None:
    msg = markdown_mail(sample_digest(3))
    assert msg.get_content_type() == "multipart/alternative"
    plain, page = msg.iter_parts()
    assert plain.get_content_type() == "text/plain" and page.get_content_type() == "text/html"
    text = plain.get_content()
    assert "### [Paper number 1](https://example.org/papers/1)" in text
    assert f"[Unsubscribe]({UNSUB})" in text
    doc = lxml_html.fromstring(page.get_content())
    links = {a.text_content(): a.get("href") for a in doc.xpath("//a")}
    assert links["Paper number 1"] == "https://example.org/papers/1"
    assert links["Unsubscribe"] == UNSUB
    assert links["Manage your subscription (topics, format, time zone, pause)"] == MANAGE
    assert doc.xpath("//h1")[0].text_content() == "Daily Papers"
    assert "NLPH" not in text and "NLPH" not in page.get_content()


def test_the_html_part_shows_what_the_markdown_says() -> None:
    """Every title and summary of the Markdown part reads the same in the HTML part."""
    digest = sample_digest(3, item_title="dependabot[bot] bumps *lxml* to 0.0.1 | <b>5.3</b>")
    msg = markdown_mail(digest)
    plain, page = msg.iter_parts()
    doc = lxml_html.fromstring(page.get_content())
    titles = [h.text_content() for h in doc.xpath("//h3")]
    assert titles == ["dependabot[bot] bumps *lxml* to 0.0.1 | <b>5.3</b>"] * 3
    assert not doc.xpath("//h3//b | //h3//em")
    assert "dependabot[bot] bumps \\*lxml\\* to 0.0.1 | &lt;b>5.3&lt;/b>" in plain.get_content()


def test_a_hostile_digest_makes_no_markup_in_the_html_part() -> None:
    evil = '<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="y">'
    msg = markdown_mail(sample_digest(2, title=evil, item_title=evil))
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    doc = lxml_html.fromstring(html_part.get_content())
    assert not doc.xpath("//script | //img | //a[starts-with(@href, 'javascript')]")
    assert not [a for el in doc.iter() for a in el.attrib if a.startswith("on")]
    assert doc.xpath("//h1")[0].text_content() == " ".join(evil.split())


def test_markdown_mail_reaches_a_real_smtp_server(smtp_sink: SmtpSink) -> None:
    rendered = render_email(sample_digest(2), period="2026-11-28", settings=MAIL, fmt="markdown")
    data = message_bytes(rendered, ADA, settings=MAIL, now=sample_digest(1).generated_at)
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=smtp_sink.port, security="none", timeout=5)
    )
    outgoing = Outgoing("daily@news.example.org", "ada@example.org", data)
    asyncio.run(send_one(mailer, outgoing))
    (received,) = smtp_sink.recorder.for_rcpt("ada@example.org")
    msg = parse_message(received)
    assert received.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


CONTROL_CHARS = CONTROL


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=" ab1.*_[]()<>&;#!`\\|-+=:~/", max_size=60), width=st.integers(4, 20))
def test_wrapped_markdown_shows_exactly_the_text(text: str, width: int) -> None:
    """A paragraph wrapped by ``md_wrap``: no line starts a heading, list, quote or rule."""
    flat = " ".join(CONTROL_CHARS.sub(" ", text).split())
    if not flat:
        return
    out = markdown.markdown(md_wrap(text, width))
    m = re.fullmatch(r"<p>(.*)</p>", out, re.DOTALL)
    assert m is not None and "<" not in m.group(1), out
    assert " ".join(html.unescape(m.group(1)).split()) == flat


def test_markdown_paragraphs_wrap_at_76_columns() -> None:
    from dataclasses import replace

    digest = sample_digest(2)
    summary = "A long summary that says a lot, " * 8 + "and 2026. ends # here - yes"
    digest = replace(
        digest,
        sections=tuple(
            replace(s, summary=summary, items=tuple(replace(i, summary=summary) for i in s.items))
            for s in digest.sections
        ),
    )
    out = render_digest(digest, "markdown")
    paragraphs = [p for p in out.split("\n\n") if "A long summary" in p]
    assert len(paragraphs) == 4
    for p in paragraphs:
        assert "\n" in p and all(len(line) <= 78 for line in p.splitlines())
    doc = lxml_html.fromstring(markdown.markdown(out))
    shown = [" ".join(p.text_content().split()) for p in doc.xpath("//p")]
    assert shown.count(" ".join(summary.split())) == 4
    assert not doc.xpath("//h1[contains(., 'here')] | //ol | //ul")
    assert len(doc.xpath("//hr")) == 1  # the footer's rule only


def test_each_source_keeps_its_signals_in_markdown_and_html() -> None:
    """HF's upvotes and discussion stay with HF, HN's points and discussion with HN; the
    paper's PDF and code links follow its summary."""
    out = render_digest(merged_paper_digest(), "markdown")
    flat = " ".join(out.split())
    assert (
        "Hugging Face · Ada Lovelace, Alan Turing, Grace Hopper et al. · Analytical Engines "
        "Ltd · ▲ 122 · [7 comments](https://huggingface.co/papers/2511.00001#community)"
    ) in flat
    assert "[PDF](https://arxiv.org/pdf/2511.00001) · [Code](https://github.com/ada/engine)" in flat
    assert (
        "Also on: [Hacker News](https://news.ycombinator.com/item?id=1) · 240 points · "
        "[88 comments](https://news.ycombinator.com/item?id=1)"
    ) in flat
    for page in (markdown.markdown(out), render_digest(merged_paper_digest(), "html")):
        doc = lxml_html.fromstring(page)
        links = {a.text_content(): a.get("href") for a in doc.xpath("//a")}
        assert links["7 comments"] == "https://huggingface.co/papers/2511.00001#community"
        assert (
            links["88 comments"] == links["Hacker News"] == "https://news.ycombinator.com/item?id=1"
        )
        assert links["PDF"] == "https://arxiv.org/pdf/2511.00001"
        assert "95 comments" not in page  # 7 + 88: never summed across sources
