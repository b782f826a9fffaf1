"""Entries -> Digest: merge duplicates, rank, keep the best, group into sections, summarize.

Pure: no I/O, no clock (``now`` is passed in). The grouping is behind the ``Grouper``
protocol so that a digest can be grouped by source, by configured topics only, not at all,
or automatically (configured topics first, then topic clusters of the rest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from newsletter.config import DigestConfig
from newsletter.models import Digest, Entry, Item, Section, Source
from newsletter.summarize.dedupe import merge_duplicates
from newsletter.summarize.group import group_texts, section_summary
from newsletter.summarize.rank import fair_order, rank_items
from newsletter.summarize.summary import item_summary
from newsletter.summarize.text import entry_text

OTHER = "Other"
_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """``"Test-time compute · LLMs"`` -> ``"test-time-compute-llms"``."""
    return _SLUG.sub("-", text.lower()).strip("-") or "section"


@dataclass(frozen=True, slots=True)
class Preferences:
    """One reader's changes to a digest's configuration (``DigestConfig``): their
    ``interests`` rank higher, and when ``only_topics`` is set only items of those
    configured topics are kept."""

    interests: tuple[str, ...] = ()
    only_topics: tuple[str, ...] = ()


EVERYONE = Preferences()
"""No personal preferences: the digest as configured."""


class Grouper(Protocol):
    """Splits ranked items into sections (each item in exactly one section)."""

    def __call__(
        self, items: Sequence[Item], config: DigestConfig, sources: Mapping[str, Source]
    ) -> list[Section]: ...


def _item_text(item: Item) -> str:
    # The same text the grouping benchmark (bench/quality.py) measures: title weighted,
    # then tags and the start of the body.
    e = item.entry
    return entry_text(e.title, f"{' '.join(e.tags)} {e.text[:2000]}")


def _is_paper(item: Item) -> bool:
    return "arxiv.org" in item.entry.link or "huggingface.co/papers" in item.entry.link


def _noun(items: Sequence[Item]) -> str:
    papers = sum(1 for i in items if _is_paper(i))
    return "papers" if papers * 2 >= len(items) and items else "items"


def _paper_sources(items: Sequence[Item]) -> set[str]:
    """Sources most of whose items are papers: their sections keep a topic name."""
    by: dict[str, list[Item]] = {}
    for item in items:
        by.setdefault(item.entry.source, []).append(item)
    return {name for name, group in by.items() if _noun(group) == "papers"}


def _sections_from_groups(
    items: Sequence[Item],
    groups: Sequence[tuple[str, Sequence[int], Sequence[str], bool]],
) -> list[Section]:
    """Return sections of ``items``: each group's label, members ranked, and an intro
    line from the label and the group's other topic phrases (a true last value says the
    label is a source's title, not a topic)."""
    sections = []
    used: set[str] = set()
    for label, members, terms, by_source in groups:
        if not members:
            continue
        chosen = sorted((items[i] for i in members), key=lambda it: -it.score)
        key = slugify(label)
        while key in used:
            key += "-x"
        used.add(key)
        noun = _noun(chosen)
        sections.append(
            Section(
                title=label,
                items=tuple(chosen),
                summary=section_summary(label, len(chosen), noun, terms, by_source=by_source),
                key=key,
            )
        )
    return sections


def group_none(
    items: Sequence[Item], config: DigestConfig, sources: Mapping[str, Source]
) -> list[Section]:
    """One section holding everything, in rank order."""
    if not items:
        return []
    return [Section(title=config.title, items=tuple(items), key="all")]


def group_by_source(
    items: Sequence[Item], config: DigestConfig, sources: Mapping[str, Source]
) -> list[Section]:
    """One section per source, sources ordered by their best item."""
    by: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by.setdefault(item.entry.source, []).append(i)
    groups = [
        (sources[name].label if name in sources else name, members, (), False)
        for name, members in by.items()
    ]
    return _sections_from_groups(items, groups)


def group_by_topic(
    items: Sequence[Item], config: DigestConfig, sources: Mapping[str, Source]
) -> list[Section]:
    """Configured topics only; whatever matches none goes to "Other"."""
    texts = [_item_text(i) for i in items]
    groups = group_texts(
        texts, topics=config.topics, max_groups=len(config.topics) + 1, min_auto=len(texts) + 1
    )
    return _sections_from_groups(
        items,
        [
            (g.label, g.members, g.summary_terms, False)
            if g.topic
            else (OTHER, g.members, (), False)
            for g in groups
        ],
    )


def group_auto(
    items: Sequence[Item], config: DigestConfig, sources: Mapping[str, Source]
) -> list[Section]:
    """Configured topics first, then automatic topic sections of the rest; what belongs
    to no topic goes to a section named by its source's title (``sources``, when the
    feed or the configuration gives one; never an internal name) when several such items
    come from one source, else to "Other"."""
    texts = [_item_text(i) for i in items]
    groups = group_texts(
        texts,
        topics=config.topics,
        max_groups=config.max_sections,
        sources=[i.entry.source for i in items],
        weights=[i.score for i in items],
        source_titles={name: s.title for name, s in sources.items() if s.title},
        paper_sources=_paper_sources(items),
    )
    return _sections_from_groups(
        items,
        [(g.label, g.members, g.summary_terms, g.source is not None) for g in groups],
    )


GROUPERS: dict[str, Grouper] = {
    "auto": group_auto,
    "topic": group_by_topic,
    "source": group_by_source,
    "none": group_none,
}


def build_digest(
    entries: Sequence[Entry],
    *,
    now: datetime,
    config: DigestConfig,
    preferences: Preferences = EVERYONE,
    sources: Mapping[str, Source] | None = None,
    grouper: Grouper | None = None,
) -> Digest:
    """Build a digest from entries: merge duplicates, rank, keep ``max_items``, group into
    sections (ranked within each), and write a summary per item (``item_summary``).
    ``config`` says how (``DigestConfig``); ``preferences`` are one reader's changes."""
    sources = dict(sources or {})
    entries, dropped = cap_candidates(
        entries, per_source=config.max_candidates_per_source, total=config.max_candidates
    )
    items = merge_duplicates(entries)
    weights = {name: s.weight for name, s in sources.items()}
    ranked = rank_items(
        items,
        now=now,
        settings=config.ranking,
        source_weights=weights,
        interests=preferences.interests,
    )
    if preferences.only_topics:
        ranked = _only_topics(ranked, config, preferences.only_topics)
    ranked = fair_order(ranked, config.max_items, config.ranking)
    kept = ranked[: config.max_items]
    omitted = len(ranked) - len(kept)
    kept = [replace(item, summary=item_summary(item, config.summary_chars)) for item in kept]
    group = grouper or GROUPERS[config.group_by]
    sections = group(kept, config, sources)
    used = {i.entry.source for i in kept} | {d.source for i in kept for d in i.duplicates}
    return Digest(
        name=config.name,
        title=config.title,
        description=config.description,
        link=config.link,
        generated_at=now,
        sections=tuple(sections),
        sources={n: s for n, s in sources.items() if n in used},
        omitted=omitted,
        dropped=dropped,
    )


def cap_candidates(
    entries: Sequence[Entry], *, per_source: int, total: int
) -> tuple[list[Entry], int]:
    """The newest ``per_source`` entries of each source, then the newest ``total`` of
    those, in their input order; and how many were left out. Linear but for the sort."""
    if len(entries) <= min(per_source, total):
        return list(entries), 0
    by_source: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        by_source.setdefault(entry.source, []).append(i)
    kept: list[int] = []
    for indices in by_source.values():
        indices.sort(key=lambda i: _recency(entries[i]), reverse=True)
        kept.extend(indices[:per_source])
    kept.sort(key=lambda i: _recency(entries[i]), reverse=True)
    chosen = sorted(kept[:total])
    return [entries[i] for i in chosen], len(entries) - len(chosen)


def _recency(entry: Entry) -> tuple[float, str, str]:
    when = entry.when or entry.first_seen
    return (when.timestamp() if when else float("-inf"), entry.source, entry.id)


def _only_topics(items: Sequence[Item], config: DigestConfig, only: Sequence[str]) -> list[Item]:
    topics = tuple(t for t in config.topics if t.name in only)
    if not topics:
        return list(items)
    texts = [_item_text(i) for i in items]
    groups = group_texts(texts, topics=topics, max_groups=len(topics) + 1, min_auto=len(texts) + 1)
    keep = {i for g in groups if g.topic for i in g.members}
    return [item for i, item in enumerate(items) if i in keep]
