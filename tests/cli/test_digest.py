"""``newsletter digest`` of several feeds: every source gets a fair share, silent sources
are named on stderr with why, the title counts what is in it, ``--explain`` shows the
share; and its feeds link to themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import feedparser
from click.testing import CliRunner
from lxml import etree

from newsletter.cli import main
from tests.factories import FEEDS, FROM_ADDRESS, digest_config, source_config, write_config
from tests.render.feed_rules import ATOM, check_feed

SEVEN = [
    "hackernews-frontpage.rss.xml",
    "arxiv-rss-cs.AI.xml",
    "arxiv-api-query.atom.xml",
    "github-releases-astral-sh-ty.atom.xml",
    "hf-daily-papers-api.json",
    "jsonfeed-v1-daringfireball.json",
    "rss2-spec-sample.xml",
]
"""The real captures of the issue's seven-feed digest ("50 items from 4 sources")."""


def seven() -> list[str]:
    return [str(FEEDS / name) for name in SEVEN]


def test_seven_feeds_each_contribute(runner: CliRunner) -> None:
    result = runner.invoke(main, ["digest", *seven(), "--format", "rss", "--explain"])
    assert result.exit_code == 0, result.output
    feed = feedparser.parse(result.stdout_bytes)
    assert len(feed.entries) == 50
    assert feed.feed.title == "Digest of 7 sources"
    share = re.search(r"fair share: at most (\d+) of 50 items per source", result.stderr)
    assert share is not None and int(share.group(1)) == 8
    counts = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^  (.+): (\d+) items?", result.stderr, re.MULTILINE)
    }
    assert len(counts) == 7  # every source is in it
    over = {name: n for name, n in counts.items() if n > 8}
    # Over the share only where two small feeds (4 and 3 entries) left slots.
    assert sum(n - 8 for n in over.values()) <= (8 - 4) + (8 - 3)
    assert "nothing in the digest" not in result.stderr


def test_silent_sources_are_named_with_why(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.xml"
    result = runner.invoke(
        main, ["digest", *seven(), str(missing), "--since", "2026-06-01", "--format", "markdown"]
    )
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if "nothing in the digest" in ln]
    # Only the Hugging Face and arXiv API captures (July 2026) are recent enough.
    assert len(lines) == 6
    assert (
        f"warning: Hacker News ({FEEDS / SEVEN[0]}): nothing in the digest:"
        " all 30 entries older than --since 2026-06-01"
    ) in lines
    assert f"warning: missing ({missing}): nothing in the digest: failed to fetch (" in (
        result.stderr
    )
    assert result.stdout.startswith("# Digest of 2 sources\n")
    assert "from 2 sources" in result.stdout


def test_one_source_of_several_is_titled_after_it(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main, ["digest", str(FEEDS / "hackernews-frontpage.rss.xml"), str(tmp_path / "no.xml")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Hacker News")


def test_feed_file_links_to_itself(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "digest.atom"
    result = runner.invoke(main, ["digest", *seven()[:2], "--format", "atom", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert check_feed(data) == []
    links = etree.fromstring(data).findall(f"{{{ATOM}}}link[@rel='self']")
    assert [link.get("href") for link in links] == [out.resolve().as_uri()]


def test_configured_digest_feed_names_base_url_and_sender(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path,
        sources=[source_config("hn", FEEDS / "hackernews-frontpage.rss.xml")],
        digests=[digest_config(outputs={"rss": str(tmp_path / "feed.xml")})],
        web={"base_url": "https://news.example.org"},
    )
    result = runner.invoke(main, ["digest", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "feed.xml").read_bytes()
    assert check_feed(data) == []
    links = etree.fromstring(data).findall(f"channel/{{{ATOM}}}link[@rel='self']")
    assert [link.get("href") for link in links] == ["https://news.example.org/daily/feed.xml"]
    sender = FROM_ADDRESS.split("<")[0].strip()
    assert sender and f"<dc:creator>{sender}</dc:creator>".encode() in data


def test_explain_says_why_fewer_upvotes_come_first(runner: CliRunner, tmp_path: Path) -> None:
    papers = [
        {
            "paper": {"id": f"2606.0000{n}", "upvotes": votes, "title": title},
            "publishedAt": when,
            "title": title,
            "summary": "We show a thing.",
            "numComments": 0,
        }
        for n, (title, votes, when) in enumerate(
            [
                ("Fresh but quiet", 41, "2026-06-12T00:00:00.000Z"),
                ("Old but loud", 129, "2026-06-09T00:00:00.000Z"),
            ]
        )
    ]
    path = tmp_path / "papers.json"
    path.write_text(json.dumps(papers), encoding="utf-8")
    result = runner.invoke(main, ["digest", str(path), "--explain", "--format", "text"])
    assert result.exit_code == 0, result.output
    notes = [ln for ln in result.stderr.splitlines() if " above " in ln]
    assert len(notes) == 1
    assert '"Fresh but quiet" (41) above "Old but loud" (129): freshness +' in notes[0]
