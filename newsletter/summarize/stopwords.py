"""English stop words: function words that say nothing of a text's topic.

The list is scikit-learn's ``ENGLISH_STOP_WORDS`` (``sklearn/feature_extraction/
_stop_words.py``), copied so that the summarize stage does not import scikit-learn, which
takes most of a second. scikit-learn took it from the Glasgow Information Retrieval
Group's stop word list (http://ir.dcs.gla.ac.uk/resources/linguistic_utils/stop_words).
``tests/summarize/test_vectorize.py`` checks that it is still the same set.

Copyright (c) 2007-2026 The scikit-learn developers. All rights reserved.
Distributed under the BSD 3-Clause License:

Redistribution and use in source and binary forms, with or without modification, are
permitted provided that the following conditions are met:

* Redistributions of source code must retain the above copyright notice, this list of
  conditions and the following disclaimer.
* Redistributions in binary form must reproduce the above copyright notice, this list of
  conditions and the following disclaimer in the documentation and/or other materials
  provided with the distribution.
* Neither the name of the copyright holder nor the names of its contributors may be used
  to endorse or promote products derived from this software without specific prior
  written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY
EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE
COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR
TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

_WORDS = """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone
    anything anyway anywhere are around as at back be became because become becomes becoming
    been before beforehand behind being below beside besides between beyond bill both bottom
    but by call can cannot cant co con could couldnt cry de describe detail do done down due
    during each eg eight either eleven else elsewhere empty enough etc even ever every
    everyone everything everywhere except few fifteen fifty fill find fire first five for
    former formerly forty found four from front full further get give go had has hasnt have
    he hence her here hereafter hereby herein hereupon hers herself him himself his how
    however hundred i ie if in inc indeed interest into is it its itself keep last latter
    latterly least less ltd made many may me meanwhile might mill mine more moreover most
    mostly move much must my myself name namely neither never nevertheless next nine no
    nobody none noone nor not nothing now nowhere of off often on once one only onto or
    other others otherwise our ours ourselves out over own part per perhaps please put
    rather re same see seem seemed seeming seems serious several she should show side since
    sincere six sixty so some somehow someone something sometime sometimes somewhere still
    such system take ten than that the their them themselves then thence there thereafter
    thereby therefore therein thereupon these they thick thin third this those though three
    through throughout thru thus to together too top toward towards twelve twenty two un
    under until up upon us very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while whither
    who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves
"""

ENGLISH_STOP_WORDS = frozenset(_WORDS.split())
"""318 English function words, lower case ("a", "about", ..., "yourselves")."""

# German, French and Spanish function words: articles, pronouns, prepositions,
# conjunctions and the commonest auxiliaries, written for this project (the words are
# the language's, not anyone's list). Enough to tell a text's language by how many of
# its words they are, and to keep them out of section labels ("Der · ein").
_GERMAN = """
    aber alle allem allen aller alles als also am an ander andere anderen anderer anderes
    auch auf aus bei beim bin bis bist da damit dann das dass dasselbe dazu dein deine
    dem den denn der des deshalb dich die dies diese diesem diesen dieser dieses dir doch
    dort du durch ein eine einem einen einer eines einige einmal er es etwas euch euer
    eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn
    ihnen ihr ihre ihrem ihren ihrer im in indem ins ist jede jedem jeden jeder jedes
    jene jetzt kann kein keine keinem keinen keiner können könnte machen man manche mehr
    mein meine mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr
    sein seine seinem seinen seiner seit sich sie sind so solche soll sollte sondern sonst
    über um und uns unser unsere unter viel vom von vor wann war waren warum was weil
    welche welchem welchen welcher wenn wer werde werden wie wieder will wir wird wo wurde
    wurden zu zum zur zwar zwischen heute schon immer ganz neue neuen neuer neues
"""
_FRENCH = """
    au aux avec ce ces cet cette dans de des du elle elles en est et eux il ils je la le
    les leur leurs lui ma mais me même mes moi mon ne nos notre nous on ou où par pas pour
    qu que qui sa se ses son sont sur ta te tes toi ton tu un une vos votre vous été être
    avoir ai as avons avez ont était étaient fait faire comme plus moins tout tous toute
    toutes très aussi bien sans sous entre chez depuis dont donc alors ainsi car ni si
    leur cela ceci celui celle ceux celles quand comment pourquoi nouveau nouvelle
"""
_SPANISH = """
    el la los las un una unos unas de del al a en y o u e que con por para sin sobre
    entre hasta desde se su sus lo le les me mi mis te tu tus nos nuestro nuestra vuestro
    es son ser fue fueron era eran está están estar ha han haber hay como más menos muy
    pero también ya no si sí este esta estos estas ese esa esos esas aquel aquella todo
    todos toda todas cuando donde porque qué quien cual cuales otro otra otros otras
    hacia según durante mientras nuevo nueva
"""

STOP_WORDS_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "en": ENGLISH_STOP_WORDS,
    "de": frozenset(_GERMAN.split()),
    "fr": frozenset(_FRENCH.split()),
    "es": frozenset(_SPANISH.split()),
}
"""Function words of each language the digest can tell apart, by ISO 639-1 code."""
