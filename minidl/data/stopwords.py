"""A built-in English stop-word list: common function words that carry little meaning alone.

Used by ``Tokenizer(stop_words="english")``. Every entry is lower-case letters only, because
the tokenizer compares words after its cleaning (``letters_only`` turns "it's" into "it").

Deliberately NOT in the list (see ``KEPT_FOR_SENTIMENT``):

* negators — "not", "no", "never", "nor", "neither", "none", "nothing", "nobody",
  "nowhere", "cannot", "hardly", "barely", "scarcely", "without". They flip the sentiment
  of what follows: dropping "not" turns "not good" into "good". Many published lists
  (NLTK's, scikit-learn's) include them, which quietly hurts sentiment models.
* the pieces that contractions leave after letters-only cleaning — "don" (from "don't"),
  "didn", "doesn", "isn", "wasn", "aren", "weren", "couldn", "wouldn", "shouldn", "won",
  "hasn", "haven", "hadn", "mustn", "needn", "ain". For the same reason: they are the only
  trace of the negation left in the review.
"""
from __future__ import annotations

KEPT_FOR_SENTIMENT = frozenset("""
    not no never nor neither none nothing nobody nowhere cannot hardly barely scarcely without
    don didn doesn isn wasn aren weren couldn wouldn shouldn won hasn haven hadn mustn needn ain
""".split())

ENGLISH_STOP_WORDS = frozenset("""
    a an the
    i me my mine myself we us our ours ourselves you your yours yourself yourselves
    he him his himself she her hers herself it its itself they them their theirs themselves
    one ones oneself
    this that these those who whom whose which what whatever whoever whichever
    am is are was were be been being have has had having do does did doing done
    will would shall should can could may might must ought
    and or but if then else so than as because while whereas though although unless until
    of at by for with about against between into through during before after above below
    to from up down in out on off over under again further once upon within along across
    among around behind beside besides beyond toward towards onto via per
    here there when where why how all any both each few more most other some such
    own same too very just also only even still yet ever
    s t d ll m o re ve y
    get gets got let lets
    im ive youre youve theyre theyve
""".split()) - KEPT_FOR_SENTIMENT
