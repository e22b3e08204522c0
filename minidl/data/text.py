"""Cleaning and tokenisation: the course's recipe as a configurable, serialisable ``Tokenizer``.

The course cleans a review in five steps, and ``Tokenizer()`` does the same by default::

    "I didn't like it.<br /><br />See www.imdb.com/x... 2/10"
    1. strip HTML tags (``<br />`` and any other tag; entities such as ``&amp;`` are decoded)
    2. strip links (``http://...``, ``https://...``, ``www....``)
    3. lower-case
    4. keep letters only: everything else (digits, punctuation, apostrophes) becomes a space
    5. drop one-letter words
    -> ["didn", "like", "it", "see"]

Apostrophes: step 4 splits "didn't" into "didn" + "t" and step 5 drops the "t", exactly as
the course's ``re.sub('[^a-zA-Z]', ' ', text)`` does. "didn" still marks the negation (and the
built-in stop-word list keeps it for that reason); ``letters_only=False`` keeps "didn't"
whole, and digits ("10", "90s") with it. "Letters" are Unicode letters, so "café" stays
"café" where the course's ``[^a-zA-Z]`` made it "caf"; on English reviews that is the only
difference.

Optional steps: ``stop_words`` (``"english"`` for the built-in list in
:mod:`minidl.data.stopwords`, which keeps negators such as "not"), and ``max_length``, which
keeps the FIRST words of a long review (the course used 100).

What the course's cleaning throws away, and how to keep it (every default is the course's, so
a checkpoint saved before these settings existed re-tokenises new text exactly as it did):

* short words -- ``min_word_length=1`` keeps one-letter words: "a", "I" (as "i"), "b".
  (``stop_words="english"`` would drop "a" and "i" again: they are stop words.)
* digits -- ``keep_digits=True`` keeps runs of letters and digits: "10/10" -> "10", "10";
  "90s" -> "90s"; "2/10" -> "10" ("2" is a one-letter word: add ``min_word_length=1``).
  Apostrophes and punctuation still separate words. ``letters_only=False`` keeps digits too,
  and keeps apostrophes inside words ("didn't" stays one word).
* negation -- ``contractions="not"`` writes the negative contractions out: "didn't" -> "did",
  "not"; "can't" -> "can", "not"; "won't" -> "will", "not"; "shan't" -> "shall", "not";
  "ain't" -> "is", "not". The model then sees the same "not" as in "did not", a word that no
  stop-word list here drops. ``contractions="split"`` makes the same cut but keeps the
  clitic as the word "n't" ("didn't" -> "did", "n't"), so a model can tell the two apart.
  Unlike the Penn Treebank's "ca" + "n't" and "wo" + "n't", the irregular stems are written
  as the verbs they are ("can", "will"), which are words a course vocabulary has anyway.
  Only negative contractions ("n't", straight or curly apostrophe) are affected: "it's" and
  "I'm" are cleaned as before. ``None`` (the course): "didn't" -> "didn" (the "t" is one letter).

A ``Tokenizer`` is plain configuration: ``to_dict()`` gives JSON that is saved with a model
checkpoint and ``Tokenizer.from_dict(...)`` rebuilds the same tokenizer at inference time.
Speed: one pass per enabled step, each a compiled regex or a C string method, never a Python
loop over characters (pure-ASCII text, 90% of IMDB, goes through one ``bytes.translate``); the
100,000 IMDB reviews take about five seconds on the 2-core course machine.
"""
from __future__ import annotations

import html
import numbers
import re
from dataclasses import dataclass, field, fields
from typing import NamedTuple

from .stopwords import ENGLISH_STOP_WORDS

# A tag starts with a letter, "/" or "!" right after "<", so "a < b and c > d" and "<3" survive.
_HTML_TAG = re.compile(r"<!--.*?-->|<[A-Za-z/!][^<>]*>", re.DOTALL)
_LINK = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
# A letter is a word character that is neither a digit nor "_" (Unicode-aware, like str.isalpha).
_LETTER_RUN = "[^\\W\\d_]"
# letters_only=False: words of letters/digits, with inner apostrophes kept ("didn't", "rock'n'roll").
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
# keep_digits: a letter or a digit (a word character that is not "_").
_ALNUM = "[^\\W_]"
# For pure-ASCII text: ASCII letters (and digits) stay, every other byte becomes a space.
_ASCII_LETTERS_ONLY = bytes(c if chr(c).isalpha() else 32 for c in range(128)) + bytes([32] * 128)
_ASCII_LETTERS_DIGITS = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + bytes([32] * 128)
# A negative contraction: a whole word of letters ending in n't / n’t ("didn't", "can't", "WON'T").
_NEGATION = re.compile(r"(?<![^\W_])([^\W\d_]*)([nN])['\u2019]([tT])(?![^\W_])")
# Where the plain rule (cut before "n't") leaves no verb: "ca|n't", "wo|n't", "sha|n't", "ai|n't".
_IRREGULAR_STEMS = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
# contractions="split": the cut-off "n't" is marked by a control character until the words are split.
_MARKS = {"\x00": "n't", "\x01": "N'T"}
_MARK = re.compile("([\x00\x01])")
CONTRACTIONS = (None, "split", "not")
# The test of the fast path, by name, so that tests can switch the fast path off and compare.
_is_ascii = str.isascii


class Traced(NamedTuple):
    """One word of a raw text and what the cleaning made of it (see ``Tokenizer.trace``).

    ``word``: as written in the text: a whitespace-separated piece ("it,", "10/10.") or a whole
    HTML tag. ``tokens``: the words it became, each as ``(token, None)`` when kept, or ``(token,
    why)`` when a later step dropped it ("stop word", "past max_length"). ``dropped``: why the
    cleaning left nothing of it ("HTML tag", "link", "too short", "not letters"), else None.
    """

    word: str
    tokens: list
    dropped: str | None


@dataclass(frozen=True)
class Tokenizer:
    """Text -> list of words, by the course's cleaning (each step can be switched off).

    Attributes:
        lowercase: lower-case the text (stop words are matched ignoring case either way).
        strip_html: remove HTML tags such as ``<br />`` and decode entities (``&amp;`` -> ``&``).
        strip_links: remove ``http(s)://...`` and ``www....`` links.
        letters_only: keep runs of letters only (course default). False: keep words made of
            letters and digits with inner apostrophes ("didn't", "90s"); punctuation is dropped.
        min_word_length: drop words shorter than this (2, the course, drops one-letter words such
            as "a" and "I"; 1 keeps every word).
        stop_words: None (keep every word), "english" (the built-in list, which keeps
            negators), or an iterable of words to drop.
        max_length: keep at most this many words, the FIRST ones (None: no limit; course: 100).
        keep_digits: with ``letters_only``, keep runs of letters and digits, not letters alone:
            "10/10" -> "10", "10"; "90s" -> "90s". Every other character still separates words.
            (``letters_only=False`` keeps digits already; there this setting changes nothing.)
        contractions: what becomes of a negative contraction such as "didn't". None (the
            course): whatever the other steps make of it ("didn" and a one-letter "t").
            "not": "did", "not" (and "can't" -> "can", "not"; "won't" -> "will", "not").
            "split": "did", "n't" -- the same cut, with the clitic kept as the word "n't".
    """

    lowercase: bool = True
    strip_html: bool = True
    strip_links: bool = True
    letters_only: bool = True
    min_word_length: int = 2
    stop_words: object = None
    max_length: int | None = None
    keep_digits: bool = False
    contractions: str | None = None
    _stop: frozenset = field(default=frozenset(), init=False, repr=False, compare=False)
    _words: re.Pattern = field(default=None, init=False, repr=False, compare=False)
    _table: bytes = field(default=b"", init=False, repr=False, compare=False)
    _kept_char: re.Pattern = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self._check_settings()
        object.__setattr__(self, "_stop", self._stop_set())
        run = _ALNUM if self.keep_digits else _LETTER_RUN
        if self.letters_only:
            # "{2,}" makes the regex itself skip one-letter words: no Python-level filter needed
            words, kept_char = re.compile(f"{run}{{{self.min_word_length},}}"), re.compile(run)
        else:
            words, kept_char = _WORD, re.compile(r"\w")
        object.__setattr__(self, "_words", words)
        object.__setattr__(self, "_kept_char", kept_char)
        object.__setattr__(self, "_table", _ASCII_LETTERS_DIGITS if self.keep_digits else _ASCII_LETTERS_ONLY)

    def _check_settings(self):
        """Raise ValueError on a bad setting; store the counts and the flag as plain ints and bool (JSON-able)."""
        if not is_count(self.min_word_length):
            raise ValueError(f"Tokenizer: min_word_length must be an int >= 1, got {self.min_word_length!r}")
        if self.max_length is not None and not is_count(self.max_length):
            raise ValueError(f"Tokenizer: max_length must be None or an int >= 1, got {self.max_length!r}")
        for name in ("lowercase", "strip_html", "strip_links", "letters_only", "keep_digits"):
            if getattr(self, name) not in (True, False):   # NumPy's bools too; Tokenizer(100) is lowercase=100
                raise ValueError(f"Tokenizer: {name} must be True or False, got {getattr(self, name)!r}; pass "
                                 f"settings by name, e.g. Tokenizer(max_length=100)")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if not (self.contractions is None or isinstance(self.contractions, str) and self.contractions in CONTRACTIONS):
            raise ValueError(f'Tokenizer: contractions must be None, "split" or "not", got {self.contractions!r}')
        object.__setattr__(self, "min_word_length", int(self.min_word_length))
        if self.max_length is not None:
            object.__setattr__(self, "max_length", int(self.max_length))

    def _stop_set(self):
        """The stop words, lower-cased: with lowercase=False, "The" is still the stop word "the"."""
        stop_words = self.stop_words
        if isinstance(stop_words, str):
            if stop_words != "english":
                raise ValueError(f'Tokenizer: stop_words must be None, "english" or a list of words, '
                                 f'got the string {stop_words!r} (write ["{stop_words}"] for a one-word list)')
            return ENGLISH_STOP_WORDS   # (lower-case already)
        if stop_words is None:
            return frozenset()
        # stored as a sorted tuple: hashable, and to_dict() is the same for the same words
        stop_words = tuple(sorted({str(w) for w in stop_words}))
        object.__setattr__(self, "stop_words", stop_words)
        return frozenset(w.lower() for w in stop_words)

    def __call__(self, text):
        """The list of words of ``text`` (a str), cleaned as configured."""
        if not isinstance(text, str):
            raise TypeError(f"a Tokenizer takes one text (a str), got {type(text).__name__}; "
                            f"tokenize_all(texts) takes a list of them")
        words = self._split_words(self._clean(text))
        if self._stop:
            words = self._drop_stop_words(words)
        if self.max_length is not None:
            del words[self.max_length:]
        return words

    def _clean(self, text):
        """Steps 1-3: ``text`` without HTML tags and links, lower-cased (as configured)."""
        if self.strip_html and "<" in text:
            text = _HTML_TAG.sub(" ", text)
        if self.strip_html and "&" in text:
            text = html.unescape(text)
        if self.lowercase:
            text = text.lower()  # before the links: case does not change what a link covers
        if self.strip_links and ("://" in text or "www." in (text if self.lowercase else text.lower())):
            text = _LINK.sub(" ", text)
        return text

    def _split_words(self, text):
        """Steps 4-5, negative contractions first (as configured): the words of the cleaned ``text``."""
        if self.contractions is None or ("'" not in text and "\u2019" not in text):
            return self._split_runs(text)
        if self.contractions == "not":
            return self._split_runs(_NEGATION.sub(_write_not, text))
        # "split": "n't" is not a run of letters, so it is marked, and each stretch between marks split alone
        parts = _MARK.split(_NEGATION.sub(_mark_not, _MARK.sub(" ", text)))
        words = self._split_runs(parts[0])
        keep_marks = len("n't") >= self.min_word_length
        for mark, stretch in zip(parts[1::2], parts[2::2]):
            if keep_marks:
                words.append(_MARKS[mark])
            words.extend(self._split_runs(stretch))
        return words

    def _split_runs(self, text):
        """The runs of letters (and digits, as configured) of ``text``, none shorter than ``min_word_length``."""
        # the fast path (90% of IMDB reviews): one C-level byte translation and a split
        fast = self.letters_only and _is_ascii(text)
        words = (text.encode("ascii").translate(self._table).decode("ascii").split() if fast
                 else self._words.findall(text))
        if self.min_word_length > 1 and (fast or not self.letters_only):   # letters_only's regex skips short words
            words = [w for w in words if len(w) >= self.min_word_length]
        return words

    def _drop_stop_words(self, words):
        """``words`` without the stop words (matched ignoring case)."""
        stop = self._stop
        if self.lowercase:
            return [w for w in words if w not in stop]
        return [w for w in words if w.lower() not in stop]

    def tokenize_all(self, texts):
        """``[self(text) for text in texts]``."""
        if isinstance(texts, str):   # its characters were taken for the texts
            raise TypeError(f"tokenize_all takes a list of texts, got the str {texts[:40]!r}; one text: "
                            f"Tokenizer()(text)")
        return [self(text) for text in texts]

    def trace(self, text):
        """Each word of ``text`` as written, in order, with the tokens it became: a list of ``Traced``.

        For showing a user what the cleaning did (``minidl explain``): "I" -> nothing, "too
        short"; "didn't" -> "didn"; "10/10." -> nothing, "not letters". The kept tokens, in order,
        are exactly ``self(text)``. The words are the text's whitespace-separated pieces, except
        that an HTML tag, which may hold spaces, is one piece of its own.
        """
        traced = [Traced(piece, [], "HTML tag") if is_tag else self._trace_piece(piece)
                  for piece, is_tag in self._pieces(text)]
        if self.max_length is not None:
            kept = 0
            for word in traced:
                for i, (token, why) in enumerate(word.tokens):
                    kept += why is None
                    if why is None and kept > self.max_length:
                        word.tokens[i] = (token, "past max_length")
        return traced

    def _pieces(self, text):
        """``[(piece, is_tag), ...]``: the whitespace-separated pieces of ``text``, HTML tags whole."""
        if not (self.strip_html and "<" in text):
            return [(piece, False) for piece in text.split()]
        pieces, start = [], 0
        for tag in _HTML_TAG.finditer(text):
            pieces += [(piece, False) for piece in text[start:tag.start()].split()]
            pieces.append((tag.group(), True))
            start = tag.end()
        return pieces + [(piece, False) for piece in text[start:].split()]

    def _trace_piece(self, piece):
        """``Traced`` for one piece without HTML tags: every step works within a piece, so cleaning the
        pieces one by one gives the words that cleaning the whole text gives."""
        cleaned = self._clean(piece)
        words = self._split_words(cleaned)
        if words:
            return Traced(piece, [(w, "stop word" if w.lower() in self._stop else None) for w in words], None)
        if self.strip_links and _LINK.search(piece):
            return Traced(piece, [], "link")
        if self._kept_char.search(cleaned):
            return Traced(piece, [], "too short")
        nothing = "not letters" if self.letters_only and not self.keep_digits else "no letters or digits"
        return Traced(piece, [], nothing)

    @classmethod
    def course(cls, **changes):
        """The course's setting: the default cleaning and the first 100 words of each review."""
        return cls(**{"max_length": 100, **changes})

    def to_dict(self):
        """JSON-able settings; ``Tokenizer.from_dict(t.to_dict()) == t``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        if isinstance(out["stop_words"], tuple):
            out["stop_words"] = list(out["stop_words"])
        return out

    @classmethod
    def from_dict(cls, settings):
        """The tokenizer that ``to_dict()`` described (e.g. read back from a checkpoint).

        A setting missing from ``settings`` takes its default, which is the cleaning the code did
        before the setting existed: dicts saved in older checkpoints load unchanged."""
        known = [f.name for f in fields(cls) if f.init]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(f"Tokenizer.from_dict: unknown setting(s) {unknown}; known: {known}")
        return cls(**settings)


def _full_stem(stem):
    """The verb before "n't": ``stem`` itself ("did"), or the irregular ones written out ("ca" -> "can")."""
    full = _IRREGULAR_STEMS.get(stem.lower())
    if full is None:
        return stem
    return full.upper() if stem.isupper() else full.capitalize() if stem[0].isupper() else full


def _write_not(match):
    """contractions="not": "didn't" -> " did not " (in the contraction's case: "DIDN'T" -> " DID NOT ")."""
    return f" {_full_stem(match.group(1))} {'NOT' if match.group(2).isupper() else 'not'} "


def _mark_not(match):
    """contractions="split": "didn't" -> " did <mark> ", the mark standing for "n't" (or "N'T")."""
    mark = "\x01" if match.group(2).isupper() else "\x00"
    return f" {_full_stem(match.group(1))} {mark} "


def is_count(value):
    """A whole number >= 1 (a Python or NumPy integer, not a bool): a size, a length, a count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
