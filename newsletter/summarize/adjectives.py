"""Whether an English word is an adjective, told by its ending and a short list.

A section label must be a noun phrase: "Finite", "Quantum" or "Russian" alone name no
topic, and "Large Language" stops before its noun. Without a part-of-speech tagger (the
light ones need a trained model downloaded at run time), the endings that make English
adjectives ("-al", "-ic", "-ive", "-ous", "-able", ...) tell most of them, a list names
the common ones no ending tells ("large", "finite", "quantum"), and a list of nouns
keeps the words those endings would get wrong ("signal", "panic", "archive"). A plural
is a noun whatever its ending: English adjectives take no plural ("Signals",
"Chemicals", "Electronics").
"""

from __future__ import annotations

from functools import lru_cache

_ENDINGS = (
    "al", "ic", "ive", "ous", "ful", "less", "able", "ible", "ian", "ese", "ish", "ed",
    "ly",
)  # fmt: skip
ADJECTIVE_ENDINGS = _ENDINGS
"""Endings that make English adjectives (and "-ly" adverbs, no better as a name); a
word must have three letters before one."""

_ADJECTIVES = """
    quantum finite infinite large small new old deep high low fast slow efficient robust
    novel open free big simple complex strong weak hard soft dark early late recent modern
    real full different important significant multiple several certain common private
    secure safe smart hot cold warm young long short wide huge tiny main major minor top
    latest current future human intelligent independent dependent consistent coherent
    transparent relevant elegant dominant resilient urgent frequent sufficient apparent
    excellent prominent emergent linear nonlinear polar stellar molecular nuclear solar lunar
    regular circular modular cellular popular similar particular vascular angular granular
    singular tabular planar bipolar interstellar multi non pre post anti semi
    unsupervised supervised self aware ready likely unlikely daily weekly monthly yearly
    early cheap rich poor good bad true false whole entire exact direct rapid broad narrow
    dense sparse mixed scalable latent hidden generic dynamic static valid invalid
    faster better larger smaller stronger cheaper lower higher deeper longer shorter
    easier harder simpler greater wider newer older smarter safer richer denser sparser
    fastest best largest smallest strongest cheapest lowest highest deepest longest
    shortest easiest simplest greatest newest plain clear clean quick raw rare fresh pure
    sure wrong relative
"""
ADJECTIVES = frozenset(_ADJECTIVES.split())
"""Common adjectives no ending tells (and prefixes a hyphen may leave alone: "multi")."""

_NOUNS = """
    signal journal proposal animal interval hospital capital rival arrival approval manual
    portal terminal festival survival tutorial potential trial metal crystal canal total
    material criminal principal mineral individual professional rational denial referral
    renewal removal retrieval disposal withdrawal rehearsal mammal pedal petal medal
    appeal ordeal repeal cereal oatmeal charcoal carnival cardinal arsenal scandal sandal
    vandal spiral funeral admiral tribunal pascal cathedral mural rental pedestal recital
    rascal paypal nepal portugal senegal bengal
    music logic topic traffic panic graphic mechanic arithmetic rhetoric republic clinic
    fabric metric critic epic magic tactic picnic plastic relic mosaic attic garlic
    heuristic characteristic diagnostic statistic arctic atlantic pacific antibiotic
    lyric rubric tunic catholic
    archive objective executive native initiative detective directive alternative
    perspective incentive drive hive olive motive narrative derivative explosive primitive
    representative collective locomotive adjective captive fugitive operative
    table cable variable vegetable fable syllable bible constable timetable turntable
    deliverable collectible convertible crucible
    guardian hamiltonian lagrangian laplacian librarian musician physician politician
    technician christian civilian comedian median meridian pedestrian historian
    mathematician statistician electrician custodian veterinarian debian ian
    fish dish wish finish polish radish parish rubbish relish
    cheese geese diocese manganese handful mouthful
    family assembly supply anomaly italy july reply monopoly butterfly rally belly bully
    jelly homily firefly dragonfly sicily emily lily apply ally
    bed shed hundred red embed sled
"""
NOUNS = frozenset(_NOUNS.split())
"""Nouns with an adjective's ending ("signal", "panic", "archive", "guardian", "speed")."""


@lru_cache(maxsize=1 << 14)
def is_adjective(word: str) -> bool:
    """Return whether ``word`` is (most likely) an adjective: ``is_adjective("Finite")``
    and ``is_adjective("magnetic")`` are true; ``is_adjective("Signals")``,
    ``is_adjective("Panic")`` and ``is_adjective("iPhone")`` are false.

    Of a hyphenated word the last part counts ("Fine-Grained" is an adjective,
    "Test-Time" is not); a plural ("Algebras", "Chemicals") is a noun.
    """
    lower = word.lower().replace("’", "'").rsplit("-", 1)[-1]
    if not lower.isalpha():
        return False
    if lower in NOUNS:
        return False
    if lower in ADJECTIVES:
        return True
    if lower.endswith(("ous", "less")):
        return len(lower) > 5
    if lower.endswith(("s", "eed", "fish")):
        return False  # adjectives take no plural: "Chemicals", "Electronics", "Signals"
    return any(lower.endswith(e) and len(lower) >= len(e) + 3 for e in ADJECTIVE_ENDINGS)
