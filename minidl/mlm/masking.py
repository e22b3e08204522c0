"""BERT's masking: which positions a masked-LM batch hides, and what it shows there instead.

Of the real, ordinary positions of a batch (not [PAD], not [CLS], not a word that is [UNK]
itself: the model should not learn to answer "unknown"), each is chosen with probability
``rate`` (15 %). A chosen position becomes

    [MASK]             with probability 0.8
    a random token     with probability 0.1  (any ordinary token, not a special)
    itself             with probability 0.1

and the model must give the original token at every chosen position, whatever it was shown:
the 10 % + 10 % keep it from learning that only [MASK] positions matter (at fill-mask time
there are no hidden positions without [MASK]).

Shapes: ids (B, T) int64, mask (B, T) 1 on real tokens. Positions are flat indices
b·T + t, as ``TransformerClassifier.masked_lm_logits(..., positions)`` reads them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tokenizer import CLS, MASK, PAD, SPECIALS, UNK, special_ids

MASK_RATE = 0.15
REPLACE_WITH_MASK, REPLACE_WITH_RANDOM = 0.8, 0.1


@dataclass
class MaskedBatch:
    inputs: np.ndarray      # (B, T) what the model reads
    positions: np.ndarray   # (N,) flat indices of the chosen positions
    targets: np.ndarray     # (N,) the original tokens there


def mask_tokens(ids, mask, vocab, rng, rate=MASK_RATE):
    """A ``MaskedBatch`` for ``ids`` (B, T) with real positions ``mask`` (B, T); at least one
    position is chosen whenever the batch has a candidate."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"mask_tokens: rate is the share of positions to hide and must lie in (0, 1), got {rate}")
    ids = np.asarray(ids, dtype=np.int64)
    specials = special_ids(vocab)
    candidate = np.asarray(mask, dtype=bool) & ~np.isin(ids, [specials[PAD], specials[CLS], specials[UNK]])
    chosen = candidate & (rng.random(ids.shape) < rate)
    if not chosen.any() and candidate.any():
        flat = np.flatnonzero(candidate)
        chosen.flat[flat[rng.integers(len(flat))]] = True
    positions = np.flatnonzero(chosen)
    inputs = ids.copy()
    roll = rng.random(len(positions))
    as_mask = positions[roll < REPLACE_WITH_MASK]
    as_random = positions[(roll >= REPLACE_WITH_MASK) & (roll < REPLACE_WITH_MASK + REPLACE_WITH_RANDOM)]
    inputs.flat[as_mask] = specials[MASK]
    inputs.flat[as_random] = rng.integers(len(SPECIALS), len(vocab), size=len(as_random))
    return MaskedBatch(inputs, positions, ids.flat[positions].copy())
