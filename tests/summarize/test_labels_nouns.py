"""Labels are noun phrases (issue 10, point 1): no adjective alone or last ("Algebras &
Finite", "Quantum & Electron" on the arXiv dev file), told by ``adjectives.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.summarize.adjectives import is_adjective
from newsletter.summarize.group import ALL_LABEL, OTHER_LABEL, group_texts
from newsletter.summarize.labels import Edition, section_label
from newsletter.summarize.text import entry_text

DEV = Path(__file__).resolve().parents[2] / "bench" / "data" / "arxiv-2007-dev.jsonl"

# The test's own list, apart from the labeler's.
ADJECTIVES = {
    *("finite", "infinite", "quantum", "large", "small", "deep", "new", "dark", "magnetic"),
    *("neural", "linear", "nonlinear", "local", "global", "general", "electronic", "optical"),
    *("thermal", "chiral", "topological", "spectral", "stochastic", "dynamical", "random"),
    *("efficient", "robust", "novel", "critical", "nuclear", "solar", "stellar", "galactic"),
}


@pytest.mark.parametrize(
    "word",
    ["Finite", "Quantum", "Russian", "magnetic", "Large", "Fine-Grained", "Automatically",
     "Generative", "Continuous", "Scalable", "Stellar", "Unified", "Faster", "Best"],
)  # fmt: skip
def test_adjectives_are_told(word: str) -> None:
    assert is_adjective(word)


@pytest.mark.parametrize(
    "word",
    ["Algebras", "Electron", "Signals", "Panic", "iPhone", "Test-Time", "Learning", "Apple",
     "Archive", "Guardian", "Debian", "Speed", "Chemicals", "Electronics", "Family", "GPU",
     "Linux", "Transition", "Gravity", "Topic", "Journal", "Catfish"],
)  # fmt: skip
def test_nouns_are_not_adjectives(word: str) -> None:
    assert not is_adjective(word)


QUANTUM = [
    "Quantum dots emit single photons on demand.",
    "Quantum wells confine electrons in one dimension.",
    "Quantum computing with trapped ions and gates.",
    "Quantum sensing of magnetic fields with spins.",
    "Quantum error correction with surface codes.",
    "Quantum key distribution over fibre links.",
]
FOOTBALL = [f"Football club {n} wins the league cup again." for n in range(6)]


def test_items_sharing_only_an_adjective_have_no_name() -> None:
    # "Quantum" is all these share: no noun phrase names them, so no label (the caller
    # files them under "Other") rather than "Quantum".
    edition = Edition(QUANTUM + FOOTBALL)
    assert section_label(edition.rank(range(6)), 6, set()) is None


def test_a_shared_adjective_yields_to_a_noun_phrase() -> None:
    texts = [*QUANTUM, "Quantum computers factor numbers.", "Quantum computers need qubits."]
    edition = Edition(texts + FOOTBALL)
    labelled = section_label(edition.rank(range(len(texts))), len(texts), set())
    assert labelled is not None
    label, extra = labelled
    assert "Quantum Computer" in label
    for phrase in [*label.split(" & "), *extra]:
        assert not is_adjective(phrase.split()[-1]), (label, extra)
        assert phrase.split()[-1].lower() not in ADJECTIVES, (label, extra)


def test_dev_file_labels_end_in_nouns() -> None:
    papers = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    groups = group_texts([entry_text(p["title"], p["abstract"]) for p in papers])
    labels = [g.label for g in groups if g.label not in (OTHER_LABEL, ALL_LABEL)]
    assert len(labels) >= 5
    for label in labels:
        for half in label.split(" & "):
            assert half.split()[-1].lower() not in ADJECTIVES, label
    assert "Algebras & Finite" not in labels and "Quantum & Electron" not in labels
