"""Section labels people accept (issue 10, point 1), on the fixture feeds and on handmade
feeds that reproduce each reported label: "Der · ein", "Gpus · GPU", "Continue reading ·
world news", "AGENT · AI CS", and an intro line that repeated the first title."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.config import DigestConfig, TopicConfig
from newsletter.models import Digest, Entry, Section
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from newsletter.summarize.group import ALL_LABEL, OTHER_LABEL, group_texts
from newsletter.summarize.labels import Edition, section_label, title_case
from newsletter.summarize.language import detect_language
from tests.factories import make_entry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FEEDS = sorted((FIXTURES / "feeds").glob("*.xml")) + sorted((FIXTURES / "feeds").glob("*.json"))
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)

# The test's own lists, written apart from the labeler's, so a fault the labeler's lists
# miss still fails here.
FUNCTION_WORDS = {
    *("the", "a", "an", "of", "and", "or", "in", "on", "for", "to", "with", "it", "its"),
    *("der", "die", "das", "ein", "eine", "einen", "und", "den", "dem", "des", "im", "für"),
    *("mit", "von", "zu", "ist", "nicht", "auf", "le", "la", "les", "un", "une", "et"),
    *("du", "el", "los", "las", "y", "con", "por", "para"),
}
BOILERPLATE = ("continue reading", "read more", "appeared first", "comments", "things")


def _fold(word: str) -> str:
    word = word.lower()
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)]
    return word


def _words(label: str) -> list[str]:
    return re.findall(r"[^\W_][\w’'\-]*", label)


def label_faults(label: str) -> list[str]:
    """What is wrong with a label: a function word, a repeated word, boilerplate."""
    words = _words(label)
    faults = [f"function word {w!r}" for w in words if w.lower() in FUNCTION_WORDS]
    folded = [_fold(w) for w in words]
    faults += [f"repeated {w!r}" for w, n in Counter(folded).items() if n > 1]
    faults += [f"boilerplate {b!r}" for b in BOILERPLATE if b in label.lower()]
    return faults


def _entries(paths: Sequence[Path]) -> list[Entry]:
    entries: list[Entry] = []
    for path in paths:
        parsed = parse_source(
            path.read_bytes(), source=path.stem, url=f"https://x.test/{path.name}"
        )
        entries += parsed.entries
    return entries


def _digest(entries: Sequence[Entry], topics: Sequence[TopicConfig] = ()) -> Digest:
    config = DigestConfig(name="labels", max_items=500, topics=tuple(topics))
    return build_digest(entries, now=NOW, config=config)


def _auto(digest: Digest) -> list[Section]:
    return [s for s in digest.sections if s.title not in (OTHER_LABEL, ALL_LABEL)]


def _holder(digest: Digest, source: str) -> Section:
    """The section holding most of one source's items."""
    return max(digest.sections, key=lambda s: sum(i.entry.source == source for i in s.items))


LABEL_FEEDS = sorted(p for p in (FIXTURES / "labels").iterdir() if p.suffix in (".xml", ".json"))


def test_every_fixture_feed_gives_labels_without_faults() -> None:
    digest = _digest(_entries(FEEDS + LABEL_FEEDS))
    sections = _auto(digest)
    assert len(sections) >= 4
    for section in sections:
        assert label_faults(section.title) == [], section.title
        for word in _words(section.title):
            # Title Case: a capital first letter, or a spelling such as "iPhone".
            assert word[0].isupper() or any(c.isupper() for c in word[1:]), section.title


def test_german_feed_gets_german_nouns_not_stop_words() -> None:
    german = FIXTURES / "labels" / "german.json"
    digest = _digest(_entries([german, FIXTURES / "labels" / "gpu-papers.atom.xml"]))
    section = _holder(digest, "german")
    assert section.title not in (OTHER_LABEL, ALL_LABEL)
    assert label_faults(section.title) == []
    assert {"Bahn", "Energiewende", "Fernverkehr", "Stromnetze"} & set(_words(section.title))


def test_gpus_and_gpu_are_one_word_and_acronyms_stay_capital() -> None:
    digest = _digest(_entries(LABEL_FEEDS))
    section = next(s for s in digest.sections if any("GPU" in i.entry.title for i in s.items))
    words = _words(section.title) + [w for t in section.summary.split(",") for w in _words(t)]
    assert "GPU" in section.title or "GPUs" in section.title
    assert not {"Gpu", "Gpus", "Llm", "Llms", "Ai"} & set(words)
    assert label_faults(section.title) == []


def test_continue_reading_never_names_a_section() -> None:
    digest = _digest(_entries(LABEL_FEEDS))
    guardian = _holder(digest, "guardian-world.rss")
    assert guardian.title not in (OTHER_LABEL, ALL_LABEL)
    # "World news" is on every item of the source: its boilerplate, not a topic.
    assert "world" not in guardian.title.lower()
    for section in digest.sections:
        text = f"{section.title} {section.summary}".lower()
        assert "continue" not in text and "reading" not in text, section


def test_category_codes_are_not_label_words() -> None:
    # "AGENT · AI CS": arXiv's "cs.AI" tag read as two words.
    entries = [
        make_entry(i, title=f"{topic} study {i}", tags=("cs.AI", "cs.LG"), text=body)
        for i in range(16)
        for topic, body in [
            (
                ("LLM agents", "Tool-using LLM agents plan with memory.")
                if i % 2
                else ("Robot grasping", "A robot hand learns grasping from touch.")
            )
        ]
    ]
    digest = _digest(entries)
    assert len(_auto(digest)) == 2
    for section in _auto(digest):
        assert not {"Cs", "CS", "LG", "Lg"} & set(_words(section.title)), section.title
        assert label_faults(section.title) == []


def test_configured_topics_keep_their_names() -> None:
    topic = TopicConfig(name="robots, hands & touch", keywords=("grasping",))
    entries = _entries(LABEL_FEEDS)
    digest = _digest(entries, topics=[topic])
    assert digest.sections[0].title == "robots, hands & touch"
    assert all("grasp" in f"{i.entry.title} {i.entry.text}" for i in digest.sections[0].items)


def test_intro_line_says_what_the_section_holds_without_its_first_title() -> None:
    digest = _digest(_entries(FEEDS + LABEL_FEEDS))
    for section in digest.sections:
        lead = section.items[0].entry.title
        assert lead not in section.summary
        assert "led by" not in section.summary and "…" not in section.summary
        # No count: the email may show fewer items than the section holds.
        assert not any(ch.isdigit() for ch in section.summary.split(" ")[0])
        if section.title not in (OTHER_LABEL, ALL_LABEL):
            assert section.title in section.summary
        assert len(section.summary) <= 120 + len(section.title)


def test_a_group_whose_items_share_no_phrase_gets_no_label() -> None:
    texts = [
        "PS5 Pro review: faster consoles",
        "Travis Kalanick returns to a startup",
        "glibc release fixes a memory bug",
        "Apple ships an iPhone update",
    ]
    ranked = Edition(texts).rank(range(4))
    assert ranked == []
    assert section_label(ranked, 4, set(), min_share=0.25) is None


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        ({"gpus": 2, "GPUs": 1}, "GPUs"),
        ({"large language models": 3}, "Large Language Models"),
        ({"iphone": 1, "iPhone": 3}, "iPhone"),
        ({"test-time compute": 2}, "Test-Time Compute"),
        ({"llms": 2}, "LLMs"),
        ({"ai safety": 1, "AI safety": 1}, "AI Safety"),
        ({"Energiewende": 2}, "Energiewende"),
        ({"ios": 1, "iOS": 2}, "iOS"),
    ],
    ids=[
        "acronym-plural",
        "title-case",
        "brand",
        "hyphen",
        "known-acronym",
        "mixed",
        "german",
        "brand-acronym",
    ],
)
def test_title_case(spellings: dict[str, int], expected: str) -> None:
    assert title_case(Counter(spellings)) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Die Bahn erhöht die Preise für den Fernverkehr, sagte der Konzern.", "de"),
        ("Le gouvernement a présenté un plan pour les transports et la santé.", "fr"),
        ("El gobierno presentó un plan para los trenes y la energía.", "es"),
        ("The railway raises the prices of its long-distance trains.", "en"),
        ("GPU kernels", "en"),
    ],
    ids=["de", "fr", "es", "en", "too-short"],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_labels_do_not_depend_on_input_order() -> None:
    # More texts than a section's label sample, so the sample itself must not follow
    # the input order.
    entries = _entries(FEEDS + LABEL_FEEDS)
    texts = [f"{e.title}. {e.title}. {e.text}" for e in entries]
    shuffled = list(reversed(texts))
    first = group_texts(texts, min_auto=4)
    second = group_texts(shuffled, min_auto=4)
    assert sorted(g.label for g in first) == sorted(g.label for g in second)
    assert sorted(g.summary_terms for g in first) == sorted(g.summary_terms for g in second)


def test_two_sections_are_not_named_by_the_same_word() -> None:
    digest = _digest(_entries(FEEDS + LABEL_FEEDS))
    seen: dict[str, str] = {}
    for section in _auto(digest):
        for word in {_fold(w) for w in _words(section.title)}:
            assert word not in seen, (section.title, seen[word])
            seen[word] = section.title


def test_an_acronym_and_its_phrase_are_one_name() -> None:
    # "Language models · llms" and "Deep Neural Networks & DNNs" named one thing twice.
    llm = [
        f"Large language models {w}. LLMs {w} better than small language models."
        for w in ("plan", "reason", "code", "translate", "summarize", "retrieve", "chat")
    ]
    robots = [
        f"Robot grasping {w}. A robot hand {w} when grasping with tactile sensing."
        for w in ("slips", "adapts", "learns", "fails", "improves", "generalizes", "stops")
    ]
    groups = group_texts(llm + robots, min_auto=4)
    holder = next(g for g in groups if 0 in g.members)
    assert holder.label not in (OTHER_LABEL, ALL_LABEL)
    named = [holder.label, *holder.summary_terms]
    folded = {_fold(w) for term in named for w in _words(term)}
    assert not ({"llm"} <= folded and {"large", "language", "model"} <= folded), named


@pytest.mark.parametrize("lead", [0, 3], ids=["solar-first", "wind-first"])
def test_a_label_fits_the_item_shown_first(lead: int) -> None:
    # "Apple · iphone" led by a glibc post: of two names as good as each other, the
    # one the section's first (highest-scored) item holds wins.
    texts = [
        *(f"Solar panels {w}. Solar panels on roofs." for w in ("grow", "shrink", "fail")),
        *(f"Wind turbines {w}. Wind turbines at sea." for w in ("spin", "stop", "break")),
    ]
    weights = [1.0] * 6
    weights[lead] = 9.0
    ranked = Edition(texts, weights=weights).rank(range(6))
    expected = "Solar Panels" if lead == 0 else "Wind Turbines"
    assert ranked[0].shown == expected
