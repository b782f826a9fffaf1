"""How well automatic grouping recovers real topics, and how fast it is.

Usage::

    python bench/quality.py [FILE] [--seed N] [--subsamples N] [--curve]

FILE is a JSON-lines file of papers (``id``, ``title``, ``abstract``, ``label``; default
``bench/data/arxiv-2007-dev.jsonl``). The papers (title + abstract only, never
``categories`` or ``label``) go through ``group_texts`` exactly as the digest calls it,
without being told how many groups to find; the digest's sections (at most 8 plus
"Other") are scored against ``label`` with NMI and ARI. The raw clusters behind them
(``cluster_labels``, no cap) are scored too. The last line is the summary::

    NMI 0.57 ARI 0.41 groups 9 time 0.62s

``--subsamples N`` repeats the measure on N random halves and N random quarters of the
file (robustness: a held-out set is a different sample of the same kind). ``--curve``
times 100, 1,000 and 10,000 entries; 10,000 are drawn with replacement from the file,
each copy with a distinct id and 10% of its abstract words dropped at random, so that no
two texts are identical.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.summarize.group import Group, cluster_labels, group_texts
from newsletter.summarize.text import entry_text

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "arxiv-2007-dev.jsonl"
Paper = dict[str, Any]
CPU_SECONDS: dict[int, float] = {}
"""CPU seconds of the last grouping of each size: wall time on a shared machine also
counts the other processes."""


def load(path: Path) -> list[Paper]:
    """Return the papers of a JSON-lines file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def texts_of(papers: Sequence[Paper]) -> list[str]:
    """Return what grouping sees of each paper: title and abstract, nothing else."""
    return [entry_text(p["title"], p["abstract"]) for p in papers]


def assignment(groups: Sequence[Group], n: int) -> list[int]:
    """Return each index's group number (groups in their digest order)."""
    result = [-1] * n
    for g, group in enumerate(groups):
        for i in group.members:
            result[i] = g
    assert -1 not in result, "an entry was lost"
    return result


def measure(papers: Sequence[Paper], seed: int) -> tuple[float, float, int, float, list[Group]]:
    """Group the papers as the digest does: return NMI, ARI, groups, seconds, groups."""
    texts = texts_of(papers)
    start, cpu = time.perf_counter(), time.process_time()
    groups = group_texts(texts, seed=seed)
    elapsed = time.perf_counter() - start
    CPU_SECONDS[len(texts)] = time.process_time() - cpu
    truth = [p["label"] for p in papers]
    found = assignment(groups, len(texts))
    return (
        normalized_mutual_info_score(truth, found),
        adjusted_rand_score(truth, found),
        len(groups),
        elapsed,
        groups,
    )


def perturbed_sample(papers: Sequence[Paper], n: int, seed: int) -> list[Paper]:
    """Return ``n`` papers drawn with replacement, each with a distinct id and 10% of
    its abstract words dropped."""
    rng = random.Random(seed)
    result = []
    for i in range(n):
        paper = dict(rng.choice(papers))
        words = paper["abstract"].split()
        paper["abstract"] = " ".join(w for w in words if rng.random() >= 0.1)
        paper["id"] = f"{paper['id']}#{i}"
        result.append(paper)
    return result


def robustness(papers: Sequence[Paper], count: int, seed: int) -> None:
    """Print NMI over random halves and quarters, and over grouping seeds."""
    rng = random.Random(seed)
    for fraction in (0.5, 0.25):
        size = int(len(papers) * fraction)
        scores = []
        for _ in range(count):
            sample = rng.sample(list(papers), size)
            nmi, ari, groups, _, _ = measure(sample, seed)
            scores.append((nmi, ari, groups))
        nmis = [s[0] for s in scores]
        print(
            f"subsamples of {size}: NMI mean {statistics.mean(nmis):.3f} "
            f"min {min(nmis):.3f} max {max(nmis):.3f} "
            f"ARI mean {statistics.mean(s[1] for s in scores):.3f} "
            f"groups {sorted(s[2] for s in scores)}"
        )
    by_seed = [measure(papers, s)[0] for s in range(count)]
    print(
        f"grouping seeds 0..{count - 1} on the whole file: NMI "
        f"{' '.join(f'{x:.3f}' for x in by_seed)}"
    )


def curve(papers: Sequence[Paper], seed: int) -> None:
    """Print the time (and quality) of grouping 100, 1,000 and 10,000 papers."""
    rng = random.Random(seed)
    for n in (100, 1000, 10000):
        if n <= len(papers):
            sample = rng.sample(list(papers), n)
            how = "sampled"
        else:
            sample = perturbed_sample(papers, n, seed)
            how = "drawn with replacement, perturbed"
        nmi, _, groups, elapsed, _ = measure(sample, seed)
        raw = cluster_labels(texts_of(sample), seed=seed)
        raw_nmi = normalized_mutual_info_score([p["label"] for p in sample], raw)
        print(
            f"curve n={n:>6} ({how}): time {elapsed:.2f}s cpu {CPU_SECONDS[n]:.2f}s"
            f" NMI {nmi:.3f} groups {groups}"
            f" (raw clusters: NMI {raw_nmi:.3f}, {len(set(raw))} clusters)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measure; print the report, the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subsamples", type=int, default=0, metavar="N")
    parser.add_argument("--curve", action="store_true")
    args = parser.parse_args(argv)

    papers = load(args.file)
    nmi, ari, count, elapsed, groups = measure(papers, args.seed)
    print(f"{len(papers)} papers, {len({p['label'] for p in papers})} labels, {args.file.name}")
    print("sections as the digest shows them (label: size):")
    for group in groups:
        print(f"  {len(group.members):>5}  {group.label}")

    raw = cluster_labels(texts_of(papers), seed=args.seed)
    truth = [p["label"] for p in papers]
    print(
        f"raw clusters (no cap, no 'Other'): NMI {normalized_mutual_info_score(truth, raw):.3f}"
        f" ARI {adjusted_rand_score(truth, raw):.3f} clusters {len(set(raw))}"
    )
    print(f"cpu {CPU_SECONDS[len(papers)]:.2f}s (wall time counts other processes too)")
    if args.subsamples:
        robustness(papers, args.subsamples, args.seed)
    if args.curve:
        curve(papers, args.seed)
    print(f"NMI {nmi:.2f} ARI {ari:.2f} groups {count} time {elapsed:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
