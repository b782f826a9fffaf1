"""Build the demo's sample sources from the trending-papers snapshot.

Reads tests/fixtures/seed/trending-papers.txt (112 papers: title + abstract, no links,
dates or votes) and writes, with made-up but stable values derived from each paper's
position (stated here openly, not real data):

- config/feeds/trending-papers.json: the 112 papers as a daily-papers JSON list
  (the ``hf-papers`` source kind): ids 2503.10001.., upvotes and comment counts decreasing
  with the page position plus a hash-based jitter, dates on 2025-03-12/13.
- config/feeds/arxiv-cs.xml: an arXiv-style RSS 2.0 feed of every third paper (links to
  arxiv.org/abs/<id>v1), so the demo shows duplicates merged across sources.

Run: python scripts/make_demo_feeds.py
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "seed" / "trending-papers.txt"
OUT = ROOT / "config" / "feeds"
BASE_TIME = datetime(2025, 3, 13, 6, 0, tzinfo=UTC)


def read_papers(path: Path) -> list[tuple[str, str]]:
    """(title, abstract) pairs from the snapshot: paragraphs after the date line."""
    paras = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    start = next(i for i, p in enumerate(paras) if p == "Mar 13") + 1
    body = paras[start:]
    return [(body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]


def jitter(text: str, mod: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % mod


def main() -> None:
    papers = read_papers(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    items = []
    for i, (title, abstract) in enumerate(papers):
        pid = f"2503.{10001 + i}"
        upvotes = max(1, 120 - i + jitter(title, 25))
        when = BASE_TIME - timedelta(minutes=13 * i)
        items.append(
            {
                "paper": {
                    "id": pid,
                    "title": title,
                    "summary": abstract,
                    "upvotes": upvotes,
                    "authors": [{"name": f"Author {jitter(title, 900) + 1}", "hidden": False}],
                    "publishedAt": (when - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "submittedOnDailyAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                },
                "title": title,
                "publishedAt": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "numComments": jitter(abstract, 12),
            }
        )
    (OUT / "trending-papers.json").write_text(
        json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    rss_items = []
    for i, (title, abstract) in enumerate(papers):
        if i % 3:
            continue
        pid = f"2503.{10001 + i}"
        when = BASE_TIME - timedelta(hours=2, minutes=7 * i)
        rss_items.append(
            f"""    <item>
      <title>{escape(title)}</title>
      <link>https://arxiv.org/abs/{pid}v1</link>
      <guid isPermaLink="false">oai:arXiv.org:{pid}v1</guid>
      <description>arXiv:{pid}v1 Announce Type: new
Abstract: {escape(abstract)}</description>
      <category>cs.LG</category>
      <pubDate>{format_datetime(when)}</pubDate>
      <dc:creator>Author {jitter(title, 900) + 1}</dc:creator>
    </item>"""
        )
    rss = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>cs updates on arXiv.org (demo sample)</title>
    <link>https://arxiv.org/</link>
    <description>Demo sample built from the trending-papers snapshot; values made up.</description>
    <language>en-us</language>
    <lastBuildDate>{format_datetime(BASE_TIME)}</lastBuildDate>
{chr(10).join(rss_items)}
  </channel>
</rss>
"""
    (OUT / "arxiv-cs.xml").write_text(rss, encoding="utf-8")
    print(f"{len(papers)} papers -> {OUT}/trending-papers.json, {len(rss_items)} -> arxiv-cs.xml")


if __name__ == "__main__":
    main()
