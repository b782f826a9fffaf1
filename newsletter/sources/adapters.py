"""Source adapters for lists that are not feeds.

An adapter turns one kind of source's bytes into a ``ParsedSource`` (see
``newsletter.parse.SourceAdapter`` for the protocol and the registry). Feeds are read in
``newsletter.parse``; this module holds the others:

* ``hf-papers``: the public Hugging Face daily-papers JSON list
  (``https://huggingface.co/api/daily_papers``), with everything a paper card shows
  (``EntryMedia``: thumbnail, authors, organization, paper/PDF/code/project/discussion
  links, HF's ``ai_summary`` and ``ai_keywords``);

and what feeds need beyond the feed parsers:

* ``with_arxiv_media``: arXiv's feeds (``rss.arxiv.org``, the ``export.arxiv.org`` API)
  give each entry its ``EntryMedia``: every author (the API lists one ``<author>`` each,
  of which the feed parser keeps the first) and the abstract and PDF links.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from newsletter.errors import ParseError
from newsletter.models import Engagement, Entry, EntryMedia, FeedInfo, LinkKind, ParsedSource
from newsletter.sources.links import canonical_link
from newsletter.sources.normalize import make_entry
from newsletter.sources.reasons import safe_reason

__all__ = ["ARXIV_ABS_URL", "ARXIV_PDF_URL", "HF_PAPERS_URL", "HfPapersAdapter", "with_arxiv_media"]

HF_PAPERS_URL = "https://huggingface.co/papers"
"""Where a daily paper's page lives: ``{HF_PAPERS_URL}/{paper id}``."""
ARXIV_ABS_URL = "https://arxiv.org/abs"
"""An arXiv paper's abstract page: ``{ARXIV_ABS_URL}/{arXiv id}``."""
ARXIV_PDF_URL = "https://arxiv.org/pdf"
"""An arXiv paper's PDF: ``{ARXIV_PDF_URL}/{arXiv id}``."""

_SNIFF_BYTES = 4096
_ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?")


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


def _url(value: object) -> str | None:
    """An absolute http(s) URL from a JSON field, canonical; None for anything else."""
    url = canonical_link(value) if isinstance(value, str) else ""
    return url or None


_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".m4v")


def _organization(*candidates: object) -> str | None:
    """The display name of HF's ``organization`` object: ``fullname``, else ``name``."""
    for org in candidates:
        if isinstance(org, Mapping):
            name = _str(org.get("fullname")) or _str(org.get("name"))
            if name:
                return name
    return None


def _links(pairs: Iterable[tuple[LinkKind, str | None]]) -> tuple[tuple[LinkKind, str], ...]:
    """The (kind, url) pairs that have a URL, the first of each kind."""
    out: dict[LinkKind, str] = {}
    for kind, url in pairs:
        if url and kind not in out:
            out[kind] = url
    return tuple(out.items())


def _paper_media(
    item: Mapping[str, Any], paper: Mapping[str, Any], *, page: str, paper_id: str
) -> EntryMedia:
    """What the daily-papers list says about one paper beyond a feed's fields."""
    authors = tuple(
        _str(a.get("name"))
        for a in paper.get("authors") or ()
        if isinstance(a, Mapping) and not a.get("hidden") and _str(a.get("name"))
    )
    keywords = paper.get("ai_keywords")
    media_urls = [u for u in (paper.get("mediaUrls") or item.get("mediaUrls") or ()) if _url(u)]
    video = next((u for u in media_urls if u.lower().endswith(_VIDEO_SUFFIXES)), None)
    return EntryMedia(
        image=_url(item.get("thumbnail")) or _url(paper.get("thumbnail")),
        authors=authors,
        organization=_organization(paper.get("organization"), item.get("organization")),
        links=_links(
            [
                ("paper", page),
                ("pdf", f"{ARXIV_PDF_URL}/{paper_id}" if _ARXIV_ID.fullmatch(paper_id) else None),
                ("code", _url(paper.get("githubRepo"))),
                ("project", _url(paper.get("projectPage"))),
                # HF's comments live on the paper's page.
                ("discussion", page),
                ("video", _url(video)),
            ]
        ),
        ai_summary=_str(paper.get("ai_summary")) or _str(item.get("ai_summary")) or None,
        keywords=tuple(k.strip() for k in keywords if isinstance(k, str) and k.strip())
        if isinstance(keywords, list)
        else (),
    )


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
    media = _paper_media(item, paper, page=canonical_link(page), paper_id=paper_id)
    # HF paper ids are arXiv ids; say so in the content so readers can get the PDF.
    arxiv = f"{ARXIV_ABS_URL}/{paper_id}"
    content = "".join(
        [
            f"<p>{html.escape(summary)}</p>" if summary else "",
            f'<p>arXiv: <a href="{html.escape(arxiv)}">{html.escape(paper_id)}</a></p>',
        ]
    )
    entry = make_entry(
        source=source,
        title=title,
        link=page,
        guid=f"arxiv:{paper_id}",
        content_html=content,
        author=", ".join(media.authors) or None,
        # The list reports when a paper became a daily paper, which is the news here; the
        # arXiv date (paper.publishedAt) can be weeks older and would age it out of digests.
        published=paper.get("submittedOnDailyAt") or item.get("publishedAt"),
        updated=paper.get("publishedAt"),
        tags=media.keywords,
        engagement=Engagement(
            upvotes=_int(paper.get("upvotes")), comments=_int(item.get("numComments"))
        ),
        comments_url=page,
    )
    return replace(entry, media=media)


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
            info=FeedInfo(title="Hugging Face Daily Papers", link=HF_PAPERS_URL),
            entries=tuple(entries),
            parser=self.kind,
        )


# -- arXiv feeds --------------------------------------------------------------------------

_ARXIV_LINK = re.compile(
    r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?P<version>v\d+)?(?:\.pdf)?/?$"
)
_ARXIV_HOST = re.compile(r"^https?://(?:[a-z0-9-]+\.)*arxiv\.org(?:[:/]|$)", re.IGNORECASE)
_ATOM = "{http://www.w3.org/2005/Atom}"


def with_arxiv_media(parsed: ParsedSource, data: bytes, *, url: str = "") -> ParsedSource:
    """``parsed`` with ``EntryMedia`` on each entry that is an arXiv paper.

    Every entry whose link is an arXiv abstract or PDF page gets the abstract (``paper``)
    and ``pdf`` links. When the feed itself is arXiv's (its URL or link is on arxiv.org),
    the entry's author field is the paper's authors: they become ``EntryMedia.authors``,
    all of them (the API's Atom lists one ``<author>`` per person, of which the feed
    parser keeps only the first; the RSS feed joins them with commas in ``dc:creator``),
    and ``Entry.author`` names them all. Other entries are returned as they are.
    """
    if not any(_ARXIV_LINK.match(e.link) for e in parsed.entries):
        return parsed
    from_arxiv = bool(_ARXIV_HOST.match(url) or _ARXIV_HOST.match(parsed.info.link or ""))
    atom_authors = _atom_authors(data) if from_arxiv else {}
    entries = []
    for entry in parsed.entries:
        match = _ARXIV_LINK.match(entry.link)
        if not match:
            entries.append(entry)
            continue
        paper_id, version = match.group("id"), match.group("version") or ""
        authors: tuple[str, ...] = ()
        if from_arxiv:
            authors = atom_authors.get(paper_id) or _split_authors(entry.author)
        media = _fill(
            entry.media,
            authors=authors,
            links=(
                ("paper", f"{ARXIV_ABS_URL}/{paper_id}{version}"),
                ("pdf", f"{ARXIV_PDF_URL}/{paper_id}{version}"),
            ),
        )
        author = ", ".join(authors) if authors else entry.author
        entries.append(replace(entry, media=media, author=author))
    return replace(parsed, entries=tuple(entries))


def _fill(
    media: EntryMedia | None,
    *,
    authors: tuple[str, ...],
    links: tuple[tuple[LinkKind, str], ...],
) -> EntryMedia:
    """``media`` (or an empty one) with the authors and links it does not have yet."""
    media = media or EntryMedia()
    return replace(
        media,
        authors=media.authors or authors,
        links=_links([*media.links, *links]),
    )


def _split_authors(author: str | None) -> tuple[str, ...]:
    """arXiv's ``dc:creator``: names joined with commas (the last maybe with "and")."""
    if not author:
        return ()
    names = re.split(r",\s*(?:and\s+)?|\s+and\s+", author)
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def _atom_authors(data: bytes) -> dict[str, tuple[str, ...]]:
    """arXiv id -> every ``<author><name>`` of that Atom entry (empty for RSS or errors)."""
    if b"<author" not in data:
        return {}
    from lxml import etree  # installed with fastfeedparser, which parses every feed

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except (etree.LxmlError, ValueError):
        return {}
    if root is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for node in root.iter(f"{_ATOM}entry"):
        id_text = (node.findtext(f"{_ATOM}id") or "").strip()
        match = _ARXIV_LINK.match(id_text)
        names = tuple(
            name.strip()
            for a in node.iter(f"{_ATOM}author")
            if (name := a.findtext(f"{_ATOM}name")) and name.strip()
        )
        if match and names:
            out[match.group("id")] = names
    return out
