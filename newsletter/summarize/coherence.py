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

import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from newsletter.summarize.labels import HEAD_CHARS

_WORD = re.compile(r"[^\W_][\w'’]*")

FIT = 0.3
"""An item without the label phrase stays when its similarity to the rest of the
section is at least this share of the median similarity of the items with it. Chosen on
the dev file only (``bench/quality.py``): at 0.3, 9 of its 1,000 papers leave their
section and NMI is 0.590 (0.592 keeping all); at 0.5, 80 leave and NMI falls to 0.570.
The outliers a reader notices are far below it (a political link among language-model
papers: 0.015 against a median of 0.27)."""


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


def _word_pattern(word: str) -> str:
    """A word, its plural or singular: "Galaxies" matches "galaxy" and "galaxies"."""
    lower = word.lower()
    if lower.endswith("ies") and len(lower) > 4:
        return re.escape(lower[:-3]) + "(?:y|ies)"
    if lower.endswith("y") and len(lower) > 3:
        return re.escape(lower[:-1]) + "(?:y|ies)"
    if lower.endswith("s") and not lower.endswith("ss") and len(lower) > 3:
        lower = lower[:-1]
    return re.escape(lower) + "(?:e?s)?"


def phrase_pattern(label: str) -> re.Pattern[str]:
    """Return a pattern finding a label's first phrase in a text, in any case and
    number: ``phrase_pattern("Black Holes & Gravity")`` finds "black hole" and
    "Black-Holes"."""
    first = label.split(" & ")[0]
    words = [_word_pattern(w) for w in _WORD.findall(first)]
    return re.compile(r"(?<!\w)" + r"[\s\-]+".join(words) + r"(?!\w)", re.IGNORECASE)


def belonging(
    rows: sparse.csr_matrix,
    label: str,
    texts: Sequence[str],
    origins: Sequence[str] | None = None,
) -> list[int]:
    """Return the positions (rows of one section, with each item's ``texts`` and source
    ``origins`` when known) of the items that belong under ``label``: those holding its
    first phrase, and those as close to the rest of the section as the items holding it
    (:data:`FIT`), unless no item of their source there holds the phrase and their
    source's items there are on average further from the rest than the median item
    holding it: four NASA news items in a section of Daring Fireball's links named
    "Apple" are near it only by chance, and so are five Daring Fireball links in a
    section named "International Space Station" by two NASA items, however many.

    Only the first phrase counts: the second of "Apple & International Space Station"
    may be the name of the very items that do not belong with the first. A text is
    searched for it in its first :data:`HEAD_CHARS` characters, as labels read it.
    """
    n = len(texts)
    pattern = phrase_pattern(label)
    holds = np.array([pattern.search(t[:HEAD_CHARS]) is not None for t in texts], dtype=bool)
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
        strangers = {s for s, c in count.items() if s not in holding and total[s] / c < middle}
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
