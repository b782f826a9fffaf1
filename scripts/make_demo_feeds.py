"""Build the demo's sample sources (config/feeds/) from the seed and the real captures.

What it writes, and what in it is real:

- config/feeds/trending-papers.json: a Hugging Face daily-papers JSON list (the
  ``hf-papers`` source kind). First the 30 papers of a real capture of HF's API
  (tests/fixtures/feeds/hf-daily-papers-api.json: real titles, abstracts, authors,
  organizations, thumbnails, code and project links, ``ai_summary``, upvotes, comments),
  then the 112 papers of the trending-papers snapshot (tests/fixtures/seed/, titles and
  abstracts only). The snapshot has no authors, links, votes or dates, so those papers get
  no authors (nothing is better than a made-up name), ids 2503.10001.. and upvote and
  comment counts derived from their position on the page (made up, stable).
- config/feeds/arxiv-cs.xml: an arXiv-style RSS 2.0 feed of every third snapshot paper,
  linking to the same ids, so the demo shows duplicates merged across sources.
- config/feeds/arxiv-rss-cs.AI.xml and hackernews-frontpage.rss.xml: the real captures of
  tests/fixtures/feeds/, byte for byte but for their dates.

No paper and no feed item carries a date: each entry is dated when it is first fetched,
so a demo edition built today holds today's papers (the captures are from other years).

Run: python scripts/make_demo_feeds.py
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "seed" / "trending-papers.txt"
CAPTURES = ROOT / "tests" / "fixtures" / "feeds"
OUT = ROOT / "config" / "feeds"

# The date fields of the HF list (paper and item level).
HF_DATE_FIELDS = ("publishedAt", "submittedOnDailyAt")
# RSS date elements; the HN capture is one line, so the match stays within an element.
RSS_DATE_RE = re.compile(r"\s*<(pubDate|lastBuildDate)>[^<]*</\1>")


def read_papers(path: Path) -> list[tuple[str, str]]:
    """(title, abstract) pairs from the snapshot: paragraphs after the date line."""
    paras = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    start = next(i for i, p in enumerate(paras) if p == "Mar 13") + 1
    body = paras[start:]
    return [(body[i], body[i + 1]) for i in range(0, len(body) - 1, 2)]


def jitter(text: str, mod: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % mod


def undated(item: dict[str, Any]) -> dict[str, Any]:
    """A captured HF list item without its dates (paper and item level)."""
    paper = {k: v for k, v in item["paper"].items() if k not in HF_DATE_FIELDS}
    out = {k: v for k, v in item.items() if k not in HF_DATE_FIELDS}
    out["paper"] = paper
    return out


def main() -> None:
    papers = read_papers(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    captured = json.loads((CAPTURES / "hf-daily-papers-api.json").read_text(encoding="utf-8"))
    items = [undated(item) for item in captured]
    for i, (title, abstract) in enumerate(papers):
        items.append(
            {
                "paper": {
                    "id": f"2503.{10001 + i}",
                    "title": title,
                    "summary": abstract,
                    "upvotes": max(1, 120 - i + jitter(title, 25)),
                    "authors": [],
                },
                "title": title,
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
        rss_items.append(
            f"""    <item>
      <title>{escape(title)}</title>
      <link>https://arxiv.org/abs/{pid}v1</link>
      <guid isPermaLink="false">oai:arXiv.org:{pid}v1</guid>
      <description>arXiv:{pid}v1 Announce Type: new
Abstract: {escape(abstract)}</description>
      <category>cs.LG</category>
    </item>"""
        )
    rss = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>cs.LG updates on arXiv.org</title>
    <link>https://arxiv.org/</link>
    <description>Demo sample built from the trending-papers snapshot.</description>
    <language>en-us</language>
{chr(10).join(rss_items)}
  </channel>
</rss>
"""
    (OUT / "arxiv-cs.xml").write_text(rss, encoding="utf-8")
    for name in ("arxiv-rss-cs.AI.xml", "hackernews-frontpage.rss.xml"):
        text = (CAPTURES / name).read_text(encoding="utf-8")
        (OUT / name).write_text(RSS_DATE_RE.sub("", text), encoding="utf-8")
    print(
        f"{len(items)} papers -> {OUT}/trending-papers.json, {len(rss_items)} -> arxiv-cs.xml,"
        " 2 captures without dates"
    )


if __name__ == "__main__":
    main()
