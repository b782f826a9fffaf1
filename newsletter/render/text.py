"""Plain text for reading in a mail client: wrapped lines and numbered link references.

Pure. The text templates (``digest.txt.j2``, ``email.txt.j2``) wrap every paragraph with
``wrap`` and write every link as a reference (``[3]``) through a ``References`` object
in their context, which lists the URLs at the end, one per line::

    * A paper about models [1]
      arXiv, 2026-11-28, 122 upvotes, 7 comments [2]

    Links:
    [1] https://arxiv.org/abs/2511.00001
    [2] https://huggingface.co/papers/2511.00001

so no line is longer than ``WIDTH`` columns, except a reference whose URL alone is.
Words and URLs are never broken; a word longer than a line (no word is, in prose) is.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator

from newsletter.models import Engagement
from newsletter.render.templates import safe_url

WIDTH = 76
"""Wrapped text stays within this many columns (mail clients show 78; quoting adds 2)."""

_URL = re.compile(r"<(https?://[^\s<>]+)>|\bhttps?://[^\s<>]+")
_MD_LINK = re.compile(
    r"(!?)\[([^\[\]\n]{0,500})\]\(\s*<?((?:[^\s()<>]|\([^\s()<>]{0,200}\)){1,2000})>?\s*\)"
)
_TRAILING = ".,;:!?'\")]}"
_REFERENCE = re.compile(r" (\[\d+\])")
_GLUE = "\u00a0"  # textwrap breaks at ASCII whitespace only
_LIST_MARK = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+")


class References:
    """The links of one rendering, numbered in order of first use (a URL used twice
    keeps its first number)."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def __call__(self, url: object) -> str:
        """``"[n]"`` for a safe link (``render.templates.safe_url``), ``""`` for any other."""
        checked = safe_url(url)
        return self.add(checked) if checked else ""

    def add(self, url: str) -> str:
        """``"[n]"`` for ``url`` as it is: for links the program made itself (the
        unsubscribe and archive links, or their placeholders)."""
        if url not in self._numbers:
            self._numbers[url] = len(self._numbers) + 1
        return f"[{self._numbers[url]}]"

    def inline(self, text: object) -> str:
        """``text`` with each URL in it replaced by its reference."""
        return _URL.sub(self._url_reference, str(text))

    def markdown(self, source: str) -> str:
        """Markdown ``source`` as text: each link ``[label](url)`` becomes ``label [n]``
        and each bare or ``<url>`` becomes ``[n]``; the rest stays as written, long lines
        wrapped (list items with a hanging indent)."""
        text = _MD_LINK.sub(self._markdown_link, source.replace("\r\n", "\n"))
        text = self.inline(text)
        return "\n".join(_wrap_line(line) for line in text.strip("\n").split("\n"))

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return ((n, url) for url, n in self._numbers.items())

    def __len__(self) -> int:
        return len(self._numbers)

    def _url_reference(self, m: re.Match[str]) -> str:
        if m.group(1):
            return self(m.group(1)) or m.group()
        # Prose punctuation after a URL is not part of it ("see https://x.org/a.").
        url = m.group().rstrip(_TRAILING)
        ref = self(url)
        return ref + m.group()[len(url) :] if ref else m.group()

    def _markdown_link(self, m: re.Match[str]) -> str:
        image, label, url = m.groups()
        ref = self(url)
        if image:
            return f"{label} {ref}".strip() if label else ref
        return f"{label} {ref}" if ref else label


LINK_LABELS = {
    "paper": "Paper",
    "pdf": "PDF",
    "code": "Code",
    "project": "Project page",
    "video": "Video",
    "discussion": "Discussion",
}
"""How the text names a paper's or video's extra links (``EntryMedia.links`` kinds)."""


def link_label(kind: str) -> str:
    """``"pdf"`` -> ``"PDF"``: the name of a kind of extra link."""
    return LINK_LABELS.get(kind, kind.capitalize())


def engagement_text(engagement: Engagement) -> str:
    """``", 122 upvotes, 7 comments"``: what a source says about a story, each part
    after a comma ('' when it says nothing)."""
    parts = (
        (engagement.upvotes, "upvote"),
        (engagement.points, "point"),
        (engagement.comments, "comment"),
    )
    return "".join(f", {n} {word}{'' if n == 1 else 's'}" for n, word in parts if n is not None)


def wrap(text: object, width: int = WIDTH, indent: str = "", first: str | None = None) -> str:
    """``text`` as lines of at most ``width`` columns: whitespace collapsed, words and URLs
    kept whole, every line after the first indented by ``indent``, the first by ``first``
    (default: ``indent``)."""
    words = " ".join(str(text).split())
    if not words:
        return ""
    initial = indent if first is None else first
    # A reference stays on the line of the word before it, never alone on a line.
    words = _REFERENCE.sub(_GLUE + r"\1", words)
    return "\n".join(
        textwrap.wrap(
            words,
            width=width,
            initial_indent=initial,
            subsequent_indent=indent,
            # A URL is never broken; any other word longer than a line is.
            break_long_words=not _URL.search(words),
            break_on_hyphens=False,
        )
    ).replace(_GLUE, " ")


def _wrap_line(line: str) -> str:
    """A long line of Markdown source wrapped, keeping its indent (and a list item's
    hanging indent); a short one as it is."""
    if len(line) <= WIDTH:
        return line.rstrip()
    lead = len(line) - len(line.lstrip())
    mark = _LIST_MARK.match(line)
    hang = " " * (mark.end() if mark else lead)
    return "\n".join(
        textwrap.wrap(
            line.strip(),
            width=WIDTH,
            initial_indent=line[:lead],
            subsequent_indent=hang,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


__all__ = ["LINK_LABELS", "WIDTH", "References", "engagement_text", "link_label", "wrap"]
