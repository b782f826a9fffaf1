"""The HTML email in a real chromium (Debian's, through Playwright): at 375 and 600 px,
light and dark, and with every <style> removed (a mail program without media queries).
No view scrolls sideways at 375 px, the demo-size email stays about six phone screens
long, dark mode stays readable, and the screenshots are written under out/screenshots/
(the heights are printed and written beside them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import MailConfig
from newsletter.models import Digest, Section, Source
from newsletter.render.email import MailSettings
from newsletter.render.email import render_email as render
from newsletter.render.mail_layout import PHONE_HEIGHT, plan_layout
from newsletter.render.message import Recipient, message_bytes, parse_message
from newsletter.services.screenshots import VIEWS, View, take, view_page
from tests.factories import PAPER_SOURCES, paper_digest, paper_item

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "screenshots" / "tests"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
BASE = "https://news.example.org"
PHONE, NO_STYLE = VIEWS[0], VIEWS[2]

CONTRAST = """(selectors) => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      const parts = c.match(/[\\d.]+/g);
      if (parts && (parts.length < 4 || Number(parts[3]) > 0)) return c;
    }
    return "rgb(255, 255, 255)";
  };
  return selectors.map((s) => {
    const el = document.querySelector(s);
    if (!el) return [s, null, null];
    const fg = lum(getComputedStyle(el).color), bg = lum(background(el));
    return [s, (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05), bg];
  });
}"""
READ = ["h1", "h3 a", "a.ct", "p.sig", "p.sum", "span.up", ".toc a", "a.lk", "div.hr p"]
"""The text a reader reads: title, highlight and compact titles, signals, summaries,
badges, the contents, links and the footer."""


def email_html(digest: Digest, **mail: Any) -> str:
    settings = MailSettings(MailConfig(**mail), base_url=BASE)
    rendered = render(digest, period="2026-11-28", settings=settings)
    who = Recipient(email="ada@example.org", name="Ada Lovelace", key="1", unsubscribe_url=BASE)
    body = parse_message(message_bytes(rendered, who, settings=settings, now=NOW)).get_body(
        ("html",)
    )
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def test_demo_size_email_at_375_and_600_light_dark_and_unstyled(chromium: Any) -> None:
    digest = paper_digest(60)
    page = email_html(digest)
    shots = take(chromium, page, folder=SHOTS, stem="demo")
    report = "\n".join(s.describe() for s in shots)
    (SHOTS / "demo-heights.txt").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)
    assert [s.view.name for s in shots] == [v.name for v in VIEWS]
    for shot in shots:
        assert Path(shot.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not shot.overflows, shot.describe()
        assert shot.height > PHONE_HEIGHT  # a real email was laid out, not an empty page
    by_name = {s.view.name: s for s in shots}
    # About six phone screens, with or without the phone media query.
    assert by_name["phone-light"].screens <= 6.5, report
    assert by_name["phone-no-style"].screens <= 7.0, report
    # Dark mode changes colours, never the layout.
    assert by_name["phone-dark"].height == by_name["phone-light"].height
    # The budget's estimate is honest within a tenth of the measured phone height.
    layout = plan_layout(digest, highlights=3, screens=6, max_items=60)
    measured = by_name["phone-light"].height
    assert abs(layout.estimated_height - measured) <= 0.1 * measured, (layout, measured)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_text_stays_readable(chromium: Any, dark: bool) -> None:
    page = email_html(paper_digest(30))
    view = View("contrast", 375, dark=dark)
    with view_page(chromium, page, view) as tab:
        found = tab.evaluate(CONTRAST, READ)
    for selector, ratio, background in found:
        assert ratio is not None, f"{selector} is not in the email"
        # WCAG AA for body text; the badges and grey lines are held to the same bar.
        assert ratio >= 4.5, (selector, ratio)
        if dark:
            assert background < 0.05, (selector, background)  # really dark
        else:
            assert background > 0.8, (selector, background)


def test_hostile_content_never_scrolls_sideways(chromium: Any) -> None:
    word = "Supercalifragilistic" * 12
    url = "https://example.org/" + "a" * 300
    long_item = replace(
        paper_item(1),
        summary=f"{word} {url}",
        entry=replace(paper_item(1).entry, title=f"{word} {url}", author=word),
    )
    digest = Digest(
        "daily",
        word,
        NOW,
        (Section(word, (long_item, paper_item(2), paper_item(3)), key="x"),),
        # A source titled with one endless word: labels that long may wrap anywhere.
        sources={**PAPER_SOURCES, "papers": Source("papers", url, title=f"{word} {word}")},
    )
    page = email_html(digest)
    assert word in page
    for view in (PHONE, NO_STYLE, View("narrow", 320, styles=False)):
        with view_page(chromium, page, view) as tab:
            sizes = tab.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
        assert sizes[0] <= sizes[1], (view.name, sizes)


def test_thumbnails_fit_a_phone_without_media_queries(chromium: Any) -> None:
    page = email_html(paper_digest(10), highlights=3)
    with view_page(chromium, page, NO_STYLE) as tab:
        boxes = tab.evaluate(
            "() => [...document.images].map(i => [i.getBoundingClientRect().right,"
            " i.getBoundingClientRect().width, i.getBoundingClientRect().height,"
            " i.alt, i.complete && i.naturalWidth > 0])"
        )
    assert len(boxes) == 3
    for right, width, height, alt, loaded in boxes:
        assert loaded and alt.startswith("Figure: ")
        assert right <= 375 and width > 250
        assert abs(height - width * 648 / 1200) <= 2  # the thumbnail keeps its shape


def test_web_edition_reads_on_a_phone(chromium: Any) -> None:
    from newsletter.render.archive import edition_html
    from newsletter.render.templates import make_environment

    digest = paper_digest(24)
    page = edition_html(digest, env=make_environment())
    shots = take(chromium, page, views=(PHONE, VIEWS[1], VIEWS[3]), folder=SHOTS, stem="web")
    for shot in shots:
        assert not shot.overflows, shot.describe()
        assert Path(shot.path).read_bytes()[:4] == b"\x89PNG"
    with view_page(chromium, page, VIEWS[1]) as tab:
        found = tab.evaluate(CONTRAST, ["h1", "article h3 a", "p.sig", "span.up", "a.lk"])
    for selector, ratio, _ in found:
        assert ratio is not None and ratio >= 4.5, (selector, ratio)
