"""The masked-LM corpus: IMDB reviews cut into segments, and held-out fill-mask sentences.

    texts (training + unlabelled reviews: 75,000)  --MLMTokenizer-->  token lists
        --build_vocabulary-->  Vocabulary (specials first)
        --segments-->  EncodedDataset of [CLS] + up to length − 1 tokens   (pretraining)

    test reviews (never seen in pretraining)  --sentences-->  1,000 fill-mask cases:
        one sentence, one known word in it hidden, the word to find

Segments cut a review into consecutive pieces of ``length − 1`` tokens; a last piece shorter
than ``min_length`` tokens is dropped (too little context to guess from).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.batching import EncodedDataset
from ..data.errors import SettingError
from ..data.imdb import DataFormatError, find_imdb, load_imdb, load_imdb_unlabelled
from ..data.vectors import build_ppmi_svd, embedding_matrix
from .tokenizer import CLS, MASK, MLMTokenizer, build_vocabulary

SENTENCE_END = {".", "!", "?"}


def segments(token_lists, vocab, length=128, min_length=8, name="mlm"):
    """Every token list cut into [CLS] + (length − 1)-token pieces, as an EncodedDataset
    (labels 0; ``index`` is the number of the text each piece came from)."""
    if length < 2:
        raise ValueError(f"segments: length must be >= 2 ([CLS] and one token), got {length}")
    cls, ids, index = vocab[CLS], [], []
    for i, tokens in enumerate(token_lists):
        encoded = vocab.encode(tokens)
        for start in range(0, len(encoded), length - 1):
            piece = encoded[start:start + length - 1]
            if len(piece) >= min(min_length, len(encoded)) and len(piece):
                ids.append(np.concatenate([[cls], piece]))
                index.append(i)
    if not ids:
        raise ValueError("segments: no text has any token; the corpus is empty")
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    return EncodedDataset(ids, np.zeros(len(ids), dtype=np.int64), lengths, np.array(index, dtype=np.int64),
                          pad_id=vocab.pad_id, label_names=[], name=name)


@dataclass
class FillMaskCase:
    tokens: list      # the sentence, with MASK at ``position``
    position: int
    answer: str       # the hidden word


def sentences(token_lists, min_tokens=6, max_tokens=30):
    """Sentences (lists of tokens, ending at . ! or ?) of ``min_tokens``..``max_tokens`` tokens."""
    out = []
    for tokens in token_lists:
        start = 0
        for i, token in enumerate(tokens):
            if token in SENTENCE_END:
                if min_tokens <= i + 1 - start <= max_tokens:
                    out.append(tokens[start:i + 1])
                start = i + 1
    return out


def fill_mask_cases(token_lists, vocab, n=1000, seed=0, min_tokens=6, max_tokens=30):
    """``n`` FillMaskCases from ``token_lists``, seeded: sentences whose tokens are all in the
    vocabulary, each with one word (letters, not punctuation) chosen at random and hidden."""
    rng = np.random.default_rng(seed)
    pool = [s for s in sentences(token_lists, min_tokens, max_tokens) if all(t in vocab for t in s)]
    if len(pool) < n:
        raise ValueError(f"fill_mask_cases: only {len(pool)} usable sentences of {min_tokens}-{max_tokens} known "
                         f"tokens, {n} asked for")
    cases = []
    for k in rng.permutation(len(pool))[:n]:
        sentence = pool[k]
        words = [i for i, t in enumerate(sentence) if t.isalpha()]
        if not words:
            continue
        position = int(words[rng.integers(len(words))])
        cases.append(FillMaskCase([*sentence[:position], MASK, *sentence[position + 1:]], position,
                                  sentence[position]))
    return cases


@dataclass
class Corpus:
    tokenizer: MLMTokenizer
    vocab: object
    train: EncodedDataset          # pretraining segments
    cases: list                    # held-out FillMaskCases
    texts: int                     # how many reviews the segments come from
    token_lists: list              # their tokens (for co-occurrence vectors)


def pretraining_texts(path=None, max_reviews=None, log=print):
    """(the texts a masked-LM pretrains on, the labelled splits): the IMDB training and unlabelled
    reviews (``max_reviews``: the first that many of each, for quick runs). The Kaggle CSV has no
    unlabelled reviews: its training reviews alone are used."""
    data = load_imdb(path, max_reviews=max_reviews)
    texts = list(data["train"].texts)
    try:
        texts += load_imdb_unlabelled(path, max_reviews=max_reviews)
    except DataFormatError:
        if log:
            log(f"{find_imdb(path)} has no unlabelled reviews; pretraining on the training reviews only")
    return texts, data


def held_out_cases(test_texts, vocab, cases, seed, more, length=128):
    """``cases`` fill-mask cases from the test reviews' texts, each with [CLS] within ``length`` tokens
    (--length 16 crashed at the first evaluation on a 29-token sentence); too few: one line saying
    that ``more`` (what a command's options can change) gives enough."""
    if length < 7:   # "more reviews or a larger vocabulary" could never help
        raise SettingError(f"a length of {length} tokens holds no held-out sentence (6 tokens or more, and [CLS]): "
                           f"give a length of 7 or more")
    test_tokens = [MLMTokenizer()(t) for t in test_texts]
    try:
        return fill_mask_cases(test_tokens, vocab, cases, seed, max_tokens=min(30, length - 1))
    except ValueError as e:  # say which settings give more sentences
        raise SettingError(f"{e} (from {len(test_tokens):,} test reviews and a {len(vocab):,}-token vocabulary): "
                           f"{more} give enough") from None


def load_corpus(path=None, max_vocab=8000, length=128, cases=1000, max_reviews=None, seed=0, vocab=None, log=print,
                more="a larger vocabulary, more reviews or fewer held-out sentences"):
    """The pretraining segments of ``pretraining_texts`` and ``cases`` fill-mask cases from the
    test reviews. ``vocab``: a teacher's vocabulary, to distil on the same ids (else one is built)."""
    texts, data = pretraining_texts(path, max_reviews, log)
    tokenizer = MLMTokenizer()
    token_lists = [tokenizer(t) for t in texts]
    vocab = vocab or build_vocabulary(token_lists, max_size=max_vocab)
    held_out = held_out_cases(data["test"].texts, vocab, cases, seed, more, length)
    return Corpus(tokenizer, vocab, segments(token_lists, vocab, length), held_out, len(texts), token_lists)


def cooccurrence_embeddings(token_lists, vocab, dim, seed=0, log=None):
    """A (V, dim) starting embedding table: PPMI-SVD word vectors of ``token_lists``
    (``minidl.data.vectors.build_ppmi_svd``, unit-length rows) for the vocabulary's tokens,
    N(0, σ²) rows like them for the specials and tokens seen too rarely, [PAD] zero.

    Why: a masked-LM from random embeddings spends its first thousands of steps predicting
    the unigram distribution ("the", ",", ".") before its attention learns to use the
    context. Vectors built from co-occurrence counts (seconds, no network) start the tied
    embedding table -- which is also the output layer -- with which words go together."""
    words, vectors = build_ppmi_svd(token_lists, dim=dim, min_count=2, max_vocab=len(vocab), seed=seed, log=log)
    return embedding_matrix(vocab, words, vectors, seed=seed)
