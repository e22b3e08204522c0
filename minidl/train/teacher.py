"""Learning from a teacher: a trained classifier's logits as soft targets for another model
(knowledge distillation, Hinton et al. 2015), and unlabelled reviews that it labels.

    minidl train --model attention --teacher runs/gru/best.npz --unlabelled 50000 ...

With a teacher, ``fit``'s loss is ``minidl.compress.distillation_loss`` on every review:

    loss = mean_b [ α·CE(s_b, y_b) + (1 − α)·T²·KL(softmax(t_b/T) ‖ softmax(s_b/T)) ]

s the student's logits (B, C), t the teacher's (B, C), α ``distill_alpha``, T ``temperature``,
and y the review's label: the true one for a labelled review, the teacher's choice argmax t
for one of the ``unlabelled`` reviews (IMDB's train/unsup) added to the training split.
The validation and test splits are untouched, so the scores stay comparable to a run without
a teacher.

A teacher is a classifier checkpoint (``best.npz`` of ``minidl train``), which reads each text
with its own tokenizer and vocabulary, or one of the linear baselines, "tfidf" or "nbsvm"
(``minidl.baseline``, word 1-2-grams, its default settings), trained here on the labelled
training reviews only (never the validation ones) and reading the first ``max_length`` words.
It scores every training review once, before training; its logits are a table looked up by
review (``batch.index``). A review a checkpoint cannot read (nothing left after its cleaning)
gets logits 0: uniform soft targets. A checkpoint's table is kept beside it
(``best.npz.logits-<key>.npy``, the key a hash of the checkpoint's bytes, the texts in their order,
the batch size and the device), so the next run on the same reviews (another model, the same seed's
split) reads it instead of scoring them again: the same numbers, bit for bit. Several teachers
("nbsvm,runs/gru/best.npz") give the mean of their logits: an ensemble as the teacher.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

import minidl as md

from ..version import __version__
from ..baseline import KINDS, fit_baseline
from ..data.batching import encode_dataset
from ..data.dataset import TextDataset
from ..data.imdb import load_imdb_unlabelled
from ..io import CheckpointError, WriteError, atomic_path
from .checkpoint import load_classifier, read
from .config import ConfigError, split_commas


def teacher_paths(spec):
    """The teachers named by ``--teacher`` ("a.npz", "nbsvm" or "nbsvm,a.npz"), each checkpoint
    checked to be a classifier checkpoint of ``minidl train``; ConfigError in one line otherwise."""
    paths = split_commas(spec)
    if not paths:
        raise ConfigError(f"--teacher {spec!r}: give a checkpoint, e.g. runs/gru/best.npz, or a baseline "
                          f"({', '.join(KINDS)})")
    for path in paths:
        if path in KINDS:
            continue
        if not os.path.exists(path):   # (a folder: read() names the checkpoints in it)
            raise ConfigError(f"--teacher {path!r}: no such file; give the best.npz of a minidl train run, or a "
                              f"baseline ({', '.join(KINDS)})")
        try:
            meta, _ = read(path)
        except CheckpointError as e:
            raise ConfigError(f"--teacher: {e}") from None
        if "config" not in meta:
            raise ConfigError(f"--teacher {path!r} is not a classifier checkpoint of minidl train")
    return paths


def teacher_logits(spec, dataset, labelled=None, max_length=None, batch_size=128, device="cpu"):
    """(N, C) float32: the mean over the teachers of ``spec`` of their logits for each text of
    ``dataset`` (a TextDataset, N texts); row i is text i (0 where a checkpoint read nothing).
    A baseline teacher is trained on the TextDataset ``labelled`` and reads the first
    ``max_length`` words."""
    from ..compress.distill import teacher_logits_table

    paths = teacher_paths(spec)
    total = np.zeros((len(dataset), len(dataset.label_names)), dtype=np.float64)
    for path in paths:
        if path in KINDS:
            total += _baseline_logits(path, labelled, dataset, max_length)
            continue
        model, vocab, tokenizer, label_names, _ = load_classifier(path, device=device)
        if list(label_names) != list(dataset.label_names):
            raise ConfigError(f"--teacher {path!r} classifies {list(label_names)} but the data has "
                              f"{list(dataset.label_names)}; give a teacher trained on the same labels")
        cache = f"{path}.logits-{_table_key(path, dataset.texts, batch_size, device)}.npy"
        kept = _read_kept(cache, total.shape)
        if kept is not None:
            print(f"teacher {path}: {len(dataset):,} training reviews' logits from {cache}", file=sys.stderr, flush=True)
            total += kept
            continue
        print(f"teacher {path}: scoring {len(dataset):,} training reviews ...", file=sys.stderr, flush=True)
        encoded = encode_dataset(dataset, tokenizer, vocab, max_length=tokenizer.max_length)
        scores = np.zeros_like(total)
        if len(encoded):
            table = teacher_logits_table(model, encoded, batch_size, device)     # (max index + 1, C)
            scores[:len(table)] = table
        total += scores
        _save_quietly(cache, scores)
    return (total / len(paths)).astype(np.float32)


def _table_key(path, texts, batch_size, device):
    """16 hex digits naming a checkpoint's table for ``texts``: a hash of the checkpoint's bytes,
    the texts in their order, the batch size, the device and minidl's version."""
    digest = hashlib.sha256(f"{__version__}|{batch_size}|{device}|".encode())
    with open(path, "rb") as f:
        digest.update(f.read())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def _read_kept(path, shape):
    """The table kept at ``path``, or None where there is none, or it cannot be read or has
    another shape (then it is scored again and written anew)."""
    try:
        table = np.load(path)
    except (OSError, ValueError):
        return None
    return table if table.shape == shape else None


def _save_quietly(path, table):
    """Write ``table`` to ``path`` whole or not at all (``minidl.io.atomic_path``); a folder that
    cannot be written only costs the next run the scoring."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, table)
    except WriteError as e:
        print(f"teacher: could not keep the table ({e}); the next run scores again", file=sys.stderr, flush=True)


def _baseline_logits(kind, labelled, dataset, max_length):
    """(N, C) logits of the ``kind`` baseline trained on ``labelled`` for the texts of ``dataset``."""
    if labelled is None:
        raise ValueError(f"teacher {kind!r}: a baseline teacher is trained here; pass the labelled training reviews")
    if kind == "nbsvm" and labelled.num_classes != 2:
        raise ConfigError(f"--teacher nbsvm compares two classes; the data has {labelled.num_classes} "
                          f"({', '.join(map(str, labelled.label_names))}): use --teacher tfidf")
    print(f"teacher {kind}: training on {len(labelled):,} labelled reviews, scoring {len(dataset):,} ...",
          file=sys.stderr, flush=True)
    model, _, (x,) = fit_baseline(kind, labelled, [dataset.texts], max_length)
    with md.no_grad():
        return model(x.astype(model.weight.dtype)).numpy()


def with_teacher(train, train_tokens, tokenizer, config):
    """(training TextDataset with ``config.unlabelled`` unlabelled IMDB reviews appended, their
    token lists likewise, the teacher's logits (N, C) for all of them). The unlabelled reviews'
    labels are the teacher's choices."""
    texts = load_imdb_unlabelled(config.data_path, max_reviews=config.unlabelled) if config.unlabelled else []
    labels = np.concatenate([train.labels, np.zeros(len(texts), dtype=np.int64)])   # 0 until the teacher says
    name = f"{train.name} + {len(texts)} unlabelled" if texts else train.name
    taught = TextDataset(list(train.texts) + texts, labels, list(train.label_names), name)
    logits = teacher_logits(config.teacher, taught, labelled=train, max_length=config.max_length)
    taught.labels[len(train):] = logits[len(train):].argmax(axis=1)
    return taught, list(train_tokens) + tokenizer.tokenize_all(texts), logits
