"""Pairwise precision and recall of ``merge_duplicates`` on the labeled set, and its speed.

Run: ``PYTHONPATH=. python bench/dedupe_quality.py [--sweep] [--show-errors]``

The labeled set is ``tests/fixtures/dedupe/entries.jsonl``: every line is an entry and its
``cluster`` label (entries with the same label are the same story). A pair of entries is
*predicted* when the merge puts them in one item and *true* when they share a label;
precision = |predicted and true| / |predicted|, recall = |predicted and true| / |true|.
Speed is measured on 2,000 entries made by repeating the set with fresh links and ids.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from itertools import combinations
from pathlib import Path

from newsletter.models import Engagement, Entry
from newsletter.summarize.dedupe import CONTENT_THRESHOLD, TITLE_THRESHOLD, merge_duplicates

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dedupe" / "entries.jsonl"


def load_labeled(path: Path = FIXTURE) -> list[tuple[Entry, str]]:
    """The labeled entries: (entry, cluster label) per line of ``path``."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        entry = Entry(
            id=raw["id"],
            source=raw["source"],
            title=raw["title"],
            link=raw.get("link", ""),
            text=raw.get("text", ""),
            published=datetime.fromisoformat(raw["published"]),
            engagement=Engagement(raw.get("points"), raw.get("upvotes"), raw.get("comments")),
        )
        rows.append((entry, raw["cluster"]))
    return rows


def pairwise_scores(
    labeled: Sequence[tuple[Entry, str]], **thresholds: float
) -> tuple[float, float, list[tuple[Entry, Entry, bool]]]:
    """(precision, recall, wrong pairs) of the merge against the labels."""
    items = merge_duplicates([e for e, _ in labeled], **thresholds)
    predicted = {
        frozenset((a.key, b.key)) for item in items for a, b in combinations(item.entries, 2)
    }
    by_key = {e.key: e for e, _ in labeled}
    true = {frozenset((a.key, b.key)) for (a, la), (b, lb) in combinations(labeled, 2) if la == lb}
    hits = len(predicted & true)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(true) if true else 1.0
    wrong = [(by_key[a], by_key[b], True) for a, b in map(sorted, predicted - true)]
    wrong += [(by_key[a], by_key[b], False) for a, b in map(sorted, true - predicted)]
    return precision, recall, wrong


def scaled(labeled: Sequence[tuple[Entry, str]], n: int = 2000) -> list[Entry]:
    """``n`` entries: the labeled set repeated, each copy with its own links and ids."""
    out: list[Entry] = []
    copy = 0
    while len(out) < n:
        for entry, _ in labeled:
            out.append(
                replace(
                    entry,
                    id=f"{entry.id}#{copy}",
                    link=f"{entry.link}/copy{copy}" if entry.link else "",
                    title=f"{entry.title} {copy}" if copy else entry.title,
                )
            )
        copy += 1
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="sweep both thresholds")
    parser.add_argument("--show-errors", action="store_true", help="print wrong pairs")
    args = parser.parse_args()
    labeled = load_labeled()
    clusters = {c for _, c in labeled}
    print(f"labeled set: {len(labeled)} entries, {len(clusters)} stories")
    precision, recall, wrong = pairwise_scores(labeled)
    print(
        f"thresholds title={TITLE_THRESHOLD} content={CONTENT_THRESHOLD}: "
        f"precision {precision:.3f} recall {recall:.3f}"
    )
    if args.show_errors:
        for a, b, false_merge in wrong:
            kind = "FALSE MERGE" if false_merge else "MISSED"
            print(f"  {kind}: [{a.source}] {a.title!r}\n{'':>15}[{b.source}] {b.title!r}")
    if args.sweep:
        print("  precision/recall; rows: title threshold, columns: content 0.2 ... 0.8")
        for title in (0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
            row = []
            for content in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
                p, r, _ = pairwise_scores(labeled, near_threshold=title, content_threshold=content)
                row.append(f"{p:.2f}/{r:.2f}")
            print(f"  title {title:.2f}: " + "  ".join(row))
    big = scaled(labeled)
    merge_duplicates(big)  # warm up imports and caches
    wall, cpu = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        merge_duplicates(big)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(
        f"time: {len(big)} entries in {min(wall) * 1000:.0f} ms wall, "
        f"{min(cpu) * 1000:.0f} ms CPU (best of 5)"
    )


if __name__ == "__main__":
    main()
