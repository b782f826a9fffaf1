"""TF-IDF document vectors on numpy and scipy.sparse.

:func:`tfidf_vectors` computes what scikit-learn's ``TfidfVectorizer`` computes with a
callable ``analyzer``, ``sublinear_tf=True`` and its defaults otherwise (``smooth_idf``,
``norm="l2"``): the same matrix, entry for entry and bit for bit, with the same columns in
the same order (``tests/summarize/test_vectorize.py`` compares the two). The summarize
stage needs nothing else of scikit-learn, which takes most of a second to import.

For a document ``d`` and a term ``t`` of ``n`` documents, ``df(t)`` of which hold ``t``:

* ``tf = 1 + log(count of t in d)`` (sublinear: a word repeated through one text does
  not dominate it);
* ``idf = 1 + log((1 + n) / (1 + df(t)))`` (smoothed, as if one more document held
  every term);
* each row ``tf * idf`` is divided by its Euclidean norm.

Columns are the terms in alphabetical order; terms held by fewer than ``min_df`` or more
than ``max_df`` documents are left out (an ``int`` is a count, a ``float`` a fraction of
``n``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy import sparse

from newsletter.errors import EmptyVocabularyError


def tfidf_vectors(
    docs: Sequence[str],
    analyzer: Callable[[str], Iterable[str]],
    *,
    min_df: int | float = 1,
    max_df: int | float = 1.0,
    dtype: type[np.floating] = np.float64,
) -> tuple[sparse.csr_matrix, list[str]]:
    """Return the L2-normalized TF-IDF rows of ``docs`` and the column terms.

    ``analyzer`` turns a document into its terms. Raises :class:`EmptyVocabularyError`
    when no term is left (no document has one, or none is within ``min_df``/``max_df``).
    """
    vocabulary: dict[str, int] = {}
    indices: list[int] = []
    counts: list[int] = []
    indptr = [0]
    for doc in docs:
        # A new term's column is the next number, in the order terms first appear.
        row = sorted(
            (vocabulary.setdefault(term, len(vocabulary)), count)
            for term, count in Counter(analyzer(doc)).items()
        )
        # Each row's entries in that order: the order scikit-learn keeps them in, and
        # the order the norm adds them up.
        indices += [column for column, _ in row]
        counts += [count for _, count in row]
        indptr.append(len(indices))
    n = len(docs)
    # Column numbers in order of first appearance; int32, as scikit-learn's below 2**31
    # entries (any digest is far below that).
    first_seen = np.asarray(indices, dtype=np.int32)
    df = np.bincount(first_seen, minlength=len(vocabulary))
    low = min_df if isinstance(min_df, int) else min_df * n
    high = max_df if isinstance(max_df, int) else max_df * n
    kept = np.flatnonzero((df >= low) & (df <= high))
    if len(kept) == 0:
        raise EmptyVocabularyError("no term left: every document is empty or only stop words")
    words = list(vocabulary)
    terms = sorted(words[i] for i in kept.tolist())
    column_of = np.full(len(vocabulary), -1, dtype=np.int32)
    column_of[[vocabulary[t] for t in terms]] = np.arange(len(terms), dtype=np.int32)

    keep = column_of[first_seen] >= 0
    columns = column_of[first_seen[keep]]
    row_of = np.repeat(np.arange(n), np.diff(indptr))[keep]
    row_lengths = np.bincount(row_of, minlength=n)
    row_starts = np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int32)

    # The arithmetic below is scikit-learn's, operation for operation and in ``dtype``,
    # so that every value comes out the same.
    data = np.asarray(counts, dtype=dtype)[keep]
    np.log(data, out=data)
    data += 1.0
    df_kept = np.empty(len(terms), dtype=dtype)
    df_kept[columns] = df[first_seen[keep]]
    df_kept += 1.0
    idf = np.full_like(df_kept, fill_value=n + 1, dtype=dtype)
    idf /= df_kept
    np.log(idf, out=idf)
    idf += 1.0
    data *= idf[columns]

    shape = (n, len(terms))
    # Each row's squares, added up in order in double precision (a sparse product with a
    # vector of ones adds each row's entries one after another), then each value divided
    # by the row's norm in double precision: as scikit-learn's ``normalize`` does.
    squares = sparse.csr_matrix(((data * data).astype(np.float64), columns, row_starts), shape)
    norms = np.sqrt(squares @ np.ones(len(terms)))
    norms[norms == 0.0] = 1.0
    data = (data.astype(np.float64) / np.repeat(norms, row_lengths)).astype(dtype)
    return sparse.csr_matrix((data, columns, row_starts), shape=shape), terms
