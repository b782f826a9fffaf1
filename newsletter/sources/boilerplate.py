"""Boilerplate learned per source: the lines a feed puts around every entry ("Continue
reading…", "The post … appeared first on …", Hacker News's lone "Comments", GitHub's
"Release Notes / Released on …", a signature, an install table) removed from the entry's
text and HTML, so that summaries, grouping and dedupe see what the entry says.

How a line is judged boilerplate:

- **learned**: at an edge of the text (first or last line still there), the same line, up
  to the entry's own title, digits and URLs, in at least :data:`MIN_SHARE` of the source's
  entries and in at least :data:`MIN_COUNT` of them (so a two-entry feed keeps its text).
  The edges are peeled one line per round, so a template of several lines ("Release
  Notes", then "Released on 2025-12-12.") goes line by line while each next line has
  about as much support as the last (:data:`TEMPLATE_SUPPORT`); a heading that is only
  common ("Bug fixes") stays, and so does any line away from the edges;
- **known**: a short list of phrases that are boilerplate wherever they are found at an
  edge, even in a single entry (:data:`KNOWN_EDGE_LINES`), and a "Continue reading…" or
  "[…]" that ends the last line (:data:`TRAILING_PHRASE`).

Pure: entries in, entries out; no I/O. ``strip_boilerplate`` runs where a source's
entries are parsed (``parse.parse_source``) and again where a digest is built from stored
entries of several fetches.
"""

from __future__ import annotations

import html as html_lib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from newsletter.models import Entry

__all__ = [
    "KNOWN_EDGE_LINES",
    "MIN_COUNT",
    "MIN_SHARE",
    "TRAILING_PHRASE",
    "strip_boilerplate",
]

MIN_SHARE = 0.6
"""A line is learned when at least this share of a source's entries have it at the same
edge (templates put it in nearly every entry; a common section heading is rarer)."""
MIN_COUNT = 3
"""...and at least this many entries: two entries that open alike prove nothing."""
TEMPLATE_SUPPORT = 0.9
"""After a learned line, the next line at that edge needs this share of its support."""
MAX_LINE = 500
"""Longer lines are content, never learned boilerplate."""
MAX_ROUNDS = 100
"""Lines peeled from each edge at most (a release's download table is about 60)."""

_ARROWS = r"[\s.…»›→>]*"
KNOWN_EDGE_LINES = re.compile(
    r"(?:continue|keep) reading(?: (?:on|at) .{1,80})?"
    + _ARROWS
    + r"|read (?:more|the (?:full|whole|rest of the) (?:article|story|post))"
    r"(?: (?:on|at) .{1,80})?" + _ARROWS + r"|the post .{1,500} appeared first on .{1,200}"
    r"|comments?|discuss(?: on .{1,80})?|\(?(?:article|comments) url: \S+\)?"
    r"|points: \d+|# comments: \d+"
    r"|release notes|released on \d{4}-\d{2}-\d{2}\.?"
    r"|subscribe now|share|leave a comment"
    r"|thanks for reading .{1,120}(?:subscribe|support).{0,120}",
    re.IGNORECASE,
)
"""Whole lines (matched case-insensitively) that are boilerplate at any edge of any
entry: feed templates of Guardian, Medium, WordPress, Hacker News and hnrss, GitHub
release notes and Substack."""

TRAILING_PHRASE = re.compile(
    r"(?:^|(?<=[.!?…\"”’')\]])[ \t]+)"
    r"(?:(?:continue|keep) reading|read more)(?: (?:on|at) [^\n]{1,80})?[ \t.…»›→>]*\Z"
    r"|[ \t]*\[(?:…|\.\.\.|&hellip;)\][ \t]*\Z",
    re.IGNORECASE,
)
"""The end of a last line that is boilerplate: "… the end. Continue reading →", or
WordPress's "[…]" after a cut excerpt (which becomes "…")."""

_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def _key(line: str, title: str) -> str | None:
    """What two entries' lines must share to count as the same line: lowercase, the
    entry's own title, URLs and numbers replaced by placeholders. ``None``: too long to
    be boilerplate."""
    if len(line) > MAX_LINE:
        return None
    s = _SPACE.sub(" ", line.strip()).lower()
    if title and len(title) >= 4:
        s = s.replace(title, "\x00title")
    s = _URL.sub("\x00url", s)
    return _DIGITS.sub("0", s)


@dataclass(slots=True)
class _Text:
    """One entry's text as lines, and how many lines each edge has lost so far."""

    lines: list[str]
    """The text's non-empty lines, stripped."""
    title: str
    """The entry's title as ``_key`` compares it."""
    lead: int = 0
    trail: int = 0

    def key(self, i: int) -> str | None:
        """Line ``i`` as compared across entries (computed for edge lines only)."""
        return _key(self.lines[i], self.title)

    def edge(self, leading: bool) -> int | None:
        """The index of the line at that edge, if any line is left."""
        if self.lead + self.trail >= len(self.lines):
            return None
        return self.lead if leading else len(self.lines) - 1 - self.trail


def _text(entry: Entry) -> _Text:
    lines = [line.strip() for line in entry.text.split("\n") if line.strip()]
    return _Text(lines, _SPACE.sub(" ", entry.title.strip()).lower())


def _is_known(line: str) -> bool:
    return len(line) <= MAX_LINE + 200 and KNOWN_EDGE_LINES.fullmatch(line.strip()) is not None


def _peel(texts: Sequence[_Text], *, leading: bool, min_share: float, min_count: int) -> None:
    """Peel boilerplate lines off one edge of every text of one source, a line per round."""
    with_text = sum(1 for t in texts if t.lines)
    needed = max(min_count, min_share * with_text)
    for _ in range(MAX_ROUNDS):
        at_edge = [(t, i, t.key(i)) for t in texts if (i := t.edge(leading)) is not None]
        counts = Counter(key for _, _, key in at_edge)
        learned = {k for k, n in counts.items() if k is not None and n >= needed}
        if learned:
            # A template's lines are in the same entries: once a line is peeled, the next
            # is learned only with (nearly) as much support, so a heading that is merely
            # common ("Bug fixes" in 8 of 10 releases after "Released on" in 10) stays.
            needed = max(needed, TEMPLATE_SUPPORT * min(counts[k] for k in learned))
        changed = False
        for t, i, key in at_edge:
            if key in learned or _is_known(t.lines[i]):
                if leading:
                    t.lead += 1
                else:
                    t.trail += 1
                changed = True
        if not changed:
            return


def strip_boilerplate(
    entries: Sequence[Entry], *, min_share: float = MIN_SHARE, min_count: int = MIN_COUNT
) -> list[Entry]:
    """``entries`` with each source's boilerplate lines removed from ``text`` and
    ``content_html`` (see the module's docstring); entries without any are returned as
    they are, in the same order."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        by_source[entry.source].append(i)
    out = list(entries)
    for indices in by_source.values():
        texts = [_text(entries[i]) for i in indices]
        _peel(texts, leading=True, min_share=min_share, min_count=min_count)
        _peel(texts, leading=False, min_share=min_share, min_count=min_count)
        for i, t in zip(indices, texts, strict=True):
            cleaned = _cleaned(entries[i], t)
            if cleaned is not None:
                out[i] = cleaned
    return out


def _cleaned(entry: Entry, t: _Text) -> Entry | None:
    """The entry without the lines peeled off ``t`` (and a trailing phrase); ``None``
    when nothing changes."""
    kept = t.lines[t.lead : len(t.lines) - t.trail]
    suffix = TRAILING_PHRASE.search(kept[-1]) if kept else None
    if not t.lead and not t.trail and suffix is None:
        return None
    removed_lead = t.lines[: t.lead]
    removed_trail = t.lines[len(t.lines) - t.trail :]
    text = _cut_text(entry.text, len(removed_lead), len(removed_trail))
    if suffix is not None:
        text = _end_with(text, suffix)
    content = _cut_html(entry.content_html, removed_lead, removed_trail, suffix is not None)
    return replace(entry, text=text, content_html=content)


def _end_with(text: str, suffix: re.Match[str]) -> str:
    """``text`` whose last line loses the trailing phrase ``suffix`` matched ("[…]"
    becomes "…")."""
    head, sep, last = text.rpartition("\n")
    cut = TRAILING_PHRASE.sub(_ellipsis, last.strip()).rstrip()
    return (head + sep + cut).strip() if cut else head.strip()


def _ellipsis(match: re.Match[str]) -> str:
    return "…" if "[" in match.group(0) else ""


def _cut_text(text: str, lead: int, trail: int) -> str:
    """``text`` without its first ``lead`` and last ``trail`` non-empty lines, the blank
    lines between the others kept."""
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if lead + trail >= len(filled):
        return ""
    start = filled[lead]
    end = filled[len(filled) - 1 - trail]
    return "\n".join(lines[start : end + 1]).strip()


# -- the same lines out of the HTML ---------------------------------------------------------

_EMPTY_TAGS = frozenset({"br", "hr", "wbr"})


def _cut_html(html: str, lead: list[str], trail: list[str], trailing_phrase: bool) -> str:
    """``html`` without the nodes at its edges whose text is the ``lead`` and ``trail``
    lines (and the trailing phrase of its last text). Where the HTML does not line up
    with the text (a line split over nodes), what is left there stays."""
    if not html.strip():
        return html
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    if lead:
        _drop_edge(root, [_flat(line) for line in lead], leading=True)
    if trail:
        _drop_edge(root, [_flat(line) for line in reversed(trail)], leading=False)
    if trailing_phrase:
        _trim_last_text(root)
    inner = html_lib.escape(root.text or "", quote=False) + "".join(
        lxml_html.tostring(child, encoding="unicode") for child in root
    )
    return inner.strip()


def _flat(line: str) -> str:
    return _SPACE.sub(" ", line).strip()


def _node_lines(node: object) -> list[str]:
    """The text lines of one element (as ``markup.html_to_text`` reads it) or text node."""
    from lxml import html as lxml_html

    from newsletter.sources.markup import html_to_text

    if isinstance(node, str):
        return [_flat(node)] if node.strip() else []
    markup = lxml_html.tostring(node, encoding="unicode", with_tail=False)
    return [_flat(line) for line in html_to_text(markup).split("\n") if line.strip()]


def _drop_edge(parent: object, pending: list[str], *, leading: bool) -> list[str]:
    """Remove the nodes at one edge of ``parent`` whose lines are the next ``pending``
    lines (in edge order), descending into a node that holds the last of them and more.
    Returns the lines not found."""
    from lxml.html import HtmlElement

    assert isinstance(parent, HtmlElement)
    # The edge's nodes in order: text before the first child, then each child and the
    # text after it (reversed for the trailing edge).
    nodes: list[tuple[HtmlElement, str]] = [(parent, "text")]
    for child in parent:
        nodes += [(child, "element"), (child, "tail")]
    if not leading:
        nodes.reverse()
    for owner, part in nodes:
        if not pending:
            break
        if part == "element":
            if not isinstance(owner.tag, str):
                continue  # a comment or processing instruction
            lines = _node_lines(owner)
        else:
            lines = _node_lines((owner.text if part == "text" else owner.tail) or "")
        if not leading:
            lines.reverse()
        if not lines:
            if part == "element" and owner.tag in _EMPTY_TAGS:
                _remove(owner)
            continue  # an image or empty text: keep it, look past it
        if lines == pending[: len(lines)]:
            _remove(owner, part)
            pending = pending[len(lines) :]
        elif part == "element" and lines[: len(pending)] == pending:
            pending = _drop_edge(owner, pending, leading=leading)
            break
        else:
            break
    return pending


def _remove(owner: object, part: str = "element") -> None:
    from lxml.html import HtmlElement

    assert isinstance(owner, HtmlElement)
    if part == "text":
        owner.text = None
    elif part == "tail":
        owner.tail = None
    else:
        owner.drop_tree()  # keeps its tail text


def _trim_last_text(root: object) -> None:
    """Cut the trailing phrase off the last text of ``root`` (a link left empty goes)."""
    from lxml import etree
    from lxml.html import HtmlElement

    assert isinstance(root, HtmlElement)
    last: tuple[HtmlElement, str] | None = None
    # Text comes at an element's start, its tail after its end: walk both events.
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if not isinstance(el.tag, str):
            continue
        if event == "start" and el.text and el.text.strip():
            last = (el, "text")
        elif event == "end" and el is not root and el.tail and el.tail.strip():
            last = (el, "tail")
    if last is None:
        return
    el, part = last
    value = (el.text if part == "text" else el.tail) or ""
    cut = TRAILING_PHRASE.sub(_ellipsis, value.rstrip())
    if part == "tail":
        el.tail = cut
    else:
        el.text = cut
        if not cut.strip() and el is not root and el.tag == "a" and len(el) == 0:
            el.drop_tree()
