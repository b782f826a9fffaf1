"""Which stories one HTML email shows, and how: a few highlights in full, the rest as
compact lines per section, within a length budget.

Pure. The budget is in phone screens (``mail.screens``, a screen being 375 x 667 px):
each story's height at 375 px is estimated from its parts (title and summary lines at
the width of a phone, a thumbnail's shape), and stories are taken best score first
until the estimate is spent. The estimate was fitted to chromium's layout of the email
template (``tests/render/test_email_screens.py`` measures the real height and holds it
to the budget). Everything the email leaves out is in the full web edition, and the
footer says how many.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from newsletter.models import Digest, Item, Section, Source
from newsletter.render.cards import Card, make_card

PHONE_WIDTH = 375
PHONE_HEIGHT = 667
"""A phone screen in CSS pixels (an iPhone SE / 8: the small end of what people read on)."""

# Measured on the template at 375 px (16 px side padding: 343 px of text).
_CHARS_TITLE_BIG = 34  # highlight titles, 19 px bold
_CHARS_TITLE = 40  # compact titles, 16 px
_CHARS_BODY = 44  # summaries, 15-16 px
_CHARS_META = 50  # grey 13 px lines
_LINE_TITLE_BIG = 25
_LINE_TITLE = 22
_LINE_BODY = 23
_LINE_META = 20
_FRAME = 390
"""Masthead, greeting, "In this issue" heading and the footer, without their lists."""
_SECTION = 54
"""A section's heading with its rule and spacing."""
_TOC_LINE = 24


@dataclass(frozen=True, slots=True)
class CompactSection:
    """A section of the email: its anchor, title and the stories shown as lines."""

    anchor: str
    title: str
    cards: tuple[Card, ...]
    summary: str = ""


@dataclass(frozen=True, slots=True)
class MailLayout:
    """What one HTML email shows."""

    highlights: tuple[Card, ...]
    sections: tuple[CompactSection, ...]
    shown: Digest
    """The digest with only the stories this email shows, in their sections and order;
    ``omitted`` counts every story of the edition it leaves out."""
    estimated_height: int
    """The layout's estimated height at 375 px (CSS pixels)."""

    @property
    def left_out(self) -> int:
        """Stories of the edition this email does not show (the web edition has them)."""
        return self.shown.omitted


def _lines(text: str, per_line: int) -> int:
    return max(1, math.ceil(len(text) / per_line)) if text else 0


def _meta_text(card: Card) -> str:
    parts = [s.label for s in card.signals]
    parts += [f"▲ {s.upvotes}" for s in card.signals if s.upvotes is not None]
    parts += [f"{s.points} points" for s in card.signals if s.points is not None]
    parts += [f"{s.comments} comments" for s in card.signals if s.comments is not None]
    return " · ".join(parts)


def highlight_height(card: Card) -> int:
    """The estimated height (px at 375 px wide) of a story shown in full."""
    height = 48  # padding, the rule, the section kicker
    if card.thumbnail is not None:
        shown_width = PHONE_WIDTH - 32
        height += round(shown_width * card.thumbnail.height / card.thumbnail.width) + 12
    height += _lines(card.title, _CHARS_TITLE_BIG) * _LINE_TITLE_BIG
    byline = " · ".join(x for x in (card.byline, card.organization) if x)
    height += _lines(byline, _CHARS_META) * _LINE_META
    height += _lines(_meta_text(card), _CHARS_META) * _LINE_META
    height += _lines(card.summary, _CHARS_BODY) * _LINE_BODY
    links = " · ".join(label for label, _ in card.links)
    height += _lines(links, _CHARS_META) * _LINE_META
    return height


def line_height(card: Card) -> int:
    """The estimated height (px at 375 px wide) of a story shown as a compact line."""
    meta = _meta_text(card)
    return 16 + _lines(card.title, _CHARS_TITLE) * _LINE_TITLE + _lines(meta, _CHARS_META) * 19


def _anchor(section: Section, index: int) -> str:
    return f"s-{section.key or index + 1}"


def plan_layout(
    digest: Digest,
    *,
    highlights: int,
    screens: float,
    max_items: int,
    sources: Mapping[str, Source] | None = None,
) -> MailLayout:
    """Choose what an email of ``digest`` shows: the ``highlights`` best-scored stories in
    full, then the best of the rest as compact lines while the estimated height stays
    within ``screens`` phone screens, and never more than ``max_items`` stories in all.
    At least one story is shown when there is one. Sections keep their order and the
    stories their order inside a section (the order ranking gave)."""
    sources = digest.sources if sources is None else sources
    placed: list[tuple[int, int, Item, Card]] = []  # (section, position, item, card)
    for si, section in enumerate(digest.sections):
        anchor = _anchor(section, si)
        for pi, item in enumerate(section.items):
            card = make_card(item, sources, section=section.title, anchor=anchor)
            placed.append((si, pi, item, card))
    ranked = sorted(range(len(placed)), key=lambda i: (-placed[i][2].score, i))
    budget = screens * PHONE_HEIGHT
    height = _FRAME + _TOC_LINE  # the "Highlights" line of the contents
    top: list[int] = []
    rest: list[int] = []
    sections_used: set[int] = set()
    for n, i in enumerate(ranked):
        if n >= max_items:
            break
        si, _, _, card = placed[i]
        if len(top) < highlights:
            cost = highlight_height(card)
            if top and height + cost > budget:
                break
            top.append(i)
        else:
            cost = line_height(card)
            if si not in sections_used:
                cost += _SECTION + _TOC_LINE
            if (top or rest) and height + cost > budget:
                break
            rest.append(i)
            sections_used.add(si)
        height += cost
    chosen_rest = sorted(rest)  # back in section order, ranking's order inside each
    chosen = set(top) | set(rest)
    compact: list[CompactSection] = []
    kept_sections: list[Section] = []
    for si, section in enumerate(digest.sections):
        cards = tuple(placed[i][3] for i in chosen_rest if placed[i][0] == si)
        if cards:
            compact.append(
                CompactSection(_anchor(section, si), section.title, cards, section.summary)
            )
        kept = tuple(placed[i][2] for i in sorted(chosen) if placed[i][0] == si)
        if kept:
            kept_sections.append(replace(section, items=kept))
    left = len(placed) - len(chosen)
    shown = replace(digest, sections=tuple(kept_sections), omitted=digest.omitted + left)
    return MailLayout(
        highlights=tuple(placed[i][3] for i in top),
        sections=tuple(compact),
        shown=shown,
        estimated_height=round(height),
    )


__all__ = [
    "PHONE_HEIGHT",
    "PHONE_WIDTH",
    "CompactSection",
    "MailLayout",
    "highlight_height",
    "line_height",
    "plan_layout",
]
