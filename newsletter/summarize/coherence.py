"""Which items belong under a section's name, and where the others go.

The similarity graph puts every item somewhere, so a topic section also collects items
that were only nearer to it than to anything else: four NASA news items inside a
section named "Apple", a political link among papers on language models. An item stays
in its section when it holds the section's label phrase or when it is about as close to
the rest of the section as the items holding the phrase are (:func:`belonging`); the
others go to a fallback: a section named by their source when several of them come
from one source (:func:`by_source`), else "Other".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from newsletter.summarize.labels import label_words

FIT = 0.3
"""An item without the label phrase stays when its similarity to the rest of the
section is at least this share of the median similarity of the items with it."""


def centroid_similarity(rows: sparse.csr_matrix) -> np.ndarray:
    """Return each row's cosine similarity to the sum of the other rows (leave one out,
    so a small section's items are not measured against themselves)."""
    n = rows.shape[0]
    if n == 0 or rows.shape[1] == 0:
        return np.zeros(n)
    total = np.asarray(rows.sum(axis=0), dtype=np.float64).ravel()
    dots = np.asarray(rows @ total, dtype=np.float64).ravel()
    own = np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel()
    others = np.maximum(float(total @ total) - 2 * dots + own, 1e-12)
    result: np.ndarray = (dots - own) / np.sqrt(others)
    return result


def label_keys(label: str) -> list[tuple[str, ...]]:
    """Return the phrases a label is made of, folded as ``Edition.found`` keys them:
    ``"Black Hole & Gravity"`` -> ``[("black", "hole"), ("gravity",)]``."""
    return [tuple(label_words(half)) for half in label.split(" & ") if label_words(half)]


def belonging(
    rows: sparse.csr_matrix,
    label: str,
    found: Sequence[Mapping[tuple[str, ...], str]],
    origins: Sequence[str] | None = None,
) -> list[int]:
    """Return the positions (rows of one section, with each item's phrases ``found`` and
    source ``origins`` when known) of the items that belong under ``label``: those
    holding its first phrase, and those as close to the rest of the section as the items
    holding it (:data:`FIT`), unless their source is a minority of the section none of
    whose items there holds the phrase and whose items there are on average further
    from the rest than the median item holding it (four NASA news items in a section of
    Daring Fireball's links named "Apple" are near it only by chance).

    Only the first phrase counts: the second of "Apple & International Space Station"
    may be the name of the very items that do not belong with the first.
    """
    n = len(found)
    key = label_keys(label)[0]
    holds = np.array([key in f for f in found], dtype=bool)
    if holds.all() or not holds.any():
        return list(range(n))
    sims = centroid_similarity(rows)
    middle = float(np.median(sims[holds]))
    floor = FIT * middle
    strangers: set[str] = set()
    if origins is not None:
        count = Counter(origins)
        holding = {origins[p] for p in range(n) if holds[p]}
        total: dict[str, float] = {}
        for p in range(n):
            total[origins[p]] = total.get(origins[p], 0.0) + float(sims[p])
        strangers = {
            s for s, c in count.items() if s not in holding and c * 2 < n and total[s] / c < middle
        }
    return [
        p
        for p in range(n)
        if holds[p] or (sims[p] >= floor and (origins is None or origins[p] not in strangers))
    ]


def by_source(
    pool: Sequence[int], sources: Sequence[str], titles: Mapping[str, str], least: int
) -> list[tuple[str, list[int]]]:
    """Return the sections of ``pool`` (items no topic section took) named by their
    source's title: one per titled source with ``least`` items or more, biggest first."""
    found: dict[str, list[int]] = {}
    for i in pool:
        if titles.get(sources[i], "").strip():
            found.setdefault(sources[i], []).append(i)
    chosen = [(s, m) for s, m in found.items() if len(m) >= least]
    chosen.sort(key=lambda sm: (-len(sm[1]), sm[0]))
    return [(titles[s].strip(), members) for s, members in chosen]
