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
   to a last "Other" section.
6. Every group is named by a phrase its own items share, scored against the rest of
   the edition (``labels.section_label``: noun phrases, class-based TF-IDF, Title
   Case, no function word of the items' languages, no boilerplate). A small group
   whose items share no phrase joins "Other". Configured topics keep their names.
7. A group keeps only the items that belong under its name: those holding the label's
   first phrase and those about as close to the rest of the group
   (``coherence.belonging``); it is named again without the others.
8. When the sources' titles are known and there are several sources: a group of one
   source's items only (no paper source, and in no other section) is named by that
   source's title ("Release notes from ty") and takes that source's items left over; a
   source with :data:`MIN_SECTION` or more items left over gets a section of its own,
   named by its title; the biggest sections fill the budget; the rest is "Other".

Fewer than ``min_auto`` texts left after the configured topics are not grouped at all:
a handful of items reads better as one list than as sections of one or two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from newsletter.config import TopicConfig
from newsletter.errors import ConfigError
from newsletter.summarize.adjectives import is_adjective
from newsletter.summarize.coherence import belonging, by_source
from newsletter.summarize.communities import knn_graph, louvain, merge_communities, modularity
from newsletter.summarize.labels import Edition, Phrase, label_words, section_label
from newsletter.summarize.text import tfidf_matrix

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

SUMMARY_TERMS = 5
"""Topic phrases kept per section besides its label."""

SUMMARY_LIST = 3
"""Topic phrases a section's intro line names besides its label."""

SUMMARY_CHARS = 120
"""Longest intro line, in characters (a long label may still make it longer)."""

COHERENCE = 0.25
COHERENT_UP_TO = 20
"""An automatic group of up to 20 items must have a label phrase held by a quarter of
them (and by two at least), or its items go to "Other": a section mixing a console
review with a tech-boss profile ("Ps5 pro · travis kalanick") has no name to give.
Bigger groups are held together by many links and always get their best phrase."""
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Group:
    """A section of a digest: a label and the indices of its members in the input."""

    label: str
    members: tuple[int, ...]
    summary_terms: tuple[str, ...] = ()
    topic: str | None = None
    key: str = ""
    source: str | None = None
    """The source whose title names the section, when it is named by its source."""


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
) -> tuple[list[int], sparse.csr_matrix]:
    """Return a group number for each text, in input order, the biggest group ``0``, and
    the texts' TF-IDF rows in input order.

    With a ``target``, linked groups are merged until no more than ``target`` remain.
    """
    n = len(texts)
    order = sorted(range(n), key=lambda i: texts[i])
    rows, _ = tfidf_matrix([texts[i] for i in order])
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    if n < 2 or rows.shape[1] == 0:
        return [0] * n, rows[back] if n else rows
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
    result: list[int] = canonical[back].tolist()
    return result, rows[back]


def cluster_labels(texts: Sequence[str], *, seed: int = 0) -> list[int]:
    """Return an automatic group number for each text, ``0`` for the biggest group.

    The number of groups comes from the texts (see the module docstring). Texts without
    any word in common with another text form groups of their own; when no text has a
    usable word, all are in group ``0``.
    """
    return _cluster(texts, seed)[0]


def _unique_key(label: str, used: set[str]) -> str:
    key = slugify(label) or "section"
    candidate, number = key, 2
    while candidate in used:
        candidate, number = f"{key}-{number}", number + 1
    used.add(candidate)
    return candidate


def coherence(size: int) -> float:
    """Return the share of a group's items its label must cover (small groups only)."""
    return COHERENCE if size <= COHERENT_UP_TO else 0.0


def group_texts(
    texts: Sequence[str],
    *,
    topics: Sequence[TopicConfig] = (),
    max_groups: int = 8,
    min_auto: int = 12,
    seed: int = 0,
    sources: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    source_titles: Mapping[str, str] | None = None,
    paper_sources: Collection[str] = (),
) -> list[Group]:
    """Split texts into sections: configured topics, then automatic groups, then "Other".

    Every index of ``texts`` is in exactly one group. Configured topics come first, in
    configuration order, each with what matches it first (topics matching nothing are
    left out), named as configured. The rest is grouped automatically when at least
    ``min_auto`` texts remain, into at most ``max_groups`` sections counting the
    configured ones, biggest first, each named by ``labels.section_label`` and holding
    only the items that belong under that name (``coherence.belonging``); a group whose
    items share no nameable topic joins the last section, "Other" (or "All items" when
    it is the only one).

    ``sources`` (each text's source, when known) lets labels leave out what one source
    writes on every item, and with ``source_titles`` (source -> its title) names
    sections by source when there are several: a topic section of one source's items
    only, that source no paper source (``paper_sources``) and in no other section,
    takes the source's title and the source's items no section took; of the rest, a
    source with :data:`MIN_SECTION` items or more gets a section named by its title,
    and the biggest sections fill the budget. ``weights`` (each text's rank score, when
    known) let a label fit the item a section shows first.
    """
    matched = assign_topics(texts, topics)
    edition = Edition(texts, sources, weights)
    ranked = edition.rank
    groups: list[Group] = []
    taken: set[str] = set()
    keys: set[str] = set()
    for t, topic in enumerate(topics):
        members = tuple(i for i, m in enumerate(matched) if m == t)
        if members:
            label = topic.name.strip() or next(iter(topic.keywords), "") or f"Topic {t + 1}"
            taken.add(label.lower())
            named = set(label_words(label))
            extra = [p.shown for p in ranked(members) if not named & set(p.key)]
            groups.append(
                Group(
                    label=label,
                    members=members,
                    summary_terms=tuple(extra[:SUMMARY_TERMS]),
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
    rows = sparse.csr_matrix((len(rest), 0))
    if len(rest) >= min_auto and budget > 0:
        # Merging to the budget keeps a big collection's many small topics in sections
        # rather than in one huge "Other".
        raw, rows = _cluster(rest_texts, seed, target=budget)
        by_cluster: dict[int, list[int]] = {}
        for position, c in enumerate(raw):
            by_cluster.setdefault(c, []).append(position)
        # _cluster numbers groups biggest first, so this keeps the biggest.
        clusters = [m for _, m in sorted(by_cluster.items()) if len(m) >= MIN_SECTION][:budget]
        if len(clusters) == 1 and len(clusters[0]) == len(rest):
            clusters = []  # one section of everything is no grouping: "All items"/"Other"
    leftover = set(range(len(rest))) - {p for c in clusters for p in c}
    auto: list[Group] = []
    for positions in clusters:
        section = _topic_section(
            positions, rows, [rest[p] for p in positions], edition, taken, sources
        )
        if section is None:
            leftover.update(positions)
            continue
        inside, name, phrases = section
        leftover.update(set(positions) - {positions[q] for q in inside})
        taken.add(name.lower())
        auto.append(
            Group(
                label=name,
                members=tuple(rest[positions[q]] for q in inside),
                summary_terms=tuple(phrases),
            )
        )
    auto.sort(key=lambda g: -len(g.members))  # biggest first, as items left some
    pool = [rest[p] for p in sorted(leftover)]
    # Sections are named by source only among several: in a digest of one feed its
    # title says nothing the digest's own title does not.
    if clusters and sources is not None and source_titles and len({sources[i] for i in rest}) > 1:
        auto, pool = _source_sections(
            auto, groups, pool, sources, source_titles, paper_sources, taken, budget, ranked
        )
    for group in auto:
        groups.append(replace(group, key=_unique_key(group.label, keys)))
    if pool:
        label = OTHER_LABEL if groups else ALL_LABEL
        groups.append(
            Group(
                label=label,
                members=tuple(pool),
                summary_terms=tuple(p.shown for p in ranked(pool)[:SUMMARY_LIST]),
                key=_unique_key(label, keys),
            )
        )
    return groups


def _topic_section(
    positions: Sequence[int],
    rows: sparse.csr_matrix,
    members: Sequence[int],
    edition: Edition,
    taken: set[str],
    sources: Sequence[str] | None,
) -> tuple[list[int], str, list[str]] | None:
    """Return which of a cluster's items (indices into ``members``) form its topic
    section, the section's label and its other topic phrases; ``None`` when its items
    share no phrase (a heading would mislead).

    Items that do not belong under the first label (``coherence.belonging``) leave, and
    what stays is named again, so that the label is chosen for the items it heads.
    """
    labelled = section_label(
        edition.rank(members), len(members), taken, min_share=coherence(len(members))
    )
    if labelled is None:
        return None
    label, extra = labelled
    origins = [sources[i] for i in members] if sources is not None else None
    texts = [edition.texts[i] for i in members]
    inside = belonging(rows[list(positions)], label, texts, origins)
    if len(inside) == len(members):
        return list(range(len(members))), label, extra
    if len(inside) < MIN_SECTION:
        return None
    kept = [members[q] for q in inside]
    # The share a label must cover is the cluster's, so that naming what is left never
    # fails where naming the whole cluster did not.
    again = section_label(edition.rank(kept), len(kept), taken, min_share=coherence(len(members)))
    return (inside, *again) if again is not None else (inside, label, extra)


def _source_sections(
    auto: Sequence[Group],
    configured: Sequence[Group],
    pool: Sequence[int],
    sources: Sequence[str],
    titles: Mapping[str, str],
    papers: Collection[str],
    taken: set[str],
    budget: int,
    ranked: Callable[[Iterable[int]], list[Phrase]],
) -> tuple[list[Group], list[int]]:
    """Return the automatic sections with those of one source named by its title
    (``_named_by_source``) and new sections of the ``pool`` (the items of no section)
    named by their source (``coherence.by_source``), the biggest ``budget`` of them,
    and what is left of the pool."""
    auto = list(auto)
    pool = list(pool)
    for n, group in enumerate(auto):
        others = [*configured, *auto[:n], *auto[n + 1 :]]
        auto[n] = _named_by_source(group, others, pool, sources, titles, papers, taken)
        if auto[n].source is not None:
            # Its source's other items are true to that name too: none stays behind.
            pool = [i for i in pool if sources[i] != auto[n].source]
            terms = tuple(p.shown for p in ranked(auto[n].members)[:SUMMARY_LIST])
            auto[n] = replace(auto[n], summary_terms=terms)
    for title, held in by_source(pool, sources, titles, MIN_SECTION):
        # A paper list's leftovers are papers no topic took: "Other" says that; the
        # list's own name would head them as if they were a topic of their own.
        if title.lower() in taken or sources[held[0]] in papers:
            continue
        taken.add(title.lower())
        terms = tuple(p.shown for p in ranked(held)[:SUMMARY_LIST])
        auto.append(
            Group(label=title, members=tuple(held), summary_terms=terms, source=sources[held[0]])
        )
        pool = [i for i in pool if i not in held]
    if len(auto) > budget:
        # The biggest sections win the budget, whatever names them: 26 Hacker News
        # items under their feed's title read better than under "Other" beside a
        # section of four.
        kept = sorted(range(len(auto)), key=lambda n: (-len(auto[n].members), n))[:budget]
        pool = sorted([*pool, *(i for n, g in enumerate(auto) if n not in kept for i in g.members)])
        auto = [g for n, g in enumerate(auto) if n in kept]
    auto.sort(key=lambda g: -len(g.members))  # biggest first, as without sources
    return auto, pool


def _named_by_source(
    group: Group,
    others: Sequence[Group],
    pool: Sequence[int],
    sources: Sequence[str],
    titles: Mapping[str, str],
    papers: Collection[str],
    taken: set[str],
) -> Group:
    """Return ``group`` named by its source's title, with the source's items of the
    ``pool`` (those of no section yet), when all its items come from one source that is
    no paper source and has no item in any of the ``others`` sections ("Release notes
    from ty" for its releases, rather than "Fix Panic & Imports")."""
    names = {sources[i] for i in group.members}
    name = next(iter(names))
    title = titles.get(name, "").strip()
    if len(names) > 1 or not title or name in papers or title.lower() in taken:
        return group
    if any(sources[i] == name for g in others for i in g.members):
        return group
    taken.add(title.lower())
    members = sorted([*group.members, *(i for i in pool if sources[i] == name)])
    return replace(group, label=title, members=tuple(members), source=name)


def _singular(noun: str) -> str:
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith("s") and not noun.endswith("ss"):
        return noun[:-1]
    return noun


def _listing(terms: Sequence[str]) -> str:
    terms = list(terms)
    if len(terms) <= 1:
        return "".join(terms)
    return ", ".join(terms[:-1]) + " and " + terms[-1]


def section_summary(
    label: str,
    count: int,
    noun: str = "items",
    terms: Sequence[str] = (),
    *,
    by_source: bool = False,
) -> str:
    """Return a one-line summary of what a section holds, from its label and its other
    topic phrases (``terms``); never a title, never a word cut, and never a count (the
    email may show fewer of the section's items than the digest holds, and "In this
    issue" counts what is shown).

    ``section_summary("Dark Matter", 5, "papers", ["Galaxies", "Halos"])`` gives
    ``Papers on Dark Matter, including Galaxies and Halos``; "Other" and a section named
    by its source (``by_source``) give ``Items touching on …`` ('' without terms). Terms
    repeating a word of the label, or an acronym of it ("LLM" beside "Large Language
    Models"), are left out, and terms are dropped from the end (never cut) to keep the
    line under :data:`SUMMARY_CHARS` characters.
    """
    word = noun if count != 1 else _singular(noun)
    label = " ".join(label.split())
    generic = by_source or label in (OTHER_LABEL, ALL_LABEL) or not label
    if generic:
        head = word[:1].upper() + word[1:]
        joiner = " touching on "
    else:
        head = f"{'A ' + word if count == 1 else word.capitalize()} on {label}"
        joiner = ", including "
    named = set(label_words(label))
    phrases = [p.strip() for p in label.split("&")] if label and not generic else []
    shown: list[str] = []
    for term in terms:
        term = " ".join(term.split())
        folded = set(label_words(term))
        if not term or not folded or folded & named or len(shown) == SUMMARY_LIST:
            continue
        if any(_abbreviates(term, p) or _abbreviates(p, term) for p in phrases):
            continue
        if is_adjective(term.split()[-1]):  # "Plain", "Relative": no topic on their own
            continue
        if len(head) + len(joiner) + len(_listing([*shown, term])) > SUMMARY_CHARS:
            break
        shown.append(term)
        phrases.append(term)
        named |= folded
    if shown:
        return head + joiner + _listing(shown)
    return "" if generic else head


def _abbreviates(short: str, phrase: str) -> bool:
    """Whether ``short`` is the acronym of ``phrase`` ("LLMs" of "Large Language Models")."""
    letters = short[:-1] if short.endswith("s") and short[:-1].isupper() else short
    words = phrase.replace("-", " ").split()
    initials = "".join(w[0] for w in words).upper()
    # One letter more in front is a modifier the phrase left out: "LLM" of "Language
    # Models" (Large).
    return (
        len(initials) >= 2
        and letters.isupper()
        and letters.endswith(initials)
        and len(letters) - len(initials) <= 1
    )
