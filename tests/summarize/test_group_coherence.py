"""Which items belong under a section's name (``coherence.py``): those holding its first
phrase or close to the rest, never a stray source none of whose items holds it; the
rest go to a section named by their source, else "Other"."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from newsletter.summarize.coherence import (
    FIT,
    belonging,
    by_source,
    centroid_similarity,
    phrase_pattern,
)
from newsletter.summarize.group import OTHER_LABEL, group_texts
from newsletter.summarize.text import tfidf_matrix


def test_centroid_similarity_leaves_each_row_out() -> None:
    rows = sparse.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    sims = centroid_similarity(rows)
    # Row 0 against rows 1 and 2 summed: (1, 1) / sqrt(2); row 2 against (2, 0): 0.
    assert sims[0] == pytest.approx(1 / np.sqrt(2))
    assert sims[2] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("label", "text", "found"),
    [
        ("Black Holes & Gravity", "A black-hole merger", True),
        ("Black Holes & Gravity", "Gravity alone", False),  # the first phrase only
        ("Galaxies", "one galaxy", True),
        ("LLMs", "an LLM agent", True),
        ("Apple", "Apple’s AR kit", True),
        ("Apple", "Pineapple juice", False),
    ],
)
def test_phrase_pattern_finds_the_first_phrase_in_any_number(
    label: str, text: str, found: bool
) -> None:
    assert (phrase_pattern(label).search(text) is not None) is found


APPLE = [
    "Apple ships the iPhone with a new camera and iOS update.",
    "Apple iPhone sales rise as iOS adds features for the camera.",
    "Apple Watch and iPhone pair better in the new iOS beta.",
    "iOS beta on the iPhone: Apple fixes the camera app.",
    "Apple Music comes to the iPhone lock screen in iOS.",
    "Verizon carriers and the iPhone camera in the iOS era.",
]
NASA = [
    "Astronauts on the space station fix the camera.",
    "Space station crew tests a new camera in orbit.",
]


def test_a_stray_source_leaves_the_section() -> None:
    texts = APPLE + NASA
    rows, _ = tfidf_matrix(texts)
    origins = ["df"] * len(APPLE) + ["nasa"] * len(NASA)
    sims = centroid_similarity(rows)
    assert min(sims[len(APPLE) :]) > 0  # near by a word or two ("camera", "new")
    kept = belonging(rows, "Apple", texts, origins)
    # Every Daring Fireball item stays (the Verizon one by its closeness); NASA leaves.
    assert kept == list(range(len(APPLE)))
    # Told no sources, closeness alone decides, and these NASA items are close enough:
    # it is their source, no item of which holds "Apple", that sends them away.
    assert min(sims[len(APPLE) :]) >= FIT * np.median(sims[: len(APPLE) - 1])
    assert belonging(rows, "Apple", texts) == list(range(len(texts)))


def test_without_sources_only_closeness_counts() -> None:
    texts = [*APPLE, "Football club wins the league cup again tonight."]
    rows, _ = tfidf_matrix(texts)
    kept = belonging(rows, "Apple", texts)
    assert kept == list(range(len(APPLE)))  # the football item shares no word


def test_by_source_names_sections_of_leftovers() -> None:
    sources = ["a", "a", "a", "b", "b", "untitled", "untitled", "untitled"]
    titles = {"a": "Liftoff News", "b": "Bee"}
    assert by_source(range(8), sources, titles, 3) == [("Liftoff News", [0, 1, 2])]


def test_items_of_no_section_go_to_their_source_or_other() -> None:
    llm = [f"LLM agents plan tool use with memory, study {n}." for n in range(8)]
    robots = [f"Robot grasping learns from tactile feedback, trial {n}." for n in range(8)]
    space = ["Star City cosmonauts train.", "Astronauts' dirty laundry.", "Engine test fires."]
    odd = ["Crème brûlée recipe."]
    texts = llm + robots + space + odd
    sources = ["arxiv"] * 16 + ["liftoff"] * 3 + ["food"]
    titles = {"arxiv": "arXiv", "liftoff": "Liftoff News", "food": "Food"}
    groups = group_texts(
        texts, sources=sources, source_titles=titles, paper_sources={"arxiv"}, min_auto=4
    )
    by_label = {g.label: set(g.members) for g in groups}
    assert by_label["Liftoff News"] == {16, 17, 18}
    assert by_label[OTHER_LABEL] == {19}
    topical = [g for g in groups if g.source is None and g.label != OTHER_LABEL]
    assert {frozenset(g.members) for g in topical} == {frozenset(range(8)), frozenset(range(8, 16))}
    assert sorted(i for g in groups for i in g.members) == list(range(len(texts)))


def test_a_paper_lists_leftovers_are_other_not_a_section_named_by_the_list() -> None:
    # In the demo, three Hugging Face papers no topic took were once headed "Hugging
    # Face Daily Papers", as if the list were their topic.
    llm = [f"LLM agents plan tool use with memory, study {n}." for n in range(8)]
    robots = [f"Robot grasping learns from tactile feedback, trial {n}." for n in range(8)]
    strays = ["Crème brûlée recipe.", "Cryptids in the wild.", "Volume sliders rethought."]
    # One blog post makes it a digest of several sources (source names count then).
    texts = [*llm, *robots, *strays, "A blog post on gardening."]
    sources = ["hf"] * 19 + ["blog"]
    titles = {"hf": "Hugging Face Daily Papers", "blog": "Blog"}
    groups = group_texts(
        texts, sources=sources, source_titles=titles, paper_sources={"hf"}, min_auto=4
    )
    labels = {g.label for g in groups}
    assert "Hugging Face Daily Papers" not in labels
    other = next(g for g in groups if g.label == OTHER_LABEL)
    assert {16, 17, 18} <= set(other.members)


def test_the_biggest_sections_fill_the_budget_whatever_names_them() -> None:
    llm = [f"LLM agents plan tool use with memory, study {n}." for n in range(6)]
    robots = [f"Robot grasping learns from tactile feedback, trial {n}." for n in range(6)]
    # Ten links that share no word: no topic holds them, their feed does.
    odd = [
        "Cryptids", "Cat Gap", "Gleam advent", "Monolith microservices", "Iceberg ball",
        "Rangefinder photographer", "Markov blog", "Azure FreeBSD", "E-Ink monitor",
        "Volume sliders",
    ]  # fmt: skip
    texts = llm + robots + odd
    sources = ["arxiv"] * 12 + ["hn"] * 10
    titles = {"arxiv": "arXiv", "hn": "Hacker News"}
    groups = group_texts(
        texts, sources=sources, source_titles=titles, paper_sources={"arxiv"}, max_groups=2
    )
    sizes = {g.label: len(g.members) for g in groups}
    assert sizes["Hacker News"] == 10
    assert len(groups) == 3 and groups[-1].label == OTHER_LABEL
    assert sizes[OTHER_LABEL] == 6  # one topic of six lost its place to ten links
    assert sorted(i for g in groups for i in g.members) == list(range(len(texts)))


@pytest.mark.parametrize("papers", [{"arxiv"}, set()])
def test_one_feed_sections_are_named_by_it_unless_it_holds_topics(papers: set[str]) -> None:
    llm = [f"LLM agents plan tool use with memory, study {n}." for n in range(8)]
    halos = [f"Galaxy surveys map dark matter halos, survey {n}." for n in range(8)]
    robots = [f"Robot grasping learns from tactile feedback, trial {n}." for n in range(8)]
    sources = ["arxiv"] * 16 + ["blog"] * 8
    titles = {"arxiv": "arXiv cs.AI", "blog": "Robot Blog"}
    groups = group_texts(
        llm + halos + robots,
        sources=sources,
        source_titles=titles,
        paper_sources=papers,
        min_auto=4,
    )
    labels = {frozenset(g.members): g.label for g in groups}
    assert labels[frozenset(range(16, 24))] == "Robot Blog"
    # A feed with two topics is named by them: "arXiv cs.AI" would say nothing of either.
    assert "Dark Matter" in labels[frozenset(range(8, 16))]
    assert "Agents" in labels[frozenset(range(8))]
