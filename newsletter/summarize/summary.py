"""Extractive summaries: whole sentences of a text that fit a character budget.

``item_summary`` is what a digest item gets: the source's own one-line summary when it has
one (Hugging Face's ``ai_summary``); for a paper, the sentences that state what was done or
found (``finding_summary``: "we propose...", "we show...", "our results..." win over the
background an abstract opens with); for anything else, the leading sentences
(``extractive_summary``). The optional LLM summarizer (``services/llm.py``) replaces it
later when configured.

Sentence boundaries are real ones: a period after a known abbreviation ("e.g.", "et al.",
"Fig.", "Dr."), after an initial or inside an initialism ("J. Smith", "U.S.") or inside a
number ("3.5") does not end a sentence. When even the first sentence does not fit, it is
cut at a word boundary and marked with "…"; no word is ever cut.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from newsletter.models import Item

ELLIPSIS = "…"
DEFAULT_BUDGET = 280
"""A tweet's length: enough for one or two sentences of an abstract."""

ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "et al", "al", "fig", "figs", "eq", "eqs", "ref", "refs", "sec", "nos"}
    | {"vs", "cf", "approx", "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc"}
    | {"ltd", "co", "corp", "dept", "univ", "vol", "pp", "ch", "tab", "resp", "ca"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)
"""Lowercase words (without the final period) after which a period ends no sentence."""

_BLOCK_RE = re.compile(
    r"<!--.*?(?:-->|\Z)|<(?:script|style)\b.*?(?:</(?:script|style)\s*>|\Z)"
    r"|</?(?:p|div|br|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|section|article|hr"
    r"|figure|figcaption|dl|dd|dt|header|footer)\b[^<>]*>",
    re.S | re.I,
)
# Inline tags vanish without a space: "<b>world</b>." stays "world.".
_INLINE_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>")
# No bracket inside brackets: an unclosed "[" or "![" stops at the next one instead of
# scanning to the end of the text, once per bracket (issue 11, finding 2).
_MD_IMAGE_RE = re.compile(r"!\[([^\[\]]*)\]\([^()]*\)")
_MD_LINK_RE = re.compile(r"\[([^\[\]]+)\]\((?:[^()\s]+)\)")
# "**bold**" and "`code`" only: "__" is too often part of a name ("__init__"). The span
# stops at the next marker, so an unclosed one costs the distance to the next.
_MD_BOLD_RE = re.compile(r"\*\*(?=[^\s*])((?:[^*\n]|\*(?!\*))+?)(?<=\S)\*\*")
_MD_CODE_RE = re.compile(r"`(?=[^\s`])([^`\n]+?)(?<=\S)`")
_SPACE_RE = re.compile(r"\s+")
# A candidate end: terminal punctuation, optional closing quotes/brackets, then a space.
# It starts only at the start of a run of punctuation and never backtracks into one: a run
# of a million periods is scanned once, not once per period.
_END_RE = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?= )")
_TRAILING_PUNCT = ",;:–—-([{/"


def clean_text(text: str) -> str:
    """``text`` as plain text: markup and entities removed, whitespace collapsed."""
    text = _INLINE_TAG_RE.sub("", _BLOCK_RE.sub(" ", text))
    text = _MD_IMAGE_RE.sub(r"\1", text)
    text = _MD_LINK_RE.sub(r"\1", text)
    text = _MD_BOLD_RE.sub(r"\1", text)
    text = _MD_CODE_RE.sub(r"\1", text)
    text = html.unescape(text)
    return _SPACE_RE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """The sentences of clean ``text`` (see :func:`clean_text`), in order, unmodified."""
    return list(_sentences(text))


def _sentences(text: str) -> Iterator[str]:
    """:func:`split_sentences` one at a time: a summary stops at the first that does not
    fit, and the rest of a long text is never looked at."""
    start = 0
    for match in _END_RE.finditer(text):
        end = match.end()
        if _is_boundary(text, match.start(), end):
            if end > start:
                yield text[start:end]
            start = end + 1
    if start < len(text):
        yield text[start:]


def extractive_summary(text: str, budget: int = DEFAULT_BUDGET) -> str:
    """The leading whole sentences of ``text`` that fit in ``budget`` characters.

    Markup is stripped and whitespace collapsed first. When the first sentence alone is
    longer than ``budget``, it is cut after the last whole word that fits, followed by
    "…". The result is never longer than ``budget`` and is empty when nothing fits.
    """
    text = clean_text(text)
    if budget <= 0 or not text:
        return ""
    if len(text) <= budget:
        return text
    summary = ""
    for sentence in _sentences(text):
        candidate = f"{summary} {sentence}" if summary else sentence
        if len(candidate) > budget:
            break
        summary = candidate
    return summary or _truncate(text, budget)


# What a paper did or found, in the words abstracts use. A finding ("we show", "results
# demonstrate", "outperforms") or a contribution ("we propose", "we introduce") scores 3;
# what was studied ("we investigate", "we evaluate") or a pointer at the work itself
# ("this paper", "our method", "here we") scores 2; background scores 0.
_WE = (
    r"\bwe\s+(?:(?:also|further|then|first|now|additionally|empirically|experimentally"
    r"|theoretically|systematically|thus|therefore|finally|here)\s+)*"
)
_FINDING_RE = re.compile(
    _WE + r"(?:propose|introduce|present|show|find|found|achieve|outperform|demonstrate|develop"
    r"|design|report|reveal|establish|prove|discover|release|obtain|observe|derive|identify"
    r"|attain|surpass|improve|uncover|contribute|construct|build|create|curate|offer)"
    r"|\b(?:results|experiments|evaluations|findings|analyses|analysis|studies|benchmarks"
    r"|ablations|simulations|tests|measurements)\s+(?:\w+\s+)?(?:show|shows|demonstrate"
    r"|demonstrates|indicate|indicates|reveal|reveals|suggest|suggests|confirm|confirms"
    r"|highlight|highlights)\b"
    r"|\b(?:outperform|outperforms|outperforming|surpasses|surpassing)\b"
    r"|\b(?:our|the\s+proposed|the\s+resulting)\s+(?:[\w-]+\s+){0,3}(?:achieves|achieve"
    r"|yields|yield|improves|improve|reduces|reduce|reaches|reach|attains|matches|enables"
    r"|delivers|generalizes|scales|sets|establishes)\b"
    r"|\b(?:achiev|set|reach|establish)\w*\s+(?:a\s+)?(?:new\s+)?state[- ]of[- ]the[- ]art"
    r"|\b(?:is|are)\s+(?:proposed|introduced|presented|shown\s+to|found\s+to)\b",
    re.IGNORECASE,
)
_DONE_RE = re.compile(
    _WE + r"(?:investigate|evaluate|study|analy[sz]e|explore|examine|conduct|benchmark"
    r"|compare|formulate|apply|train|describe|address|tackle|leverage|extend|provide)"
    r"|\b(?:this|the present)\s+(?:paper|work|study|article|report|thesis|letter)\b"
    r"|\bhere,?\s+we\b"
    r"|\bour\s+(?:\w+\s+)?(?:method|approach|model|framework|system|algorithm|results"
    r"|experiments|analysis|findings|benchmark|dataset|technique|architecture|pipeline)\b",
    re.IGNORECASE,
)


_ID_LINE_RE = re.compile(r"\barXiv:\s*[\w./-]+\Z", re.IGNORECASE)
MAX_PAPER_TEXT = 20_000
"""Characters of a paper's text searched for findings: an abstract is a tenth of it, and
a hostile "paper" must not cost more than that."""


def _without_id_line(text: str) -> str:
    """``text`` without the id line a paper list appends ("arXiv: 2503.10018"): a link in
    the HTML, not a finding. Only the tail is searched (linear on any text)."""
    text = text.rstrip()
    head, tail = text[:-64], text[-64:]
    match = _ID_LINE_RE.search(tail)
    return head + tail[: match.start()] if match else text


def finding_score(sentence: str) -> int:
    """How much ``sentence`` says what a paper did or found: 3 for a finding or
    contribution, 2 for what was studied or a pointer at the work, 0 for background."""
    if _FINDING_RE.search(sentence):
        return 3
    return 2 if _DONE_RE.search(sentence) else 0


def finding_summary(text: str, budget: int = DEFAULT_BUDGET) -> str:
    """The sentences of a paper's abstract that state what was done or found, in their
    original order, as many as fit ``budget``; the best first.

    The highest-scoring sentences (:func:`finding_score`) are taken first, earlier ones
    first among equals, each only if it still fits; the kept ones read in the abstract's
    order. A text that fits whole is returned whole. When no sentence says what was done,
    this is :func:`extractive_summary` (the lead); when the best such sentence alone does
    not fit, it is cut at a word boundary with "…" rather than fall back to background.
    """
    text = clean_text(text[:MAX_PAPER_TEXT])
    if budget <= 0 or not text:
        return ""
    if len(text) <= budget:
        return text
    sentences = split_sentences(text)
    scored = [(finding_score(s), i) for i, s in enumerate(sentences)]
    ranked = sorted((-score, i) for score, i in scored if score > 0)
    if not ranked:
        return extractive_summary(text, budget)
    chosen: list[int] = []
    used = -1  # the joining space before the first sentence is not spent
    for _, i in ranked:
        cost = len(sentences[i]) + 1
        if used + cost <= budget:
            chosen.append(i)
            used += cost
    if not chosen:
        return _truncate(standalone(sentences[ranked[0][1]]), budget)
    chosen.sort()
    # A sentence whose predecessor is left out reads alone: "Therefore, …" or "To address
    # these challenges, we …" would point at background the reader never sees.
    return " ".join(
        standalone(sentences[i]) if i - 1 not in chosen else sentences[i] for i in chosen
    )


_LEAD_IN_RE = re.compile(
    r"^(?:therefore|thus|hence|however|moreover|furthermore|additionally|in addition|"
    r"consequently|as a result|to this end|in this (?:context|setting|regard)|"
    r"to (?:address|tackle|overcome|solve|bridge|fill|mitigate|close) "
    r"(?:these|this|such|the(?:se)?|both)(?: \w+){0,3}),\s+",
    re.IGNORECASE,
)


def standalone(sentence: str) -> str:
    """``sentence`` without a lead-in that points at the sentence before it ("Therefore,",
    "To address these challenges,"), its first letter raised; as is when nothing is left."""
    rest = _LEAD_IN_RE.sub("", sentence, count=1)
    if rest == sentence or len(rest) < 20:
        return sentence
    return rest[0].upper() + rest[1:]


def item_summary(item: Item, budget: int = DEFAULT_BUDGET) -> str:
    """The summary a digest shows for ``item``: the source's own summary (HF's
    ``ai_summary``) when an entry has one, else :func:`finding_summary` for a paper
    (an entry whose media links a paper page or PDF), else the lead sentences."""
    media = item.media
    if media is not None and media.ai_summary:
        own = extractive_summary(media.ai_summary, budget)
        if own:
            return own
    if media is not None and media.is_paper:
        return finding_summary(_without_id_line(item.entry.text), budget)
    return extractive_summary(item.entry.text, budget)


def _truncate(text: str, budget: int) -> str:
    """The longest word-boundary prefix of ``text`` that fits ``budget`` with "…"."""
    room = budget - len(ELLIPSIS)
    if room <= 0:
        return ""
    # The cut falls on a space of the text, so the last word kept is whole.
    cut = text.rfind(" ", 0, room + 1)
    if cut <= 0:
        return ""
    head = text[:cut].rstrip(_TRAILING_PUNCT + " ")
    return f"{head}{ELLIPSIS}" if head else ""


def _is_boundary(text: str, punct_start: int, end: int) -> bool:
    """Whether the punctuation at ``punct_start`` (ending at ``end``) ends a sentence."""
    following = text[end + 1 : end + 2]
    # A sentence starts with a capital, a digit, a quote or a bracket, not "e.g. the".
    if not following or not (following.isupper() or following.isdigit() or following in "\"'“‘(["):
        return False
    if text[punct_start] != ".":
        return True
    # The word before the punctuation: back to the last whitespace (a regular expression
    # searching for it would scan the text from its start, once for every period).
    start = punct_start
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    if start == punct_start:
        return True
    word = text[start:punct_start].lstrip("\"'“‘([").lower()
    if word in ABBREVIATIONS or word.endswith(" al"):
        return False
    if text[max(0, punct_start - 6) : punct_start].lower().endswith("et al"):
        return False
    # "J. Smith", "U.S. officials": a single letter or dotted initials.
    if len(word) == 1 and word.isalpha():
        return False
    # A bare number before "." ends a sentence ("... in 2024. The").
    return not ("." in word and all(p.isalpha() and len(p) <= 2 for p in word.split(".")))
