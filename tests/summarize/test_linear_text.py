"""Issue 11, finding 2: every function that walks entry text is linear on hostile text.

Each function runs on 512 KB of each adversarial shape in a forked process, within a
generous budget proportional to the size (:data:`SECONDS_PER_MB`, many times what any of
them takes here; ``bench/adversarial.py`` prints the figures). Before the fix, an unclosed
``<`` made tag regexes scan to the end once per ``<`` (42 s/MB), and a run of periods
made the sentence splitter backtrack once per period (over a minute for 1 MB).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest

from newsletter.models import Entry, EntryMedia, Item
from newsletter.render.templates import md_escape, md_wrap, safe_url
from newsletter.render.text import References, wrap
from newsletter.sources.boilerplate import strip_boilerplate
from newsletter.sources.links import canonical_link
from newsletter.sources.markup import html_to_text, markdown_to_html, sanitize_html, text_to_html
from newsletter.sources.normalize import clean_author, clean_title, engagement_from_text
from newsletter.summarize import dedupe
from newsletter.summarize.group import section_summary, slugify
from newsletter.summarize.labels import Edition, phrases
from newsletter.summarize.language import detect_language
from newsletter.summarize.summary import (
    clean_text,
    extractive_summary,
    finding_summary,
    item_summary,
    split_sentences,
)
from newsletter.summarize.text import analyze, entry_text

SIZE = 512 * 1024
SECONDS_PER_MB = 5.0
"""The budget: the slowest function measured here takes about 0.3 s per MB."""

UNITS = {
    "periods": ".",
    "periods+space": "a. ",
    "initials": "J. K. L. ",
    "nesting": "<div><p><b><i>",
    "no spaces": "abcdefghij",
    "long words": "a" * 5000 + " ",
    "open tags": "<a href='",
    "entities": "&amp;&#x26;&lt;",
    "markdown": "[![*_`",
    "comments": "<!--<script>",
    "urls": "https://example.org/a?b=c&utm_source=x#f ",
    "quotes": '."""""""',
}


def _entry(text: str) -> Entry:
    return Entry(id="x", source="s", title=text[:2000], link="", text=text)


_PAPER = EntryMedia(links=(("pdf", "https://arxiv.org/pdf/2601.00001"),))


FUNCTIONS: dict[str, Callable[[str], object]] = {
    "sanitize_html": lambda t: sanitize_html(t, "https://example.org/"),
    "html_to_text": html_to_text,
    "text_to_html": text_to_html,
    "markdown_to_html": markdown_to_html,
    "strip_boilerplate": lambda t: strip_boilerplate(
        [Entry(id=str(i), source="s", title="t", text=t, content_html=t) for i in range(3)]
    ),
    "clean_title": clean_title,
    "clean_author": clean_author,
    "engagement_from_text": engagement_from_text,
    "canonical_link": lambda t: canonical_link(t, "https://example.org/"),
    "safe_url": safe_url,
    "md_escape": md_escape,
    "md_wrap": md_wrap,
    "text_wrap": wrap,
    "text_references": lambda t: References().markdown(t),
    "clean_text": clean_text,
    "split_sentences": split_sentences,
    "extractive_summary": extractive_summary,
    "finding_summary": finding_summary,
    "item_summary (paper)": lambda t: item_summary(
        Item(entry=Entry(id="x", source="s", title="T", text=t, media=_PAPER))
    ),
    "entry_text": lambda t: entry_text(t, t),
    "analyze": analyze,
    "normalize_title": dedupe.normalize_title,
    "exact_keys": lambda t: dedupe.exact_keys(_entry(t)),
    "slugify": slugify,
    "section_summary": lambda t: section_summary(t, 3, "items", [t]),
    "label_phrases": lambda t: phrases(t, frozenset()),
    "label_rank": lambda t: Edition([t, t[::-1]]).rank([0, 1]),
    "detect_language": detect_language,
}


def _run(name: str, text: str) -> None:
    FUNCTIONS[name](text)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_text_function_is_linear_on_hostile_text(name: str) -> None:
    budget = SECONDS_PER_MB * SIZE / 1_000_000
    ctx = multiprocessing.get_context("fork")
    for shape, unit in UNITS.items():
        text = (unit * (SIZE // len(unit) + 1))[:SIZE]
        proc = ctx.Process(target=_run, args=(name, text))
        proc.start()
        proc.join(budget)
        if proc.is_alive():
            proc.kill()
            proc.join()
            pytest.fail(f"{name} took over {budget:.1f} s on {SIZE // 1024} KB of {shape!r}")
        assert proc.exitcode == 0, f"{name} failed on {shape!r}"
