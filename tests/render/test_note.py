"""The editor's note (``Digest.note``, Markdown): rendered by Python-Markdown and
sanitized into the HTML email, the web edition and the feeds; as written into the
Markdown output; as text (links as references) into the text outputs."""

from __future__ import annotations

from dataclasses import replace

import feedparser
import pytest
from lxml import html as lxml_html

from newsletter.config import MailConfig
from newsletter.render.digest import note_html, render_digest
from newsletter.render.email import MailSettings, render_email
from newsletter.render.markdown_html import markdown_to_html
from tests.factories import sample_digest

NOTE = """**Welcome** to the new format. Read [our post](https://news.example.org/post)
about it.

- one change
- another change
"""
EVIL = (
    "<script>alert(1)</script> [click](javascript:alert(1)) "
    '<img src="x" onerror="alert(1)"> <a href="https://x.org/" onclick="x()">ok</a>\n\n'
    "<style>body{display:none}</style><iframe src=https://x.org/></iframe>"
)
MAIL = MailSettings(MailConfig(domain="news.example.org"), base_url="https://news.example.org")


def noted(note: str = NOTE):  # type: ignore[no-untyped-def]
    return replace(sample_digest(3), note=note)


def test_markdown_becomes_html() -> None:
    out = markdown_to_html(NOTE)
    doc = lxml_html.fragment_fromstring(out, create_parent="div")
    assert doc.xpath("//strong")[0].text == "Welcome"
    assert doc.xpath("//a/@href") == ["https://news.example.org/post"]
    assert [li.text for li in doc.xpath("//li")] == ["one change", "another change"]
    assert markdown_to_html("  \n") == ""


def test_a_hostile_note_is_sanitized() -> None:
    out = markdown_to_html(EVIL)
    for bad in ("<script", "javascript:", "onerror", "onclick", "<style", "<iframe"):
        assert bad not in out
    assert 'href="https://x.org/"' in out and ">ok</a>" in out


def test_note_html_is_marked_safe_and_empty_without_a_note() -> None:
    assert str(note_html("")) == ""
    assert "<strong>Welcome</strong>" in note_html(NOTE)
    assert hasattr(note_html(NOTE), "__html__")


def test_the_html_email_shows_the_note_near_the_top() -> None:
    rendered = render_email(noted(), period="2026-11-28", settings=MAIL)
    assert rendered.html is not None
    doc = lxml_html.fromstring(rendered.html)
    note = doc.xpath("//*[contains(@class, 'note')]")
    assert len(note) == 1
    assert note[0].xpath(".//strong")[0].text == "Welcome"
    assert rendered.html.index("<strong>Welcome") < rendered.html.index("<h2")


def test_the_html_email_runs_nothing_of_an_evil_note() -> None:
    rendered = render_email(noted(EVIL), period="2026-11-28", settings=MAIL)
    assert rendered.html is not None
    assert "<script" not in rendered.html and "javascript:" not in rendered.html
    assert "onerror" not in rendered.html and "<iframe" not in rendered.html


def test_the_web_edition_shows_the_note() -> None:
    page = render_digest(noted(), "html")
    doc = lxml_html.fromstring(page)
    note = doc.xpath("//header//div[@class='note']")
    assert note and note[0].xpath(".//a/@href") == ["https://news.example.org/post"]
    assert "<script" not in render_digest(noted(EVIL), "html")


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_feeds_open_with_the_note(fmt: str) -> None:
    feed = feedparser.parse(render_digest(noted(), fmt))  # type: ignore[arg-type]
    assert not feed.bozo
    first = feed.entries[0]
    assert first.title == "Editor's note"
    assert "<strong>Welcome</strong>" in first.summary
    assert [e.title for e in feed.entries[1:]] == [f"Paper number {i}" for i in range(3)]
    again = feedparser.parse(render_digest(noted(NOTE + "\nMore."), fmt))  # type: ignore[arg-type]
    assert again.entries[0].id != first.id  # a new note is a new entry
    plain = feedparser.parse(render_digest(sample_digest(3), fmt))  # type: ignore[arg-type]
    assert "Editor's note" not in [e.title for e in plain.entries]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_feed_with_a_note_passes_the_validator_rules(fmt: str) -> None:
    from tests.render.feed_rules import check_feed

    data = render_digest(replace(noted(EVIL), author="Daily Papers"), fmt)  # type: ignore[arg-type]
    assert check_feed(data.encode("utf-8")) == []


def test_the_markdown_output_has_the_note_as_written() -> None:
    out = render_digest(noted(), "markdown")
    assert NOTE.strip() in out
    assert out.index("**Welcome**") < out.index("## Language models")


def test_the_text_outputs_have_the_note_as_text() -> None:
    out = render_digest(noted(), "text")
    assert "**Welcome** to the new format. Read our post [1]" in out
    assert "\n- one change\n- another change\n" in out
    assert "\n[1] https://news.example.org/post\n" in out
    rendered = render_email(noted(), period="2026-11-28", settings=MAIL)
    assert "Read our post [1]" in rendered.text


def test_no_note_leaves_no_trace() -> None:
    digest = sample_digest(3)
    assert "note" not in render_digest(digest, "html").split("<body>")[1]
    rendered = render_email(digest, period="2026-11-28", settings=MAIL)
    assert rendered.html is not None and 'class="note"' not in rendered.html
