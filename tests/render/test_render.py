"""Rendering: every format, hostile text escaped, valid feeds, template overrides."""

from __future__ import annotations

import email.utils
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import markdown
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from newsletter.errors import TemplateError
from newsletter.models import Digest, Engagement, Item, Section, Source
from newsletter.render.digest import FORMATS, render_digest
from newsletter.render.feeds import render_feed
from newsletter.render.templates import md_escape
from tests.factories import make_entry, paper_digest

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
EVIL = '<script>alert(1)</script> & "quotes" *bold* [x](javascript:alert(1)) # head'


def make_digest(title: str = "Paper one", text: str = "A summary.", n: int = 3) -> Digest:
    items = []
    for i in range(n):
        e = make_entry(
            id=f"e{i}",
            source="arxiv" if i % 2 else "hn",
            title=title if i == 0 else f"Paper {i}",
            link=f"https://arxiv.org/abs/2503.1000{i}",
            author="Ada Lovelace",
            published=NOW - timedelta(hours=i),
            text=text,
            engagement=Engagement(upvotes=10 * i) if i % 2 else Engagement(points=i, comments=3),
            comments_url="https://news.ycombinator.com/item?id=1",
        )
        dup = make_entry(f"d{i}", source="hn", title="dup", link=f"https://hn.example/{i}")
        items.append(
            Item(entry=e, duplicates=(dup,) if i == 1 else (), score=1.0 - i / 10, summary=text)
        )
    sections = (
        Section(
            title="Agents & RL", items=tuple(items[:2]), summary="2 papers on agents", key="agents"
        ),
        Section(title="Other", items=tuple(items[2:]), key="other"),
    )
    return Digest(
        name="daily",
        title="Trending <papers>",
        generated_at=NOW,
        sections=sections,
        description="Daily digest",
        link="https://news.example.org/",
        sources={
            "arxiv": Source("arxiv", "https://arxiv.org/rss", title="arXiv"),
            "hn": Source("hn", "https://news.ycombinator.com/rss", title="Hacker News"),
        },
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_titles_and_links(fmt: str) -> None:
    out = render_digest(make_digest(), fmt)  # type: ignore[arg-type]
    assert "Paper one" in out
    assert "arxiv.org/abs/2503.10000" in out
    assert "Paper 2" in out


def test_markdown_structure() -> None:
    out = render_digest(make_digest(), "markdown")
    assert out.startswith("# Trending &lt;papers>\n")
    assert "## Agents & RL" in out
    assert "### [Paper one](https://arxiv.org/abs/2503.10000)" in out
    assert "Also on: [Hacker News](https://hn.example/1)" in out
    assert "▲ 10" in out


def test_html_is_escaped_and_well_formed() -> None:
    out = render_digest(make_digest(title=EVIL, text=EVIL), "html")
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    doc = lxml_html.fromstring(out)
    assert doc.xpath("//h1")[0].text_content() == "Trending <papers>"
    assert len(doc.xpath("//article")) == 3
    assert doc.xpath("//section/@id") == ["agents", "other"]


def test_markdown_of_hostile_title_makes_no_markup() -> None:
    out = render_digest(make_digest(title=EVIL, text=EVIL), "markdown")
    as_html = markdown.markdown(out)
    assert "<script>" not in as_html
    assert 'href="javascript:' not in as_html
    assert "<em>bold</em>" not in as_html and "<strong>bold" not in as_html


def test_text_has_no_markup() -> None:
    out = render_digest(make_digest(), "text")
    assert "Trending <papers>" in out
    assert "\n[1] https://arxiv.org/abs/2503.10000\n" in out  # links are references
    assert "AGENTS & RL" in out


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_feeds_are_valid(fmt: str) -> None:
    data = render_feed(make_digest(title=EVIL, text=EVIL), fmt)  # type: ignore[arg-type]
    root = etree.fromstring(data)  # well-formed XML
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    assert len(parsed.entries) == 3
    assert parsed.entries[0].title == EVIL
    assert parsed.entries[0].id == "https://arxiv.org/abs/2503.10000"
    assert all(e.get("id") for e in parsed.entries)
    if fmt == "rss":
        for date in root.iter("pubDate"):
            assert email.utils.parsedate_to_datetime(date.text) is not None
        assert b"<script>" not in data


def test_user_template_dir_overrides(tmp_path: Path) -> None:
    (tmp_path / "digest.md.j2").write_text("custom {{ digest.item_count }}\n", encoding="utf-8")
    assert render_digest(make_digest(), "markdown", template_dir=tmp_path) == "custom 3\n"
    # Templates the user did not override still come from the bundled set.
    assert "<!doctype html>" in render_digest(make_digest(), "html", template_dir=tmp_path)


def test_broken_user_template_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "digest.md.j2").write_text("line one\n{% for x in %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"digest.md.j2, line 2"):
        render_digest(make_digest(), "markdown", template_dir=tmp_path)


def test_missing_template_dir(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a folder"):
        render_digest(make_digest(), "markdown", template_dir=tmp_path / "nope")


def test_empty_digest() -> None:
    d = Digest(name="d", title="Empty", generated_at=NOW, sections=())
    assert "Nothing new" in render_digest(d, "markdown")
    assert feedparser.parse(render_feed(d, "rss")).entries == []


def test_md_escape() -> None:
    assert md_escape("# a *b* [c](d)") == "\\# a \\*b\\* \\[c\\](d)"
    assert md_escape("1. x") == "1\\. x"
    assert md_escape("line\nbreak") == "line break"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=80), text=st.text(max_size=200))
def test_any_entry_text_renders_valid_output(title: str, text: str) -> None:
    d = make_digest(title=title, text=text, n=2)
    for fmt in ("markdown", "text"):
        assert render_digest(d, fmt)  # type: ignore[arg-type]
    page = render_digest(d, "html")
    assert "<script" not in page.replace("&lt;script", "")
    lxml_html.fromstring(page)
    for fmt in ("rss", "atom"):
        data = render_feed(d, fmt)  # type: ignore[arg-type]
        etree.fromstring(data)
        assert len(feedparser.parse(data).entries) == 2


def test_long_author_lists_are_shortened() -> None:
    from newsletter.render.templates import short_authors

    assert short_authors("A, B, C") == "A, B, C"
    assert short_authors("A, B, C, D, E") == "A, B, C et al."
    digest = make_digest()
    many = ", ".join(f"Author {i}" for i in range(12))
    first = digest.sections[0].items[0]
    entry = replace(first.entry, author=many)
    digest = replace(
        digest,
        sections=(replace(digest.sections[0], items=(replace(first, entry=entry),)),),
    )
    for fmt in ("markdown", "html"):
        out = render_digest(digest, fmt)  # type: ignore[arg-type]
        assert "Author 0, Author 1, Author 2 et al." in out
        assert "Author 11" not in out


def test_compiled_templates_are_kept_between_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.render.templates import make_environment

    monkeypatch.setenv("NEWSLETTER_CACHE_DIR", str(tmp_path / "cache"))
    digest = paper_digest(3)
    first = render_digest(digest, "html", env=make_environment())
    cached = list((tmp_path / "cache" / "templates").iterdir())
    assert cached, "no compiled template was written"
    # A new environment (a new run) reads them back and renders the same.
    assert render_digest(digest, "html", env=make_environment()) == first
    # A cache folder that cannot be made only costs time.
    monkeypatch.setenv("NEWSLETTER_CACHE_DIR", "/proc/no-such-folder")
    assert render_digest(digest, "html", env=make_environment()) == first
