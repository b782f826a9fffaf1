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
fullest media (:func:`media_richness`: a Hugging Face paper over its arXiv listing), then
the earliest ``when`` (the original beats the retelling), then source name and id. Every
entry keeps its own engagement and comments link, so ``Item.signals`` can show each
source's votes and discussion next to that source's name. The other
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

PAIR_BUDGET = 20_000_000
"""Candidate products one similarity search may cost (the sum, over the terms kept, of
their document counts squared). Past it the most common terms propose no pair (see
``_similar``): they are too common to tell stories apart, and pairing every text that has
them is what made the work quadratic. Collections up to a few thousand texts stay under it
and are compared exactly."""

CHUNK_WORK = 1_000_000
"""Candidate products computed at once: bounds the memory of one block (tens of MB)."""

MAX_NEIGHBORS = 50
"""Candidate pairs kept per text, the most similar first: a story told more than this
many times still merges, through the chains union-find closes."""

_CHUNK = 2048
"""Rows compared at once: bounds the memory of one candidate block."""

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
_TAG_RE = re.compile(r"<[^<>]*>")  # no "<" inside: an unclosed "<" cannot scan to the end
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
    content_rows = _tfidf(contents, bigrams=False)
    for i, j, _ in _similar(content_rows, content_min):
        yield i, j
    title_pairs = list(_similar(_tfidf(titles, bigrams=True), title_min))
    if not title_pairs:
        return
    best = [0.0] * len(titles)
    for i, j, sim in title_pairs:
        best[i] = max(best[i], sim)
        best[j] = max(best[j], sim)
    marks = [_number_marks(t) for t in titles]
    both = [(i, j) for i, j, _ in title_pairs if has_content[i] and has_content[j]]
    agreement = dict(zip(both, _pair_cosines(content_rows, both).tolist(), strict=True))
    for i, j, sim in title_pairs:
        if marks[i] != marks[j]:
            continue  # "Part I" / "Part II", "FlashAttention" / "FlashAttention-2"
        if has_content[i] and has_content[j]:
            # Both have text: the same title over different abstracts is different work
            # (two surveys both called "... Large Language Models: A Survey").
            if agreement[i, j] < CONTENT_AGREEMENT - 1e-9:
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


def _pair_cosines(matrix: sparse.csr_matrix | None, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """The cosine of each row pair of L2-normalized ``matrix`` (0 without a matrix)."""
    if matrix is None or not pairs:
        return np.zeros(len(pairs))
    index = np.asarray(pairs, dtype=np.int64)
    out = np.empty(len(index))
    for start in range(0, len(index), _CHUNK):
        part = index[start : start + _CHUNK]
        products = matrix[part[:, 0]].multiply(matrix[part[:, 1]])
        out[start : start + _CHUNK] = np.asarray(products.sum(axis=1)).ravel()
    return out


def _similar(
    matrix: sparse.csr_matrix | None, threshold: float
) -> Iterator[tuple[int, int, float]]:
    """Row pairs ``i < j`` of L2-normalized ``matrix`` with cosine at least ``threshold``.

    Never a dense n x n product, whatever the rows (issue 11, finding 1: 100k titles
    sharing one word asked for 74.5 GiB). Candidates come from the terms that
    discriminate: when the pairs all terms propose exceed :data:`PAIR_BUDGET`, the most
    common terms propose none (``_common_terms``), which bounds the whole search. A
    candidate is kept only if it can still reach ``threshold`` once the common terms
    are counted (their share of the cosine is at most the product of the two rows' norms
    over those terms), at most :data:`MAX_NEIGHBORS` per row, most similar first; its
    cosine is then computed exactly. Rows with exactly the same terms are paired by
    hashing (each with the first of them), so identical texts made only of common words
    still match. What this can miss: two different texts whose only shared terms are all
    common and still reach ``threshold`` -- texts made almost entirely of the collection's
    most frequent words, which say nothing about which story they tell.
    """
    if matrix is None or threshold > 1.0:
        return
    n = matrix.shape[0]
    found: set[tuple[int, int]] = set()
    for i, j in _identical_rows(matrix):
        found.add((i, j))
        yield i, j, 1.0
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    common = _common_terms(df)
    rare = matrix
    common_norm = np.zeros(n)
    if common.any():
        coo = matrix.tocoo()
        is_common = common[coo.col]
        common_norm = np.sqrt(np.bincount(coo.row[is_common], coo.data[is_common] ** 2, n))
        rare = sparse.csr_matrix(
            (coo.data[~is_common], (coo.row[~is_common], coo.col[~is_common])),
            shape=matrix.shape,
        )
    rare_t = sparse.csr_matrix(rare.T)
    # Each row costs the sum of its terms' document counts: chunks of bounded work keep
    # one block's memory bounded whatever the rows hold.
    work = np.bincount(rare.tocoo().row, df[rare.indices], n)
    for start, stop in _chunks(work):
        block = (rare[start:stop] @ rare_t).tocoo()
        rows = block.row.astype(np.int64) + start
        cols = block.col.astype(np.int64)
        partial = block.data
        keep = (rows < cols) & (partial + common_norm[rows] * common_norm[cols] >= threshold - 1e-9)
        rows, cols, partial = rows[keep], cols[keep], partial[keep]
        if len(rows) == 0:
            continue
        # At most MAX_NEIGHBORS candidates per row, the most similar first.
        order = np.lexsort((cols, -partial, rows))
        rows, cols = rows[order], cols[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
        rows, cols = rows[rank < MAX_NEIGHBORS], cols[rank < MAX_NEIGHBORS]
        pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
        sims = _pair_cosines(matrix, pairs)
        for (i, j), sim in zip(pairs, sims.tolist(), strict=True):
            if sim >= threshold - 1e-9 and (i, j) not in found:
                yield i, j, sim


def _common_terms(df: np.ndarray) -> np.ndarray:
    """The terms too common to propose pairs: the most frequent, dropped until the pairs
    the others propose (the sum of their document counts squared) fit
    :data:`PAIR_BUDGET`. Small collections keep every term (the exact product)."""
    squares = df.astype(np.float64) ** 2
    common = np.zeros(len(df), dtype=bool)
    if squares.sum() <= PAIR_BUDGET:
        return common
    order = np.argsort(df, kind="stable")  # least common first
    within = np.cumsum(squares[order]) <= PAIR_BUDGET
    common[order[~within]] = True
    return common


def _chunks(work: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges of at most :data:`CHUNK_WORK` work (at least one row)."""
    n = len(work)
    start = 0
    total = np.concatenate(([0.0], np.cumsum(work, dtype=np.float64)))
    while start < n:
        stop = int(np.searchsorted(total, total[start] + CHUNK_WORK, side="right")) - 1
        stop = min(n, max(stop, start + 1), start + _CHUNK)
        yield start, stop
        start = stop


def _identical_rows(matrix: sparse.csr_matrix) -> Iterator[tuple[int, int]]:
    """``(first, other)`` for rows with exactly the same non-empty vector."""
    first: dict[bytes, int] = {}
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for row in range(matrix.shape[0]):
        lo, hi = indptr[row], indptr[row + 1]
        if lo == hi:
            continue
        key = indices[lo:hi].tobytes() + data[lo:hi].round(9).tobytes()
        seen = first.setdefault(key, row)
        if seen != row:
            yield seen, row


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


def _richness_order(entry: Entry) -> tuple[int, int, datetime, str, str]:
    words = min(len(entry.text.split()), RICH_TEXT_WORDS)
    return (-words, -media_richness(entry), entry.when or _FAR_FUTURE, entry.source, entry.id)


def media_richness(entry: Entry) -> int:
    """How much of a card ``entry``'s media fills: one point per field given (each link
    counts). Between equally rich texts the fuller card is the primary entry, so a paper
    seen on Hugging Face and in an arXiv listing is told with HF's thumbnail, summary
    and links, and its title links to the page whose upvotes and comments it shows."""
    media = entry.media
    if media is None:
        return 0
    fields = (media.image, media.organization, media.ai_summary, media.authors, media.keywords)
    return sum(1 for f in fields if f) + len(media.links)


def _entry_order(entry: Entry) -> tuple[datetime, str, str, str]:
    return (entry.when or _FAR_FUTURE, entry.source, entry.id, entry.link)


def _newest_first(entry: Entry) -> float:
    when = entry.when
    return -when.timestamp() if when else float("inf")


def _plain(entry: Entry) -> str:
    return html.unescape(_TAG_RE.sub(" ", f"{entry.title} {entry.text}"))


def _clean_doi(doi: str) -> str:
    return doi.rstrip(_DOI_TRAILING).lower()
