"""Coherent sections (issue 10, points 1 and 9), on the one-off digest of seven real
captures a reader reported: NASA news under "Apple", a political link under "Large
Language Model & Agent", ty's releases named "Fix Panic & Imports", labels that were an
adjective alone ("Algebras & Finite", "Quantum & Electron")."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import DigestConfig
from newsletter.models import Digest, Entry, Source
from newsletter.sources.parse import parse_source
from newsletter.summarize.digest import build_digest
from newsletter.summarize.group import ALL_LABEL, OTHER_LABEL

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
SEVEN = [
    FEEDS / name
    for name in (
        "arxiv-api-query.atom.xml",
        "arxiv-rss-cs.AI.xml",
        "github-releases-astral-sh-ty.atom.xml",
        "hackernews-frontpage.rss.xml",
        "hf-daily-papers-api.json",
        "jsonfeed-v1-daringfireball.json",
        "rss2-spec-sample.xml",
    )
]
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
BENCH_QUALITY = Path(__file__).resolve().parents[2] / "bench" / "quality.py"

# The test's own list, apart from the labeler's: the adjectives the issue found as
# labels, and common ones of these feeds.
ADJECTIVES = {
    *("finite", "quantum", "large", "deep", "new", "open", "free", "neural", "visual"),
    *("efficient", "robust", "novel", "local", "global", "general", "russian", "magnetic"),
    *("linear", "dark", "small", "high", "low", "fast", "simple", "complex", "automatic"),
    *("automatically", "multimodal", "generative", "invalid", "sparse", "dynamic"),
}


def _nasa(link: str) -> bool:
    return "nasa.gov" in link


def _read(paths: Sequence[Path]) -> tuple[list[Entry], dict[str, Source]]:
    """The feeds' entries, and their sources titled as the feeds title themselves (as
    ``newsletter digest FILE...`` names them)."""
    entries: list[Entry] = []
    sources: dict[str, Source] = {}
    for path in paths:
        parsed = parse_source(path.read_bytes(), source=path.stem, url=path.as_uri())
        entries += parsed.entries
        sources[path.stem] = Source(name=path.stem, url=path.as_uri(), title=parsed.info.title)
    return entries, sources


def _digest(paths: Sequence[Path], max_items: int = 500) -> tuple[Digest, dict[str, Source]]:
    entries, sources = _read(paths)
    config = DigestConfig(name="seven", max_items=max_items)
    return build_digest(entries, now=NOW, config=config, sources=sources), sources


def _one_off(runner: CliRunner, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """Run the reported command; return each Markdown section's heading and links."""
    out = tmp_path / "d.md"
    result = runner.invoke(main, ["digest", *map(str, SEVEN), "-o", str(out)])
    assert result.exit_code == 0, result.output
    sections: list[tuple[str, list[str]]] = []
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif line.startswith("### [") and sections:
            link = re.search(r"\]\((\S+)\)\s*$", line)
            assert link is not None, line
            sections[-1][1].append(link.group(1))
    assert len(sections) >= 3
    return sections


def _adjective_last(label: str) -> list[str]:
    """The phrases of a label that end in an adjective ("Finite", "Large Language")."""
    halves = [h.split() for h in label.split(" & ")]
    return [" ".join(h) for h in halves if h and h[-1].lower() in ADJECTIVES]


def test_one_off_digest_nasa_items_are_not_under_apple(runner: CliRunner, tmp_path: Path) -> None:
    sections = _one_off(runner, tmp_path)
    assert any(_nasa(link) for _, links in sections for link in links)
    for title, links in sections:
        if "apple" in title.lower():
            assert not [link for link in links if _nasa(link)], title


def test_one_off_digest_trumps_lies_is_not_under_a_language_model_section(
    runner: CliRunner, tmp_path: Path
) -> None:
    sections = _one_off(runner, tmp_path)
    holder = [t for t, links in sections if any("trumps-lies" in link for link in links)]
    assert len(holder) == 1
    title = holder[0].lower()
    assert not {"language", "llm", "llms", "agent", "agents", "model"} & set(
        re.findall(r"\w+", title)
    )


def test_one_off_digest_names_ty_releases_by_their_feed(runner: CliRunner, tmp_path: Path) -> None:
    sections = _one_off(runner, tmp_path)
    (title,) = {t for t, links in sections for link in links if "astral-sh/ty/releases" in link}
    assert title == "Release notes from ty"  # the feed's own title, its own spelling
    assert "panic" not in title.lower()


def test_every_item_of_the_seven_feeds_sits_under_a_true_name() -> None:
    digest, sources = _digest(SEVEN)
    assert sum(len(s.items) for s in digest.sections) == digest.item_count
    for section in digest.sections:
        links = [i.entry.link for i in section.items]
        if "apple" in section.title.lower():
            assert not [link for link in links if _nasa(link)]
        words = set(re.findall(r"\w+", section.title.lower()))
        if {"language", "llm", "agent"} & words:
            politics = [i.entry.title for i in section.items if "Trump" in i.entry.title]
            assert politics == [], section.title
    ty = [s for s in digest.sections if any("astral-sh/ty" in i.entry.link for i in s.items)]
    assert [s.title for s in ty] == [sources["github-releases-astral-sh-ty.atom"].label]
    # ty's section holds every release and nothing else.
    assert {i.entry.source for i in ty[0].items} == {"github-releases-astral-sh-ty.atom"}


def test_no_label_of_the_seven_feeds_ends_in_an_adjective() -> None:
    digest, sources = _digest(SEVEN)
    titles = {s.label for s in sources.values()}
    labels = [s.title for s in digest.sections if s.title not in (OTHER_LABEL, ALL_LABEL)]
    topical = [t for t in labels if t not in titles]
    assert topical  # the arXiv and HF papers keep a topic name
    for label in topical:
        assert _adjective_last(label) == [], label


@pytest.mark.parametrize(
    ("feed", "title"),
    [
        ("jsonfeed-v1-daringfireball.json", "Daring Fireball"),
        ("hackernews-frontpage.rss.xml", "Hacker News"),
    ],
)
def test_one_source_alone_keeps_topic_names(feed: str, title: str) -> None:
    # Every section of a one-feed digest comes from that feed: its title tells nothing.
    digest, sources = _digest([FEEDS / feed])
    assert [s.label for s in sources.values()] == [title]
    assert title not in [s.title for s in digest.sections]


def test_a_source_with_several_strays_gets_a_section_named_by_its_title() -> None:
    # The four NASA items of the RSS 2.0 sample belong to no topic of the others.
    digest, _ = _digest(SEVEN)
    (holder,) = [s for s in digest.sections if any(_nasa(i.entry.link) for i in s.items)]
    assert holder.title == "Liftoff News"
    assert len(holder.items) == 4
    assert holder.summary.startswith("Items touching on")


def test_the_bench_label_check_finds_no_faulty_label(capsys: pytest.CaptureFixture[str]) -> None:
    # bench/quality.py's check over a digest of every fixture feed, titled as the feeds
    # title themselves: no stopword, repeated word, boilerplate or adjective label.
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH_QUALITY)
    assert spec is not None and spec.loader is not None
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    assert quality.label_check() == 0
    out = capsys.readouterr().out
    summary = next(line for line in out.splitlines() if "labels; with a stopword" in line)
    assert re.findall(r"\d+", summary.split(";", 1)[1]) == ["0", "0", "0", "0"]
    assert "Release notes from ty  (the feed's title)" in out


FOUR = [SEVEN[0], SEVEN[2], SEVEN[5], SEVEN[6]]


@pytest.mark.parametrize("paths", [SEVEN, FOUR], ids=["seven", "four"])
def test_nasa_items_share_a_section_with_no_other_feed(paths: list[Path]) -> None:
    # Of four feeds, two NASA items once headed "International Space Station & Mac"
    # over five Daring Fireball links.
    digest, _ = _digest(paths, max_items=50)
    holding = [s for s in digest.sections if any(_nasa(i.entry.link) for i in s.items)]
    assert holding
    for section in holding:
        if section.title != OTHER_LABEL:
            assert all(_nasa(i.entry.link) for i in section.items), section.title
    for section in digest.sections:
        # A verb ends no noun phrase: "Large Language Models & Requires" was one.
        assert "requires" not in section.title.lower()
