"""Which language an entry is written in, told by its function words.

Function words ("the", "der", "les", "los") are a large share of any running text and
nearly disjoint between languages, so counting them tells English, German, French and
Spanish apart on a sentence or two, with no model and nothing to download. A text with
too few of them (a title of three nouns) is taken as English, the digest's default.
"""

from __future__ import annotations

import re

from newsletter.summarize.stopwords import STOP_WORDS_BY_LANGUAGE

DEFAULT_LANGUAGE = "en"
"""The language of a text that shows no other: most feeds the digest reads are English."""

MIN_HITS = 3
"""Function words a language needs in a text before it wins over the default."""

SAMPLE_CHARS = 2000
"""How much of a text is read: enough sentences to tell, bounded for long texts."""

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def detect_language(text: str) -> str:
    """Return the ISO 639-1 code of the language ``text`` is most likely written in.

    ``detect_language("Der Hund und die Katze sind nicht hier")`` gives ``"de"``; a
    text without enough function words of any language gives :data:`DEFAULT_LANGUAGE`.
    """
    words = [w.lower() for w in _WORD.findall(text[:SAMPLE_CHARS])]
    best, best_hits = DEFAULT_LANGUAGE, 0
    for code, stop in STOP_WORDS_BY_LANGUAGE.items():
        hits = sum(1 for w in words if w in stop)
        # Ties go to the default, then to the earlier language: a text equally English
        # and French is read as English.
        if hits > best_hits:
            best, best_hits = code, hits
    return best if best_hits >= MIN_HITS else DEFAULT_LANGUAGE
