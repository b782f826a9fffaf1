"""Summaries that state the finding: a paper's "we propose / we show" sentences over the
background its abstract opens with, HF's ``ai_summary`` when there is one, the lead for
everything else (``summary.finding_summary``, ``summary.item_summary``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.config import DigestConfig
from newsletter.models import Engagement, EntryMedia, Item
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from newsletter.summarize.summary import (
    extractive_summary,
    finding_score,
    finding_summary,
    item_summary,
    split_sentences,
    standalone,
)
from tests.factories import make_entry

FIXTURES = Path(__file__).parents[1] / "fixtures"
SEED = FIXTURES / "seed" / "trending-papers.txt"
NOW = datetime(2026, 6, 13, 7, tzinfo=UTC)
PAPER = EntryMedia(links=(("paper", "https://arxiv.org/abs/2601.00001"),))


def seed_papers() -> list[tuple[str, str]]:
    """(title, abstract) of the 112 papers of the trending-papers snapshot."""
    paras = [p.strip() for p in SEED.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    body = paras[paras.index("Mar 13") + 1 :]
    return [(body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]


def abstract_of(title_start: str) -> str:
    return next(a for t, a in seed_papers() if t.startswith(title_start))


def test_the_astrophysics_abstract_is_summarized_by_what_it_did() -> None:
    """The issue's example: the lead is background; the summary says what was done."""
    abstract = abstract_of("Reinforcement Learning for Adaptive Time-Stepping")
    lead = extractive_summary(abstract)
    assert lead.startswith("Many problems in astrophysics cover multiple orders of magnitude")
    summary = finding_summary(abstract)
    assert "Many problems in astrophysics" not in summary
    assert summary.startswith("We address these challenges with Reinforcement Learning")
    assert "We show that this extrapolation works" in summary


@pytest.mark.parametrize(
    ("title", "background", "finding"),
    [
        (
            "Distribution Transformers",
            "While Bayesian inference provides a principled framework",
            "we introduce the Distribution Transformer",
        ),
        (
            "An End-to-End Reinforcement Learning Approach",
            "Constraint Programming (CP) is a declarative programming paradigm",
            "This paper proposes a novel end-to-end approach",
        ),
        (
            "One Timestep is All You Need",
            "Spiking Neural Networks (SNNs) are energy efficient alternatives",
            "we propose an Iterative Initialization and Retraining method",
        ),
        (
            "Faster Re-translation Using Non-Autoregressive Model",
            "Recently, simultaneous translation has gathered a lot of attention",
            "we propose a faster re-translation system",
        ),
    ],
    ids=["distribution-transformers", "job-shop", "snn", "re-translation"],
)
def test_finding_sentences_win_over_background_on_real_abstracts(
    title: str, background: str, finding: str
) -> None:
    abstract = abstract_of(title)
    assert extractive_summary(abstract).startswith(background)
    summary = finding_summary(abstract)
    assert background not in summary
    assert finding.lower() in summary.lower()


def test_over_the_whole_seed_summaries_state_findings_in_order_and_budget() -> None:
    """All 112 abstracts: every summary fits, is made of the abstract's own sentences in
    their order, and says what was done whenever the abstract has such a sentence that
    fits; the lead says it far less often."""
    papers = seed_papers()
    assert len(papers) == 112
    lead_states, finding_states = 0, 0
    for _, abstract in papers:
        sentences = split_sentences(abstract)
        summary = finding_summary(abstract, 280)
        assert 0 < len(summary) <= 280
        # Whole sentences, a lead-in pointing back dropped where the sentence stands alone.
        chosen = [
            s if s in summary else standalone(s)
            for s in sentences
            if s in summary or standalone(s) in summary
        ]
        if not summary.endswith("…"):
            assert " ".join(chosen) == summary  # whole sentences, original order
        fits = [s for s in sentences if finding_score(s) and len(s) <= 280]
        if fits:
            assert any(finding_score(s) for s in chosen), summary
            finding_states += 1
        lead = extractive_summary(abstract, 280)
        lead_states += any(finding_score(s) for s in split_sentences(lead))
    # Measured: 111 of 112 abstracts have such a sentence, and the lead of only 9 does.
    assert finding_states >= 105
    assert lead_states <= 20


def test_the_best_finding_is_cut_rather_than_fall_back_to_background() -> None:
    text = (
        "Background sentence about the field is here. "
        "We show that a very long finding sentence keeps going well past the budget given."
    )
    summary = finding_summary(text, 40)
    assert summary.startswith("We show that") and summary.endswith("…")
    assert len(summary) <= 40


def test_text_without_findings_keeps_its_lead() -> None:
    text = "The sky is blue today. Clouds came later. Rain fell in the evening hours."
    assert finding_summary(text, 30) == extractive_summary(text, 30) == "The sky is blue today."


def test_ai_summary_is_the_summary_of_an_hf_item() -> None:
    entries = parse_source(
        (FIXTURES / "feeds" / "hf-daily-papers-api.json").read_bytes(), source="hf"
    ).entries
    for entry in entries:
        assert entry.media is not None and entry.media.ai_summary
        assert item_summary(Item(entry=entry), 280) == entry.media.ai_summary
    # Too long for the budget: cut at a word, never past it.
    cut = item_summary(Item(entry=entries[0]), 80)
    assert cut.endswith("…") and len(cut) <= 80
    assert entries[0].media is not None and entries[0].media.ai_summary
    assert entries[0].media.ai_summary.startswith(cut[:-1])


def test_ai_summary_of_a_merged_duplicate_still_wins() -> None:
    """A paper seen in an arXiv feed (primary) and on HF (duplicate): HF's summary."""
    text = "Background first. We propose a method that works."
    arxiv = make_entry(1, source="arxiv", text=text, media=PAPER)
    hf = make_entry(2, source="hf", text=text, media=EntryMedia(ai_summary="HF says it works."))
    assert item_summary(Item(entry=arxiv, duplicates=(hf,))) == "HF says it works."
    assert item_summary(Item(entry=arxiv), 40) == "We propose a method that works."


def test_without_ai_summary_a_paper_falls_back_to_its_findings() -> None:
    text = abstract_of("Distribution Transformers")
    entry = make_entry(1, text=text, media=EntryMedia(ai_summary=None, links=PAPER.links))
    assert "we introduce the distribution transformer" in item_summary(Item(entry=entry)).lower()


def test_entries_that_are_not_papers_keep_the_lead() -> None:
    text = (
        "Release 2.0 is out with a new parser. We show the changes below. "
        "It also fixes twelve bugs that users reported over the past months."
    )
    post = make_entry(1, text=text, engagement=Engagement(points=3))
    assert item_summary(Item(entry=post), 60) == "Release 2.0 is out with a new parser."


def test_a_digest_of_hf_papers_shows_their_ai_summaries() -> None:
    data = (FIXTURES / "feeds" / "hf-daily-papers-api.json").read_bytes()
    entries = parse_source(data, source="hf").entries
    config = DigestConfig(name="d", title="D", group_by="none", max_items=30)
    digest = build_digest(entries, now=NOW, config=config)
    assert digest.item_count == 30
    for item in digest.items:
        assert item.entry.media is not None
        assert item.summary == item.entry.media.ai_summary


def test_the_arxiv_id_line_of_an_hf_paper_is_not_part_of_its_summary() -> None:
    """HF papers' text ends with "arXiv: ID" (a link in the HTML): never in a summary."""
    text = abstract_of("Reinforcement Learning for Adaptive Time-Stepping")
    entry = make_entry(1, text=f"{text}\n\narXiv: 2503.10018", media=PAPER)
    summary = item_summary(Item(entry=entry))
    assert "We show that this extrapolation works" in summary
    assert "arXiv" not in summary and "2503.10018" not in summary


def test_a_finding_taken_alone_drops_the_lead_in_that_points_back() -> None:
    # From the demo: "Therefore, to counteract …" and "To address these challenges, we
    # introduce …" were shown without the sentence they point back to.
    background = "Bayesian inference is hard to scale to sequential problems in practice. " * 3
    text = (
        f"{background}To address these challenges, we introduce the Distribution "
        "Transformer, a novel architecture for fast approximate inference."
    )
    summary = finding_summary(text, 120)
    assert summary.startswith("We introduce the Distribution Transformer")
    # Kept when the sentence it points back to is shown too.
    short = "We study token reduction. Therefore, we propose a cache that keeps more."
    assert finding_summary(short + " " + background, 80) == short
