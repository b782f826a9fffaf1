"""Extractive summaries: whole sentences within a budget, real sentence boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.summarize.summary import (
    ELLIPSIS,
    clean_text,
    extractive_summary,
    split_sentences,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Models, e.g. GPT, work. Next one.", ["Models, e.g. GPT, work.", "Next one."]),
        ("As shown by Smith et al. This holds.", ["As shown by Smith et al. This holds."]),
        ("See Fig. 2 for details. Then more.", ["See Fig. 2 for details.", "Then more."]),
        ("Loss fell by 3.5 points. Good.", ["Loss fell by 3.5 points.", "Good."]),
        ("The U.S. Army uses it. Really.", ["The U.S. Army uses it.", "Really."]),
        ("Written by J. Smith in 2024. Next.", ["Written by J. Smith in 2024.", "Next."]),
        ("Is it? Yes! Sure.", ["Is it?", "Yes!", "Sure."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("i.e. lowercase after. Continues.", ["i.e. lowercase after.", "Continues."]),
        ("Versions 1.2. Fixed.", ["Versions 1.2.", "Fixed."]),
        ("no period at end", ["no period at end"]),
    ],
    ids=[
        "simple",
        "e.g.",
        "et-al",
        "fig",
        "decimal",
        "initialism",
        "initial",
        "question-exclaim",
        "closing-quote",
        "i.e.",
        "number-then-period",
        "no-terminal",
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_whole_sentences_that_fit() -> None:
    text = "First sentence here. Second one is here too. Third sentence is the longest one."
    assert extractive_summary(text, budget=50) == "First sentence here. Second one is here too."
    assert extractive_summary(text, budget=25) == "First sentence here."


def test_long_first_sentence_is_cut_at_a_word_with_ellipsis() -> None:
    text = "This opening sentence is far too long for the tiny budget we give it. Short."
    summary = extractive_summary(text, budget=30)
    assert summary == "This opening sentence is far…"
    assert len(summary) <= 30


def test_trailing_punctuation_dropped_before_ellipsis() -> None:
    assert extractive_summary("Alpha beta, gamma delta epsilon zeta.", budget=13) == "Alpha beta…"


def test_markup_and_whitespace_cleaned() -> None:
    html = "<p>Hello&nbsp;<b>world</b>.</p>\n\n<p>Second   <a href='x'>para</a>.</p>"
    assert extractive_summary(html) == "Hello world. Second para."
    assert clean_text("A [link](https://x.org) and **bold** and `code`.") == (
        "A link and bold and code."
    )
    assert clean_text("keep __init__ and a < b") == "keep __init__ and a < b"


@pytest.mark.parametrize(
    "text", ["", "   ", "<p></p>", "\n\t"], ids=["empty", "spaces", "tags", "ws"]
)
def test_empty_in_empty_out(text: str) -> None:
    assert extractive_summary(text) == ""


def test_tiny_budget_never_cuts_a_word() -> None:
    assert extractive_summary("Supercalifragilistic words", budget=5) == ""
    assert extractive_summary("Anything", budget=0) == ""


words = st.text(alphabet="abcdefghijKLMNOP0123456789", min_size=1, max_size=12)
separators = st.sampled_from([" ", "  ", ". ", ", ", "! ", "? ", "\n", " e.g. ", " 3.5 "])
texts = st.lists(st.tuples(words, separators), max_size=60).map(
    lambda parts: "".join(w + s for w, s in parts)
)


@settings(max_examples=300, deadline=None)
@given(text=texts | st.text(max_size=400), budget=st.integers(min_value=0, max_value=300))
def test_never_exceeds_budget_never_cuts_a_word(text: str, budget: int) -> None:
    summary = extractive_summary(text, budget)
    assert len(summary) <= budget
    clean = clean_text(text)
    head = summary.removesuffix(ELLIPSIS)
    assert clean.startswith(head)
    rest = clean[len(head) :]
    # The summary stops at a word boundary: the text goes on with a space or punctuation.
    assert rest == "" or not (rest[0].isalnum() and head and head[-1].isalnum())


@settings(max_examples=200, deadline=None)
@given(text=texts, budget=st.integers(min_value=1, max_value=300))
def test_idempotent(text: str, budget: int) -> None:
    once = extractive_summary(text, budget)
    assert extractive_summary(once, budget) == once


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_short_clean_text_is_its_own_summary(text: str) -> None:
    clean = clean_text(text)
    assert extractive_summary(clean, budget=max(len(clean), 1)) == clean
