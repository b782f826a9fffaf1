"""Section labels: a short topic name per section, built from the section's own items.

How a label is found (pure, deterministic, no model):

1. Each text is cut into **chunks** at punctuation, numbers and the function words of
   its language (``language.detect_language``), so a chunk is a run of content words:
   "A faster GPU kernel for sparse attention" gives "faster GPU kernel" and "sparse
   attention". Every run of one to three consecutive words of a chunk is a candidate
   phrase. Phrases are compared by their words lower-cased and folded to the singular
   ("GPUs" and "GPU" are one word), and shown as the texts mostly write them.
2. Each candidate is scored against the **rest of the edition**, class-based TF-IDF
   style: the share of the section's items that hold it, times how rare it is in the
   edition (``log(1 + n / df)``), with a small bonus per extra word so that "language
   models" beats "language" when both cover the same items.
3. What may never be a label: a function word of any language the section's items are
   written in, a word that says how something is written rather than what it is about
   (``text.STOP_WORDS``, ``text.LABEL_STOP_WORDS``), feed boilerplate ("Continue
   reading", "Comments", "Read more", "appeared first", "Things"), category codes and
   versions ("cs.AI", "0.0.1-alpha"), a vague word alone ("Model", "Group"), phrases
   one source puts on nearly all its items ("World news"), and phrases held by most of
   the edition.
4. An English phrase ends in a noun: an adjective alone or as the last word ("Finite",
   "Quantum", "Large Language") is no name (``adjectives.is_adjective``).
5. The label is the best phrase (or a longer phrase holding it that covers enough of
   its items: "Phase Transition" over "Phase") in Title Case, acronyms and brand
   spellings kept as written (GPU, LLMs, iPhone). A second phrase joins it with " & "
   when the first covers less than half the section and the second scores close to
   it; the two never share a word (plural and case variants, or an acronym and its
   phrase, count as one), and words another section is named by come last.

A section whose items share no phrase has no topic a reader could name:
:func:`section_label` returns ``None`` for it, and the caller files its items under
"Other".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from newsletter.summarize.adjectives import is_adjective
from newsletter.summarize.language import detect_language
from newsletter.summarize.stopwords import STOP_WORDS_BY_LANGUAGE
from newsletter.summarize.text import LABEL_STOP_WORDS, STOP_WORDS, stem

_FEED_BOILERPLATE = """
    comment comments continue continued reading read more appeared first post posts
    posted thing things stuff click here link links share shares subscribe subscribed
    newsletter http https www com org html htm rss feed feeds view views watch page pages
    article articles story stories today yesterday week weeks year years day days time
    times way ways lot lots people said says say told according update updates updated
    abstract announce type arxiv cross replace submitted version author authors introduction
    release released notes photo photos video videos list lists item items look looks
    need needs make makes want wants know knows good better best great little really
    actually many much first second last next bad part parts one two three four five
    six seven eight nine ten et al available access
"""
FEED_BOILERPLATE = frozenset(_FEED_BOILERPLATE.split())
"""Words feeds put around every item ("Continue reading", "Comments", "The post ...
appeared first on ...") or that name no topic ("Things", "people", "time"): never in a
label."""

_VERBS = """
    require requires required outperform outperforms remain remains develop develops
    leverage leverages reveal reveals suggest suggests explore explores spend spends
"""
VERBS = frozenset(_VERBS.split())
"""Verbs of abstracts and news the stop word lists miss ("... & Requires"): a verb ends
a noun phrase and names no topic."""

_ACRONYMS = """
    ai ml llm llms gpu gpus cpu cpus tpu api apis nlp rl vr ar xr iot os ui ux css html
    sql json xml pdf usb ssd ram cuda gpt bert rag ci cd aws gcp eu uk us usa un nasa
    esa cern lhc qcd dna rna covid seo cdn dns tls ssl ssh http vpn ipo ceo cto
"""
ACRONYMS = frozenset(_ACRONYMS.split())
"""Acronyms written in capitals even where a feed writes them in lower case ("llms" in
tags): the texts' own spelling decides for the rest."""

_VAGUE = """
    model theory data analysis effect state function property process structure case
    form order type level value term field set group space system tool application
    study learning problem result quality user version feature support issue change
    title company news thing man men woman women person
"""
VAGUE_ALONE = frozenset(_VAGUE.split())
"""Words (folded) that name a topic only inside a phrase: "Language Models", "Group
Theory", "Magnetic Field" are topics; "Model", "Group", "Field" alone are not."""

MAX_WORDS = 3
"""Longest candidate phrase: a label is a name, not a sentence."""

MAX_CHARS = 40
"""Longest label phrase, in characters."""

LEAD_BONUS = 1.25
"""Score factor for a phrase the section's first item holds: of two near-equal names,
the one that fits the item the reader sees first ("Apple & iPhone" over a glibc post
reads as a mistake)."""

PHRASE_BONUS = 0.15
"""Score bonus per extra word: a phrase that covers the same items as its head word
names the topic better ("Language Models" over "Language")."""

SOURCE_SHARE = 0.8
SOURCE_MIN = 5
SOURCE_SAMPLE = 50
"""A phrase on at least 80% of one source's items (of a source with five or more,
read from up to 50) is that source's boilerplate, not a topic."""

EDITION_SHARE = 0.5
"""A phrase held by more than this share of the whole edition (of at least
:data:`EDITION_MIN` items) is boilerplate of the feeds, not a topic."""
EDITION_MIN = 8

LABEL_CHARS = 34
"""Longest pair of phrases a label joins (one phrase alone may be longer)."""

PROMOTE = 0.4
"""A longer phrase replaces the best phrase it holds when it covers this share of the
best phrase's items: the longer name says more ("Phase Transition", not "Phase")."""

SECOND_SCORE = 0.6
"""A second phrase must score this share of the first: a weak second word ("Phase &
Quantum") blurs a name more than it adds."""

SECOND_PHRASE_BELOW = 0.5
"""When the best phrase covers less than this share of a section, a second phrase
joins it."""

HEAD_CHARS = 400
"""How much of each text is read for phrases: the title (which ``entry_text`` puts
first, twice) and the start of the body say what an item is about, and the bound keeps
10,000 entries fast."""

EXTRA_TERMS = 3
"""Topic phrases returned with a label for the section's intro line."""

CANDIDATES = 60
"""Best phrases of a section kept as candidates: the label and its intro's topics are
among the first few; the rest only tell which words belong together in a phrase."""

BACKGROUND = 1000
"""Most texts read to count how common a phrase is in the edition."""

SAMPLE = 200
"""Items of one section read for its label (a sorted, so stable, sample)."""

_DOTTED = re.compile(r"(?<!\w)\w+(?:\.\w+)+")
"""Dotted tokens: category codes ("cs.AI"), versions ("0.0.1"), host names, "e.g.": never
part of a phrase."""
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_SPLIT = re.compile(r"[^\w\s'’\-]+|\s[\-–—]\s|(?<!\w)[\-']|[\-'](?!\w)|_")
_WORD = re.compile(r"[^\W_][\w'’\-]*[^\W_]|[^\W\d_]")


@dataclass(frozen=True)
class Phrase:
    """A candidate label: its words folded (``key``), how it is shown, what it covers."""

    key: tuple[str, ...]
    shown: str
    count: int
    score: float


@lru_cache(maxsize=1 << 16)
def _fold(word: str) -> str:
    lower = word.lower().replace("’", "'")
    # "GPUs", "LLMs": an acronym's plural, which ``stem`` leaves alone when it ends in
    # "us" (as "virus" should be).
    if lower.endswith("s") and (lower[:-1] in ACRONYMS or re.fullmatch(r"[A-Z0-9]+s", word)):
        return lower[:-1]
    if lower.endswith("es") and lower[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return lower[:-2]  # "fixes", "boxes", "patches"
    return stem(lower)


def _same_word(a: str, b: str) -> bool:
    """Whether two folded words are one word in two forms ("fix", "fixed")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and long.startswith(short) and len(long) - len(short) <= 2


@lru_cache(maxsize=1 << 16)
def _repeats(words: tuple[str, ...]) -> bool:
    return any(_same_word(a, b) for i, a in enumerate(words) for b in words[i + 1 :])


def _stop_words(languages: Iterable[str]) -> frozenset[str]:
    words: set[str] = set(STOP_WORDS) | LABEL_STOP_WORDS | FEED_BOILERPLATE | VERBS
    for code in {"en", *languages}:
        words |= STOP_WORDS_BY_LANGUAGE.get(code, frozenset())
    return frozenset(words)


@lru_cache(maxsize=1 << 16)
def _usable(word: str, stop: frozenset[str]) -> bool:
    lower = word.lower()
    if "'" in lower or "’" in lower:
        return False  # "don't", "we're": contractions of function words
    if not lower[:1].isalpha():
        return False  # "1-alpha", "2024s": versions and numbers name no topic
    if lower in stop or _fold(word) in stop or len(lower) < 2:
        return False
    # A word needs a letter; "2024" or "v1" name nothing.
    letters = sum(c.isalpha() for c in lower)
    return letters >= 2 and not lower.startswith(("http", "www"))


def chunks(text: str, stop: frozenset[str]) -> list[list[str]]:
    """Return the runs of content words of ``text``, as written: cut at punctuation,
    numbers and the words of ``stop``."""
    result: list[list[str]] = []
    for piece in _SPLIT.split(_DOTTED.sub(" | ", text)):
        run: list[str] = []
        for word in _WORD.findall(piece):
            word = _POSSESSIVE.sub("", word.strip("'’"))
            if _usable(word, stop):
                run.append(word)
            elif run:
                result.append(run)
                run = []
        if run:
            result.append(run)
    return result


def phrases(text: str, stop: frozenset[str], *, nouns: bool = False) -> dict[tuple[str, ...], str]:
    """Return the candidate phrases of ``text``: folded words -> the text's spelling.

    With ``nouns`` (English texts), a phrase must end in a noun: "Finite" or "Large
    Language" alone name nothing (``adjectives.is_adjective``).
    """
    found: dict[tuple[str, ...], str] = {}
    for run in chunks(text, stop):
        heads = [not (nouns and is_adjective(w)) for w in run]
        for size in range(1, MAX_WORDS + 1):
            for start in range(len(run) - size + 1):
                if not heads[start + size - 1]:
                    continue
                words = run[start : start + size]
                key = tuple(_fold(w) for w in words)
                # "GPU GPUs" or "model models" repeats one word: never a name.
                if size == 1 or not _repeats(key):
                    found.setdefault(key, " ".join(words))
    return found


def _title_word(forms: Counter[str]) -> str:
    """Return one word in Title Case: capitals and inner capitals as the texts write
    them (GPU, LLMs, iPhone, PyTorch), else a capital first letter (Test-Time)."""
    total = sum(forms.values())
    lower = next(iter(forms)).lower()
    folded = _fold(lower)
    capitals = sum(n for f, n in forms.items() if len(f) > 1 and f.rstrip("s").isupper())
    inner = [f for f in forms if any(c.isupper() for c in f[1:]) and not f.isupper()]
    if inner:
        best = max(inner, key=lambda f: (forms[f], f))
        if forms[best] * 2 >= total:
            return best  # "iPhone", "PyTorch", "LLMs" as mostly written
    if folded in ACRONYMS or lower in ACRONYMS:
        plural = lower.endswith("s") and lower[:-1] in ACRONYMS
        return lower[:-1].upper() + "s" if plural else lower.upper()
    if capitals * 3 >= total:
        best = max((f for f in forms if f.rstrip("s").isupper()), key=lambda f: (forms[f], f))
        return best
    return "-".join(p[:1].upper() + p[1:] for p in lower.split("-"))


def title_case(spellings: Counter[str]) -> str:
    """Return a phrase in Title Case from how the texts spell it (counted)."""
    # The most common sequence of lower-cased words decides singular or plural.
    by_lower: Counter[str] = Counter()
    for form, n in spellings.items():
        by_lower[form.lower()] += n
    chosen = min(by_lower, key=lambda f: (-by_lower[f], len(f), f)).split()
    result = []
    for position, word in enumerate(chosen):
        forms: Counter[str] = Counter()
        for form, n in spellings.items():
            words = form.split()
            if len(words) == len(chosen) and words[position].lower() == word:
                forms[words[position]] += n
        result.append(_title_word(forms or Counter({word: 1})))
    return " ".join(result)


class Edition:
    """The texts of one edition, read for phrases on demand (each text once).

    Phrase counts of the edition (``df``) come from at most :data:`BACKGROUND` texts,
    evenly spaced in text order, scaled to the whole: a rare phrase is as rare in a
    1,000-text sample of 10,000, and reading every text would cost more than the
    grouping.
    """

    def __init__(
        self,
        texts: Sequence[str],
        sources: Sequence[str] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.texts = texts
        self.weights = weights
        self._found: dict[int, dict[tuple[str, ...], str]] = {}
        self._languages: dict[int, str] = {}
        self._stops: dict[str, frozenset[str]] = {}
        n = len(texts)
        step = max(1, math.ceil(n / BACKGROUND))
        # Samples are taken in text order, so the same texts in any order give the same
        # labels.
        background = sorted(range(n), key=texts.__getitem__)[::step]
        self.scale = n / max(len(background), 1)
        self.df: Counter[tuple[str, ...]] = Counter(k for i in background for k in self.found(i))
        self.boilerplate = self._source_boilerplate(sources) if sources else frozenset()

    def _source_boilerplate(self, sources: Sequence[str]) -> frozenset[tuple[str, ...]]:
        """Return the phrases one source puts on nearly all its items ("World news" on
        every Guardian story, "Medium" in "Continue reading on Medium")."""
        by_source: dict[str, list[int]] = {}
        for i in sorted(range(len(self.texts)), key=self.texts.__getitem__):
            by_source.setdefault(sources[i], []).append(i)
        found: set[tuple[str, ...]] = set()
        for members in by_source.values():
            sample = members[:SOURCE_SAMPLE]
            if len(sample) < SOURCE_MIN:
                continue
            counts = Counter(k for i in sample for k in self.found(i))
            found.update(k for k, c in counts.items() if c >= SOURCE_SHARE * len(sample))
        return frozenset(found)

    def language(self, i: int) -> str:
        """Return the language of text ``i``."""
        if i not in self._languages:
            self._languages[i] = detect_language(self.texts[i][:HEAD_CHARS])
        return self._languages[i]

    def found(self, i: int) -> dict[tuple[str, ...], str]:
        """Return the candidate phrases of text ``i``: folded words -> its spelling."""
        if i not in self._found:
            code = self.language(i)
            if code not in self._stops:
                self._stops[code] = _stop_words([code])
            self._found[i] = phrases(
                self.texts[i][:HEAD_CHARS], self._stops[code], nouns=code == "en"
            )
        return self._found[i]

    def _lead(self, members: Sequence[int]) -> dict[tuple[str, ...], str]:
        """Return the phrases of the section's heaviest item (the one the reader sees
        first), or none when no weights were given."""
        if not self.weights or not members:
            return {}
        weights = self.weights
        top = max(members, key=lambda i: (weights[i], self.texts[i]))
        return self.found(top)

    def rank(self, members: Iterable[int]) -> list[Phrase]:
        """Return the candidate labels of a section (indices ``members``), best first:
        at most :data:`CANDIDATES` of them."""
        n = len(self.texts)
        members = list(members)
        sample = sorted(members, key=self.texts.__getitem__)[:SAMPLE]
        stop = _stop_words(self.language(i) for i in sample)
        counts: Counter[tuple[str, ...]] = Counter()
        for i in sample:
            counts.update(self.found(i).keys())
        need = 2 if len(sample) > 1 else 1
        lead = self._lead(members)
        scored: list[tuple[float, tuple[str, ...]]] = []
        for key, count in counts.items():
            if count < need or key in self.boilerplate or any(w in stop for w in key):
                continue
            if len(key) == 1 and key[0] in VAGUE_ALONE:
                continue
            df = max(self.df[key] * self.scale, count)
            if n >= EDITION_MIN and df > EDITION_SHARE * n:
                continue
            share = count / len(sample)
            bonus = 1 + PHRASE_BONUS * (len(key) - 1)
            if key in lead:
                bonus *= LEAD_BONUS
            scored.append((share * math.log(1 + n / df) * bonus, key))
        scored.sort(key=lambda x: (-x[0], x[1]))
        ranked: list[Phrase] = []
        for score, key in scored[:CANDIDATES]:
            spellings = Counter(self.found(i)[key] for i in sample if key in self.found(i))
            shown = title_case(spellings)
            if len(shown) <= MAX_CHARS:
                ranked.append(Phrase(key=key, shown=shown, count=counts[key], score=score))
        return ranked


def _abbreviates(word: str, words: Sequence[str]) -> bool:
    """Whether ``word`` is the initials of ``words`` ("dnn", deep neural network)."""
    return len(words) > 1 and word == "".join(w[:1] for w in words)


def _overlaps(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two phrases share a word, or one is the other's acronym ("LLMs" and
    "Large Language Models" name one thing)."""
    if any(_same_word(x, y) for x in a for y in b):
        return True
    return (len(a) == 1 and _abbreviates(a[0], b)) or (len(b) == 1 and _abbreviates(b[0], a))


def _apart(key: Sequence[str], other: Sequence[str], ranked: Sequence[Phrase]) -> bool:
    """Whether ``key`` names something besides ``other``: no shared word, and not two
    halves of one phrase ("Phase" & "Transition" are "Phase Transition")."""
    if _overlaps(key, other):
        return False
    both = set(key) | set(other)
    return not any(both <= set(p.key) for p in ranked)


def _part_of(key: Sequence[str], words: Sequence[str], ranked: Sequence[Phrase]) -> bool:
    """Whether ``key`` is a piece of a longer phrase sharing a word with ``words``
    ("Large" of "Large Language Models" once "Language Models" is named)."""
    return any(
        len(p.key) > len(key) and _contains(p.key, tuple(key)) and _overlaps(p.key, words)
        for p in ranked
    )


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    size = len(shorter)
    return any(longer[i : i + size] == shorter for i in range(len(longer) - size + 1))


def _promote(best: Phrase, ranked: Sequence[Phrase]) -> Phrase:
    """Return the best longer phrase holding ``best`` that covers enough of its items
    ("Phase" -> "Phase Transition"), else ``best``."""
    longer = [
        p
        for p in ranked
        if len(p.key) > len(best.key)
        and _contains(p.key, best.key)
        and p.count >= PROMOTE * best.count
    ]
    return max(longer, key=lambda p: (p.count, p.score, p.key), default=best)


def section_label(
    ranked: Sequence[Phrase], size: int, taken: set[str], *, min_share: float = 0.0
) -> tuple[str, list[str]] | None:
    """Return a section's label and its other topic phrases, or ``None`` when no phrase
    covers ``min_share`` of the section (its items share no topic).

    ``taken`` holds labels already given (lower case): a label is never given twice.
    """
    size = max(1, min(size, SAMPLE))
    usable = [p for p in ranked if p.count >= min_share * size]
    # Words other sections are named by come last: two sections called "Quantum ..."
    # tell the reader less than one "Quantum" and one "Entanglement".
    used = tuple(w for label in taken for w in label_words(label))
    fresh = [p for p in usable if not _overlaps(p.key, used)]
    for candidate in fresh + [p for p in usable if p not in fresh]:
        first = _promote(candidate, usable)
        label = first.shown
        if first.count < SECOND_PHRASE_BELOW * size:
            apart = [p for p in fresh if _apart(p.key, first.key, ranked)]
            second = _promote(apart[0], apart) if apart else None
            if (
                second is not None
                and second.score >= SECOND_SCORE * first.score
                and len(first.shown) + len(second.shown) <= LABEL_CHARS
            ):
                label = f"{first.shown} & {second.shown}"
        if label.lower() in taken:
            label = first.shown
        if label.lower() in taken:
            continue
        words = tuple(label_words(label))
        extra: list[str] = []
        for p in ranked:
            if len(extra) == EXTRA_TERMS:
                break
            if _apart(p.key, words, ranked) and not _part_of(p.key, words, ranked):
                extra.append(p.shown)
                words += p.key
        return label, extra
    return None


def label_words(label: str) -> list[str]:
    """Return the words of a label folded as phrases are compared ("GPUs" -> "gpu")."""
    return [_fold(w) for w in _WORD.findall(label)]
