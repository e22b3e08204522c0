"""Word vectors by skip-gram with negative sampling (SGNS; Mikolov et al. 2013, word2vec),
trained here by minibatch SGD with hand-written gradients.

Names of the dimensions: V words, D vector dimensions, B (word, context) pairs in a batch,
K negatives per pair.

**The model.** Every word has two vectors: an input vector (a row of W, (V, D)) and an
output or context vector (a row of C, (V, D)). For a pair (word w, context c), c seen within
a few words of w, and K "negative" words n_1 .. n_K drawn at random from the unigram
distribution raised to the power 3/4 (P(n) ∝ count(n)^0.75), the loss is::

    s_pos = W_w · C_c                 s_k = W_w · C_{n_k}
    L = -log σ(s_pos) - Σ_k log σ(-s_k)            σ(x) = 1 / (1 + e^-x)

that is: logistic regression telling the real context (label 1) from the K random ones
(label 0). With d/dx[-log σ(x)] = σ(x) - 1 and d/dx[-log σ(-x)] = σ(x), the gradients are::

    dL/dW_w       = (σ(s_pos) - 1) C_c + Σ_k σ(s_k) C_{n_k}      (D,)
    dL/dC_c       = (σ(s_pos) - 1) W_w                            (D,)
    dL/dC_{n_k}   = σ(s_k) W_w                                    (D,) for each k

``sgns_loss_and_grads`` computes the loss (summed over a batch) and these gradients for B
pairs at once; the tests check them against centred finite differences.

**The training recipe** (as word2vec's C code does it):

* vocabulary: ``count_words`` (the ``max_vocab`` most frequent words seen ≥ ``min_count``
  times); other words are dropped from the text before windows are taken, as word2vec does;
* frequent-word subsampling, drawn afresh each epoch: a token of word w with frequency
  f = count(w) / (in-vocabulary tokens) is kept with probability min(1, sqrt(t/f) + t/f),
  t = ``subsample`` (1e-4) — the formula of word2vec's code, not the paper's 1 - sqrt(t/f)
  discard probability; ``subsample=0`` keeps every token. Dropped tokens are removed before
  windows are taken, which widens the effective window;
* a dynamic window: each centre token draws its own reach b uniformly from 1..``window`` and
  pairs with the tokens up to b positions before and after it in the same text (so near
  words are paired more often than far ones);
* initialisation W ~ uniform(-0.5/D, 0.5/D), C = 0;
* plain SGD, the summed (not averaged) gradient of each batch, so one batch step is close to
  word2vec's B one-pair steps; the learning rate falls linearly from ``lr`` to
  ``lr`` × 1e-4 over all epochs (by the share of tokens processed);
* pairs are shuffled within chunks of ``_CHUNK_TOKENS`` centre tokens, so a batch mixes
  many texts;
* the returned vectors are the rows of W, each scaled to unit length.

**Speed.** No Python loop over tokens or pairs: pairs are made per window offset with array
arithmetic, and the loop is over batches. The gradient math is NumPy (float32); the
scatter-adds that apply a batch's gradients to repeated rows of W and C (a frequent word
appears many times in one batch) use torch's ``index_add_`` on CPU tensors that share
memory with the NumPy arrays. Measured on 2 busy cores (V = 30,000, D = 100, K = 5,
B = 4,096), per batch: ``np.add.at`` 85 ms against ``index_add_`` 14-19 ms, whole steps
33,800 against about 110,000 pairs per second; ``np.matmul`` for the (B, K, D) products
beat ``np.einsum`` (7 against 11 ms at B = 2,048) and doing the gradient math in torch too
was slower still (small batched ``bmm``). B = 2,048 was a little faster than 4,096 (smaller
arrays stay in cache) and is the default. Measured end to end on 5,000 IMDB unlabelled
reviews (1.08 M tokens, V = 12,073, 49% of tokens kept by subsampling, 5.9 pairs per kept
token): 3 epochs, 9.3 M pairs, in 90 s, about 104,000 pairs per second on 2 busy cores. The
75,000 IMDB reviews (~16.5 M in-vocabulary tokens) give about 47 M pairs per epoch, so 3
epochs should take about 23 minutes (20-25) on two cores.
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from .errors import SettingError
from .vectors import check_whole_numbers, count_words

_TABLE_SIZE = 10_000_000     # slots of the negative-sampling table (word2vec uses 1e8)
_CHUNK_TOKENS = 1_000_000    # centre tokens whose pairs are made, shuffled and trained at once
_LOG_SECONDS = 5.0           # seconds between progress lines
_MIN_LR_FRACTION = 1e-4      # the learning rate never falls below lr × this (word2vec's floor)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sgns_loss_and_grads(W_rows, C_pos_rows, C_neg_rows):
    """The SGNS loss of B pairs, summed, and its gradients (see the module docstring).

    ``W_rows`` (B, D): the input vectors of the B words; ``C_pos_rows`` (B, D): the output
    vectors of their contexts; ``C_neg_rows`` (B, K, D): the output vectors of each pair's K
    negatives. Returns ``(loss, dW_rows (B, D), dC_pos_rows (B, D), dC_neg_rows (B, K, D))``,
    the loss a Python float, the gradients in the inputs' dtype. Rows are per pair: a word
    repeated in the batch gets one gradient row per occurrence, which the caller sums.
    """
    s_pos = np.einsum("bd,bd->b", W_rows, C_pos_rows)                     # (B,)
    s_neg = np.matmul(C_neg_rows, W_rows[:, :, None])[:, :, 0]              # (B, K)
    loss = np.logaddexp(0, -s_pos).sum() + np.logaddexp(0, s_neg).sum()   # -log σ(s) = log(1 + e^-s)
    g_pos = sigmoid(s_pos) - 1                                             # (B,)   dL/ds_pos
    g_neg = sigmoid(s_neg)                                                 # (B, K) dL/ds_k
    dW = g_pos[:, None] * C_pos_rows + np.matmul(g_neg[:, None, :], C_neg_rows)[:, 0]
    dC_pos = g_pos[:, None] * W_rows
    dC_neg = g_neg[:, :, None] * W_rows[:, None, :]
    return float(loss), dW, dC_pos, dC_neg


def keep_probabilities(counts, subsample):
    """(V,) probability of keeping a token of each word: min(1, sqrt(t/f) + t/f), f its share
    of the in-vocabulary tokens, t = ``subsample`` (word2vec's code); all ones if t = 0."""
    if subsample == 0:
        return np.ones(len(counts))
    ratio = subsample / (counts / counts.sum())
    return np.minimum(1.0, np.sqrt(ratio) + ratio)


def negative_table(counts, size=_TABLE_SIZE):
    """(about ``size``,) int64 word ids, word i filling a share ∝ counts[i]^0.75 of the
    slots, so a uniform draw of a slot draws a negative from the smoothed unigram
    distribution (word2vec's table; every word gets at least one slot)."""
    p = counts.astype(np.float64) ** 0.75
    slots = np.maximum(1, np.round(size * p / p.sum())).astype(np.int64)
    return np.repeat(np.arange(len(counts), dtype=np.int64), slots)


def token_stream(token_lists, words):
    """The in-vocabulary tokens of all texts as two (N,) int arrays: word ids and text
    numbers (pairs never cross texts). Out-of-vocabulary tokens are dropped."""
    index = {w: i for i, w in enumerate(words)}
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    stream = itertools.chain.from_iterable(token_lists)
    ids = np.fromiter(map(index.get, stream, itertools.repeat(-1)), dtype=np.int64, count=int(lengths.sum()))
    texts = np.repeat(np.arange(len(token_lists), dtype=np.int64), lengths)
    known = ids >= 0
    return ids[known], texts[known]


def context_pairs(ids, texts, start, stop, window, rng):
    """(word, context) id pairs for the centre positions ``start .. stop-1`` of the stream
    ``ids`` / ``texts`` (N,), with a dynamic window: each centre draws its reach b uniformly
    in 1..``window`` and pairs with the tokens ≤ b positions away in the same text. Returns
    two (P,) int64 arrays, shuffled. A loop over offsets 1..window, not over tokens."""
    centres = np.arange(start, stop)
    reach = rng.integers(1, window + 1, size=stop - start)
    words, contexts = [], []
    for k in range(1, window + 1):
        near = centres[reach >= k]
        for other in (near - k, near + k):
            inside = (other >= 0) & (other < len(ids))
            c, o = near[inside], other[inside]
            same = texts[c] == texts[o]
            words.append(ids[c[same]])
            contexts.append(ids[o[same]])
    order = rng.permutation(sum(len(w) for w in words))
    return np.concatenate(words)[order], np.concatenate(contexts)[order]


def check_arguments(dim=100, window=5, negatives=5, epochs=3, lr=0.025, batch=2048, subsample=1e-4, min_count=5,
                    max_vocab=30000):
    """Raise a one-line SettingError for a setting ``build_sgns`` cannot use (called before any work)."""
    check_whole_numbers(dim=(dim, 1), window=(window, 1), negatives=(negatives, 1), epochs=(epochs, 1),
                        batch=(batch, 1), min_count=(min_count, 1), max_vocab=(max_vocab, 2))
    if not lr > 0:
        raise SettingError(f"lr={lr!r} is not allowed; pass a learning rate > 0 (word2vec uses 0.025)")
    if not subsample >= 0:
        raise SettingError(f"subsample={subsample!r} is not allowed; pass a threshold >= 0 (1e-4; 0 turns it off)")


class _Progress:
    """Progress lines every ``_LOG_SECONDS``: epoch, pairs done, mean loss per pair since the
    last line, learning rate, elapsed time."""

    def __init__(self, say, start, epochs):
        self.say, self.start, self.epochs = say, start, epochs
        self.pairs, self.loss_sum, self.loss_pairs, self.last = 0, 0.0, 0, time.perf_counter()

    def add(self, epoch, pairs, loss, lr, force=False):
        self.pairs += pairs
        self.loss_sum += loss
        self.loss_pairs += pairs
        now = time.perf_counter()
        if (force or now - self.last >= _LOG_SECONDS) and self.loss_pairs:
            self.say(f"epoch {epoch + 1}/{self.epochs}: {self.pairs:,} pairs, loss {self.loss_sum / self.loss_pairs:.4f}"
                     f" per pair, lr {lr:.5f} [{now - self.start:.1f} s]")
            self.loss_sum, self.loss_pairs, self.last = 0.0, 0, now


def _train_epoch(W, C, ids, texts, keep, table, epoch, rng, progress, window, negatives, epochs, lr, batch):
    """One SGD pass: subsample the stream, make pairs chunk by chunk, one step per batch."""
    import torch

    W_t, C_t = torch.from_numpy(W), torch.from_numpy(C)     # share memory: index_add_ updates W and C
    kept = rng.random(len(ids)) < keep[ids]
    ids, texts = ids[kept], texts[kept]
    for start in range(0, len(ids), _CHUNK_TOKENS):
        stop = min(start + _CHUNK_TOKENS, len(ids))
        words, contexts = context_pairs(ids, texts, start, stop, window, rng)
        for first in range(0, len(words), batch):
            w, c = words[first:first + batch], contexts[first:first + batch]
            n = table[rng.integers(0, len(table), size=(len(w), negatives))]          # (B, K)
            done = (epoch + (start + (stop - start) * first / len(words)) / len(ids)) / epochs
            rate = lr * max(_MIN_LR_FRACTION, 1.0 - done)
            loss, dW, dC_pos, dC_neg = sgns_loss_and_grads(W[w], C[c], C[n])
            W_t.index_add_(0, torch.from_numpy(w), torch.from_numpy(dW), alpha=-rate)
            C_t.index_add_(0, torch.from_numpy(np.concatenate([c, n.ravel()])),
                           torch.from_numpy(np.concatenate([dC_pos, dC_neg.reshape(-1, W.shape[1])])), alpha=-rate)
            progress.add(epoch, len(w), loss, rate)
    return len(ids)


def build_sgns(token_lists, dim=100, window=5, negatives=5, epochs=3, lr=0.025, batch=2048, min_count=5,
               max_vocab=30000, subsample=1e-4, seed=0, log=None):
    """Word vectors from a tokenised corpus by skip-gram with negative sampling (see the module
    docstring for the model, its gradients and the training recipe).

    ``token_lists``: texts as lists of tokens. ``dim`` D, ``window`` (the largest reach of the
    dynamic window), ``negatives`` K, ``epochs``, ``lr`` (the starting learning rate, falling
    linearly to ~0), ``batch`` B pairs per SGD step, ``min_count`` / ``max_vocab`` (see
    ``count_words``), ``subsample`` t (0: off), ``seed`` (the same seed gives the same vectors).

    Returns (words, matrix) like ``build_ppmi_svd``: V words, most frequent first, and a
    (V, D) float32 array of the input vectors W, each row scaled to unit length.
    ``log``: a function for progress lines (e.g. ``print``), or None.
    """
    check_arguments(dim, window, negatives, epochs, lr, batch, subsample, min_count, max_vocab)
    say = log or (lambda *_: None)
    start = time.perf_counter()
    words, counts = count_words(token_lists, min_count, max_vocab)
    say(f"vocabulary: {len(words):,} words seen >= {min_count} times "
        f"({counts.sum():,} of {sum(len(t) for t in token_lists):,} tokens) [{time.perf_counter() - start:.1f} s]")
    if len(words) < 2:
        raise SettingError(f"only {len(words)} word(s) are seen >= {min_count} times, too few to train SGNS "
                           f"(it needs at least 2); use a larger corpus or a lower min_count")
    rng = np.random.default_rng(seed)
    ids, texts = token_stream(token_lists, words)
    keep, table = keep_probabilities(counts, subsample), negative_table(counts)
    W = ((rng.random((len(words), dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    C = np.zeros((len(words), dim), dtype=np.float32)
    say(f"SGNS: {dim}-d, window {window}, {negatives} negatives, {epochs} epochs, lr {lr}, batch {batch}, "
        f"subsample {subsample}: about {np.dot(keep[ids], np.ones(len(ids))):,.0f} of {len(ids):,} tokens "
        f"kept per epoch")
    progress = _Progress(say, start, epochs)
    for epoch in range(epochs):
        kept = _train_epoch(W, C, ids, texts, keep, table, epoch, rng, progress, window, negatives, epochs, lr, batch)
        progress.add(epoch, 0, 0.0, lr * max(_MIN_LR_FRACTION, 1.0 - (epoch + 1) / epochs), force=True)
        say(f"epoch {epoch + 1}/{epochs} done: {kept:,} tokens after subsampling [{time.perf_counter() - start:.1f} s]")
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return words, np.divide(W, norms, out=np.zeros_like(W), where=norms > 0).astype(np.float32)
