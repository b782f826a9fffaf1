"""Ranking: an explainable score whose parts add up, with the documented properties."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import RankingConfig
from newsletter.models import Entry, Item
from newsletter.summarize.rank import (
    PARTS,
    engagement_fraction,
    explain,
    matched_interests,
    rank_items,
    score_item,
)
from tests.factories import make_entry

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def entry(n: int | str = 1, **fields: Any) -> Entry:
    """``make_entry`` with this file's defaults: from "hn", titled "A story", an hour
    before NOW (``hours_ago=None``: no date)."""
    return make_entry(
        n, **{"source": "hn", "title": "A story", "hours_ago": 1.0, "now": NOW, **fields}
    )


def item(*entries: Entry) -> Item:
    return Item(entry=entries[0], duplicates=entries[1:])


def test_parts_sum_exactly_to_score() -> None:
    score, parts = score_item(
        item(entry(points=120, comments=30), entry(2, source="arxiv")),
        now=NOW,
        source_weights={"hn": 2.0},
        interests=["story"],
    )
    assert list(parts) == list(PARTS)
    assert score == sum(parts.values())


def test_fresher_wins_at_equal_engagement() -> None:
    fresh = item(entry(1, hours_ago=2, points=50))
    stale = item(entry(2, hours_ago=30, points=50))
    ranked = rank_items([stale, fresh], now=NOW)
    assert [i.entry.id for i in ranked] == ["1", "2"]
    assert ranked[0].score_parts["freshness"] > ranked[1].score_parts["freshness"]


def test_freshness_halves_every_half_life() -> None:
    s = RankingConfig(half_life_hours=10.0)
    _, new = score_item(item(entry(hours_ago=0)), now=NOW, settings=s)
    _, old = score_item(item(entry(hours_ago=10)), now=NOW, settings=s)
    assert new["freshness"] == pytest.approx(1.0)
    assert old["freshness"] == pytest.approx(0.5)


def test_future_date_counts_as_just_published() -> None:
    _, parts = score_item(item(entry(hours_ago=-5)), now=NOW)
    assert parts["freshness"] == pytest.approx(1.0)


def test_no_date_gets_neutral_freshness() -> None:
    _, parts = score_item(item(entry(hours_ago=None)), now=NOW)
    assert parts["freshness"] == pytest.approx(RankingConfig().no_date_freshness)


def test_engagement_is_log_scaled_and_saturates() -> None:
    fractions = [engagement_fraction(item(entry(points=p))) for p in (1, 10, 100, 1000, 10**6)]
    assert fractions == sorted(fractions)
    gains = [b - a for a, b in pairwise(fractions)]
    assert gains == sorted(gains, reverse=True)  # diminishing returns
    assert all(f < 1.0 for f in fractions)  # bounded
    assert engagement_fraction(item(entry(points=100))) == pytest.approx(0.7616, abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(points=st.integers(0, 10**9), comments=st.integers(0, 10**9))
def test_engagement_part_bounded_by_weight(points: int, comments: int) -> None:
    s = RankingConfig(engagement_weight=2.0)
    _, parts = score_item(item(entry(points=points, comments=comments)), now=NOW, settings=s)
    assert 0.0 <= parts["engagement"] < 2.0


def test_sources_without_signals_get_batch_median_not_zero() -> None:
    hn = [item(entry(i, points=p)) for i, p in enumerate((5, 50, 500))]
    arxiv = item(entry("paper", source="arxiv"))
    ranked = {i.entry.id: i for i in rank_items([*hn, arxiv], now=NOW)}
    median = ranked["1"].score_parts["engagement"]
    assert ranked["paper"].score_parts["engagement"] == pytest.approx(median)
    assert median > 0


def test_sources_without_signals_neutral_when_no_batch_signal() -> None:
    ranked = rank_items([item(entry(source="arxiv"))], now=NOW)
    assert ranked[0].score_parts["engagement"] == pytest.approx(0.5)
    _, parts = score_item(item(entry(source="blog")), now=NOW)
    assert parts["engagement"] == pytest.approx(0.5)


def test_zero_engagement_is_known_and_low() -> None:
    _, parts = score_item(item(entry(points=0)), now=NOW)
    assert parts["engagement"] == 0.0


def test_duplicate_bonus_grows_with_distinct_sources() -> None:
    s = RankingConfig(duplicate_bonus=0.3)
    bonuses = []
    for n in (1, 2, 3, 4):
        entries = [entry(i, source=f"s{i}") for i in range(n)]
        bonuses.append(score_item(item(*entries), now=NOW, settings=s)[1]["duplicates"])
    assert bonuses[0] == 0.0
    assert bonuses == sorted(bonuses)
    assert len(set(bonuses)) == 4
    same_source = item(entry(1, source="hn"), entry(2, source="hn"))
    assert score_item(same_source, now=NOW, settings=s)[1]["duplicates"] == 0.0


def test_no_hidden_cross_source_bonus_by_default() -> None:
    # A story on two sources, with 41 upvotes shown, does not pass one with 122 shown.
    single = item(entry(1, source="hf", upvotes=122))
    double = item(entry(2, source="hf", upvotes=41), entry(3, source="arxiv"))
    ranked = rank_items([double, single], now=NOW)
    assert [i.entry.id for i in ranked] == ["1", "2"]
    assert ranked[1].score_parts["duplicates"] == 0.0


def test_source_weight_mapping() -> None:
    story = item(entry(source="favourite"))
    _, default = score_item(story, now=NOW)
    _, up = score_item(story, now=NOW, source_weights={"favourite": 2.0})
    _, down = score_item(story, now=NOW, source_weights={"favourite": 0.5})
    assert default["source"] == 0.0
    assert up["source"] == pytest.approx(RankingConfig().source_weight)
    assert down["source"] == pytest.approx(-RankingConfig().source_weight)


@pytest.mark.parametrize(
    ("interest", "expected"),
    [
        ("rust", True),
        ("RUST", True),
        ("rus", False),
        ("test-time compute", True),
        ("test time compute", True),
        ("gpu", True),
        ("c++", True),
        ("python", False),
    ],
    ids=["word", "case", "partial-word", "phrase", "phrase-hyphen", "tag", "symbols", "absent"],
)
def test_interests_whole_words_case_insensitive(interest: str, expected: bool) -> None:
    story = item(
        entry(
            title="Rewriting it in Rust",
            text="Scaling test-time compute, in C++ too.",
            tags=("GPU",),
        )
    )
    assert bool(matched_interests(story, [interest])) is expected


def test_interests_boost_matching_items() -> None:
    plain = item(entry(1, title="Gardening tips"))
    match = item(entry(2, title="Diffusion models for gardening"))
    ranked = rank_items([plain, match], now=NOW, interests=["diffusion", "Diffusion"])
    assert ranked[0].entry.id == "2"
    assert ranked[0].score_parts["interests"] == pytest.approx(RankingConfig().interest_boost)
    assert ranked[1].score_parts["interests"] == 0.0
    # The reader is told why: the story carries the interests it matched.
    assert ranked[0].interests == ("diffusion",) and ranked[1].interests == ()


def test_interests_capped() -> None:
    story = item(entry(title="a b c d e"))
    s = RankingConfig(max_interest_matches=2, interest_boost=1.0)
    _, parts = score_item(story, now=NOW, settings=s, interests=list("abcde"))
    assert parts["interests"] == 2.0


def test_rank_sets_scores_and_is_order_independent() -> None:
    items = [item(entry(i, hours_ago=i % 3, points=(i * 7) % 5)) for i in range(12)]
    forward = rank_items(items, now=NOW)
    backward = rank_items(items[::-1], now=NOW)
    assert [i.entry.key for i in forward] == [i.entry.key for i in backward]
    scores = [i.score for i in forward]
    assert scores == sorted(scores, reverse=True)
    for ranked in forward:
        assert ranked.score == sum(ranked.score_parts.values())


def test_explain_one_line() -> None:
    ranked = rank_items([item(entry(points=100), entry(2, source="arxiv"))], now=NOW)[0]
    line = explain(ranked)
    assert line.startswith(f"score {ranked.score:.2f} = freshness ")
    assert "\n" not in line
    for name in PARTS:
        assert f"{name} {ranked.score_parts[name]:.2f}" in line
    assert explain(item(entry())) == "score 0.00 (not ranked)"
