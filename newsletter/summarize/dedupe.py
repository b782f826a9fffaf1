"""Merge entries that tell the same story into one :class:`~newsletter.models.Item`.

Two kinds of evidence join entries, and union-find closes over all of them:

* **Exact keys** -- the same canonical link; the same globally unique id (a URL, URN or
  tag URI used as guid by two sources); the same arXiv id without its version (from
  ``arxiv.org/abs|pdf|html/ID``, ``huggingface.co/papers/ID``, ``alphaxiv.org/abs/ID``,
  ``10.48550/arXiv.ID`` or an ``arXiv:ID`` mention); the same DOI.
* **Near duplicates** -- TF-IDF cosine similarity, computed for the whole batch with one
  sparse matrix product (no Python loop over pairs), on two views of each entry:

  - the cleaned *title* (``[pdf]``, ``(2024)``, ``Show HN:`` and similar noise removed),
    unigrams and bigrams; two titles at or above :data:`TITLE_THRESHOLD` are one story;
  - the title plus the first :data:`CONTENT_WORDS` words of the text, for entries that
    have at least :data:`MIN_CONTENT_WORDS` words of text (a Hacker News entry whose text
    is "Comments" has no content view); at or above :data:`CONTENT_THRESHOLD` they are
    one story. This catches a news site's rewritten headline over a paraphrased abstract.

  Three guards keep look-alike titles of different work apart: titles whose numbers
  differ never match ("Part I" / "Part II", "FlashAttention" / "FlashAttention-2"); two
  entries that both have text match by title only if their texts agree at least
  :data:`CONTENT_AGREEMENT`; an entry without text joins by title only its closest match.

Identifiers found only in the *text* are trusted when the text names exactly one of
them: a blog post that cites three papers is about none of them in particular.

Within a merged group the primary entry is the richest one: the most words of text,
counted up to :data:`RICH_TEXT_WORDS` (past that every entry is rich enough), then the
earliest ``when`` (the original beats the retelling), then source name and id. The other
entries become ``Item.duplicates``, earliest first; an entry given twice (same source and
id) is kept once. Items come out newest first, then by
the primary's key, whatever the input order.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
from scipy import sparse

from newsletter.models import Entry, Item
from newsletter.summarize.vectorize import tfidf_vectors

TITLE_THRESHOLD = 0.75
"""Title cosine at or above which two entries are one story. Measured on the labeled set
in ``tests/fixtures/dedupe`` (``bench/dedupe_quality.py`` prints a sweep): the weakest
true pair that only the title can join scores 0.85 ("... Long-Context Large Language
Models" / "... Long-Context LLMs"; "[pdf]", "(2024)" and case variants score 1.0), the
strongest look-alike 0.78 ("Scaling Laws: Part I" / "Part II", rejected because the
numbers differ) and then 0.70 ("A Survey of Large Language Models" / "Large Language
Models: A Survey", rejected because the abstracts differ). Other look-alikes stay below
0.55: IDF makes the words that differ weigh most. 0.75 sits in that gap."""

CONTENT_THRESHOLD = 0.5
"""Title-plus-start-of-text cosine at or above which two entries are one story. On the
labeled set a rewritten headline over the same or a lightly edited abstract scores
0.70-1.0, while different papers of the same field, even with similar titles, score at
most 0.28. 0.5 sits in the middle of that gap."""

CONTENT_WORDS = 60
"""How many words of text go into the content view: the start carries the claim."""

MIN_CONTENT_WORDS = 12
"""Entries with less text than this have no content view (they would match on title)."""

CONTENT_AGREEMENT = 0.35
"""When two entries match by title and both have text, their content views must agree at
least this much: the same title over unrelated abstracts is two different works (the
look-alikes of the labeled set score at most 0.28)."""

RICH_TEXT_WORDS = 120
"""Text length, in words, past which an entry counts as fully rich when picking the
primary entry of a group; among rich entries the earliest wins."""

_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in"}
    | {"into", "is", "it", "its", "of", "on", "or", "our", "that", "the", "their", "this"}
    | {"to", "we", "with", "via", "using", "towards", "toward", "new", "how", "why", "what"}
)

_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_LINK_RE = re.compile(  # in a link or an entry id
    r"(?:arxiv\.org/(?:abs|pdf|html|format)/|huggingface\.co/papers/"
    r"|alphaxiv\.org/(?:abs|overview)/|10\.48550/arxiv\.|(?:^|\s)(?:oai:arxiv\.org:|arxiv:))"
    rf"({_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?",
    re.IGNORECASE,
)
_ARXIV_TEXT_RE = re.compile(
    r"(?:\barxiv\s*:\s*|arxiv\.org/(?:abs|pdf|html)/|10\.48550/arxiv\.)"
    rf"({_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?",
    re.IGNORECASE,
)
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)", re.IGNORECASE)
_DOI_TRAILING = ".,;:)]}"
_TITLE_NOISE_RE = re.compile(
    r"\[(?:pdf|video|audio|paper|html)\]|\((?:19|20)\d\d\)|\[(?:19|20)\d\d\]"
    r"|^\s*(?:show|ask|tell|launch)\s+hn\s*:|^\s*\[?arxiv\]?\s*:?\s*(?=\S)",
    re.IGNORECASE,
)
_TOKEN_RE = re.compile(r"[a-z]+|\d+")
_WORD_RE = re.compile(r"[a-z]+")  # numbers in abstracts are results, not identity
_ROMAN = frozenset({"ii", "iii", "iv", "vi", "vii", "viii", "ix"})
_TAG_RE = re.compile(r"<[^>]*>")
_GLOBAL_ID_RE = re.compile(r"^(?:[a-z][a-z0-9+.\-]*://\S+\.\S+|urn:\S+:\S+|tag:\S+,\S+:\S+)$", re.I)
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def merge_duplicates(
    entries: Sequence[Entry],
    *,
    near_threshold: float = TITLE_THRESHOLD,
    content_threshold: float = CONTENT_THRESHOLD,
) -> list[Item]:
    """Group ``entries`` that tell the same story into items, one per story.

    ``near_threshold`` is the title cosine similarity that makes two entries one story
    (:data:`TITLE_THRESHOLD`); ``content_threshold`` the same for title plus start of text
    (:data:`CONTENT_THRESHOLD`). A threshold above 1 turns that view off. The result does
    not depend on the order of ``entries``.
    """
    # Sorting first makes vectorizer vocabularies and union-find roots order-independent.
    ordered = sorted(entries, key=_entry_order)
    n = len(ordered)
    if n == 0:
        return []
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first_with_key: dict[str, int] = {}
    for i, entry in enumerate(ordered):
        for key in exact_keys(entry):
            j = first_with_key.setdefault(key, i)
            if j != i:
                union(i, j)

    titles = [normalize_title(e.title) for e in ordered]
    contents = [_content_view(title, e.text) for title, e in zip(titles, ordered, strict=True)]
    for i, j in _near_pairs(titles, contents, near_threshold, content_threshold):
        union(i, j)

    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(ordered):
        groups.setdefault(find(i), []).append(entry)
    items = [_make_item(group) for group in groups.values()]
    items.sort(key=lambda item: (_newest_first(item.entry), item.entry.key))
    return items


def exact_keys(entry: Entry) -> set[str]:
    """The identity keys of ``entry``: two entries sharing any key are the same story."""
    keys = {f"entry:{entry.key}"}
    link = link_key(entry.link)
    if "/" in link:
        # A bare home page ("https://example.org/") is where a feed points when it has no
        # link for the entry: it says nothing about which story this is.
        keys.add(f"link:{link}")
    entry_id = entry.id.strip()
    if _GLOBAL_ID_RE.match(entry_id):
        # Short ids ("1", a row number) collide across sources by accident; URLs, URNs and
        # tag URIs are meant to be globally unique.
        keys.add(f"id:{link_key(entry_id) or entry_id}")
    keys.update(f"arxiv:{a}" for a in arxiv_ids(entry))
    keys.update(f"doi:{d}" for d in dois(entry))
    return keys


def arxiv_ids(entry: Entry) -> set[str]:
    """arXiv ids (lowercase, without version) from the link or id, else one named in text."""
    found = {m.group(1).lower() for m in _ARXIV_LINK_RE.finditer(f"{entry.link} {entry.id}")}
    if found:
        return found
    plain = _plain(entry)
    if "arxiv" not in plain.lower():
        return set()  # a cheap test spares the regex on most texts
    in_text = {m.group(1).lower() for m in _ARXIV_TEXT_RE.finditer(plain)}
    return in_text if len(in_text) == 1 else set()


def dois(entry: Entry) -> set[str]:
    """DOIs (lowercase) from the link, or else the one DOI named in the text."""
    found = {_clean_doi(m.group(1)) for m in _DOI_RE.finditer(entry.link)}
    plain = _plain(entry)
    if not found and "10." in plain:
        in_text = {_clean_doi(m.group(1)) for m in _DOI_RE.finditer(plain)}
        found = in_text if len(in_text) == 1 else set()
    # arXiv's own DOIs are arXiv ids, already a key of their own.
    return {d for d in found if not d.startswith("10.48550/arxiv.")}


def link_key(link: str) -> str:
    """A matching key for ``link``: without scheme, ``www.``, fragment or trailing slash,
    host lowercased. Entry links are already canonical (``normalize.canonical_link``
    removed tracking parameters); this also equates http/https and www/no-www copies."""
    link = link.strip()
    if not link:
        return ""
    link = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", link, flags=re.IGNORECASE)
    link = link.split("#", 1)[0]
    host, sep, rest = link.partition("/")
    host = host.lower().removeprefix("www.")
    return (host + sep + rest).rstrip("/")


def normalize_title(title: str) -> str:
    """A title reduced to what identifies the story: lowercase words, noise removed."""
    title = html.unescape(_TAG_RE.sub(" ", title))
    title = _TITLE_NOISE_RE.sub(" ", title)
    return " ".join(_tokens(title))


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in _STOP_WORDS]


def _content_view(title: str, text: str) -> str:
    # Only the start matters, and tokenizing whole articles would cost most of the time.
    head = html.unescape(_TAG_RE.sub(" ", text[: CONTENT_WORDS * 12]))
    words = _WORD_RE.findall(head.lower())
    words = [w for w in words if w not in _STOP_WORDS][:CONTENT_WORDS]
    if len(words) < MIN_CONTENT_WORDS:
        return ""
    return f"{title} {' '.join(words)}"


def _near_pairs(
    titles: Sequence[str], contents: Sequence[str], title_min: float, content_min: float
) -> Iterator[tuple[int, int]]:
    """Index pairs that are near duplicates by title or by title plus start of text."""
    has_content = [bool(c) for c in contents]
    content_sims: dict[tuple[int, int], float] = {}
    for i, j, sim in _similar(_tfidf(contents, bigrams=False), min(content_min, CONTENT_AGREEMENT)):
        content_sims[i, j] = sim
        if sim >= content_min - 1e-9:
            yield i, j
    title_pairs = list(_similar(_tfidf(titles, bigrams=True), title_min))
    best = [0.0] * len(titles)
    for i, j, sim in title_pairs:
        best[i] = max(best[i], sim)
        best[j] = max(best[j], sim)
    marks = [_number_marks(t) for t in titles]
    for i, j, sim in title_pairs:
        if marks[i] != marks[j]:
            continue  # "Part I" / "Part II", "FlashAttention" / "FlashAttention-2"
        if has_content[i] and has_content[j]:
            # Both have text: the same title over different abstracts is different work
            # (two surveys both called "... Large Language Models: A Survey").
            if content_sims.get((i, j), 0.0) < CONTENT_AGREEMENT - 1e-9:
                continue
        # A title-only entry joins only its closest match, so one vague headline cannot
        # chain two look-alike papers together.
        elif not all(has_content[k] or sim >= best[k] - 1e-9 for k in (i, j)):
            continue
        yield i, j


def _tfidf(docs: Sequence[str], *, bigrams: bool) -> sparse.csr_matrix | None:
    if sum(1 for d in docs if d) < 2:
        return None
    # Word order tells titles apart ("layer normalization" / "normalization layer");
    # in abstracts the words alone are evidence enough, at half the cost.
    prepared = [_with_bigrams(d) for d in docs] if bigrams else docs
    return tfidf_vectors(prepared, str.split, dtype=np.float64)[0]


def _similar(
    matrix: sparse.csr_matrix | None, threshold: float
) -> Iterator[tuple[int, int, float]]:
    """Row pairs ``i < j`` of L2-normalized ``matrix`` with cosine at least ``threshold``."""
    if matrix is None or threshold > 1.0:
        return
    # One sparse product finds every pair sharing a term; the rest are never touched.
    sims = (matrix @ matrix.T).tocoo()
    keep = (sims.row < sims.col) & (sims.data >= threshold - 1e-9)
    yield from zip(
        sims.row[keep].tolist(), sims.col[keep].tolist(), sims.data[keep].tolist(), strict=True
    )


def _number_marks(title: str) -> frozenset[str]:
    words = title.split()
    marks = {w for w in words if w.isdigit() or w in _ROMAN}
    marks.update(b for a, b in pairwise(words) if a == "part" and b == "i")
    return frozenset(marks)


def _with_bigrams(doc: str) -> str:
    words = doc.split()
    return " ".join([*words, *(f"{a}_{b}" for a, b in pairwise(words))])


def _make_item(group: list[Entry]) -> Item:
    # The same entry read twice (two fetches) is one appearance, not a duplicate story.
    unique = {e.key: e for e in sorted(group, key=_richness_order, reverse=True)}
    primary = min(unique.values(), key=_richness_order)
    rest = sorted((e for e in unique.values() if e is not primary), key=_entry_order)
    return Item(entry=primary, duplicates=tuple(rest))


def _richness_order(entry: Entry) -> tuple[int, datetime, str, str]:
    words = min(len(entry.text.split()), RICH_TEXT_WORDS)
    return (-words, entry.when or _FAR_FUTURE, entry.source, entry.id)


def _entry_order(entry: Entry) -> tuple[datetime, str, str, str]:
    return (entry.when or _FAR_FUTURE, entry.source, entry.id, entry.link)


def _newest_first(entry: Entry) -> float:
    when = entry.when
    return -when.timestamp() if when else float("inf")


def _plain(entry: Entry) -> str:
    return html.unescape(_TAG_RE.sub(" ", f"{entry.title} {entry.text}"))


def _clean_doi(doi: str) -> str:
    return doi.rstrip(_DOI_TRAILING).lower()
