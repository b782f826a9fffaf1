"""An explainable score for digest items: a sum of named parts.

``score = freshness + engagement + source + duplicates + interests`` where

* **freshness** = ``freshness_weight * 0.5 ** (age_hours / half_life_hours)``: 1 weight
  when just published, half after one half-life. The age is that of the item's most
  recent appearance (a paper that reaches Hacker News today is news today), counted by
  :func:`rank_items` from the newest item of the batch when that is older than ``now``: a
  digest of captures from last month still ranks them by their relative freshness
  instead of giving every item 0.00. Items with no date at all get
  ``freshness_weight * no_date_freshness`` (neutral: half).
* **engagement** = ``engagement_weight * tanh(log1p(signal) / log1p(engagement_reference))``
  where ``signal = points + upvotes + comment_weight * comments`` summed over the merged
  entries. The log gives diminishing returns and tanh bounds the part below
  ``engagement_weight``: 10 points ~0.48, 100 ~0.76, 1,000 ~0.91 of the weight. Sources
  without any signal (arXiv, blogs: ``Engagement.known`` is false) are not scored as zero:
  they get the median engagement of the items in the same batch that do have signals (in
  :func:`rank_items`), or ``unknown_engagement`` (neutral: half) when no item does.
* **source** = ``source_weight * log2(w)`` where ``w`` is the largest configured weight
  among the item's sources (default 1.0, so 0): weight 2 adds ``source_weight``, weight
  0.5 subtracts it.
* **duplicates** = ``duplicate_bonus * log2(distinct sources)``: 0 for one source, one
  bonus for two, two bonuses for four. Off (0) by default: the reader sees each source's
  own signals, not this bonus, so with it the order inside a section would not follow
  what is shown.
* **interests** = ``interest_boost`` per interest keyword found (case-insensitive, whole
  words) in a title, text or tag of any merged entry, for at most
  ``max_interest_matches`` interests.

**Fair share.** Given the number of items a digest keeps (``limit``), :func:`fair_order`
puts first the best items such that no source has more than its share
(:func:`fair_share`: ``fair_share`` times ``limit / sources``, rounded up) while another
source still has candidates; slots left over go to the best of the rest. The score is
not changed, so the order inside a section still follows it; ``digest --explain`` names
the share and the sources that reached it.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType

from newsletter.config import RankingConfig
from newsletter.models import Item

MIN_SOURCE_WEIGHT = 1 / 16

PARTS = ("freshness", "engagement", "source", "duplicates", "interests")
"""The names of the score parts, in the order they are summed and explained."""

DEFAULT_SETTINGS = RankingConfig()
"""The default weights (``[digests.ranking]`` in the configuration)."""
NO_SOURCE_WEIGHTS: Mapping[str, float] = MappingProxyType({})
"""Every source at the default weight 1.0."""


def score_item(
    item: Item,
    *,
    now: datetime,
    settings: RankingConfig = DEFAULT_SETTINGS,
    source_weights: Mapping[str, float] = NO_SOURCE_WEIGHTS,
    interests: Sequence[str] = (),
    unknown_engagement: float | None = None,
) -> tuple[float, dict[str, float]]:
    """The score of ``item`` at ``now`` and its parts, which add up to it exactly.

    ``unknown_engagement`` is the engagement fraction (0 to 1) given to an item whose
    sources carry no signal; :func:`rank_items` passes the batch median, and ``None``
    means ``settings.unknown_engagement``.
    """
    parts = {
        "freshness": _freshness(item, now, settings),
        "engagement": settings.engagement_weight * _engagement(item, settings, unknown_engagement),
        "source": _source(item, source_weights, settings),
        "duplicates": settings.duplicate_bonus * math.log2(len(item.sources) or 1),
        "interests": settings.interest_boost
        * min(len(matched_interests(item, interests)), settings.max_interest_matches),
    }
    return sum(parts.values()), parts


def rank_items(
    items: Sequence[Item],
    *,
    now: datetime,
    settings: RankingConfig = DEFAULT_SETTINGS,
    source_weights: Mapping[str, float] = NO_SOURCE_WEIGHTS,
    interests: Sequence[str] = (),
) -> list[Item]:
    """``items`` scored (``score`` and ``score_parts`` set), best first.

    Freshness is counted at ``now`` or at the newest item's time if that is earlier
    (:func:`reference_time`). Ties are broken by the most recent appearance, then by the
    primary entry's key, so the order never depends on the input order.
    """
    known = [engagement_fraction(i, settings) for i in items if i.engagement.known]
    neutral = statistics.median(known) if known else settings.unknown_engagement
    at = reference_time(items, now)
    scored = []
    for item in items:
        score, parts = score_item(
            item,
            now=at,
            settings=settings,
            source_weights=source_weights,
            interests=interests,
            unknown_engagement=neutral,
        )
        matched = tuple(matched_interests(item, interests)) if parts["interests"] else ()
        scored.append(
            replace(item, score=score, score_parts=MappingProxyType(parts), interests=matched)
        )
    scored.sort(key=lambda i: (-i.score, -_latest_timestamp(i), i.entry.key))
    return scored


def reference_time(items: Sequence[Item], now: datetime) -> datetime:
    """The time freshness is counted from: ``now``, or the newest item's time when every
    item is older (a digest of old captures): so the newest item is always fresh and the
    others are ranked by how much older they are."""
    times = [w for i in items for e in i.entries if (w := e.when) is not None]
    return min(now, max(times)) if times else now


def fair_share(limit: int, sources: int, settings: RankingConfig = DEFAULT_SETTINGS) -> int | None:
    """The most items one source may take of ``limit`` while another still has
    candidates: ``settings.fair_share`` times an equal share, rounded up (None: no cap,
    as with one source)."""
    if settings.fair_share is None or sources < 2:
        return None
    # Less a hair: 1.1 * 50 / 5 is 11.000000000000002 in floating point, and 11 is meant.
    return math.ceil(settings.fair_share * limit / sources - 1e-9)


def fair_order(
    ranked: Sequence[Item], limit: int, settings: RankingConfig = DEFAULT_SETTINGS
) -> list[Item]:
    """``ranked`` (best first) reordered so that its first ``limit`` items hold at most
    :func:`fair_share` items of each (primary) source, best first; the slots no source
    can fill within its share go to the best remaining items, then the rest follow in
    rank order."""
    share = fair_share(limit, len({i.entry.source for i in ranked}), settings)
    if share is None or len(ranked) <= limit:
        return list(ranked)
    taken: dict[str, int] = {}
    chosen: list[int] = []
    over: list[int] = []
    for n, item in enumerate(ranked):
        source = item.entry.source
        if taken.get(source, 0) < share:
            taken[source] = taken.get(source, 0) + 1
            chosen.append(n)
        else:
            over.append(n)
    # Sources with fewer candidates than their share leave slots: the best of the rest.
    first = sorted(chosen[:limit] + over[: max(0, limit - len(chosen))])
    rest = sorted(set(range(len(ranked))) - set(first))
    return [ranked[n] for n in (*first, *rest)]


def explain(item: Item) -> str:
    """A one-line breakdown, e.g. ``score 2.10 = freshness 0.90 + engagement 0.60 + ...``."""
    if not item.score_parts:
        return f"score {item.score:.2f} (not ranked)"
    names = [n for n in PARTS if n in item.score_parts]
    names += sorted(n for n in item.score_parts if n not in PARTS)
    terms = " + ".join(f"{name} {item.score_parts[name]:.2f}" for name in names)
    return f"score {item.score:.2f} = {terms}"


def visible_signal(item: Item) -> int | None:
    """The points and upvotes a reader sees next to the item (None: it shows none)."""
    e = item.engagement
    if e.points is None and e.upvotes is None:
        return None
    return (e.points or 0) + (e.upvotes or 0)


def out_of_order(items: Sequence[Item]) -> list[str]:
    """For each item ranked above the next one although it shows fewer points or upvotes,
    why: the score parts that put it there (``digest --explain``), e.g. ``"A" (41) above
    "B" (129): freshness +0.80, engagement -0.11``."""
    notes = []
    for upper, lower in pairwise(items):
        up, low = visible_signal(upper), visible_signal(lower)
        if up is None or low is None or up >= low:
            continue
        names = [n for n in PARTS if n in upper.score_parts or n in lower.score_parts]
        diffs = [(n, upper.score_parts.get(n, 0.0) - lower.score_parts.get(n, 0.0)) for n in names]
        why = ", ".join(f"{n} {d:+.2f}" for n, d in diffs if abs(d) >= 0.005)
        notes.append(
            f'"{upper.entry.title[:40]}" ({up}) above "{lower.entry.title[:40]}" ({low}): '
            + (why or "equal scores, the newer first")
        )
    return notes


def engagement_fraction(item: Item, settings: RankingConfig = DEFAULT_SETTINGS) -> float:
    """The item's engagement on a 0-1 scale: log-scaled, saturating (0 without signals)."""
    e = item.engagement
    signal = (e.points or 0) + (e.upvotes or 0) + settings.comment_weight * (e.comments or 0)
    if signal <= 0:
        return 0.0
    return math.tanh(math.log1p(signal) / math.log1p(max(settings.engagement_reference, 1.0)))


def matched_interests(item: Item, interests: Sequence[str]) -> list[str]:
    """The interests found in the item as whole words, ignoring case, in given order."""
    if not interests:
        return []
    haystack = "\n".join(
        part for e in item.entries for part in (e.title, e.text, " ".join(e.tags)) if part
    )
    # "Rust" and "rust" are one interest: keep the first spelling.
    unique: dict[str, str] = {}
    for raw in interests:
        unique.setdefault(raw.strip().casefold(), raw.strip())
    return [i for i in unique.values() if i and _interest_re(i).search(haystack)]


@lru_cache(maxsize=256)
def _interest_re(interest: str) -> re.Pattern[str]:
    # Words of a phrase may be joined by spaces or hyphens: "test time" finds "test-time".
    words = [re.escape(w) for w in re.split(r"[\s\-]+", interest) if w]
    return re.compile(r"(?<!\w)" + r"[\s\-]+".join(words) + r"(?!\w)", re.IGNORECASE)


def _engagement(item: Item, settings: RankingConfig, unknown: float | None) -> float:
    if item.engagement.known:
        return engagement_fraction(item, settings)
    # No signal is not a bad signal: arXiv and blogs would otherwise always lose to HN.
    return settings.unknown_engagement if unknown is None else unknown


def _freshness(item: Item, now: datetime, settings: RankingConfig) -> float:
    times = [w for e in item.entries if (w := e.when) is not None]
    if not times:
        return settings.freshness_weight * settings.no_date_freshness
    # A date in the future (clock skew) counts as just published.
    age_hours = max((now - max(times)).total_seconds() / 3600, 0.0)
    return settings.freshness_weight * math.pow(0.5, age_hours / settings.half_life_hours)


def _source(item: Item, weights: Mapping[str, float], settings: RankingConfig) -> float:
    weight = max(weights.get(s, 1.0) for s in item.sources)
    return settings.source_weight * math.log2(max(weight, MIN_SOURCE_WEIGHT))


def _latest_timestamp(item: Item) -> float:
    times = [w for e in item.entries if (w := e.when) is not None]
    return max(times).timestamp() if times else -math.inf
