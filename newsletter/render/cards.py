"""What a reader sees of one story, ready for a template: the paper card.

Pure: built from an ``Item`` and the digest's sources. The HTML email and the web edition
lay the same ``Card`` out (``templates/_cards.html.j2``), so both say the same thing.

Each signal stays with its own source: a story merged from Hugging Face, arXiv and Hacker
News shows HF's upvotes with HF's discussion link, HN's points with the HN discussion,
and the arXiv link plain (``Card.signals``: ``Item.signals`` with labels and checked
links, one per source).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from newsletter.models import EntryMedia, Item, LinkKind, Signal, Source
from newsletter.render.templates import MAX_AUTHORS, safe_url, short_authors

CARD_WIDTH = 552
"""The width (px) a highlight's thumbnail is shown at: the email's 600 px less its padding."""
DEFAULT_ASPECT = (16, 9)
"""The shape assumed for a thumbnail whose size the source did not give."""
LINK_LABELS: tuple[tuple[LinkKind, str], ...] = (
    ("paper", "Paper"),
    ("pdf", "PDF"),
    ("code", "Code"),
    ("project", "Project page"),
    ("video", "Video"),
)
"""The extra links a card shows, in this order (``discussion`` goes with its source)."""
NOWRAP_LABEL = 28
"""Source labels up to this long are never split across lines."""


@dataclass(frozen=True, slots=True)
class SourceSignal:
    """One source of a story and what that source says about it."""

    label: str
    link: str
    upvotes: int | None = None
    points: int | None = None
    comments: int | None = None
    discussion: str = ""
    """That source's own discussion page ('' when it has none)."""

    @property
    def display(self) -> str:
        """The label as shown: a short one kept on one line (no-break spaces), so
        "arXiv cs.LG" never splits; a long one may wrap, or it would overflow a phone."""
        return self.label.replace(" ", "\u00a0") if len(self.label) <= NOWRAP_LABEL else self.label

    @property
    def has_numbers(self) -> bool:
        """Whether the source gave any engagement figure."""
        return any(v is not None for v in (self.upvotes, self.points, self.comments))


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """An image to show with a story (never alone: the title and summary go with it)."""

    url: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Card:
    """One story as the email and the web edition show it."""

    item: Item
    title: str
    link: str
    section: str
    """The title of the section the story is in (a highlight names it)."""
    anchor: str
    byline: str
    """First authors and "et al.", else the entry's author ('' when unknown)."""
    organization: str
    when: datetime | None
    summary: str
    thumbnail: Thumbnail | None
    links: tuple[tuple[str, str], ...]
    """(label, URL) of the paper page, PDF, code, project page."""
    signals: tuple[SourceSignal, ...]


def _signal(signal: Signal, label: str) -> SourceSignal:
    e = signal.engagement
    return SourceSignal(
        label=label,
        link=safe_url(signal.link),
        upvotes=e.upvotes,
        points=e.points,
        comments=e.comments,
        discussion=safe_url(signal.discussion or ""),
    )


def _byline(item: Item, media: EntryMedia | None) -> str:
    names = [n.strip() for n in (media.authors if media else ()) if n.strip()]
    if names:
        if len(names) > MAX_AUTHORS:
            return ", ".join(names[:MAX_AUTHORS]) + " et al."
        return ", ".join(names)
    author = next((e.author for e in item.entries if e.author), None)
    return short_authors(author) if author else ""


def _thumbnail(item: Item, media: EntryMedia | None, width: int) -> Thumbnail | None:
    if media is None or not safe_url(media.image or ""):
        return None
    w, h = DEFAULT_ASPECT
    if (media.image_width or 0) > 0 and (media.image_height or 0) > 0:
        w, h = int(media.image_width or 0), int(media.image_height or 0)
    height = max(1, round(width * h / w))
    return Thumbnail(str(media.image), f"Figure: {item.entry.title}", width, height)


def _links(media: EntryMedia | None) -> tuple[tuple[str, str], ...]:
    if media is None:
        return ()
    found = ((label, safe_url(media.link(kind) or "")) for kind, label in LINK_LABELS)
    return tuple((label, url) for label, url in found if url)


def make_card(
    item: Item,
    sources: Mapping[str, Source],
    *,
    section: str = "",
    anchor: str = "",
    image_width: int = CARD_WIDTH,
) -> Card:
    """The card of one story: its byline, organization, thumbnail, extra links and one
    signal per source it appeared in (primary first)."""

    def label(name: str) -> str:
        return sources[name].label if name in sources else name

    media = item.media  # the primary entry's, completed from the duplicates'
    return Card(
        item=item,
        title=item.entry.title,
        link=safe_url(item.entry.link),
        section=section,
        anchor=anchor,
        byline=_byline(item, media),
        organization=(media.organization if media else None) or "",
        when=item.entry.when,
        summary=item.summary,
        thumbnail=_thumbnail(item, media, image_width),
        links=_links(media),
        signals=tuple(_signal(s, label(s.source)) for s in item.signals),
    )


__all__ = ["CARD_WIDTH", "Card", "SourceSignal", "Thumbnail", "make_card"]
