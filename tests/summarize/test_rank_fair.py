"""Fair multi-source digests: a fair share per source (``fair_order``), and freshness
counted from the newest entry when the batch is older than ``now`` (``reference_time``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import DigestConfig, RankingConfig
from newsletter.models import Item
from newsletter.summarize.digest import build_digest
from newsletter.summarize.rank import (
    fair_order,
    fair_share,
    out_of_order,
    rank_items,
    reference_time,
    visible_signal,
)
from tests.factories import make_entry

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LAST_YEAR = NOW - timedelta(days=350)


def story(source: str, n: int, **fields: object) -> Item:
    return Item(entry=make_entry(f"{source}-{n}", source=source, **{"now": NOW, **fields}))


def test_old_captures_rank_by_relative_freshness() -> None:
    # Captures a year old: counted from now, every item would score freshness 0.00 and
    # only the tie-break would order them.
    items = [story("blog", n, hours_ago=n * 12, now=LAST_YEAR) for n in range(4)]
    ranked = rank_items(items, now=NOW)
    fresh = [i.score_parts["freshness"] for i in ranked]
    assert fresh[0] == pytest.approx(1.0)
    assert fresh == sorted(fresh, reverse=True)
    assert fresh[-1] > 0.1
    assert len(set(fresh)) == 4


def test_reference_time_is_now_for_live_batches() -> None:
    live = [story("hn", 1, hours_ago=1), story("hn", 2, hours_ago=-3)]
    assert reference_time(live, NOW) == NOW
    old = [story("hn", 1, hours_ago=30, now=LAST_YEAR)]
    assert reference_time(old, NOW) == LAST_YEAR - timedelta(hours=30)
    assert reference_time([story("hn", 1)], NOW) == NOW  # no dates at all


@pytest.mark.parametrize(
    ("limit", "sources", "share", "expected"),
    [
        (50, 7, 1.0, 8),
        (50, 2, 1.0, 25),
        (50, 1, 1.0, None),
        (10, 3, 1.5, 5),
        (50, 5, 1.1, 11),  # 11.000000000000002 in floating point
        (10, 3, None, None),
    ],
)
def test_fair_share(limit: int, sources: int, share: float | None, expected: int | None) -> None:
    assert fair_share(limit, sources, RankingConfig(fair_share=share)) == expected


def test_one_loud_source_takes_no_more_than_its_share() -> None:
    # Hacker News is fresher and has points: by score alone it would fill the digest.
    hn = [story("hn", n, hours_ago=n, points=300) for n in range(40)]
    quiet = [story(s, n, hours_ago=200 + n) for s in ("a", "b", "c") for n in range(5)]
    ranked = rank_items([*hn, *quiet], now=NOW)
    assert {i.entry.source for i in ranked[:12]} == {"hn"}
    kept = fair_order(ranked, 12, RankingConfig())[:12]
    assert Counter(i.entry.source for i in kept) == {"hn": 3, "a": 3, "b": 3, "c": 3}
    # Within each source, its best items.
    assert [i.entry.id for i in kept if i.entry.source == "hn"] == ["hn-0", "hn-1", "hn-2"]


def test_slots_a_source_cannot_fill_go_to_the_best_of_the_rest() -> None:
    hn = [story("hn", n, hours_ago=n, points=300) for n in range(20)]
    one = [story("solo", 0, hours_ago=300)]
    ranked = rank_items([*hn, *one], now=NOW)
    kept = fair_order(ranked, 10, RankingConfig())[:10]
    assert Counter(i.entry.source for i in kept) == {"hn": 9, "solo": 1}


def test_no_cap_when_switched_off_or_one_source() -> None:
    items = [story("hn", n, hours_ago=n, points=10) for n in range(8)]
    items += [story("b", n, hours_ago=100 + n) for n in range(8)]
    ranked = rank_items(items, now=NOW)
    assert fair_order(ranked, 4, RankingConfig(fair_share=None)) == ranked
    only_hn = [i for i in ranked if i.entry.source == "hn"]
    assert fair_order(only_hn, 4, RankingConfig()) == only_hn


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=2, max_size=5),
    limit=st.integers(1, 30),
)
def test_fair_order_properties(sizes: list[int], limit: int) -> None:
    items = [
        story(f"s{k}", n, hours_ago=(n * 7 + k * 3) % 50, points=(n * 13 + k) % 90)
        for k, size in enumerate(sizes)
        for n in range(size)
    ]
    ranked = rank_items(items, now=NOW)
    ordered = fair_order(ranked, limit, RankingConfig())
    assert sorted(i.entry.key for i in ordered) == sorted(i.entry.key for i in ranked)
    kept = ordered[:limit]
    counts = Counter(i.entry.source for i in kept)
    share = fair_share(limit, len({i.entry.source for i in ranked}), RankingConfig())
    available = Counter(i.entry.source for i in ranked)
    for count in counts.values():
        if share is not None and count > share:
            # Over the share only when every other source is at its share or gave all it had.
            assert all(counts[s] >= min(share, available[s]) for s in available)
    # The kept items are in score order (the first ``limit`` of the rank, re-filtered).
    scores = [i.score for i in kept]
    assert scores == sorted(scores, reverse=True)


def test_digest_of_several_sources_keeps_each() -> None:
    # The symptom: seven feeds, 50 items, three sources vanished.
    entries = [
        make_entry(f"{s}-{n}", source=s, hours_ago=n + 24 * k, now=LAST_YEAR, points=p)
        for k, (s, p) in enumerate(
            [("hn", 400), ("hf", 90), ("arxiv", None), ("blog", None), ("gh", None)]
        )
        for n in range(30)
    ]
    cfg = DigestConfig(name="d", max_items=20, group_by="none")
    digest = build_digest(entries, now=NOW, config=cfg)
    counts = Counter(i.entry.source for i in digest.items)
    assert counts == {"hn": 4, "hf": 4, "arxiv": 4, "blog": 4, "gh": 4}
    assert all(i.score_parts["freshness"] > 0 for i in digest.items[:4])


def test_order_inside_a_section_follows_the_upvotes_shown() -> None:
    # The symptom: ▲122, 41, 41, 129, 107 because the two 41s were also on arXiv.
    shown = [122, 41, 41, 129, 107]
    entries = []
    for n, votes in enumerate(shown):
        entries.append(
            make_entry(
                f"hf-{n}",
                source="hf",
                title=f"Paper {n}",
                link=f"https://huggingface.co/papers/{n}",
                hours_ago=3,
                upvotes=votes,
                now=NOW,
            )
        )
        if votes == 41:  # the same paper on arXiv, merged as a duplicate
            entries.append(
                make_entry(
                    f"ax-{n}",
                    source="arxiv",
                    title=f"Paper {n}",
                    link=f"https://huggingface.co/papers/{n}",
                    hours_ago=3,
                    now=NOW,
                )
            )
    cfg = DigestConfig(name="d", group_by="none")
    digest = build_digest(entries, now=NOW, config=cfg)
    (section,) = digest.sections
    assert [i.engagement.upvotes for i in section.items] == [129, 122, 107, 41, 41]
    assert any(i.duplicates for i in section.items)  # the arXiv copies were merged


def test_explain_says_why_fewer_upvotes_rank_higher() -> None:
    fresh = story("hf", 1, title="Fresh paper", hours_ago=1, upvotes=41)
    old = story("hf", 2, title="Old paper", hours_ago=72, upvotes=129)
    shown = story("hf", 3, title="Older paper", hours_ago=96, upvotes=5)
    ranked = rank_items([old, fresh, shown], now=NOW)
    assert [i.entry.title for i in ranked] == ["Fresh paper", "Old paper", "Older paper"]
    (note,) = out_of_order(ranked)  # 129 above 5 is in order: no note
    assert note.startswith('"Fresh paper" (41) above "Old paper" (129): freshness +')
    assert "engagement -" in note
    assert visible_signal(story("blog", 1)) is None
    assert out_of_order([story("blog", 1), story("hn", 2, points=3)]) == []
