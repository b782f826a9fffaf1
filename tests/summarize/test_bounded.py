"""Issue 11, finding 1: no step of a digest is quadratic in the number of entries.

One feed of 100k items whose titles share a word made ``matrix @ matrix.T`` ask for
74.5 GiB. These tests use a few thousand entries and measure allocations: the dense
product they replaced needed hundreds of megabytes at this size.
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

from newsletter.config import DigestConfig
from newsletter.summarize.dedupe import merge_duplicates
from newsletter.summarize.digest import build_digest, cap_candidates
from tests.factories import NOW, make_entry


def _word(i: int) -> str:
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[r]
        if not i:
            return "q" + letters


def _shared_word_entries(n: int, *, source: str = "big") -> list:
    return [
        make_entry(
            i,
            source=source,
            title=f"Update {_word(i)} {_word(i * 7919 % 100_003)}",
            published=NOW - timedelta(seconds=i),
        )
        for i in range(n)
    ]


def test_titles_sharing_a_word_never_build_a_dense_product() -> None:
    entries = _shared_word_entries(6000)
    tracemalloc.start()
    try:
        items = merge_duplicates(entries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(items) == len(entries)  # nothing alike but the shared word
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_identical_titles_still_merge_past_the_common_term_cut() -> None:
    # "Daily update" is in every title: too common to propose pairs, yet identical titles
    # are one story.
    entries = [make_entry(i, source=f"s{i % 3}", title="Daily update", link="") for i in range(600)]
    entries += [make_entry("x", title="Something else entirely")]
    items = merge_duplicates(entries)
    assert len(items) == 2


def test_cap_candidates_keeps_the_newest_per_source_then_per_edition() -> None:
    big = _shared_word_entries(50, source="big")
    small = _shared_word_entries(5, source="small")
    kept, dropped = cap_candidates([*big, *small], per_source=10, total=12)
    assert dropped == 55 - 12
    assert {e.source for e in kept} == {"big", "small"}
    assert [e.id for e in kept if e.source == "big"] == [str(i) for i in range(7)]


def test_build_digest_reports_what_the_caps_dropped() -> None:
    config = DigestConfig(name="d", max_candidates=300, max_candidates_per_source=200)
    digest = build_digest(_shared_word_entries(1000), now=NOW, config=config)
    assert digest.dropped == 800
    assert digest.item_count == config.max_items
