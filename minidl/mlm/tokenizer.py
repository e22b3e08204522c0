"""Word-level tokenisation for masked-language modelling, with BERT's special tokens.

The sentiment tokenizer (``minidl.data.text.Tokenizer``) keeps letters only, which suits a
bag of sub-scores but not fill-mask: "happy birthday to [MASK] !" needs its "!" and its
"[MASK]". ``MLMTokenizer`` keeps words (letters, digits, inner apostrophes: "didn't"),
every punctuation mark as a token of its own, and the special tokens written in the text:

    "I didn't like it.<br />[MASK] 10/10!"  ->  i didn't like it . [MASK] 10 / 10 !

Special tokens (``SPECIALS``, in id order: the vocabulary puts them first):

    [PAD] 0   padding, never attended to
    [UNK] 1   a word outside the vocabulary
    [CLS] 2   prepended to every segment (the classifier may read its state)
    [SEP] 3   separator (kept for BERT's layout; one-segment inputs do not use it)
    [MASK] 4  a position the model must fill in

A text that contains a special token spelt exactly (upper case, in brackets) keeps it; any
other bracketed text is ordinary punctuation and words.
"""
from __future__ import annotations

import html
import re

from ..data.vocab import Vocabulary

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = SPECIALS
_SPECIAL = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")
_HTML_TAG = re.compile(r"<!--.*?-->|<[A-Za-z/!][^<>]*>", re.DOTALL)
_LINK = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
# a word (letters/digits, inner apostrophes kept) or one punctuation mark
_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


class MLMTokenizer:
    """Text -> list of tokens (see the module docstring). No settings: what the model saw
    at training time is what it sees at inference time."""

    def __call__(self, text):
        tokens = []
        for i, piece in enumerate(_SPECIAL.split(text)):
            if i % 2:                      # the capturing split puts the specials at odd places
                tokens.append(piece)
                continue
            piece = _HTML_TAG.sub(" ", piece)
            piece = _LINK.sub(" ", html.unescape(piece)).lower()
            tokens.extend(_TOKEN.findall(piece))
        return tokens

    def to_dict(self):
        return {"kind": "mlm-word"}

    @classmethod
    def from_dict(cls, settings):
        if settings != {"kind": "mlm-word"}:
            raise ValueError(f"MLMTokenizer.from_dict: not an MLM tokenizer's settings: {settings!r}")
        return cls()


def build_vocabulary(token_lists, max_size=8000, min_freq=2):
    """The ``max_size`` most frequent tokens of ``token_lists`` after the five specials."""
    return Vocabulary.build(token_lists, max_size=max_size, min_freq=min_freq, specials=SPECIALS)


def special_ids(vocab):
    """{token: id} of the specials; ``ValueError`` if ``vocab`` was not built with them."""
    if missing := [s for s in SPECIALS if s not in vocab]:
        raise ValueError(f"the vocabulary has no {', '.join(missing)}: build it with minidl.mlm.build_vocabulary")
    return {s: vocab[s] for s in SPECIALS}
