"""Source adapters for lists that are not feeds.

An adapter turns one kind of source's bytes into a ``ParsedSource`` (see
``newsletter.parse.SourceAdapter`` for the protocol and the registry). Feeds are read in
``newsletter.parse``; this module holds the others:

* ``hf-papers``: the public Hugging Face daily-papers JSON list
  (``https://huggingface.co/api/daily_papers``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from newsletter.errors import ParseError
from newsletter.models import Engagement, Entry, FeedInfo, ParsedSource
from newsletter.sources.normalize import make_entry
from newsletter.sources.reasons import safe_reason

__all__ = ["HF_PAPERS_URL", "HfPapersAdapter"]

HF_PAPERS_URL = "https://huggingface.co/papers"
"""Where a daily paper's page lives: ``{HF_PAPERS_URL}/{paper id}``."""
ARXIV_ABS_URL = "https://arxiv.org/abs"

_SNIFF_BYTES = 4096


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _paper_entry(item: Mapping[str, Any], *, source: str) -> Entry | None:
    paper = item.get("paper")
    if not isinstance(paper, Mapping):
        return None
    paper_id = _str(paper.get("id"))
    title = _str(paper.get("title")) or _str(item.get("title"))
    if not paper_id or not title:
        return None
    page = f"{HF_PAPERS_URL}/{paper_id}"
    summary = _str(paper.get("summary")) or _str(item.get("summary"))
    authors = [
        _str(a.get("name"))
        for a in paper.get("authors") or ()
        if isinstance(a, Mapping) and not a.get("hidden") and _str(a.get("name"))
    ]
    # HF paper ids are arXiv ids; say so in the content so readers can get the PDF.
    arxiv = f"{ARXIV_ABS_URL}/{paper_id}"
    content = "".join(
        [
            f"<p>{html.escape(summary)}</p>" if summary else "",
            f'<p>arXiv: <a href="{html.escape(arxiv)}">{html.escape(paper_id)}</a></p>',
        ]
    )
    keywords = paper.get("ai_keywords") or ()
    return make_entry(
        source=source,
        title=title,
        link=page,
        guid=f"arxiv:{paper_id}",
        content_html=content,
        author=", ".join(authors) or None,
        # The list reports when a paper became a daily paper, which is the news here; the
        # arXiv date (paper.publishedAt) can be weeks older and would age it out of digests.
        published=paper.get("submittedOnDailyAt") or item.get("publishedAt"),
        updated=paper.get("publishedAt"),
        tags=[k for k in keywords if isinstance(k, str)] if isinstance(keywords, list) else (),
        engagement=Engagement(
            upvotes=_int(paper.get("upvotes")), comments=_int(item.get("numComments"))
        ),
        comments_url=page,
    )


class HfPapersAdapter:
    """The Hugging Face daily-papers JSON list: a JSON array of ``{"paper": {...}, ...}``.

    Each paper links to its Hugging Face page, notes its arXiv id (the entry id is
    ``arxiv:<id>``) and carries upvotes and comment counts as ``Engagement``.
    """

    kind: str = "hf-papers"

    def sniff(self, data: bytes, content_type: str | None) -> bool:
        """Whether ``data`` looks like the daily-papers list (a JSON array of papers)."""
        head = data[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head.startswith(b"[") and b'"paper"' in head

    def parse(self, data: bytes, *, source: str, url: str) -> ParsedSource:
        """The papers in ``data``; raises ``ParseError`` when it is not such a list."""
        try:
            items = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(
                source, f"not a daily-papers JSON list: {safe_reason(exc, data)}"
            ) from None
        if not isinstance(items, list):
            raise ParseError(source, "not a daily-papers JSON list: expected a JSON array")
        entries = [
            entry
            for item in items
            if isinstance(item, Mapping) and (entry := _paper_entry(item, source=source))
        ]
        if items and not entries:
            raise ParseError(source, "not a daily-papers JSON list: no item has a paper")
        return ParsedSource(
            info=FeedInfo(title="Daily Papers", link=HF_PAPERS_URL),
            entries=tuple(entries),
            parser=self.kind,
        )
