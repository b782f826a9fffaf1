"""The plain-text part is text: wrapped at 76 columns, words and URLs whole, links as
numbered references listed at the end. The proof runs on the demo digest (config/demo.toml
and its feeds) and on a digest of every fixture feed: no line of the text part is longer
than 78 columns except a reference whose URL alone is."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import MailConfig, load_config
from newsletter.models import Digest, Source
from newsletter.render.digest import render_digest
from newsletter.render.email import MailSettings, render_email
from newsletter.render.message import Recipient, message_bytes
from newsletter.render.message import parse_message as parse
from newsletter.render.text import WIDTH, References, wrap
from newsletter.services.tokens import make_token
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from tests.factories import FEEDS, merged_paper_digest, sample_digest

ROOT = Path(__file__).resolve().parents[2]
FETCHED = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
"""When the feeds were fetched: the date of entries that carry none (the demo's)."""
LIMIT = 78
REFERENCE = re.compile(r"^\[\d+\] \S+$")

MAIL = MailSettings(
    MailConfig(domain="news.example.org", from_address="Daily <daily@news.example.org>"),
    base_url="https://news.example.org",
)


def too_long(text: str) -> list[str]:
    """The lines over 78 columns that are not a reference to one long URL."""
    return [ln for ln in text.splitlines() if len(ln) > LIMIT and not REFERENCE.match(ln)]


def digest_of(paths: list[Path], **config: object) -> Digest:
    """The digest of these feed files, built as the pipeline builds it."""
    from newsletter.config import DigestConfig

    entries, sources = [], {}
    for path in paths:
        parsed = parse_source(path.read_bytes(), source=path.stem)
        entries += [e.seen_at(FETCHED) for e in parsed.entries]  # as the store dates them
        sources[path.stem] = Source(path.stem, str(path), title=parsed.info.title or path.stem)
    now = max(e.when for e in entries if e.when) + timedelta(hours=1)
    cfg = DigestConfig(name="daily", title="Everything we read", **config)  # type: ignore[arg-type]
    return build_digest(entries, now=now, config=cfg, sources=sources)


def fixture_digest() -> Digest:
    feeds = sorted(p for p in FEEDS.iterdir() if p.suffix in (".xml", ".json"))
    return digest_of(feeds, max_items=500)


def demo_digest() -> Digest:
    settings = load_config(ROOT / "config" / "demo.toml")
    cfg = settings.digests[0]
    paths = [ROOT / s.url for s in settings.sources]
    return digest_of(paths, max_items=cfg.max_items, description=cfg.description)


def text_part(digest: Digest) -> str:
    """The text/plain part of the HTML email of ``digest`` as a subscriber receives it
    (real unsubscribe and preference links)."""
    rendered = render_email(digest, period="2026-12-01", settings=MAIL)
    token = make_token("unsubscribe", "daily ada@example.org", "secret")
    ada = Recipient(
        email="ada@example.org",
        name="Ada Lovelace",
        key="1",
        unsubscribe_url=f"https://news.example.org/unsubscribe/{token}",
        manage_url=f"https://news.example.org/prefs/{make_token('prefs', 'ada', 'secret')}",
    )
    msg = parse(message_bytes(rendered, ada, settings=MAIL, now=digest.generated_at))
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.fixture(scope="module", params=["demo", "fixture feeds"])
def big_digest(request: pytest.FixtureRequest) -> Digest:
    return demo_digest() if request.param == "demo" else fixture_digest()


def test_text_part_lines_fit_in_78_columns(big_digest: Digest) -> None:
    text = text_part(big_digest)
    assert big_digest.item_count >= 20
    assert too_long(text) == []
    assert "Links:\n[1] http" in text


def test_text_output_lines_fit_in_78_columns(big_digest: Digest) -> None:
    assert too_long(render_digest(big_digest, "text")) == []


def test_text_part_has_no_markdown(big_digest: Digest) -> None:
    text = text_part(big_digest)
    assert "](http" not in text and "**" not in text and "\n### " not in text
    assert "In this issue:" in text


def test_every_link_is_a_numbered_reference_listed_once() -> None:
    digest = sample_digest(4)
    text = text_part(digest)
    body, links = text.split("\nLinks:\n")
    listed = [line.split(" ", 1) for line in links.strip().splitlines()]
    numbers = [int(n.strip("[]")) for n, _ in listed]
    assert numbers == list(range(1, len(numbers) + 1))
    urls = [u for _, u in listed]
    assert len(set(urls)) == len(urls)
    for i in range(4):
        url = f"https://example.org/papers/{i}"
        n = urls.index(url) + 1
        assert f"* Paper number {i} [{n}]" in body
        assert url not in body
    unsubscribe = next(u for u in urls if "/unsubscribe/" in u)
    assert f"Unsubscribe: [{urls.index(unsubscribe) + 1}]" in body
    assert body.startswith("Hi Ada")  # the greeting, then the text


def test_long_titles_and_summaries_wrap_with_a_hanging_indent() -> None:
    digest = sample_digest(1, item_title="A very long title " * 8)
    item = replace(digest.items[0], summary="word " * 60)
    digest = replace(digest, sections=(replace(digest.sections[0], items=(item,)),))
    text = render_digest(digest, "text")
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("* A very long title"))
    assert lines[start + 1].startswith("  very long title")
    assert all(len(ln) <= WIDTH for ln in lines)
    summary = [ln for ln in lines if ln.startswith("  word")]
    assert len(summary) >= 4 and all(len(ln) <= WIDTH for ln in summary)


def test_a_url_in_a_summary_becomes_a_reference() -> None:
    long_url = "https://example.org/" + "x" * 120
    digest = sample_digest(1)
    item = replace(digest.items[0], summary=f"Code at {long_url}. Also javascript:alert(1).")
    digest = replace(digest, sections=(replace(digest.sections[0], items=(item,)),))
    text = render_digest(digest, "text")
    assert "Code at [2]. Also javascript:alert(1)." in text
    assert f"\n[2] {long_url}\n" in text
    assert too_long(text) == []


def test_wrap_keeps_words_and_urls_whole() -> None:
    url = "https://example.org/" + "a" * 90
    out = wrap(f"see {url} and more words after it", width=40)
    assert url in out.splitlines()
    assert wrap("hyphen-ated words stay-together " * 4, width=20).count("stay-together") == 4
    assert wrap("  spaced \n out  ") == "spaced out"
    assert wrap("") == ""
    assert wrap("a b c", first="* ", indent="  ") == "* a b c"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=20, max_value=100))
def test_wrap_never_exceeds_the_width_and_keeps_every_word(text: str, width: int) -> None:
    out = wrap(text, width=width, indent="  ", first="* ")
    words = text.split()
    if not any(re.match(r"https?://", w) or "http" in w for w in words):
        assert all(len(line) <= width for line in out.splitlines())
    assert "".join(out.replace("* ", "", 1).split()) == "".join(words)


def test_references_number_in_order_and_reuse_numbers() -> None:
    refs = References()
    assert refs("https://a.org/") == "[1]"
    assert refs("https://b.org/") == "[2]"
    assert refs("https://a.org/") == "[1]"
    assert refs("javascript:alert(1)") == ""
    assert refs("") == ""
    assert list(refs) == [(1, "https://a.org/"), (2, "https://b.org/")]


def test_markdown_note_as_text() -> None:
    refs = References()
    note = (
        "**Welcome!** Read [our post](https://x.org/post) or <https://x.org/faq>.\n\n"
        "- a list item long enough to be wrapped onto a second line, so the hanging indent "
        "shows\n- [bad](javascript:alert(1))"
    )
    out = refs.markdown(note)
    assert out.splitlines() == [
        "**Welcome!** Read our post [1] or [2].",
        "",
        "- a list item long enough to be wrapped onto a second line, so the hanging",
        "  indent shows",
        "- bad",
    ]
    assert list(refs) == [(1, "https://x.org/post"), (2, "https://x.org/faq")]


def test_a_user_text_template_leaves_the_email_text_part_whole(tmp_path: Path) -> None:
    from newsletter.render.templates import make_environment

    (tmp_path / "digest.txt.j2").write_text("custom {{ digest.item_count }}\n", encoding="utf-8")
    env = make_environment(tmp_path)
    assert render_digest(sample_digest(2), "text", env=env) == "custom 2\n"
    rendered = render_email(sample_digest(2), period="2026-12-01", settings=MAIL, env=env)
    assert "* Paper number 0 [1]" in rendered.text and "Unsubscribe: [" in rendered.text


def test_each_source_keeps_its_signals_and_paper_links_are_listed() -> None:
    digest = merged_paper_digest()
    text = render_digest(digest, "text")
    refs = dict((url, f"[{n}]") for n, url in _references(text))
    flat = " ".join(text.split())
    assert (
        "* A paper about agents [1] Hugging Face, Ada Lovelace, Alan Turing, Grace Hopper "
        "et al., Analytical Engines Ltd, 122 upvotes, 7 comments "
        + refs["https://huggingface.co/papers/2511.00001#community"]
        + " It works."
    ) in flat
    assert f"  PDF {refs['https://arxiv.org/pdf/2511.00001']}, Code " in text
    assert (
        "  Also on: Hacker News, 240 points, 88 comments "
        + refs["https://news.ycombinator.com/item?id=1"]
    ) in text
    assert "Paper [" not in text  # the paper page is the title's own link
    assert too_long(text) == []


def _references(text: str) -> list[tuple[int, str]]:
    links = text.split("\nLinks:\n", 1)[1]
    return [(int(n.strip("[]")), url) for n, url in (ln.split(" ", 1) for ln in links.splitlines())]


def test_a_story_ranked_up_by_the_readers_interests_says_so() -> None:
    """A story with fewer upvotes above one with more is explained to the reader: "For
    you" names the interests it matched, in every format."""
    from dataclasses import replace

    from newsletter.render.digest import render_digest
    from tests.factories import paper_digest

    digest = paper_digest(3)
    first = digest.sections[0]
    mine = replace(first.items[0], interests=("agents",))
    digest = replace(
        digest, sections=(replace(first, items=(mine, *first.items[1:])), *digest.sections[1:])
    )
    for fmt in ("text", "markdown", "html"):
        out = render_digest(digest, fmt)
        assert " ".join(out.split()).count("For you: agents") == 1, fmt


def test_no_comments_yet_reads_discussion_not_zero_comments() -> None:
    from newsletter.models import Engagement
    from newsletter.render.text import engagement_text

    assert engagement_text(Engagement(upvotes=3, comments=0)) == ", 3 upvotes"
    assert engagement_text(Engagement(points=1, comments=2)) == ", 1 point, 2 comments"
    from newsletter.render.digest import render_digest
    from tests.factories import paper_digest

    digest = paper_digest(3)  # the factory's papers have no comments yet
    for fmt in ("markdown", "html", "text"):
        out = render_digest(digest, fmt)
        assert "0 comments" not in out, fmt
    assert "[discussion](https://huggingface.co/papers/" in render_digest(digest, "markdown")
