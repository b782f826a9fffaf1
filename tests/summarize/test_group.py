"""Topic sections: configured topics first, automatic groups, "Other", labels, summaries."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from newsletter.config import TopicConfig
from newsletter.errors import ConfigError
from newsletter.summarize.communities import louvain, merge_communities, modularity
from newsletter.summarize.group import (
    ALL_LABEL,
    OTHER_LABEL,
    Group,
    cluster_labels,
    group_texts,
    section_summary,
)
from newsletter.summarize.text import analyze, entry_text, tokenize

DEV = Path(__file__).resolve().parents[2] / "bench" / "data" / "arxiv-2007-dev.jsonl"

# Words from a few distinct topics, so generated texts sometimes do form groups.
VOCAB = [
    "galaxy", "star", "quasar", "redshift", "telescope", "qubit", "entanglement", "photon",
    "laser", "spin", "protein", "gene", "cell", "neuron", "brain", "theorem", "algebra",
    "manifold", "prime", "graph", "élan", "naïve", "東京", "数学", "café",
]  # fmt: skip

texts_strategy = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(VOCAB), max_size=12).map(" ".join),
        st.just(""),
        st.just("galaxy star redshift"),
    ),
    max_size=40,
)


def _partition(texts: Sequence[str], groups: Sequence[Group]) -> Counter[tuple[str, ...]]:
    """Each group as the sorted texts it holds: comparable across input orders."""
    return Counter(tuple(sorted(texts[i] for i in g.members)) for g in groups)


def _check_contract(texts: Sequence[str], groups: Sequence[Group], max_groups: int) -> None:
    members = [i for g in groups for i in g.members]
    assert sorted(members) == list(range(len(texts)))
    assert all(g.label.strip() for g in groups)
    assert all(g.members for g in groups)
    assert len({g.key for g in groups}) == len(groups)
    auto = [g for g in groups if g.topic is None and g.label not in (OTHER_LABEL, ALL_LABEL)]
    assert len(auto) <= max_groups
    # "Other" (or the single "All items") can only be last.
    for g in groups[:-1]:
        assert g.label not in (OTHER_LABEL, ALL_LABEL) or g.topic is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, max_groups=st.integers(1, 8), min_auto=st.integers(0, 15))
def test_every_index_in_exactly_one_group(texts: list[str], max_groups: int, min_auto: int) -> None:
    groups = group_texts(texts, max_groups=max_groups, min_auto=min_auto)
    _check_contract(texts, groups, max_groups)
    assert len(groups) <= max_groups + 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=texts_strategy,
    origin=st.lists(st.sampled_from("abcd"), min_size=40, max_size=40),
    max_groups=st.integers(1, 8),
    min_auto=st.integers(0, 15),
)
def test_with_sources_every_index_is_in_exactly_one_group(
    texts: list[str], origin: list[str], max_groups: int, min_auto: int
) -> None:
    sources = origin[: len(texts)]
    groups = group_texts(
        texts,
        max_groups=max_groups,
        min_auto=min_auto,
        sources=sources,
        source_titles={"a": "Feed A", "b": "Feed B", "c": "Feed A"},
        paper_sources={"b"},
    )
    _check_contract(texts, groups, max_groups)
    for group in groups:
        if group.source is not None:
            # A section named by a source holds that source's items only.
            assert {sources[i] for i in group.members} == {group.source}
            assert group.source != "b" or len(group.members) >= 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=texts_strategy, data=st.data())
def test_same_partition_in_any_order(texts: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(texts))
    first = group_texts(texts, min_auto=4)
    second = group_texts(shuffled, min_auto=4)
    assert _partition(texts, first) == _partition(shuffled, second)
    assert sorted(g.label for g in first) == sorted(g.label for g in second)


@settings(max_examples=40, deadline=None)
@given(texts=texts_strategy)
def test_cluster_labels_cover_every_text(texts: list[str]) -> None:
    labels = cluster_labels(texts)
    assert len(labels) == len(texts)
    assert all(label >= 0 for label in labels)
    if labels:
        sizes = Counter(labels)
        # Numbered biggest first, without gaps.
        assert sorted(sizes) == list(range(len(sizes)))
        assert [sizes[c] for c in sorted(sizes)] == sorted(sizes.values(), reverse=True)


def test_empty_input_gives_no_groups() -> None:
    assert group_texts([]) == []
    assert cluster_labels([]) == []


@pytest.mark.parametrize(
    ("texts", "label"),
    [
        (["one"], ALL_LABEL),
        (["", "", ""], ALL_LABEL),
        ([f"story number {i} about things" for i in range(11)], ALL_LABEL),
        (["the same story about galaxies"] * 30, ALL_LABEL),
    ],
    ids=["single", "empty-strings", "below-min-auto", "all-identical"],
)
def test_small_inputs_are_one_section(texts: list[str], label: str) -> None:
    groups = group_texts(texts)
    assert [g.label for g in groups] == [label]
    assert groups[0].members == tuple(range(len(texts)))


def test_duplicates_stay_together() -> None:
    texts = ["Galaxy clusters and dark matter halos"] * 10 + [
        "Qubit entanglement in superconducting circuits"
    ] * 10
    groups = group_texts(texts)
    for g in groups:
        assert len({texts[i] for i in g.members}) == 1
    assert len(groups) == 2


TOPICS = (
    TopicConfig(name="LLMs", keywords=("language model", "GPT")),
    TopicConfig(name="Rust", patterns=(r"\brust(c|acean)?\b",)),
    TopicConfig(name="Space", keywords=("galaxy",)),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A new Language   Model beats GPT", "LLMs"),
        ("gpt-4 is out", "LLMs"),
        ("Rustaceans rejoice: rustc 1.80", "Rust"),
        ("Trusty old tools", None),  # "rust" inside a word is no match for \brust
        ("GPTs and rust", "Rust"),  # "GPTs" is not the whole word "GPT"
        ("Galaxy language model", "LLMs"),  # first matching topic wins
        ("galaxy-scale structure", "Space"),
        ("galaxyzoo", None),  # keywords match whole words only
    ],
)
def test_configured_topics_take_precedence(text: str, expected: str | None) -> None:
    texts = [text] + [f"filler item {i} on cooking and gardening" for i in range(20)]
    groups = group_texts(texts, topics=TOPICS, min_auto=5)
    holder = next(g for g in groups if 0 in g.members)
    assert holder.topic == expected
    if expected is not None:
        assert holder.label == expected
        assert groups[0] is holder  # configured topics come first


def test_topics_in_config_order_then_auto_then_other() -> None:
    texts = ["galaxy " + str(i) for i in range(3)] + ["gpt " + str(i) for i in range(3)]
    texts += [f"cooking pasta sauce recipe {i}" for i in range(8)]
    texts += [f"garden tomato soil compost {i}" for i in range(8)]
    texts += ["lonely unrelated words"]
    groups = group_texts(texts, topics=TOPICS, min_auto=5)
    assert [g.topic for g in groups[:2]] == ["LLMs", "Space"]
    assert groups[0].members == (3, 4, 5)
    assert groups[-1].label == OTHER_LABEL
    assert 22 in groups[-1].members
    sizes = [len(g.members) for g in groups[2:-1]]
    assert sizes == sorted(sizes, reverse=True)


def test_max_groups_counts_configured_topics() -> None:
    texts = [f"galaxy {i}" for i in range(5)] + [f"cooking pasta sauce {i}" for i in range(20)]
    groups = group_texts(texts, topics=TOPICS, max_groups=1, min_auto=5)
    assert [g.topic for g in groups] == ["Space", None]
    assert groups[-1].label == OTHER_LABEL


def _cliques(sizes: Sequence[int], bridges: Sequence[tuple[int, int, float]]) -> sparse.csr_matrix:
    """Cliques of the given sizes, clique i and j joined by one edge of the given weight."""
    starts = np.cumsum([0, *sizes])
    dense = np.zeros((starts[-1], starts[-1]))
    for start, stop in pairwise(starts):
        dense[start:stop, start:stop] = 1.0
    for i, j, weight in bridges:
        dense[starts[i], starts[j]] = dense[starts[j], starts[i]] = weight
    np.fill_diagonal(dense, 0.0)
    return sparse.csr_matrix(dense)


def test_louvain_finds_cliques() -> None:
    graph = _cliques([5, 5, 5, 5], [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)])
    labels = louvain(graph, seed=3)
    assert [len(set(labels[i : i + 5].tolist())) for i in range(0, 20, 5)] == [1, 1, 1, 1]
    assert len(set(labels.tolist())) == 4
    assert modularity(graph, labels) > modularity(graph, np.zeros(20, dtype=int))


def test_merge_communities_joins_the_most_linked() -> None:
    graph = _cliques([4, 4, 4, 4], [(0, 1, 1.0), (2, 3, 1.0), (1, 2, 0.1)])
    merged = merge_communities(graph, np.repeat(np.arange(4), 4), 2)
    assert merged[0] == merged[4] != merged[8] == merged[12]
    # Isolated texts are never merged anywhere.
    lonely = sparse.csr_matrix((5, 5))
    assert merge_communities(lonely, np.arange(5), 1).tolist() == list(range(5))


def test_many_topics_fold_into_max_groups_not_other() -> None:
    topics = [f"alpha{i} beta{i} gamma{i} delta{i}" for i in range(12)]
    texts = [f"{t} item{j}" for t in topics for j in range(4)]
    groups = group_texts(texts, max_groups=4)
    _check_contract(texts, groups, 4)
    assert len(groups) <= 5
    other = [g for g in groups if g.label == OTHER_LABEL]
    assert not other or len(other[0].members) < len(texts) // 2


def test_bad_pattern_names_the_topic() -> None:
    with pytest.raises(ConfigError, match="Broken"):
        # Settings validate patterns; a topic built in code without validation still gets
        # a clear error naming it.
        broken = TopicConfig.model_construct(name="Broken", patterns=("(unclosed",))
        group_texts(["x"], topics=[broken])


def test_deterministic_for_same_seed() -> None:
    texts = [entry_text(p["title"], p["abstract"]) for p in _dev_sample(120)]
    assert group_texts(texts) == group_texts(texts)


def test_tokenize_drops_stop_words_numbers_and_tex() -> None:
    assert tokenize(r"We show that the $\bar{p}$ X-ray flux of 2007 galaxies") == [
        "x-ray",
        "flux",
        "galaxies",
    ]


def test_analyze_folds_plurals_and_pairs_words() -> None:
    assert analyze("Galaxies and a galaxy; dark matter halos") == [
        "galaxy", "galaxy", "dark", "matter", "halo",
        "galaxy galaxy", "galaxy dark", "dark matter", "matter halo",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("Dark Matter", 5, "papers", ["Galaxies", "Halos"]),
            "Papers on Dark Matter, including Galaxies and Halos",
        ),
        (("LHC", 1, "papers", ["QCD"]), "A paper on LHC, including QCD"),
        ((OTHER_LABEL, 3, "items", ["Rust", "Go"]), "Items touching on Rust and Go"),
        ((ALL_LABEL, 2, "items", []), ""),
        (("Rust", 2, "items", ["rust", "Cargo"]), "Items on Rust, including Cargo"),
        (
            ("GPU Kernels", 4, "papers", ["GPUs", "Sparse Attention"]),
            "Papers on GPU Kernels, including Sparse Attention",
        ),
        (
            ("Agents", 25, "papers", ["Large Language Models", "LLM", "Reasoning"]),
            "Papers on Agents, including Large Language Models and Reasoning",
        ),
        (("Large Language Models", 3, "papers", ["LLMs"]), "Papers on Large Language Models"),
        (
            ("Language Models & Agent", 9, "papers", ["Memory", "LLM", "Reasoning"]),
            "Papers on Language Models & Agent, including Memory and Reasoning",
        ),
        ((OTHER_LABEL, 4, "items", ["Plain", "Bot", "Relative"]), "Items touching on Bot"),
    ],
    ids=[
        "plural",
        "singular-acronyms",
        "other",
        "all-no-terms",
        "no-repeat",
        "plural-repeat",
        "acronym-of-a-term",
        "acronym-of-the-label",
        "acronym-of-a-part-with-a-modifier",
        "no-adjective-alone",
    ],
)
def test_section_summary(args: tuple[str, int, str, list[str]], expected: str) -> None:
    assert section_summary(*args) == expected


def test_section_summary_is_one_short_line_of_whole_words() -> None:
    terms = [f"Topic{i} " + "word " * i for i in range(1, 12)]
    line = section_summary("Quantum Computing", 12, "papers", terms)
    assert "\n" not in line
    assert len(line) <= 120
    assert "…" not in line
    # Only whole terms: each listed term appears complete.
    listed = line.split(", including ", 1)[1]
    for part in listed.replace(" and ", ", ").split(", "):
        assert part.strip() in [" ".join(t.split()) for t in terms]


def _dev_sample(n: int) -> list[dict[str, str]]:
    with DEV.open(encoding="utf-8") as f:
        papers = [json.loads(line) for line in f]
    return random.Random(0).sample(papers, n)


ASTRO_WORDS = {
    "galaxy", "galaxies", "star", "stars", "stellar", "solar", "emission", "x-ray", "ray",
    "observations", "observed", "telescope", "redshift", "cosmic", "dust", "disk", "accretion",
    "black", "hole", "holes", "mass", "luminosity", "supernova", "radio", "planet", "planets",
    "halo", "cluster", "clusters", "sun", "spectra", "spectral", "sky", "survey",
}  # fmt: skip


def test_labels_name_the_topic_on_real_papers() -> None:
    papers = _dev_sample(200)
    texts = [entry_text(p["title"], p["abstract"]) for p in papers]
    groups = group_texts(texts)
    _check_contract(texts, groups, 8)
    astro = [i for i, p in enumerate(papers) if p["label"] == "astro-ph"]
    holder = max(groups, key=lambda g: len(set(g.members) & set(astro)))
    # The astronomy papers mostly land together, in a group named like astronomy.
    assert len(set(holder.members) & set(astro)) >= len(astro) // 2
    assert holder.label != OTHER_LABEL
    named = [holder.label, *holder.summary_terms[:3]]
    words = {w.lower() for term in named for w in term.replace("&", " ").split()}
    assert words & ASTRO_WORDS, holder
    assert 3 <= len(groups) <= 9
