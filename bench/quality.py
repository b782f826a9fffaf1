"""How well automatic grouping recovers real topics, how fast it is, and whether the
section labels of a digest of every fixture feed are clean.

Usage::

    python bench/quality.py [FILE] [--heldout FILE] [--halves N] [--seed N]
                            [--subsamples N] [--curve]

FILE is a JSON-lines file of papers (``id``, ``title``, ``abstract``, ``label``; default
``bench/data/arxiv-2007-dev.jsonl``). The papers (title + abstract only, never
``categories`` or ``label``) go through ``group_texts`` exactly as the digest calls it,
without being told how many groups to find; the digest's sections (at most 8 plus
"Other") are scored against ``label`` with NMI and ARI. The raw clusters behind them
(``cluster_labels``, no cap) are scored too. The last line is the summary::

    NMI 0.59 held-out 0.67 ARI 0.62 groups 7 time 0.62s label faults 0

``--heldout FILE`` is a second labeled set measured the same way and never tuned on
(default ``bench/data/debian-bookworm-sections.jsonl``; ``bench/data/README.md`` says
how it was built). ``--halves N`` (default 10) measures N random halves of each set and
prints the spread of NMI.

The label check builds a digest of every fixture feed (``tests/fixtures/feeds`` and
``tests/fixtures/labels``), with the feeds' titles and without, and counts its section
labels with a function word of English, German, French or Spanish, a word repeated
(plural and case variants count as one word), feed boilerplate ("Continue reading",
"Comments", ...) or an adjective alone or last ("Finite", "Quantum"): all four counts
must be 0. A section named by its feed's title keeps the feed's spelling and is not
counted.

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
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.config import DigestConfig
from newsletter.errors import NewsletterError
from newsletter.models import Entry, Source
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from newsletter.summarize.group import ALL_LABEL, OTHER_LABEL, Group, cluster_labels, group_texts
from newsletter.summarize.stopwords import STOP_WORDS_BY_LANGUAGE
from newsletter.summarize.text import entry_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT / "bench" / "data" / "arxiv-2007-dev.jsonl"
HELDOUT_FILE = ROOT / "bench" / "data" / "debian-bookworm-sections.jsonl"
FEED_DIRS = (ROOT / "tests" / "fixtures" / "feeds", ROOT / "tests" / "fixtures" / "labels")
_ADJECTIVES = """
    finite infinite quantum large small new deep high low fast efficient robust novel open
    free simple complex strong weak dark recent modern real full different important local
    global general neural visual magnetic linear russian chinese automatically
"""
ADJECTIVES = frozenset(_ADJECTIVES.split())
"""Adjectives (and an adverb) the issue found as labels or as their last word, with the
common ones of the fixture feeds: the bench's own list, apart from the labeler's."""
BOILERPLATE = (
    "continue reading", "read more", "appeared first", "comments", "comment", "things",
    "click here", "the post", "release notes",
)  # fmt: skip
"""Feed boilerplate the issue found in labels; none may appear in one."""
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


def halves(papers: Sequence[Paper], count: int, seed: int) -> list[float]:
    """Return the digest's NMI on ``count`` random halves of ``papers``."""
    rng = random.Random(seed)
    return [measure(rng.sample(list(papers), len(papers) // 2), seed)[0] for _ in range(count)]


def spread(name: str, scores: Sequence[float]) -> str:
    """Return one line: the mean, lowest, highest and standard deviation of ``scores``."""
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return (
        f"{name}: NMI mean {statistics.mean(scores):.3f} min {min(scores):.3f} "
        f"max {max(scores):.3f} spread {max(scores) - min(scores):.3f} sd {sd:.3f}"
    )


def fold(word: str) -> str:
    """Return a word lower-cased with a plural ending dropped ("GPUs" -> "gpu")."""
    word = word.lower()
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)]
    return word


def label_faults(label: str) -> dict[str, list[str]]:
    """Return what is wrong with a label, by kind: stopword, repeat, boilerplate, and an
    adjective alone or as the last word of one of its phrases ("Finite", "Quantum")."""
    words = re.findall(r"[^\W_][\w'’\-]*", label)
    stop = set().union(*STOP_WORDS_BY_LANGUAGE.values())
    folded = [fold(w) for w in words]
    lasts = [half.split()[-1] for half in label.split(" & ") if half.split()]
    return {
        "stopword": [w for w in words if w.lower() in stop],
        "repeat": sorted({w for w in folded if folded.count(w) > 1}),
        "boilerplate": [b for b in BOILERPLATE if b in label.lower()],
        "adjective": [w for w in lasts if w.lower() in ADJECTIVES],
    }


def fixture_entries() -> tuple[list[Entry], dict[str, Source]]:
    """Return the entries of every fixture feed, and the feeds that gave some (each
    titled as the feed titles itself, as ``newsletter digest`` names them)."""
    entries: list[Entry] = []
    feeds: dict[str, Source] = {}
    for folder in FEED_DIRS:
        for path in sorted(folder.iterdir()):
            if path.suffix not in (".xml", ".json"):
                continue
            try:
                parsed = parse_source(path.read_bytes(), source=path.stem, url=path.as_uri())
            except NewsletterError:
                continue  # a fixture of a broken feed: nothing to label
            title = parsed.info.title or None
            feeds[path.stem] = Source(name=path.stem, url=path.as_uri(), title=title)
            entries += parsed.entries
    return entries, feeds


def label_check() -> int:
    """Print the labels of a digest of every fixture feed and their faults; return the
    number of faulty labels.

    The digest is built twice: with the feeds' titles, as ``newsletter digest FILE...``
    names sections, and without (sources not yet fetched have none), where every
    section needs a topic label.
    """
    entries, feeds = fixture_entries()
    now = max((e.when for e in entries if e.when), default=None)
    assert now is not None, "no dated fixture entry"
    config = DigestConfig(name="fixtures", max_items=1000)
    counts = {"stopword": 0, "repeat": 0, "boilerplate": 0, "adjective": 0}
    faulty = labels = 0
    for titled in (feeds, {}):
        digest = build_digest(entries, now=now, config=config, sources=titled)
        titles = {s.label for s in titled.values()}
        how = "titled as the feeds title themselves" if titled else "without their titles"
        print(
            f"label check: a digest of {len(feeds)} fixture feeds ({len(entries)} entries), {how}:"
        )
        for section in digest.sections:
            # "Other" and "All items" are the digest's own fixed names, and a feed's
            # title is the feed's own spelling ("Release notes from ty"): not labels.
            fixed = section.title in (OTHER_LABEL, ALL_LABEL) or section.title in titles
            faults = {} if fixed else label_faults(section.title)
            bad = {k: v for k, v in faults.items() if v}
            for kind in bad:
                counts[kind] += 1
            faulty += bool(bad)
            labels += not fixed
            feed = "  (the feed's title)" if section.title in titles else ""
            print(f"  {len(section.items):>4}  {section.title}{f'  <- {bad}' if bad else feed}")
            print(f"        {section.summary}")
    print(
        f"label check: {labels} labels; with a stopword {counts['stopword']}, "
        f"with a repeated word {counts['repeat']}, with boilerplate {counts['boilerplate']}, "
        f"an adjective alone or last {counts['adjective']}"
    )
    return faulty


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
    print("curve: time is wall time, which counts other processes on a shared machine; cpu")
    print("is the grouping's own (labels included); the budget for 10,000 entries is 5 s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measure; print the report, the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--heldout", type=Path, default=HELDOUT_FILE, metavar="FILE")
    parser.add_argument("--halves", type=int, default=10, metavar="N")
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
    heldout = load(args.heldout)
    h_nmi, h_ari, h_count, _, h_groups = measure(heldout, args.seed)
    print(f"held-out set, never tuned on: {len(heldout)} items, {args.heldout.name}")
    for group in h_groups:
        print(f"  {len(group.members):>5}  {group.label}")
    print(
        f"held-out: NMI {h_nmi:.3f} ARI {h_ari:.3f} groups {h_count} (dev - held-out: "
        f"{nmi - h_nmi:+.3f})"
    )
    if args.halves:
        print(
            spread(
                f"{args.halves} random halves of the dev file",
                halves(papers, args.halves, args.seed),
            )
        )
        print(
            spread(
                f"{args.halves} random halves of the held-out set",
                halves(heldout, args.halves, args.seed),
            )
        )
    if args.subsamples:
        robustness(papers, args.subsamples, args.seed)
    if args.curve:
        curve(papers, args.seed)
    faulty = label_check()
    print(
        f"NMI {nmi:.2f} held-out {h_nmi:.2f} ARI {ari:.2f} groups {count} "
        f"time {elapsed:.2f}s label faults {faulty}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
