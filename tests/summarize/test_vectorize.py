"""The TF-IDF vectorizer gives scikit-learn's matrix, bit for bit; the copied stop words
are scikit-learn's; start-up does not import scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from newsletter.errors import EmptyVocabularyError
from newsletter.sources.parse import parse_source
from newsletter.summarize import dedupe, vectorize
from newsletter.summarize.stopwords import ENGLISH_STOP_WORDS
from newsletter.summarize.text import analyze, entry_text, tfidf_matrix
from newsletter.summarize.vectorize import tfidf_vectors

sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "bench" / "data" / "arxiv-2007-dev.jsonl"
FEEDS = ROOT / "tests" / "fixtures" / "feeds"
DEDUPE = ROOT / "tests" / "fixtures" / "dedupe" / "entries.jsonl"


def dev_texts() -> list[str]:
    with DEV.open(encoding="utf-8") as f:
        papers = [json.loads(line) for line in f if line.strip()]
    return [entry_text(p["title"], p["abstract"]) for p in papers]


def feed_entries() -> list[tuple[str, str]]:
    """(title, text) of every entry of every fixture feed."""
    out = []
    for path in sorted(FEEDS.iterdir()):
        if path.suffix in (".xml", ".json"):
            parsed = parse_source(path.read_bytes(), source=path.stem)
            out += [(e.title, e.text) for e in parsed.entries]
    return out


def dedupe_entries() -> list[tuple[str, str]]:
    with DEDUPE.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(r["title"], r.get("text", "")) for r in rows]


def assert_same(
    docs: Sequence[str],
    analyzer: Callable[[str], Iterable[str]],
    **params: object,
) -> sparse.csr_matrix:
    """Our matrix and terms are scikit-learn's: same shape, dtypes, terms in the same
    order, same entries in the same order, same values to the last bit."""
    reference = sklearn_text.TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, **params)
    expected = sparse.csr_matrix(reference.fit_transform(docs))
    dtype = params.get("dtype", np.float64)
    min_df = params.get("min_df", 1)
    max_df = params.get("max_df", 1.0)
    got, terms = tfidf_vectors(docs, analyzer, min_df=min_df, max_df=max_df, dtype=dtype)
    assert terms == list(reference.get_feature_names_out())
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert got.indices.dtype == expected.indices.dtype
    assert got.indptr.dtype == expected.indptr.dtype
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)
    return got


@pytest.mark.parametrize("min_df", [1, 2])
def test_grouping_matrix_is_sklearns_on_the_dev_set(min_df: int) -> None:
    # As text.tfidf_matrix calls it: texts sorted, analyze, float32, max_df 0.5.
    texts = sorted(dev_texts())
    got = assert_same(texts, analyze, min_df=min_df, max_df=0.5, dtype=np.float32)
    assert got.shape[0] == 1000 and got.shape[1] > 1000


@pytest.mark.parametrize("size", [1, 2, 3, 4, 12, 50])
def test_grouping_matrix_is_sklearns_on_small_collections(size: int) -> None:
    texts = sorted(dev_texts()[:size])
    for min_df in (1, 2):
        params = {"min_df": min_df, "max_df": 0.5 if size >= 3 else 1.0, "dtype": np.float32}
        try:
            sklearn_text.TfidfVectorizer(analyzer=analyze, **params).fit(texts)
        except ValueError:
            # scikit-learn finds no term left (or max_df below min_df): so do we.
            with pytest.raises(EmptyVocabularyError):
                tfidf_vectors(texts, analyze, **params)
            continue
        assert_same(texts, analyze, **params)


def test_grouping_matrix_is_sklearns_on_fixture_feeds() -> None:
    entries = feed_entries()
    assert len(entries) > 50
    texts = sorted(entry_text(title, text) for title, text in entries)
    for min_df in (1, 2):
        assert_same(texts, analyze, min_df=min_df, max_df=0.5, dtype=np.float32)


@pytest.mark.parametrize("load", [dedupe_entries, feed_entries])
def test_dedupe_matrices_are_sklearns(load: Callable[[], list[tuple[str, str]]]) -> None:
    # As dedupe._tfidf calls it: words split on spaces, float64, titles with bigrams.
    entries = load()
    titles = [dedupe.normalize_title(title) for title, _ in entries]
    contents = [dedupe._content_view(t, text) for t, (_, text) in zip(titles, entries, strict=True)]
    assert sum(1 for c in contents if c) > 10
    assert_same([dedupe._with_bigrams(t) for t in titles], str.split)
    assert_same(contents, str.split)


def test_tfidf_matrix_is_what_grouping_used_before() -> None:
    """text.tfidf_matrix as it was with scikit-learn: min_df 2, else 1 if nothing is left."""
    texts = sorted(dev_texts()[:40])
    rows, terms = tfidf_matrix(texts)
    reference = sklearn_text.TfidfVectorizer(
        analyzer=analyze, sublinear_tf=True, min_df=2, max_df=0.5, dtype=np.float32
    )
    expected = reference.fit_transform(texts)
    assert terms == list(reference.get_feature_names_out())
    assert (rows != expected).nnz == 0
    # Three texts: max_df 0.5 is 1.5 documents, below min_df 2, so min_df 1 it is.
    rows, terms = tfidf_matrix(texts[:3])
    reference.set_params(min_df=1)
    expected = reference.fit_transform(texts[:3])
    assert terms == list(reference.get_feature_names_out()) and len(terms) > 10
    assert (rows != expected).nnz == 0
    # Only stop words: no column at all.
    rows, terms = tfidf_matrix(["the of and", "is a"])
    assert rows.shape == (2, 0) and terms == []


def test_empty_vocabulary() -> None:
    with pytest.raises(EmptyVocabularyError):
        tfidf_vectors(["", ""], str.split)
    with pytest.raises(EmptyVocabularyError):
        tfidf_vectors([], str.split)
    # One document holds every term: min_df 2 leaves nothing.
    with pytest.raises(EmptyVocabularyError):
        tfidf_vectors(["a b", "c"], str.split, min_df=2)


def test_rows_are_unit_length_and_terms_alphabetical() -> None:
    rows, terms = tfidf_vectors(["b a a", "c b", ""], str.split)
    assert terms == ["a", "b", "c"]
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1.0, 1.0, 0.0], rtol=1e-12)
    assert isinstance(rows, sparse.csr_matrix)


def test_stop_words_are_sklearns() -> None:
    assert ENGLISH_STOP_WORDS == sklearn_text.ENGLISH_STOP_WORDS
    assert isinstance(ENGLISH_STOP_WORDS, frozenset)


def test_vectorize_does_not_need_sklearn() -> None:
    assert "sklearn" not in vectorize.__dict__


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stderr.split()[-5000:])


def test_cli_and_summarize_do_not_import_sklearn() -> None:
    modules = loaded_modules(
        "import newsletter.cli, newsletter.summarize.digest, newsletter.services.editions"
    )
    assert "newsletter.summarize.group" in modules
    assert not heavy(modules)


def test_one_off_digest_does_not_import_sklearn(tmp_path: Path) -> None:
    feed = FEEDS / "arxiv-rss-cs.AI.xml"
    code = (
        "import sys\n"
        "from newsletter.cli import main\n"
        f"sys.argv = ['newsletter', 'digest', {str(feed)!r}, '-o', {str(tmp_path / 'd.md')!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
    )
    modules = loaded_modules(code)
    assert (tmp_path / "d.md").exists()
    assert "newsletter.summarize.text" in modules
    assert not heavy(modules)


def heavy(modules: set[str]) -> set[str]:
    """scikit-learn, and the parts of scipy far heavier than scipy.sparse."""
    return {
        m
        for m in modules
        if m.split(".")[0] == "sklearn"
        or m.startswith(("scipy.stats", "scipy.sparse.linalg", "scipy.sparse.csgraph"))
    }
