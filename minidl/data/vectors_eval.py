"""Do word vectors carry sentiment? Logistic regression on the mean word vector of a review.

Each review becomes one D-dimensional feature vector, the mean of the vectors of its words
that the vector file knows (a review with none gets zeros); a minidl ``nn.Linear(D, 2)``
trained full-batch with Adam on ``cross_entropy`` over the 25,000 IMDB training reviews is
then scored on the 25,000 test reviews. The same model on RANDOM vectors (the same words, the
same dimension, a seeded Gaussian scaled to unit length like the built vectors) is the
baseline: a random projection of the bag of words keeps some sentiment too, so the gap
between the two, not the accuracy alone, is what the vectors learned from co-occurrences.

    minidl vectors eval /tmp/minidl_vectors/imdb_ppmi_100d.txt
"""
from __future__ import annotations

import time

import numpy as np

from .errors import DataFormatError
from .imdb import find_imdb, load_imdb
from .sgns import token_stream
from .text import Tokenizer
from .vectors import PROBE_WORDS, format_neighbours, load_glove


def mean_vectors(token_lists, words, matrix):
    """(N, D) float32: row n is the mean of ``matrix``'s rows for the known words of text n
    (repeats count), zeros when it has none. Also returns (N,) how many tokens were known.

    Built as one sparse (N, V) matrix of 1/known weights times ``matrix``: no Python loop
    over the reviews' words beyond the dictionary look-up."""
    import scipy.sparse as sp

    ids, text = token_stream(token_lists, words)     # the known words' ids and their texts' numbers
    known_per_text = np.bincount(text, minlength=len(token_lists))
    weights = 1.0 / known_per_text[text]
    averaging = sp.csr_matrix((weights, (text, ids)), shape=(len(token_lists), len(words)))
    return np.asarray(averaging @ np.asarray(matrix, dtype=np.float64), dtype=np.float32), known_per_text


def random_vectors(n_words, dim, seed=0):
    """(n_words, dim) float32 Gaussian vectors, each scaled to unit length (as built vectors are)."""
    vectors = np.random.default_rng(seed).standard_normal((n_words, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def logistic_regression(x_train, y_train, x_test, y_test, steps=500, lr=0.05, seed=0, device="cpu"):
    """Train ``nn.Linear(D, C)`` with full-batch Adam on cross-entropy; returns a dict of the
    final training loss and the training and test accuracies.

    The features are standardised with the training set's mean and standard deviation, so
    one learning rate suits any vectors (means of unit vectors are small and their scale
    differs between vector sets)."""
    import minidl as md
    from minidl import nn
    from minidl.train.full_batch import accuracy, train_full_batch

    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    md.manual_seed(seed)
    model = nn.Linear(x_train.shape[1], int(max(y_train.max(), y_test.max())) + 1, device=device)
    losses = train_full_batch(model, x_train, y_train, steps, lr, device)
    return {"train_loss": losses[-1], "train_accuracy": accuracy(model, x_train, y_train, device),
            "test_accuracy": accuracy(model, x_test, y_test, device)}


def compare_with_random(words, matrix, train_tokens, y_train, test_tokens, y_test, steps=500, seed=0, device="cpu",
                        log=print):
    """Logistic regression on mean vectors of ``matrix`` and of random vectors of the same
    shape; returns {"vectors": {...}, "random": {...}} (see ``logistic_regression``)."""
    results = {}
    for name, vectors in (("vectors", matrix), ("random", random_vectors(len(words), matrix.shape[1], seed))):
        start = time.perf_counter()
        x_train, known_train = mean_vectors(train_tokens, words, vectors)
        if not known_train.any():   # every review's features 0: both lines would read 0.5, exit 0
            raise DataFormatError(f"none of the {len(words):,} words of the vectors occurs in the training reviews; "
                                  f"give vectors of their language and tokens (e.g. from minidl vectors build)")
        x_test, _ = mean_vectors(test_tokens, words, vectors)
        results[name] = logistic_regression(x_train, y_train, x_test, y_test, steps, seed=seed, device=device)
        r = results[name]
        log(f"{name:>8}: test accuracy {r['test_accuracy']:.4f}  (train {r['train_accuracy']:.4f}, "
            f"final loss {r['train_loss']:.4f}; {time.perf_counter() - start:.1f} s)")
    none = int((known_train == 0).sum())
    log(f"(mean of the known words' vectors; {none} training reviews had none)" if none else
        "(every training review had known words)")
    return results


def main(args, log=print):
    """``minidl vectors eval FILE [--data PATH] [--steps 500] [--seed 0]``."""
    start = time.perf_counter()
    source = find_imdb(getattr(args, "data", None))   # a wrong --data said so after a large file had loaded
    if source.suffix.lower() == ".csv":   # refused by load_imdb, after the vectors had loaded and been printed
        raise DataFormatError(f"{source} is a CSV, which has no official train/test split; vectors eval scores on "
                              f"it: give --data the archive or its aclImdb/ folder (`minidl data download`)")
    words, matrix = load_glove(args.file, log=log)
    for word in PROBE_WORDS:
        log(format_neighbours(word, words, matrix))
    log(f"reading and tokenising the IMDB reviews in {source} (about 10 s) ...")   # it was silent
    splits = load_imdb(source)
    tokenizer = Tokenizer()
    train_tokens, test_tokens = (tokenizer.tokenize_all(splits[name].texts) for name in ("train", "test"))
    log(f"logistic regression on mean word vectors: {len(train_tokens):,} IMDB training reviews -> "
        f"{len(test_tokens):,} test reviews, {matrix.shape[1]}-d, against random vectors")
    results = compare_with_random(words, matrix, train_tokens, splits["train"].labels, test_tokens,
                                  splits["test"].labels, steps=getattr(args, "steps", 500),
                                  seed=getattr(args, "seed", 0), device=getattr(args, "device", "cpu"), log=log)
    log(f"done in {time.perf_counter() - start:.1f} s")
    return results
