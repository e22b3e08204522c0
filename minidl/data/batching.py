"""From texts to padded batches of ids, with the lengths and masks sequence models need.

    encoded = encode_dataset(train, tokenizer, vocab, max_length=100)
    for batch in batches(encoded, batch_size=64, seed=0, epoch=epoch, bucket=True, device="cuda"):
        logits = model(batch.ids, batch.mask)        # ids, mask: (B, T)
        loss = md.cross_entropy(logits, batch.labels)

Dimensions: B = reviews in the batch, T = the longest of them (after truncation to
``max_length``); shorter reviews are padded on the right with ``vocab.pad_id``, so the
last real word of review b sits at position ``lengths[b] - 1``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..creation import tensor
from .errors import DataFormatError

logger = logging.getLogger(__name__)


@dataclass
class EncodedDataset:
    """A dataset turned into ids, ready for ``batches``.

    * ``ids``     -- list of N int64 arrays, review i is ``ids[i]`` of shape (lengths[i],);
    * ``labels``  -- (N,) int64;
    * ``lengths`` -- (N,) int64, every one >= 1;
    * ``index``   -- (N,) int64, the position of each review in the original dataset;
    * ``dropped`` -- int64 array of the original positions of the reviews left out because
                     nothing was left of them after cleaning (a recurrent model needs a last word).
    """
    ids: list
    labels: np.ndarray
    lengths: np.ndarray
    index: np.ndarray
    pad_id: int = 0
    label_names: list = field(default_factory=list)
    name: str = "dataset"
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        mean = float(self.lengths.mean()) if len(self) else 0.0
        return (f"EncodedDataset({self.name!r}, {len(self)} reviews, mean length {mean:.1f}, "
                f"{len(self.dropped)} dropped as empty)")


def subset(encoded, n, seed=0):
    """The first ``n`` reviews of a seeded shuffle of an EncodedDataset (or of a TextDataset, the
    same ones, before a slow encoding), in their original order (all of it if n is None or at least its size)."""
    if n is None or n >= len(encoded):
        return encoded
    keep = np.sort(np.random.default_rng(seed).permutation(len(encoded))[:n])
    if not isinstance(encoded, EncodedDataset):
        return encoded.subset(keep)
    return dataclasses.replace(encoded, ids=[encoded.ids[i] for i in keep], labels=encoded.labels[keep],
                               lengths=encoded.lengths[keep], index=encoded.index[keep])


def encode_dataset(dataset, tokenizer, vocab, max_length=None, token_lists=None):
    """Tokenize every text of ``dataset`` (a ``TextDataset``), keep its first ``max_length``
    words, and map them to ids with ``vocab``. Reviews with no word left after cleaning are
    dropped, counted in ``.dropped`` and reported in a logged warning; if all are, a one-line
    ``DataFormatError`` (there is nothing to score: a file of numbers or emoji, or the wrong column).
    ``token_lists``: the texts already tokenized by ``tokenizer`` (e.g. to build the vocabulary),
    not done again."""
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be >= 1 or None, got {max_length}")
    if token_lists is None:
        token_lists = map(tokenizer, dataset.texts)
    ids, kept, dropped = [], [], []
    for i, tokens in enumerate(token_lists):
        tokens = tokens[:max_length]
        if tokens:
            ids.append(vocab.encode(tokens))
            kept.append(i)
        else:
            dropped.append(i)
    kept = np.asarray(kept, dtype=np.int64)
    if dropped and not ids:   # it crashed in the scoring, after training: "need at least one array to concatenate"
        raise DataFormatError(f"{dataset.info.get('source', dataset.name)}: all {len(dropped)} reviews are empty after "
                              f"cleaning (it keeps words of letters): nothing to read; check the file and its text "
                              f"column")
    if dropped:   # where to find them: a file's line numbers where the dataset has them, else positions
        lines = dataset.info.get("lines")
        found = isinstance(lines, list) and len(lines) == len(dataset) and None not in (lines[i] for i in dropped)
        first = ", ".join(str(lines[i] if found else i) for i in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        logger.warning("%s: dropped %d of %d reviews that are empty after cleaning (%s %s)", dataset.name,
                       len(dropped), len(dataset), f"lines of {dataset.info.get('source')}:" if found else "indices",
                       first)
    return EncodedDataset(ids, dataset.labels[kept], np.array([len(x) for x in ids], dtype=np.int64), kept,
                          vocab.pad_id, list(dataset.label_names), dataset.name, np.asarray(dropped, dtype=np.int64))


@dataclass
class Batch:
    """B reviews padded to a common length T (the longest in the batch).

    * ``ids``     -- (B, T) int64 Tensor, ``vocab.pad_id`` after each review's end;
    * ``mask``    -- (B, T) float Tensor (default dtype), 1.0 on real words, 0.0 on padding;
    * ``lengths`` -- (B,) int64 Tensor, real words per review (>= 1);
    * ``labels``  -- (B,) int64 Tensor;
    * ``index``   -- (B,) int64 NumPy array, each review's position in the original dataset
                     (to look up its text: ``dataset.texts[batch.index[b]]``).
    """
    ids: object
    mask: object
    lengths: object
    labels: object
    index: np.ndarray

    def __len__(self):
        return len(self.index)


def num_batches(encoded, batch_size, drop_last=False):
    """How many batches ``batches`` yields per epoch (``encoded``: an EncodedDataset or a count)."""
    n = encoded if isinstance(encoded, int) else len(encoded)
    _check_batch_size(batch_size)
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def batches(encoded, batch_size, shuffle=True, seed=0, epoch=0, bucket=False, device="cpu", drop_last=False,
            bucket_chunk=50, word_dropout=0.0, unk_id=1):
    """Yield ``Batch``es covering every review of ``encoded`` once.

    * ``shuffle`` -- a random order, the same for the same (``seed``, ``epoch``) and a different
      one each epoch; ``False`` keeps the dataset order.
    * ``bucket``  -- put reviews of similar length together so less of each batch is padding:
      the shuffled reviews are cut into chunks of ``bucket_chunk`` batches, each chunk is
      sorted by length and cut into batches, and the batches are shuffled (so a model does
      not see short reviews first and long ones last). Without ``shuffle`` the whole dataset
      is sorted by length.
    * ``drop_last`` -- skip the one batch with fewer than ``batch_size`` reviews.
    * ``device``  -- where the tensors live: "cpu", "torch" or "cuda".
    * ``word_dropout`` -- each word of a review is shown as ``unk_id`` with this probability
      (training only: a model cannot lean on a few words it has memorised), drawn from
      (``seed``, ``epoch``) so that a resumed epoch sees the same words.
    """
    _check_batch_size(batch_size)
    if not hasattr(encoded, "lengths"):   # e.g. a TextDataset: texts, not ids
        raise TypeError(f"batches takes an encoded dataset, got {type(encoded).__name__}; encode it first: "
                        f"encode_dataset(dataset, tokenizer, vocab)")
    n = len(encoded)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket:
        chunk = batch_size * bucket_chunk if shuffle else max(n, 1)
        order = np.concatenate([order[s:s + chunk][np.argsort(encoded.lengths[order[s:s + chunk]], kind="stable")]
                                for s in range(0, n, chunk)] or [order])
    groups = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    if drop_last and groups and len(groups[-1]) < batch_size:
        groups.pop()
    if bucket and shuffle:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    hide = np.random.default_rng([seed, epoch, 1]) if word_dropout else None
    for group in groups:
        yield _make_batch(encoded, group, device, hide, word_dropout, unk_id)


def _make_batch(encoded, group, device, hide, p, unk_id):
    """``hide``: None, or the generator of the word dropout: each real word becomes ``unk_id`` with probability p."""
    lengths = encoded.lengths[group]
    width = int(lengths.max())
    real = np.arange(width)[None, :] < lengths[:, None]          # (B, T) bool
    ids = np.full((len(group), width), encoded.pad_id, dtype=np.int64)
    ids[real] = np.concatenate([encoded.ids[i] for i in group])   # row-major: each row's words in order
    if hide is not None:
        ids[real & (hide.random(ids.shape) < p)] = unk_id
    return Batch(ids=tensor(ids, device=device), mask=tensor(real.astype(np.float32), device=device),
                 lengths=tensor(lengths, device=device), labels=tensor(encoded.labels[group], device=device),
                 index=encoded.index[group])


def _check_batch_size(batch_size):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
