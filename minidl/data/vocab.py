"""``Vocabulary``: the map between words and the integer ids an ``Embedding`` looks up.

Build it from the *training* split only, so words that appear only in validation or test
data map to ``<unk>`` exactly as words in a new user's text will::

    tokenizer = Tokenizer()
    vocab = Vocabulary.build([tokenizer(t) for t in train.texts], max_size=20_000, min_freq=2)
    vocab.encode(["this", "movie", "zyzzyva"])   # -> array([ 12,  17,   1]), int64, shape (T,)
    vocab.save("runs/gru/vocab.json")             # next to the model's checkpoint

Ids: the specials come first (``<pad>`` = 0, ``<unk>`` = 1), then the words, most frequent
first, ties broken alphabetically, so the same training data always gives the same ids.
"""
from __future__ import annotations

import itertools
import json
import os
from collections import Counter

import numpy as np

from ..errors import MinidlError
from ..io import atomic_path

FORMAT = "minidl.vocabulary"
VERSION = 1
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _token_list(tokens):
    """``tokens`` as given, refusing a str: its characters would be taken for the words."""
    if isinstance(tokens, str):
        raise TypeError(f"expected a list of tokens, got the str {tokens[:40]!r}; tokenize first: Tokenizer()(text), "
                        f"or Tokenizer().tokenize_all(texts) for Vocabulary.build")
    if isinstance(tokens, (list, tuple, np.ndarray)) and len(tokens) and not isinstance(tokens[0], str):   # ids
        raise TypeError(f"expected a list of tokens (str), got a {type(tokens[0]).__name__} first, {tokens[0]!r}; "
                        f"ids turn back into tokens with decode(ids)")
    return tokens


class VocabularyError(MinidlError, ValueError):
    """A vocabulary file or dict that cannot be read (corrupted, truncated, or not a vocabulary)."""


class TextEncodingError(MinidlError, ValueError):
    """A user's text that gives nothing to classify: empty after cleaning, or no known word."""


class Vocabulary:
    """Tokens <-> ids.

    * ``token_to_id`` -- dict {token: id};
    * ``id_to_token`` -- list, ``id_to_token[i]`` is the token of id ``i``;
    * ``pad_id``      -- id of the padding token (``specials[0]``, ``"<pad>"``: id 0 by default);
    * ``unk_id``      -- id that every unknown word maps to (``specials[1]``, ``"<unk>"``: id 1);
    * ``config``      -- how it was built (``max_size``, ``min_freq``), saved along with it.
    """

    def __init__(self, tokens, specials=("<pad>", "<unk>"), config=None):
        tokens, specials = list(tokens), list(specials)
        if len(specials) < 2 or len(set(specials)) != len(specials):
            raise ValueError(f"specials must hold at least two distinct tokens (padding, unknown), got {specials}")
        if tokens[:len(specials)] != specials:
            raise ValueError(f"the first tokens {tokens[:len(specials)]} must be the specials {specials}")
        if not all(isinstance(t, str) for t in tokens):
            raise ValueError("every token must be a string")
        if len(set(tokens)) != len(tokens):
            repeated = [t for t, n in Counter(tokens).items() if n > 1][:5]
            raise ValueError(f"tokens must be unique; repeated: {repeated}")
        self.id_to_token = tokens
        self.token_to_id = {t: i for i, t in enumerate(tokens)}
        self.specials = specials
        self.pad_id = 0
        self.unk_id = 1
        self.config = dict(config or {})

    @classmethod
    def build(cls, token_lists, max_size=None, min_freq=1, specials=("<pad>", "<unk>")):
        """A vocabulary of the words in ``token_lists`` (an iterable of lists of tokens:
        the tokenized TRAINING texts only).

        ``max_size`` caps the whole vocabulary, specials included (so it is the number of
        rows of the embedding table); the least frequent words are left out first.
        ``min_freq`` leaves out words seen fewer times than that.
        """
        specials = tuple(specials)
        if max_size is not None and max_size <= len(specials):
            raise ValueError(f"max_size={max_size} leaves no room for words after the {len(specials)} "
                             f"specials {list(specials)}; use max_size > {len(specials)} or None")
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(itertools.chain.from_iterable(map(_token_list, token_lists)))
        for special in specials:
            counts.pop(special, None)
        words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[:max_size - len(specials)]
        return cls([*specials, *words], specials,
                   {"max_size": max_size, "min_freq": min_freq, "distinct_words_seen": len(counts)})

    # --- looking up -------------------------------------------------------------------------
    def __len__(self):
        return len(self.id_to_token)

    def __contains__(self, token):
        return token in self.token_to_id

    def __getitem__(self, token):
        """The id of ``token`` (``unk_id`` when unknown)."""
        if not isinstance(token, str):
            raise TypeError(f"vocab[token] takes a token (a str) and gives its id, got {token!r}; "
                            f"vocab.id_to_token[i] is the token of id i")
        return self.token_to_id.get(token, self.unk_id)

    @property
    def pad_token(self):
        return self.specials[0]

    @property
    def unk_token(self):
        return self.specials[1]

    def encode(self, tokens):
        """List of T tokens -> (T,) int64 NumPy array of ids; unknown words -> ``unk_id``."""
        get, unk = self.token_to_id.get, self.unk_id
        return np.fromiter((get(t, unk) for t in _token_list(tokens)), dtype=np.int64, count=len(tokens))

    def decode(self, ids):
        """(T,) ids (list, NumPy array or minidl Tensor) -> list of T tokens."""
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = ids[(ids < 0) | (ids >= len(self))][0]
            raise ValueError(f"id {int(bad)} is outside this vocabulary of {len(self)} tokens (ids 0..{len(self) - 1})")
        return [self.id_to_token[i] for i in ids.tolist()]

    def coverage(self, token_lists):
        """Fraction of the tokens in ``token_lists`` that the vocabulary knows (not ``<unk>``),
        e.g. on the test split, to see how many words a model meets but never learned."""
        tokens = list(itertools.chain.from_iterable(token_lists))
        if not tokens:
            raise ValueError("coverage of no tokens at all: the token lists are empty")
        return sum(t in self.token_to_id for t in tokens) / len(tokens)

    def encode_text(self, text, tokenizer, max_length=None):
        """One user's text -> (T,) int64 ids, ready to classify (add a batch axis: (1, T)).

        ``tokenizer`` must be the one the model was trained with (a ``Tokenizer``, or any
        callable text -> list of words). Raises ``TextEncodingError`` when nothing is left
        to classify: the text is empty after cleaning, or none of its words is known.
        """
        tokens = list(tokenizer(text))[:max_length]
        if not tokens:
            min_letters = getattr(tokenizer, "min_word_length", None)
            what = "letters or digits" if getattr(tokenizer, "keep_digits", False) else "letters"   # (--keep-digits)
            kept = (f" (the cleaning keeps words of {_NUMBER_WORDS.get(min_letters, min_letters)} or more {what})"
                    if min_letters else "")
            raise TextEncodingError(f"the text is empty after cleaning{kept}: nothing to classify")
        ids = self.encode(tokens)
        if np.all(ids == self.unk_id):
            unique = list(dict.fromkeys(tokens))
            shown = ", ".join(repr(t) for t in unique[:5]) + (", ..." if len(unique) > 5 else "")
            raise TextEncodingError(f"none of the words ({shown}) are in the model's vocabulary of {len(self)} "
                                    f"words; try a longer text in the language the model was trained on")
        return ids

    # --- saving with a model ----------------------------------------------------------------
    def to_dict(self):
        """A JSON-able dict: every token in id order, the specials, and how it was built."""
        return {"format": FORMAT, "version": VERSION, "specials": list(self.specials),
                "tokens": list(self.id_to_token), "config": dict(self.config)}

    @classmethod
    def from_dict(cls, state):
        """The vocabulary that ``to_dict`` described; ``VocabularyError`` if it is not one."""
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise VocabularyError(f"not a minidl vocabulary (expected a dict with format {FORMAT!r})")
        if state.get("version") != VERSION:
            raise VocabularyError(f"vocabulary format version {state.get('version')!r} is not supported "
                                  f"(this minidl reads version {VERSION})")
        if not isinstance(state.get("tokens"), list) or not isinstance(state.get("specials"), list):
            raise VocabularyError("a vocabulary dict needs the lists 'tokens' and 'specials'")
        try:
            return cls(state["tokens"], state["specials"], state.get("config"))
        except ValueError as e:
            raise VocabularyError(f"invalid vocabulary: {e}") from e

    def save(self, path):
        """Write the vocabulary to ``path`` as JSON, atomically (a crash never leaves half a
        file). Keep it next to the model's checkpoint: the ids mean nothing without it."""
        path = os.fspath(path)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        return path

    @classmethod
    def load(cls, path):
        """The vocabulary saved at ``path`` by ``save``."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no vocabulary at {path!r}: check the path; it is written next to the "
                                    f"model's checkpoint by vocab.save(path)")
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise VocabularyError(f"vocabulary file {path!r} is corrupted (not complete JSON: truncated by an "
                                  f"interrupted copy, or not a vocabulary file); copy it again or re-save it "
                                  f"with vocab.save(path)") from e
        try:
            return cls.from_dict(state)
        except VocabularyError as e:
            raise VocabularyError(f"vocabulary file {path!r}: {e}") from e

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self):
        first = ", ".join(self.id_to_token[:8]) + (", ..." if len(self) > 8 else "")
        return f"Vocabulary({len(self)} tokens: {first})"
