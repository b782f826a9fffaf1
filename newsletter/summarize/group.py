"""Topic sections of a digest: configured topics first, then automatic groups of the rest.

How the automatic groups are found (all deterministic, nothing told how many to find):

1. The texts are put in a canonical order (sorted by text) so that the same entries in
   any order give the same sections.
2. Each text becomes a TF-IDF vector (``text.tfidf_matrix``: sublinear tf, words with
   plurals folded and two-word phrases, stop words removed).
3. Each text is linked to its ``k`` most similar texts by cosine similarity, with ``k``
   about the square root of the number of texts: a neighbourhood that grows with the
   collection, as a topic of a bigger collection has more members
   (``communities.knn_graph``).
4. Communities of that graph are found by maximizing modularity (Louvain,
   ``communities.louvain``). Modularity compares the links inside a group with what
   chance would give, so the number of groups follows from the data. The best of a few
   seeded runs is kept. This is :func:`cluster_labels`.
5. For the digest, when there are more linked groups than sections to fill, the pair
   whose merge loses least modularity is merged until they fit
   (``communities.merge_communities``; on 1,000 arXiv papers Louvain finds about 7
   groups, so this is rare at digest sizes). Groups smaller than :data:`MIN_SECTION` go
   to a last "Other" section. Every group is named by its most distinctive terms
   (class-based TF-IDF, ``text.distinctive_terms``), written as the texts mostly write
   them.

Fewer than ``min_auto`` texts left after the configured topics are not grouped at all:
a handful of items reads better as one list than as sections of one or two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from newsletter.config import TopicConfig
from newsletter.errors import ConfigError
from newsletter.summarize.communities import knn_graph, louvain, merge_communities, modularity
from newsletter.summarize.text import display_form, distinctive_terms, tfidf_matrix

OTHER_LABEL = "Other"
"""The last section: entries of no configured topic and of no automatic group."""

ALL_LABEL = "All items"
"""The one section of a digest that has no configured topic and is too small to group."""

MIN_SECTION = 3
"""Automatic groups smaller than this go to "Other": a heading over one or two items
costs the reader more than it tells."""

MIN_NEIGHBORS = 5
MAX_NEIGHBORS = 40
"""Bounds on ``k`` of the similarity graph: below 5 the graph falls apart into crumbs;
above 40 it costs time and links across topics in big collections."""

LOUVAIN_RUNS = ((300, 4), (600, 2))
"""Seeded Louvain runs by collection size (up to 300 texts: 4, up to 600: 2, else 1);
the partition with the highest modularity is kept, which makes the result depend less on
the order nodes are visited in. Small collections are cheap and vary most from run to
run; big ones are expensive and vary least."""

LABEL_TERMS = 2
DISPLAY_SAMPLE = 50
SUMMARY_TERMS = 5
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Group:
    """A section of a digest: a label and the indices of its members in the input."""

    label: str
    members: tuple[int, ...]
    summary_terms: tuple[str, ...] = ()
    topic: str | None = None
    key: str = ""


def slugify(text: str) -> str:
    """Return a URL-safe key: ``"Dark matter · galaxies"`` -> ``dark-matter-galaxies``."""
    return _SLUG.sub("-", text.lower()).strip("-")


def topic_regex(topic: TopicConfig) -> re.Pattern[str] | None:
    """Return one case-insensitive regular expression matching any of the topic's terms
    (keywords match whole words or phrases; patterns are regular expressions).

    Raises ``ConfigError`` naming the topic when a pattern is not a valid expression.
    """
    parts = []
    for keyword in topic.keywords:
        words = keyword.split()
        if words:
            # Whole words: no word character may touch the keyword on either side; any
            # run of whitespace matches the space in a phrase.
            parts.append(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)")
    for pattern in topic.patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(
                f"pattern {pattern!r} is not a valid regular expression: {err}",
                setting=f"topics.{topic.name}.patterns",
                example=r"\bLLMs?\b",
            ) from err
        if pattern:
            parts.append(f"(?:{pattern})")
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def assign_topics(texts: Sequence[str], topics: Sequence[TopicConfig]) -> list[int | None]:
    """Return, for each text, the index of the first topic it matches, else ``None``."""
    regexes = [topic_regex(t) for t in topics]
    result: list[int | None] = []
    for text in texts:
        result.append(
            next((i for i, rx in enumerate(regexes) if rx is not None and rx.search(text)), None)
        )
    return result


def louvain_runs(n: int) -> int:
    """Return how many seeded Louvain runs to make for ``n`` texts."""
    return next((runs for size, runs in LOUVAIN_RUNS if n <= size), 1)


def neighbor_count(n: int) -> int:
    """Return ``k`` for the similarity graph of ``n`` texts: about ``sqrt(n)``, bounded."""
    return max(0, min(n - 1, max(MIN_NEIGHBORS, min(MAX_NEIGHBORS, round(math.sqrt(n))))))


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber groups biggest first; equal sizes by their first member."""
    if len(labels) == 0:
        return labels
    _, first, inverse, sizes = np.unique(
        labels, return_index=True, return_inverse=True, return_counts=True
    )
    rank = np.lexsort((first, -sizes))
    renumber = np.empty_like(rank)
    renumber[rank] = np.arange(len(rank))
    result: np.ndarray = renumber[inverse]
    return result


def _cluster(
    texts: Sequence[str], seed: int, target: int | None = None
) -> tuple[list[int], sparse.csr_matrix, list[str]]:
    """Return group numbers, TF-IDF rows (both in input order) and the TF-IDF terms.

    With a ``target``, linked groups are merged until no more than ``target`` remain.
    """
    n = len(texts)
    order = sorted(range(n), key=lambda i: texts[i])
    rows, terms = tfidf_matrix([texts[i] for i in order])
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    if n < 2 or rows.shape[1] == 0:
        return [0] * n, sparse.csr_matrix(rows[back]), terms
    graph = knn_graph(rows, neighbor_count(n))
    if graph.nnz == 0:
        canonical = np.arange(n)
    else:
        count = louvain_runs(n)
        runs = [louvain(graph, seed=seed * count + r) for r in range(count)]
        scores = [modularity(graph, run) for run in runs]
        canonical = runs[int(np.argmax(scores))]
        if target is not None:
            canonical = merge_communities(graph, _by_size(canonical), target)
    canonical = _by_size(canonical)
    return canonical[back].tolist(), sparse.csr_matrix(rows[back]), terms


def cluster_labels(texts: Sequence[str], *, seed: int = 0) -> list[int]:
    """Return an automatic group number for each text, ``0`` for the biggest group.

    The number of groups comes from the texts (see the module docstring). Texts without
    any word in common with another text form groups of their own; when no text has a
    usable word, all are in group ``0``.
    """
    return _cluster(texts, seed)[0]


def _label(terms: Sequence[str], taken: set[str]) -> str:
    """Return a label from the first distinctive terms, longer if it is already taken."""
    terms = list(terms) or ["Group"]
    for count in range(min(LABEL_TERMS, len(terms)), len(terms) + 1):
        words = terms[:count]
        label = " · ".join([words[0][:1].upper() + words[0][1:], *words[1:]])
        if label.lower() not in taken:
            return label
    base = " · ".join(terms[:LABEL_TERMS])
    base = base[:1].upper() + base[1:]
    number = 2
    while f"{base} ({number})".lower() in taken:
        number += 1
    return f"{base} ({number})"


def _unique_key(label: str, used: set[str]) -> str:
    key = slugify(label) or "section"
    candidate, number = key, 2
    while candidate in used:
        candidate, number = f"{key}-{number}", number + 1
    used.add(candidate)
    return candidate


def group_texts(
    texts: Sequence[str],
    *,
    topics: Sequence[TopicConfig] = (),
    max_groups: int = 8,
    min_auto: int = 12,
    seed: int = 0,
) -> list[Group]:
    """Split texts into sections: configured topics, then automatic groups, then "Other".

    Every index of ``texts`` is in exactly one group. Configured topics come first, in
    configuration order, each with what matches it first (topics matching nothing are
    left out). The rest is grouped automatically when at least ``min_auto`` texts remain,
    into at most ``max_groups`` sections counting the configured ones, biggest first;
    what is left is the last section, "Other" (or "All items" when it is the only one).
    """
    matched = assign_topics(texts, topics)
    groups: list[Group] = []
    taken: set[str] = set()
    keys: set[str] = set()
    for t, topic in enumerate(topics):
        members = tuple(i for i, m in enumerate(matched) if m == t)
        if members:
            label = topic.name.strip() or next(iter(topic.keywords), "") or f"Topic {t + 1}"
            taken.add(label.lower())
            groups.append(
                Group(
                    label=label,
                    members=members,
                    summary_terms=topic.keywords[:SUMMARY_TERMS],
                    topic=topic.name,
                    key=_unique_key(label, keys),
                )
            )
    rest = [i for i, m in enumerate(matched) if m is None]
    if not rest:
        return groups
    budget = max_groups - len(groups)
    rest_texts = [texts[i] for i in rest]
    clusters: list[list[int]] = []
    if len(rest) >= min_auto and budget > 0:
        # Merging to the budget keeps a big collection's many small topics in sections
        # rather than in one huge "Other".
        raw, rows, terms = _cluster(rest_texts, seed, target=budget)
        by_cluster: dict[int, list[int]] = {}
        for position, c in enumerate(raw):
            by_cluster.setdefault(c, []).append(position)
        # _cluster numbers groups biggest first, so this keeps the biggest.
        clusters = [m for _, m in sorted(by_cluster.items()) if len(m) >= MIN_SECTION][:budget]
        if len(clusters) == 1 and len(clusters[0]) == len(rest):
            clusters = []  # one section of everything is no grouping: "All items"/"Other"
    else:
        rows, terms = tfidf_matrix(rest_texts)
    in_cluster = {p: c for c, positions in enumerate(clusters) for p in positions}
    leftover = [p for p in range(len(rest)) if p not in in_cluster]
    # The leftovers are a class of their own for the term weights, so a group's label
    # says what sets it apart from them too.
    classes = [in_cluster.get(p, len(clusters)) for p in range(len(rest))]
    names = distinctive_terms(rows, terms, classes, len(clusters) + 1, SUMMARY_TERMS)
    for c, positions in enumerate(clusters):
        # How terms are written is clear from a sample; sorted, so it is the same sample
        # in any input order.
        sample = sorted(rest_texts[p] for p in positions)[:DISPLAY_SAMPLE]
        shown = [display_form(t, sample) for t in names[c]]
        label = _label(shown, taken)
        taken.add(label.lower())
        groups.append(
            Group(
                label=label,
                members=tuple(rest[p] for p in positions),
                summary_terms=tuple(shown),
                key=_unique_key(label, keys),
            )
        )
    if leftover:
        label = OTHER_LABEL if groups else ALL_LABEL
        groups.append(
            Group(
                label=label,
                members=tuple(rest[p] for p in leftover),
                summary_terms=tuple(names[len(clusters)]),
                key=_unique_key(label, keys),
            )
        )
    return groups


def _singular(noun: str) -> str:
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith("s") and not noun.endswith("ss"):
        return noun[:-1]
    return noun


def _phrase(label: str) -> str:
    parts = [p.strip() for p in label.split("·") if p.strip()]
    if not parts:
        return label
    first = parts[0]
    # An automatic label ("Dark matter · galaxies") reads as "dark matter" mid-sentence;
    # "LHC", "GPT-4" or a configured name like "Rust" stay as they are.
    if len(parts) > 1 and len(first) > 1 and first[0].isupper() and first[1:].islower():
        parts[0] = first[0].lower() + first[1:]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def section_summary(label: str, count: int, lead_title: str, noun: str = "items") -> str:
    """Return a one-line summary of a section.

    ``section_summary("Dark matter · galaxies", 5, "A new halo", "papers")`` gives
    ``5 papers on dark matter and galaxies, led by “A new halo”``; one item reads
    ``1 paper on …: “A new halo”``, and "Other" gives ``3 more items, led by …``.
    """
    word = noun if count != 1 else _singular(noun)
    lead = " ".join(lead_title.split())
    if len(lead) > 90:
        lead = lead[:89].rstrip() + "…"
    if label in (OTHER_LABEL, ALL_LABEL) or not label.strip():
        head = f"{count} {'more ' if label == OTHER_LABEL else ''}{word}"
    else:
        head = f"{count} {word} on {_phrase(label)}"
    if not lead:
        return head
    return f"{head}, led by “{lead}”" if count != 1 else f"{head}: “{lead}”"
