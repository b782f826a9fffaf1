"""Merging duplicates: exact keys, near duplicates, primary choice, quality on a labeled set."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.models import Engagement, Entry, Item
from newsletter.summarize.dedupe import (
    arxiv_ids,
    dois,
    link_key,
    merge_duplicates,
    normalize_title,
)
from tests.factories import make_entry

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dedupe" / "entries.jsonl"
T0 = datetime(2025, 3, 10, tzinfo=UTC)

ABSTRACT_A = (
    "We study how to allocate inference compute for large language models. We find that "
    "adaptive allocation per prompt beats a fixed best-of-n budget by a factor of four, "
    "and that a small model with extra test-time compute can match a model fourteen times "
    "larger on problems of medium difficulty."
)
ABSTRACT_B = (
    "Vision transformers lack inductive biases for dense prediction. We add a convolutional "
    "stem and a feature pyramid to a plain transformer backbone and obtain better "
    "segmentation and detection results on COCO and ADE20K with fewer parameters than "
    "hierarchical designs."
)


def e(
    n: int | str,
    title: str = "Some title",
    *,
    hours: float = 0,
    entry_id: str | None = None,
    link: str = "",
    **fields: Any,
) -> Entry:
    """``make_entry`` with this file's defaults: id ``id-n``, no link, ``hours`` after T0."""
    return make_entry(
        n, id=entry_id or f"id-{n}", title=title, link=link, hours_ago=-hours, now=T0, **fields
    )


def groups(items: list[Item]) -> set[frozenset[str]]:
    return {frozenset(x.id for x in item.entries) for item in items}


def merged(*entries: Entry) -> bool:
    """Whether all ``entries`` end up in one item."""
    return len(merge_duplicates(entries)) == 1


# -- exact keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/post/", "http://www.example.org/post"),
        ("https://Example.org/post#comments", "https://example.org/post"),
    ],
    ids=["scheme-www-slash", "host-case-fragment"],
)
def test_same_canonical_link(a: str, b: str) -> None:
    assert link_key(a) == link_key(b)
    assert merged(e(1, "One title", link=a), e(2, "Another", source="t", link=b))


def test_bare_home_page_links_do_not_merge() -> None:
    a = e(1, "Apples in autumn", link="https://example.org/")
    b = e(2, "Trains of Europe", link="https://example.org")
    assert not merged(a, b)


def test_same_global_id_across_sources() -> None:
    guid = "https://news.ycombinator.com/item?id=4242"
    a = e(1, "Launch of a thing", source="hn", link="https://a.example/x", entry_id=guid)
    b = e(2, "Totally different words", source="hn-best", link="https://b.example/y", entry_id=guid)
    assert merged(a, b)


def test_short_ids_do_not_collide_across_sources() -> None:
    a = e(1, "Apples in autumn", source="feed-a", entry_id="1")
    b = e(2, "Trains of Europe", source="feed-b", entry_id="1")
    assert not merged(a, b)


@pytest.mark.parametrize(
    "link",
    [
        "https://arxiv.org/abs/2403.01234v2",
        "https://arxiv.org/abs/2403.01234",
        "https://arxiv.org/pdf/2403.01234v1",
        "http://arxiv.org/pdf/2403.01234",
        "https://arxiv.org/html/2403.01234v3",
        "https://huggingface.co/papers/2403.01234",
        "https://www.alphaxiv.org/abs/2403.01234",
        "https://doi.org/10.48550/arXiv.2403.01234",
    ],
    ids=["abs-v2", "abs", "pdf-v1", "pdf", "html", "hf-papers", "alphaxiv", "arxiv-doi"],
)
def test_arxiv_id_from_links(link: str) -> None:
    entry = e(1, link=link)
    assert arxiv_ids(entry) == {"2403.01234"}
    paper = e(2, "The paper", source="arxiv", link="https://arxiv.org/abs/2403.01234v1")
    assert merged(entry, paper)


@pytest.mark.parametrize(
    "entry_id",
    ["arxiv:2403.01234", "oai:arXiv.org:2403.01234v2", "http://arxiv.org/abs/2403.01234v1"],
)
def test_arxiv_id_from_entry_id(entry_id: str) -> None:
    assert arxiv_ids(e(1, entry_id=entry_id, link="https://example.org/x")) == {"2403.01234"}


def test_arxiv_old_style_id() -> None:
    assert arxiv_ids(e(1, link="https://arxiv.org/abs/hep-th/9901001v3")) == {"hep-th/9901001"}


def test_arxiv_id_in_text_when_it_is_the_only_one() -> None:
    blog = e(1, "We made RNNs fast", text="Our paper is out: arXiv:2403.01234v2, with code.")
    paper = e(2, "FlashRNN", source="arxiv", link="https://arxiv.org/abs/2403.01234")
    assert arxiv_ids(blog) == {"2403.01234"}
    assert merged(blog, paper)


def test_text_naming_several_papers_is_about_none() -> None:
    post = e(1, "Reading list", text="See arXiv:2401.00001, arXiv:2401.00002 and arXiv:2401.00003.")
    assert arxiv_ids(post) == set()


def test_doi_case_insensitive_link_and_text() -> None:
    journal = e(1, "Paper", source="acm", link="https://doi.org/10.1145/3625549.ABC")
    hn = e(2, "Other words", source="hn", link="https://dl.acm.org/doi/10.1145/3625549.abc")
    news = e(3, "News piece", source="news", text="The study (doi:10.1145/3625549.abc).")
    assert dois(journal) == dois(hn) == dois(news) == {"10.1145/3625549.abc"}
    assert merged(journal, hn, news)


# -- near duplicates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "Scaling Test-Time Compute for Language Models [pdf]",
        "Scaling test-time compute for language models (2024)",
        "scaling test time compute for language models",
        "Show HN: Scaling Test-Time Compute for Language Models",
    ],
    ids=["pdf", "year", "case-hyphen", "show-hn"],
)
def test_title_variants_merge(variant: str) -> None:
    paper = e(1, "Scaling Test-Time Compute for Language Models", source="arxiv", text=ABSTRACT_A)
    hn = e(2, variant, source="hn", link="https://blog.example/ttc", text="Comments")
    assert normalize_title(variant) == normalize_title(paper.title)
    assert merged(paper, hn)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Scaling Laws for Neural Machine Translation",
            "Scaling Laws for Reward Model Overoptimization",
        ),
        (
            "Unraveling the Mystery of Scaling Laws: Part I",
            "Unraveling the Mystery of Scaling Laws: Part II",
        ),
        ("FlashAttention: Fast Exact Attention", "FlashAttention-2: Fast Exact Attention"),
        ("Layer Normalization", "Group Normalization"),
    ],
    ids=["scaling-laws-x-y", "part-i-ii", "version-number", "normalization"],
)
def test_look_alike_titles_stay_apart(a: str, b: str) -> None:
    assert not merged(e(1, a, source="arxiv"), e(2, b, source="arxiv"))


def test_same_title_different_abstracts_stay_apart() -> None:
    a = e(1, "Large Language Models: A Survey", source="arxiv", text=ABSTRACT_A)
    b = e(2, "A Survey of Large Language Models", source="arxiv", text=ABSTRACT_B)
    assert not merged(a, b)


def test_vague_headline_joins_only_its_closest_match() -> None:
    a = e(1, "Large Language Models: A Survey", source="arxiv", text=ABSTRACT_A)
    b = e(2, "A Survey of Large Language Models", source="arxiv", text=ABSTRACT_B)
    hn = e(3, "A Survey of Large Language Models [pdf]", source="hn", text="Comments")
    assert groups(merge_duplicates([a, b, hn])) == {
        frozenset({"id-1"}),
        frozenset({"id-2", "id-3"}),
    }


def test_rewritten_headline_over_same_abstract_merges() -> None:
    paper = e(1, "Compute-Optimal Inference for Language Models", source="arxiv", text=ABSTRACT_A)
    news = e(
        2,
        "Small models can beat 14x larger ones by thinking longer, researchers show",
        source="news",
        link="https://news.example/ttc",
        text="A new paper from a large lab. " + ABSTRACT_A,
    )
    assert merged(paper, news)


def test_thresholds_above_one_turn_near_duplicates_off() -> None:
    a = e(1, "Exactly The Same Title", source="a")
    b = e(2, "Exactly The Same Title", source="b")
    assert merged(a, b)
    assert len(merge_duplicates([a, b], near_threshold=1.01, content_threshold=1.01)) == 2


# -- the merged item ----------------------------------------------------------------------


def test_primary_is_richest_then_earliest() -> None:
    link = "https://arxiv.org/abs/2403.01234"
    hn = e("hn", "Title", source="hn", link=link, text="Comments", hours=-10, points=300)
    arxiv = e("arxiv", "Title", source="arxiv", link=link, text=ABSTRACT_A, hours=0)
    hf = e("hf", "Title", source="hf", link=link, text=ABSTRACT_A, hours=5, upvotes=40)
    (item,) = merge_duplicates([hf, hn, arxiv])
    assert item.entry.id == "id-arxiv"
    assert [d.id for d in item.duplicates] == ["id-hn", "id-hf"]  # earliest first
    assert item.engagement == Engagement(points=300, upvotes=40)
    assert item.sources == ("arxiv", "hn", "hf")


def test_same_entry_twice_is_kept_once() -> None:
    a = e(1, "Title", text="short")
    richer = replace(a, text=ABSTRACT_A)
    (item,) = merge_duplicates([a, richer])
    assert item.entry.text == ABSTRACT_A
    assert item.duplicates == ()


def test_empty_input() -> None:
    assert merge_duplicates([]) == []


def test_output_independent_of_input_order() -> None:
    entries = [entry for entry, _ in load_labeled()]
    expected = merge_duplicates(entries)
    shuffled = entries[:]
    random.Random(3).shuffle(shuffled)
    assert merge_duplicates(shuffled) == expected
    assert merge_duplicates(entries[::-1]) == expected


titles = st.sampled_from(
    ["Layer Normalization", "Group Normalization", "Scaling laws", "Scaling laws [pdf]", "Other"]
)
links = st.sampled_from(["", "https://a.example/1", "https://arxiv.org/abs/2401.00001v1"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(titles, links, st.sampled_from(["a", "b"])), max_size=25))
def test_every_entry_in_exactly_one_item(rows: list[tuple[str, str, str]]) -> None:
    entries = [e(i, t, link=link, source=s, hours=i % 7) for i, (t, link, s) in enumerate(rows)]
    items = merge_duplicates(entries)
    keys = [x.key for item in items for x in item.entries]
    assert sorted(keys) == sorted(x.key for x in entries)
    newest_first = [-(item.entry.when or T0).timestamp() for item in items]
    assert newest_first == sorted(newest_first)


# -- quality and speed on the labeled set ------------------------------------------------


def load_labeled() -> list[tuple[Entry, str]]:
    rows = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        entry = make_entry(
            id=raw["id"],
            source=raw["source"],
            title=raw["title"],
            link=raw["link"],
            text=raw["text"],
            published=datetime.fromisoformat(raw["published"]),
            points=raw.get("points"),
            upvotes=raw.get("upvotes"),
            comments=raw.get("comments"),
        )
        rows.append((entry, raw["cluster"]))
    return rows


def test_labeled_set_is_big_enough() -> None:
    labeled = load_labeled()
    sizes: dict[str, int] = {}
    for _, cluster in labeled:
        sizes[cluster] = sizes.get(cluster, 0) + 1
    assert len(labeled) >= 150
    assert sum(1 for n in sizes.values() if n > 1) >= 50


def test_pairwise_precision_and_recall() -> None:
    labeled = load_labeled()
    label = {entry.key: cluster for entry, cluster in labeled}
    items = merge_duplicates([entry for entry, _ in labeled])
    predicted = {
        frozenset((a.key, b.key)) for item in items for a, b in combinations(item.entries, 2)
    }
    true = {frozenset((a.key, b.key)) for (a, la), (b, lb) in combinations(labeled, 2) if la == lb}
    precision = len(predicted & true) / len(predicted)
    recall = len(predicted & true) / len(true)
    assert precision >= 0.95, sorted(label[k] for p in predicted - true for k in p)
    assert recall >= 0.95, sorted(label[k] for p in true - predicted for k in p)


def test_two_thousand_entries_each_in_exactly_one_item() -> None:
    """The size bench/dedupe_quality.py times (speed is measured there, not here): ten
    copies of the labeled set with fresh ids, links and numbered titles; every entry ends
    up in exactly one item, and no item mixes two labeled stories."""
    labeled = load_labeled()
    label = {entry.id: cluster for entry, cluster in labeled}
    big = [
        replace(x, id=f"{x.id}#{copy}", link=f"{x.link}/{copy}", title=f"{x.title} {copy}")
        for copy in range(10)
        for x, _ in labeled
    ][:2000]
    items = merge_duplicates(big)
    keys = [x.key for item in items for x in item.entries]
    assert sorted(keys) == sorted(x.key for x in big)
    mixed = [i for i in items if len({label[x.id.split("#")[0]] for x in i.entries}) > 1]
    assert mixed == []
