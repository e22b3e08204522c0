"""Linear baselines on word n-grams: what a bag of n-grams scores on exactly the inputs the models get.

    result = run_baseline("tfidf", data="imdb", max_length=100)
    result["metrics"]["accuracy"], result["vocabulary"], result["seconds"]
    minidl baseline --kind tfidf,nbsvm --max-length 100,400

Why: a sequence model that scores below a linear model on n-gram counts has not yet learned
anything the counts do not already hold, so every model's number needs these two beside it.
The inputs are the models' own: the same loader and split (``train.prepare.load_splits``:
for IMDB the official 25,000 / 25,000), the course cleaning (``Tokenizer(max_length=N)``,
so the FIRST N words of each review) and the whole training split (nothing is held out:
no setting is chosen on held-out data, the defaults are fixed).

The two kinds (N reviews, V n-grams, C classes; the vocabulary is the n-grams of ``ngrams``
sizes found in at least ``min_df`` training reviews, so no test review shapes it):

* ``"tfidf"``: sublinear term frequency times smoothed inverse document frequency,

      x_ij = (1 + log c_ij) · idf_j   for c_ij > 0 (else 0),   idf_j = log((1 + N) / (1 + df_j)) + 1

  each row then scaled to unit L2 norm, so a long review does not score higher for its length.
* ``"nbsvm"``: Wang & Manning's (2012) NB features for a logistic regression (their NB-LR
  variant, without interpolation): on binarised counts x̂_ij = 1[c_ij > 0],

      p = α + Σ_{i: y_i = 1} x̂_i,   q = α + Σ_{i: y_i = 0} x̂_i,   r = log((p / ‖p‖₁) / (q / ‖q‖₁))   (V,)

  and the features are x̂_i ⊙ r: the log-count ratio of naive Bayes, which the regression
  then re-weights. Two classes only (r compares one class with the other).

Both are then a logistic regression trained with minidl's own engine and training core:
``SparseLinear`` (x @ W + b for a SciPy CSR x, its backward written by hand), softmax
cross-entropy, Adam with an L2 penalty on W, mini-batches through ``train.loop.train``.
"""
from __future__ import annotations

import json
import math
import sys
import time

import numpy as np

import minidl as md

from .autograd.function import Function, MinidlError, OpError, ShapeError
from .data.tabular import listing
from .data.text import Tokenizer, is_count
from .io import finite
from .metrics import cell, classification_report
from .nn.module import Module, Parameter
from .optim import Adam
from .train import loop as core
from .train.config import TrainConfig, check_files
from .train.prepare import load_splits

KINDS = ("tfidf", "nbsvm")
MAX_NGRAM = 3      # an n-gram is one int64 key, Σ word ids · U^k: three words of U <= 2 million fit
# Adam's settings, chosen on a random fifth of IMDB's training split held out (never on the test split)
DEFAULTS = {"tfidf": {"lr": 0.01, "weight_decay": 3e-6}, "nbsvm": {"lr": 0.002, "weight_decay": 1e-5}}


class BaselineError(MinidlError, ValueError):
    """A baseline setting that cannot work; the message names the option and what to give."""


# ------------------------------------------------------------------------------------------- the op

class SparseLinear(Function):
    """The affine map of a sparse input: out = x @ W + b.

        x: (N, K) SciPy sparse (CSR), W: (K, M), b: (M,) or None  ->  out: (N, M) dense
        dL/dW = xᵀ g    (K, N) @ (N, M): a sparse-times-dense product, O(nnz(x) · M)
        dL/db = Σ_n g_n (M,)
        dL/dx: none -- x is data (n-gram features), never a parameter

    With the softmax cross-entropy above it, g = (softmax(out) − onehot(y)) / B, so
    dL/dW = xᵀ (softmax − y) / B: the logistic-regression gradient, touching only the
    non-zero features of the batch's reviews instead of a dense (N, K) matrix of mostly
    zeros (K is the n-gram vocabulary, 10⁵-10⁶). The result is a dense (K, M) array, as
    the optimizer's moments are dense. NumPy backend only: the product is SciPy's.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        from scipy import sparse

        if not sparse.issparse(x) or not isinstance(weight, np.ndarray):
            raise OpError(f"sparse_linear: needs a SciPy sparse x and weights on the NumPy backend (device cpu), "
                          f"got x {type(x).__name__} and W {type(weight).__name__}")
        if weight.ndim != 2 or x.shape[1] != weight.shape[0] or (
                bias is not None and tuple(bias.shape) != (weight.shape[1],)):
            raise ShapeError(f"sparse_linear: expected x (N, K), W (K, M) and b (M,) or None; got x {tuple(x.shape)}, "
                             f"W {tuple(weight.shape)}, b {None if bias is None else tuple(bias.shape)}")
        ctx.save_for_backward(x)
        out = np.asarray(x @ weight, dtype=weight.dtype)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        _, need_w, need_b = ctx.needs_input_grad
        d_w = np.asarray(x.T @ grad, dtype=grad.dtype) if need_w else None   # CSC (K, N) @ (N, M)
        d_b = grad.sum(axis=0) if need_b else None
        return None, d_w, d_b


def sparse_linear(x, weight, bias=None):
    """x @ W + b for a SciPy sparse x (N, K), W (K, M), b (M,) or None -> (N, M)."""
    return SparseLinear.apply(x, weight, bias)


class SparseLogisticRegression(Module):
    """Multinomial logistic regression on sparse features: logits = x @ W + b, x (N, V) CSR,
    W (V, C), b (C,). Both start at zero: the loss is convex, so no random start is needed."""

    def __init__(self, num_features, num_classes):
        super().__init__()
        self.weight = Parameter(np.zeros((num_features, num_classes)))
        self.bias = Parameter(np.zeros(num_classes))

    def forward(self, x):
        return sparse_linear(x, self.weight, self.bias)


# ------------------------------------------------------------------------------------------- features

class NgramVocabulary:
    """The word n-grams (sizes ``ngrams`` = (low, high)) of the training reviews found in at
    least ``min_df`` of them, and count matrices of any reviews over them.

    Each n-gram is one integer: with the training words numbered 0..U−1 (ids), the n-gram
    w_t .. w_{t+n−1} is key = Σ_k id(w_{t+k}) · U^(n−1−k). Counting is then sorting int64
    keys (``np.unique``) and looking them up (``np.searchsorted``), not hashing millions of
    strings in Python. An n-gram with a word the training reviews lack is not counted.
    Columns: the ``low``-grams by key, then the ``low + 1``-grams, ...
    """

    def __init__(self, ngrams=(1, 2), min_df=2):
        self.ngrams, self.min_df = tuple(ngrams), min_df
        self.words, self.keys = {}, []

    def __len__(self):
        return sum(len(k) for k in self.keys)

    def fit(self, token_lists):
        """Number the training words, keep the n-grams in >= ``min_df`` reviews; -> self."""
        words = self.words = {}
        for tokens in token_lists:
            for word in tokens:
                words.setdefault(word, len(words))
        if max(len(words), 1) ** self.ngrams[1] >= 2 ** 63:
            raise BaselineError(f"--ngrams {self.ngrams[1]}: {len(words):,} words make keys beyond int64; "
                                f"use smaller n-grams")
        ids, rows = self._ids(token_lists)
        self.keys = []
        for n in range(self.ngrams[0], self.ngrams[1] + 1):
            keys, key_rows = _ngram_keys(ids, rows, n, len(words))
            unique, column = np.unique(keys, return_inverse=True)
            counts = _count_matrix(key_rows, column.reshape(-1), len(token_lists), len(unique))
            df = np.bincount(counts.indices, minlength=len(unique))   # one entry per (review, n-gram)
            self.keys.append(unique[df >= self.min_df])
        return self

    def transform(self, token_lists):
        """Counts c (N, V) CSR float64: c_ij = how often review i holds n-gram j."""
        from scipy import sparse

        ids, rows = self._ids(token_lists)
        blocks = []
        for n, vocabulary in zip(range(self.ngrams[0], self.ngrams[1] + 1), self.keys):
            keys, key_rows = _ngram_keys(ids, rows, n, len(self.words))
            column = np.minimum(np.searchsorted(vocabulary, keys), max(len(vocabulary) - 1, 0))
            known = vocabulary[column] == keys if len(vocabulary) else np.zeros(len(keys), dtype=bool)
            blocks.append(_count_matrix(key_rows[known], column[known], len(token_lists), len(vocabulary)))
        return sparse.hstack(blocks, format="csr")

    def _ids(self, token_lists):
        """(ids, rows): every word's id (−1 if unknown) and its review's index, reviews one after another."""
        ids = np.fromiter((self.words.get(w, -1) for tokens in token_lists for w in tokens), dtype=np.int64)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        return ids, np.repeat(np.arange(len(token_lists)), lengths)


def _ngram_keys(ids, rows, n, base):
    """(keys, rows) of every n-gram of known words that lies inside one review."""
    m = max(len(ids) - n + 1, 0)            # where an n-gram can start: nowhere in fewer than n words
    keys = np.zeros(m, dtype=np.int64)
    keep = rows[:m] == rows[n - 1:]          # first and last word in the same review
    for k in range(n):
        part = ids[k:k + m]
        keys = keys * base + part
        keep &= part >= 0
    return keys[keep], rows[:m][keep]


def _count_matrix(rows, columns, n_rows, n_columns):
    """CSR (n_rows, n_columns) of how often each (row, column) pair occurs."""
    from scipy import sparse

    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n_rows, n_columns))
    counts.sum_duplicates()
    return counts


def tfidf(counts, df, n_docs):
    """x_ij = (1 + log c_ij) · idf_j, idf_j = log((1 + n_docs) / (1 + df_j)) + 1, rows at unit L2 norm.

    Sublinear tf: the tenth "great" adds less than the first. The smoothed idf (the +1s)
    keeps every feature finite and non-zero."""
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    x = counts.astype(np.float64)
    x.data = (1.0 + np.log(x.data)) * idf[x.indices]
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))    # each stored value's row; empty rows stay zero
    x.data /= np.sqrt(np.bincount(rows, weights=x.data ** 2, minlength=x.shape[0]))[rows]   # each row / its L2 norm
    return x


def nb_ratios(binary, labels, alpha=1.0):
    """r = log((p / ‖p‖₁) / (q / ‖q‖₁)) (V,): p, q = α + the binarised counts summed over the
    positive (label 1) and the negative (label 0) reviews. r_j > 0: n-gram j is more frequent in
    positive reviews. α (Laplace smoothing) keeps an n-gram seen in one class only finite."""
    size = binary.shape[1]
    p = alpha + np.bincount(binary[labels == 1].indices, minlength=size)
    q = alpha + np.bincount(binary[labels == 0].indices, minlength=size)
    return np.log(p / p.sum()) - np.log(q / q.sum())


def features(kind, vocabulary, train_tokens, train_labels, token_lists, alpha=1.0):
    """The feature matrices (CSR float64) of ``kind`` for the training reviews and for each of
    ``token_lists`` (e.g. [test_tokens]): their statistics (df, r) come from training only."""
    train = vocabulary.transform(train_tokens)
    out = [train, *(vocabulary.transform(tokens) for tokens in token_lists)]
    if kind == "tfidf":
        df = np.bincount(train.indices, minlength=train.shape[1])
        return [tfidf(x, df, train.shape[0]) for x in out]
    r = nb_ratios(train, train_labels, alpha)    # it reads only which n-grams each review uses, not the counts
    for x in out:
        x.data = r[x.indices]               # x̂ ⊙ r, x̂ binarised: did the review use the n-gram at all (1 · r_j)
    return out


# ------------------------------------------------------------------------------------------- training

class _Batch:
    """A mini-batch: rows of the CSR features and their labels."""

    def __init__(self, x, labels):
        self.x, self.labels = x, labels

    def __len__(self):
        return len(self.labels)


def fit_logistic(x, labels, num_classes, epochs=5, batch_size=256, lr=0.01, weight_decay=1e-5, seed=0):
    """A ``SparseLogisticRegression`` trained on x (N, V) CSR with ``train.loop.train``:
    softmax cross-entropy, Adam with the L2 penalty ``weight_decay`` · ½‖W‖² (not on b),
    ``epochs`` passes in seeded random mini-batches of ``batch_size``; -> (model, loop record)."""
    x = x.astype(md.get_default_dtype())
    labels = np.asarray(labels, dtype=np.int64)
    model = SparseLogisticRegression(x.shape[1], num_classes)
    optimizer = Adam([{"params": [model.weight], "weight_decay": weight_decay},
                      {"params": [model.bias], "weight_decay": 0.0}], lr=lr)

    def batches(epoch):
        order = np.random.default_rng([seed, epoch]).permutation(len(labels))
        for start in range(0, len(labels), batch_size):
            rows = np.sort(order[start:start + batch_size])
            yield _Batch(x[rows], labels[rows])

    def loss_fn(model, batch):
        return md.cross_entropy(model(batch.x), batch.labels)

    loop, _ = core.train(model, batches, loss_fn, optimizer, epochs=epochs,
                         epoch_steps=math.ceil(len(labels) / batch_size), log=None,
                         advice=f"Lower the learning rate (now {lr}).")
    return model, loop


def predict_proba(model, x):
    """Class probabilities (N, C) of the logistic regression for features x (N, V) CSR."""
    with md.no_grad():
        return model(x.astype(model.weight.dtype)).softmax(axis=-1).numpy()


# ------------------------------------------------------------------------------------------- the run

def check_settings(kind, max_length, ngrams=(1, 2), min_df=2, epochs=5, batch_size=256, lr=None,
                   weight_decay=None, alpha=1.0):
    """Refuse settings that cannot work, before any work: ``BaselineError`` naming the option."""
    if kind not in KINDS:
        raise BaselineError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for name, value in (("max-length", max_length), ("min-df", min_df), ("epochs", epochs),
                        ("batch-size", batch_size)):
        if not is_count(value):
            raise BaselineError(f"--{name} must be a whole number >= 1, got {value!r}")
    sizes = tuple(ngrams) if isinstance(ngrams, (tuple, list)) else ()
    if len(sizes) != 2 or not all(map(is_count, sizes)) or not sizes[0] <= sizes[1] <= MAX_NGRAM:
        raise BaselineError(f"--ngrams must be two sizes low,high with 1 <= low <= high <= {MAX_NGRAM} "
                            f"(e.g. 1,2), got {ngrams!r}")
    for name, value, positive in (("lr", lr, True), ("weight-decay", weight_decay, False), ("alpha", alpha, True)):
        if value is not None and not _is_rate(value, positive):
            raise BaselineError(f"--{name} must be a number {'>' if positive else '>='} 0, got {value!r}")


def _is_rate(value, positive):
    """A finite number >= 0 (> 0 if ``positive``)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and (value > 0 if positive else value >= 0))


def run_baseline(kind, data="imdb", max_length=100, ngrams=(1, 2), min_df=2, epochs=5, batch_size=256, lr=None,
                 weight_decay=None, alpha=1.0, data_path=None, seed=0, log=None, columns=("text", "label"),
                 test_data=None, splits=None):
    """Train the ``kind`` baseline ("tfidf" or "nbsvm") on ``data``'s training split and score
    its test split.

    ``data``: "imdb", "synthetic" or a table of yours (as ``minidl train --data``; its text and
    label ``columns``, each possibly "a,b" as ``--text-column``; ``test_data``: its own test file,
    as ``--test-data``; ``splits``: those (train, test) already read, as ``_splits`` gives them); the
    first ``max_length`` words of each review after the course cleaning; n-grams of sizes
    ``ngrams`` = (low, high) in >= ``min_df`` training reviews; ``lr`` / ``weight_decay``
    (None: ``DEFAULTS[kind]``) for Adam; ``alpha``: the NB smoothing (nbsvm). Returns
    {"kind", "data", "test_data", "max_length", "ngrams", "vocabulary" (V), "train" and "test" (review
    counts), "metrics" (``classification_report`` of the test split), "seconds", "settings"}.
    """
    check_settings(kind, max_length, ngrams, min_df, epochs, batch_size, lr, weight_decay, alpha)
    lr = DEFAULTS[kind]["lr"] if lr is None else lr
    weight_decay = DEFAULTS[kind]["weight_decay"] if weight_decay is None else weight_decay
    start = time.perf_counter()
    if log and splits is None:
        log(f"reading {data} ...")      # IMDB: about 8 s
    train, test = splits or _splits(data, data_path, columns, test_data)
    _check_two_classes(kind, data, train)
    settings = dict(ngrams=ngrams, min_df=min_df, epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, alpha=alpha, seed=seed)
    progress = (lambda n: log(f"{kind} at {max_length} words: {n:,} n-grams, {len(train):,} training reviews "
                              f"({time.perf_counter() - start:.0f} s); training ...")) if log else None
    model, vocabulary, (x_test,) = fit_baseline(kind, train, [test.texts], max_length, progress=progress, **settings)
    metrics = classification_report(test.labels, predict_proba(model, x_test))
    return {"kind": kind, "data": data, "test_data": test_data, "max_length": max_length, "ngrams": list(ngrams),
            "vocabulary": len(vocabulary), "train": len(train), "test": len(test), "metrics": metrics, "label_names": list(train.label_names),
            "seconds": round(time.perf_counter() - start, 1),
            "settings": {name: value for name, value in settings.items() if name != "ngrams"}}


def fit_baseline(kind, train, others, max_length, ngrams=(1, 2), min_df=2, epochs=5, batch_size=256, lr=None,
                 weight_decay=None, alpha=1.0, seed=0, progress=None):
    """The ``kind`` baseline trained on the TextDataset ``train`` (its first ``max_length`` words,
    the course cleaning): -> (model, n-gram vocabulary, [features (CSR) of each list of texts in
    ``others``]), the features' statistics from ``train`` only. ``model(x)`` gives logits (N, C).
    ``progress(V)``: called with the vocabulary size before the regression trains."""
    lr = DEFAULTS[kind]["lr"] if lr is None else lr
    weight_decay = DEFAULTS[kind]["weight_decay"] if weight_decay is None else weight_decay
    tokenizer = Tokenizer(max_length=max_length)
    train_tokens = tokenizer.tokenize_all(train.texts)
    vocabulary = NgramVocabulary(ngrams, min_df).fit(train_tokens)
    if len(vocabulary) == 0:
        raise BaselineError(f"{train.name}: no n-gram is in {min_df} or more training reviews; lower --min-df")
    x_train, *x_others = features(kind, vocabulary, train_tokens, train.labels,
                                  [tokenizer.tokenize_all(texts) for texts in others], alpha)
    if progress:
        progress(len(vocabulary))
    model, _ = fit_logistic(x_train, train.labels, train.num_classes, epochs, batch_size, lr, weight_decay, seed)
    return model, vocabulary, x_others


def _check_two_classes(kind, data, train):
    if kind == "nbsvm" and train.num_classes != 2:
        names = listing([str(name)[:40] for name in train.label_names])   # not 23 KB of review texts
        raise BaselineError(f"--kind nbsvm compares two classes; {data} has {train.num_classes} ({names}): use "
                            f"--kind tfidf")


def _splits(data, data_path, columns, test_data=None):
    """(train, test) TextDatasets of ``data``, as ``minidl train`` loads them (the whole training split)."""
    splits = load_splits(TrainConfig(data=data, data_path=data_path, text_column=columns[0], label_column=columns[1],
                                     test_data=test_data))
    return splits["train"], splits["test"]


# ------------------------------------------------------------------------------------------- the command

def _numbers(text, option):
    """"100,400" -> [100, 400]; a one-line error for anything else."""
    try:
        return [int(part) for part in str(text).split(",")]
    except ValueError:
        raise BaselineError(f"--{option} must be comma-separated whole numbers, got {text!r}") from None


def format_table(results):
    """One row per run: kind, max_length, vocabulary, test accuracy / F1 / AUC, seconds."""
    lines = [f"  {'kind':<7}{'max_length':>11}{'vocabulary':>12}{'accuracy':>10}{'f1':>9}{'auc':>9}{'seconds':>9}"]
    for r in results:
        m = r["metrics"]
        lines.append(f"  {r['kind']:<7}{r['max_length']:>11}{r['vocabulary']:>12,}{cell(m['accuracy']):>10}"
                     f"{cell(m['f1']):>9}{cell(m['auc']):>9}{r['seconds']:>9.1f}")
    return "\n".join(lines)


def main(args):
    """``minidl baseline``: every --kind at every --max-length, one table (or --json)."""
    kinds = list(KINDS) if args.kind is None else [k.strip() for k in str(args.kind).split(",")]   # None: both
    lengths = _numbers(args.max_length, "max-length")
    ngrams = tuple(_numbers(args.ngrams, "ngrams"))
    settings = dict(ngrams=ngrams, min_df=args.min_df, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, alpha=args.alpha)
    for kind in kinds:                      # every setting checked before the first run
        for length in lengths:
            check_settings(kind, length, **settings)
    if "nbsvm" not in kinds and args.alpha != 1.0:   # it changed nothing, without a word
        raise BaselineError(f"--alpha {args.alpha} is nbsvm's smoothing; --kind is {args.kind}")
    # (load_splits refused it after "reading imdb ...", naming --validation-data too, which baseline lacks)
    if args.test_data and args.data in ("imdb", "synthetic"):
        raise BaselineError(f"--test-data goes with --data FILE (your own table); the {args.data} data brings "
                            f"its own test split")
    check_files(TrainConfig(data=args.data, data_path=args.data_path, text_column=args.text_column,
                            label_column=args.label_column, test_data=args.test_data))
    log = None if args.json else (lambda message: print(message, file=sys.stderr))
    if log:
        log(f"reading {args.data} ...")      # once for every run: IMDB took about 8 s a run
    splits = _splits(args.data, args.data_path, (args.text_column, args.label_column), args.test_data)
    if args.kind is None and splits[0].num_classes != 2:   # the default refused a table of 3 classes
        if args.alpha != 1.0:   # it changed nothing, without a word
            raise BaselineError(f"--alpha {args.alpha} is nbsvm's smoothing, and nbsvm compares two classes; "
                                f"{args.data} has {splits[0].num_classes}")
        kinds.remove("nbsvm")
        print(f"minidl baseline: {args.data} has {splits[0].num_classes} classes and nbsvm compares two: "
              f"tfidf runs alone", file=sys.stderr)
    for kind in kinds:   # before tfidf trains
        _check_two_classes(kind, args.data, splits[0])
    results = [run_baseline(kind, data=args.data, max_length=length, seed=args.seed, log=log, test_data=args.test_data,
                            splits=splits, **settings) for kind in kinds for length in lengths]
    if args.json:
        print(json.dumps(finite(results), indent=2, allow_nan=False))
        return 0
    first = results[0]
    low, high = first["ngrams"]
    print(f"baselines on {first['data']}: {first['train']:,} training, {first['test']:,} test reviews; word "
          f"{low}-{high}-grams in >= {args.min_df} training reviews; logistic regression, {args.epochs} epochs of Adam")
    print(format_table(results))
    return 0
