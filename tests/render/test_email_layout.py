"""What the HTML email shows a reader: highlights and compact lines within the length
budget, "In this issue" with anchors, a footer that tells the truth, the subject, the
greeting, paper cards with each signal beside its own source, and the fluid layout."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import MailConfig, load_config
from newsletter.errors import ConfigError
from newsletter.models import Digest, Section
from newsletter.render.cards import make_card
from newsletter.render.email import MailSettings, first_name, greeting, render_email, subject_for
from newsletter.render.mail_layout import PHONE_HEIGHT, plan_layout
from newsletter.render.message import Recipient, message_bytes, parse_message
from tests.factories import (
    PAPER_SOURCES,
    paper_digest,
    paper_item,
    sample_digest,
    write_config,
)

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
BASE = "https://news.example.org"
ARCHIVE = f"{BASE}/archive/daily/2026-11-28"


def mail(**fields: Any) -> MailSettings:
    return MailSettings(MailConfig(**fields), base_url=BASE)


def html_of(digest: Digest, settings: MailSettings | None = None, name: str = "Ada") -> str:
    settings = settings or mail()
    rendered = render_email(digest, period="2026-11-28", settings=settings)
    who = Recipient(email="ada@example.org", name=name, key="1", unsubscribe_url=f"{BASE}/u/t")
    msg = parse_message(message_bytes(rendered, who, settings=settings, now=NOW))
    body = msg.get_body(("html",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def titles_in(page: str, digest: Digest) -> list[str]:
    text = unescape(page)
    return [i.entry.title for i in digest.items if i.entry.title in text]


# -- length and selection ----------------------------------------------------------------


def test_a_demo_size_digest_fits_about_six_phone_screens() -> None:
    digest = paper_digest(60)
    layout = plan_layout(digest, highlights=3, screens=6, max_items=60)
    assert layout.estimated_height <= 6 * PHONE_HEIGHT
    shown = layout.shown.item_count
    assert 8 <= shown < 60  # the budget, not max_items, cut it
    assert layout.left_out == 60 - shown
    assert len(layout.highlights) == 3


def test_highlights_are_the_best_scored_and_shown_once() -> None:
    digest = paper_digest(30)
    # Scores out of step with the section order: the highlights follow the score.
    best = {"Vision": 500.0, "Agents": 400.0}
    sections = tuple(
        replace(
            s,
            items=(replace(s.items[-1], score=best.get(s.title, s.items[-1].score)), *s.items[:-1]),
        )
        for s in digest.sections
    )
    digest = replace(digest, sections=sections)
    layout = plan_layout(digest, highlights=2, screens=20, max_items=100)
    assert [c.section for c in layout.highlights] == ["Vision", "Agents"]
    page = html_of(digest, mail(highlights=2, screens=20))
    shown = 0
    for item in digest.items:
        links = unescape(page).count(f">{item.entry.title}</a>")
        assert links <= 1, item.entry.title
        shown += links
    assert shown == layout.shown.item_count


def test_order_inside_a_section_is_the_order_given() -> None:
    digest = paper_digest(24, sections=2)
    # Reverse the second section: ranking decides the order, the email only follows it.
    first, second = digest.sections
    digest = replace(digest, sections=(first, replace(second, items=second.items[::-1])))
    layout = plan_layout(digest, highlights=0, screens=50, max_items=100)
    assert [c.item for c in layout.sections[1].cards] == list(second.items[::-1])


def test_settings_change_the_length() -> None:
    digest = paper_digest(60)
    short = plan_layout(digest, highlights=1, screens=2, max_items=60)
    long = plan_layout(digest, highlights=5, screens=12, max_items=60)
    assert len(short.highlights) == 1 and len(long.highlights) == 5
    assert short.shown.item_count < long.shown.item_count
    assert short.estimated_height <= 2 * PHONE_HEIGHT
    none = plan_layout(digest, highlights=0, screens=6, max_items=10)
    assert none.highlights == () and none.shown.item_count == 10
    page = html_of(digest, mail(highlights=0, screens=6, max_items=10))
    assert 'id="highlights"' not in page


def test_one_story_is_always_shown() -> None:
    layout = plan_layout(paper_digest(5), highlights=3, screens=1, max_items=60)
    assert layout.shown.item_count >= 1


@pytest.mark.parametrize(
    ("setting", "value", "example"),
    [("screens", 0, "screens = 6"), ("highlights", -1, "highlights = 3")],
    ids=["screens", "highlights"],
)
def test_bad_length_settings_are_clear_errors(
    tmp_path: Path, setting: str, value: int, example: str
) -> None:
    path = write_config(tmp_path, mail={setting: value})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert f"mail.{setting}" in text and example in text and "config.toml" in text
    assert re.search(r"line \d+", text)


# -- what the email says -----------------------------------------------------------------


def test_in_this_issue_links_to_every_section_of_the_email() -> None:
    page = html_of(paper_digest(60))
    toc = page.split("In this issue", 1)[1].split("</div>", 1)[0]
    targets = re.findall(r'href="#([^"]+)"', toc)
    assert targets[0] == "highlights" and len(targets) >= 3
    for target in targets:
        assert page.count(f'id="{target}"') == 1, target


def test_the_footer_tells_the_truth() -> None:
    digest = paper_digest(60)
    settings = mail()
    rendered = render_email(digest, period="2026-11-28", settings=settings)
    page = html_of(digest, settings)
    left = 60 - rendered.items
    assert rendered.omitted == left > 0
    assert f"{left} more stories did not fit in this email" in page
    assert re.search(
        rf'<a href="{re.escape(ARCHIVE)}"[^>]*>read the full edition on the web</a>', page
    )
    assert len(titles_in(page, digest)) == rendered.items
    # Nothing left out: the footer does not say anything was.
    small = html_of(paper_digest(4))
    assert "did not fit" not in small and "left out" not in small
    # A digest already cut by max_items counts those too.
    capped = replace(digest, omitted=85)
    assert f"{left + 85} more stories did not fit" in html_of(capped, settings)


def test_without_a_web_edition_the_footer_links_nowhere() -> None:
    settings = MailSettings(MailConfig())
    page = html_of(paper_digest(60), settings)
    assert "more stories did not fit in this email." in page
    assert "/archive/" not in page


def test_subject_names_the_top_story() -> None:
    digest = paper_digest(15)
    rendered = render_email(digest, period="2026-11-28", settings=mail(screens=50))
    top = digest.items[0].entry.title
    assert rendered.subject == f"Daily Papers — {top} and 14 more"
    one = Digest("daily", "Daily Papers", NOW, (Section("A", (paper_item(1),)),))
    assert subject_for("{title} — {headline}", one, "2026-11-28") == (
        f"Daily Papers — {paper_item(1).entry.title}"
    )
    empty = Digest("daily", "Daily Papers", NOW, ())
    assert subject_for("{title} — {headline}", empty, "2026-11-28") == "Daily Papers — 2026-11-28"
    custom = subject_for("{top} (+{more}) · {date}", digest, "2026-11-28")
    assert custom == f"{top} (+14) · 2026-11-28"


def test_a_long_top_story_is_shortened_at_a_word() -> None:
    long_title = "Scaling " + "very " * 30 + "long titles"
    digest = sample_digest(3, item_title=long_title)
    subject = subject_for("{top}", digest, "2026-11-28")
    assert subject.endswith("…") and len(subject) <= 80
    assert long_title.startswith(subject[:-1])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada Lovelace", "Hi Ada,"),
        ("Lovelace, Ada", "Hi Ada,"),
        ("  Grace  ", "Hi Grace,"),
        ("", "Hello,"),
        ("\r\n", "Hello,"),
    ],
    ids=["first-last", "last-comma-first", "spaces", "none", "only-newline"],
)
def test_greeting_uses_the_first_name(name: str, expected: str) -> None:
    assert greeting(name) == expected


def test_the_message_greets_by_first_name() -> None:
    page = html_of(sample_digest(2), name="Ada Lovelace")
    assert "Hi Ada," in page and "Ada Lovelace," not in page
    assert first_name("Ada Lovelace") == "Ada"


# -- paper cards -------------------------------------------------------------------------


def test_paper_card_shows_thumbnail_authors_organization_and_links() -> None:
    page = html_of(paper_digest(10), mail(highlights=1))
    first = paper_digest(10).items[0]
    card = page.split('id="highlights"', 1)[1].split("</td>", 2)[1]
    img = re.search(r"<img[^>]*>", card)
    assert img is not None
    tag = img.group(0)
    assert 'src="https://cdn.example.org/thumbs/0.png"' in tag
    assert 'width="552"' in tag and 'height="298"' in tag  # 1200x648 at 552 px
    assert f'alt="Figure: {first.entry.title}"' in unescape(tag)
    assert "max-width" in tag and "height: auto" in tag
    # Never the only content: the title, the summary and the links are text beside it.
    assert first.entry.title in unescape(card) and first.summary in unescape(card)
    assert "Ada Lovelace, Alan Turing, Grace Hopper et al." in card
    assert "Analytical Engines Lab" in card
    for label, url in (
        ("Paper", "https://huggingface.co/papers/2511.10000"),
        ("PDF", "https://arxiv.org/pdf/2511.10000"),
        ("Code", "https://github.com/example/paper-0"),
        ("Project page", "https://example.org/projects/0"),
    ):
        assert re.search(rf'<a [^>]*href="{re.escape(url)}"[^>]*>{label}</a>', card), label


def test_without_media_the_byline_is_the_entry_author() -> None:
    item = paper_item(2, media=False, author="A. One, B. Two, C. Three, D. Four")
    card = make_card(item, PAPER_SOURCES)
    assert card.byline == "A. One, B. Two, C. Three et al."
    assert card.thumbnail is None and card.links == ()


def test_each_signal_stays_with_its_own_source() -> None:
    item = paper_item(0)  # Daily Papers + a plain arXiv duplicate + a Hacker News one
    card = make_card(item, PAPER_SOURCES)
    hf, arxiv, hn = card.signals
    assert (hf.label, hf.upvotes, hf.points) == ("Daily Papers", 300, None)
    assert hf.discussion == "https://huggingface.co/papers/2511.10000#community"
    assert (arxiv.label, arxiv.upvotes, arxiv.points, arxiv.comments) == (
        "arXiv cs.LG",
        None,
        None,
        None,
    )
    assert arxiv.discussion == "" and arxiv.link == "https://arxiv.org/abs/2511.10000"
    assert (hn.label, hn.points, hn.comments, hn.upvotes) == ("Hacker News", 40, 12, None)
    assert hn.discussion == "https://news.ycombinator.com/item?id=9000"
    page = html_of(
        Digest("daily", "Daily Papers", NOW, (Section("A", (item,)),), sources=PAPER_SOURCES)
    )
    page = unescape(page).replace("\xa0", " ")  # short labels and figures are kept whole
    sig = page.split("Daily Papers</span>", 1)[1].split("</p>", 1)[0]
    parts = sig.split("·")
    hf_part = next(p for p in parts if "▲" in p)
    assert "300" in hf_part
    hn_part = next(p for p in parts if "Hacker News" in p)
    assert "40 points" in hn_part
    assert (
        'href="https://news.ycombinator.com/item?id=9000"' in hn_part and "12 comments" in hn_part
    )
    arxiv_part = next(p for p in parts if "arXiv" in p)
    assert 'href="https://arxiv.org/abs/2511.10000"' in arxiv_part
    assert not re.search(r"\d+\s(points|comments)|▲", arxiv_part)


# -- layout ------------------------------------------------------------------------------


def test_fluid_hybrid_layout_and_dark_mode_markup() -> None:
    page = html_of(paper_digest(20))
    compact = page.replace(" ", "")
    assert "max-width:600px" in compact and "width:100%" in compact
    # The only fixed 600 px width is Outlook's table inside conditional comments.
    mso = re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", page, re.DOTALL)
    assert any('width="600"' in m for m in mso)
    outside = re.sub(r"<!--\[if mso\]>.*?<!\[endif\]-->", "", page, flags=re.DOTALL)
    assert 'width="600"' not in outside
    assert not re.search(r"(?<![-\w])width:600px", outside.replace(" ", ""))
    assert '<meta name="color-scheme" content="light dark">' in page
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "prefers-color-scheme:dark" in style.replace(" ", "")


def test_edition_count_matches_header_and_footer() -> None:
    digest = paper_digest(60)
    rendered = render_email(digest, period="2026-11-28", settings=mail())
    page = html_of(digest)
    assert f"{rendered.items} stories" in page
    assert "All 60 on the web" in page


@pytest.mark.parametrize(
    ("image", "width", "height", "expected"),
    [
        ("https://cdn.example.org/t.png", 0, 648, (552, 310)),  # unknown size: 16:9
        ("https://cdn.example.org/t.png", -5, 10, (552, 310)),
        ("https://cdn.example.org/t.png", 400, 400, (552, 552)),
        ("javascript:alert(1)", 1200, 648, None),
        ("data:image/png;base64,AAAA", 1200, 648, None),
    ],
    ids=["zero-width", "negative", "square", "javascript", "data-url"],
)
def test_hostile_or_partial_thumbnails(
    image: str, width: int, height: int, expected: tuple[int, int] | None
) -> None:
    item = paper_item(4)
    media = item.entry.media
    assert media is not None
    entry = replace(
        item.entry, media=replace(media, image=image, image_width=width, image_height=height)
    )
    card = make_card(replace(item, entry=entry), PAPER_SOURCES)
    if expected is None:
        assert card.thumbnail is None
        page = html_of(Digest("daily", "D", NOW, (Section("A", (card.item,)),)))
        assert "<img" not in page and "javascript:" not in page
    else:
        assert card.thumbnail is not None
        assert (card.thumbnail.width, card.thumbnail.height) == expected


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=0, max_size=6),
    scores=st.lists(st.floats(-10, 10, allow_nan=False), min_size=80, max_size=80),
    highlights=st.integers(0, 6),
    screens=st.floats(1, 20),
    max_items=st.integers(1, 100),
    omitted=st.integers(0, 50),
)
def test_layout_shows_or_counts_every_story(
    sizes: list[int],
    scores: list[float],
    highlights: int,
    screens: float,
    max_items: int,
    omitted: int,
) -> None:
    n = 0
    sections = []
    for k, size in enumerate(sizes):
        items = tuple(replace(paper_item(n + j), score=scores[n + j]) for j in range(size))
        n += size
        if items:
            sections.append(Section(f"S{k}", items, key=f"k{k}"))
    digest = Digest("daily", "D", NOW, tuple(sections), sources=PAPER_SOURCES, omitted=omitted)
    layout = plan_layout(digest, highlights=highlights, screens=screens, max_items=max_items)
    shown = layout.shown
    assert shown.item_count + shown.omitted == n + omitted
    assert shown.item_count <= max_items and len(layout.highlights) <= highlights
    assert (shown.item_count >= 1) == (n >= 1)
    # The highlights are the best-scored stories shown; nothing is shown twice.
    lines = [c.item for s in layout.sections for c in s.cards]
    tops = [c.item for c in layout.highlights]
    assert len({id(i) for i in lines + tops}) == len(lines) + len(tops) == shown.item_count
    if tops and lines:
        assert min(i.score for i in tops) >= max(i.score for i in lines)
    # Inside a section the lines keep the given order.
    for compact in layout.sections:
        given = next(s for s in digest.sections if s.title == compact.title).items
        positions = [given.index(c.item) for c in compact.cards]
        assert positions == sorted(positions)


def test_short_source_labels_stay_on_one_line_long_ones_may_wrap() -> None:
    from newsletter.render.cards import SourceSignal

    assert SourceSignal("arXiv cs.LG", "").display == "arXiv\xa0cs.LG"
    assert (
        SourceSignal("Hugging Face Daily Papers", "").display
        == "Hugging\xa0Face\xa0Daily\xa0Papers"
    )
    long = "The Very Long Title Of Some Feed That Goes On And On"
    assert SourceSignal(long, "").display == long
