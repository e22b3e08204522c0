"""Recurrent classifiers: read the review word by word, classify the state at its last real word."""
from __future__ import annotations

import numpy as np

from .. import creation
from ..nn import GRU, ElmanRNN, Linear
from .base import Output, SentimentModel


class _RecurrentClassifier(SentimentModel):
    course = True
    prefix_states = True

    def prunable_units(self):
        return {"rnn": (self.rnn, self.out)}     # only ``out`` reads the states

    def prefix_logits(self, ids):
        """(B, T, C): the classifier applied to the state after each word -- what the model
        would answer if the review stopped there (``minidl explain`` prints it)."""
        return self.out(self.rnn(self.embed(ids)))

    def start_logits(self, ids):
        """(B, C): what the model answers before the first word, the classifier on the RNN's initial
        state: the baseline the first word's change in ``prefix_logits`` is measured from."""
        return self.out(self.rnn._initial_state(self.embed(ids), None))

    def forward(self, ids, mask, lengths):
        B, T = ids.shape
        given = np.asarray(lengths.numpy() if hasattr(lengths, "numpy") else lengths)   # a length 0 read padding
        low, high = (given.min(), given.max()) if given.size else (1, 1)
        if given.shape != (B,) or given.dtype.kind not in "iu" or not 1 <= low <= high <= T:
            raise ValueError(f"{self.name}: lengths must be (B,) = ({B},) whole numbers in 1..T = 1..{T}, got "
                             f"{given.tolist()}"[:200])
        hs = self.rnn(self.embed(ids))                                # (B, T, H)
        # padding comes after the last real word, so it never changed the state we read
        last = hs[creation.arange(B, device=ids.device), lengths - 1]  # (B, H)
        return Output(self.out(self.dropout(last)))                   # (B, C)


class ElmanRNNClassifier(_RecurrentClassifier):
    """Embedding -> Elman RNN (ReLU by default, as in the course) -> Linear(H, C)."""

    name, summary = "rnn", "Elman RNN (ReLU), classifies the state after the last word"

    def __init__(self, vocab_size, hidden=64, nonlinearity="relu", **kwargs):
        super().__init__(vocab_size, **kwargs)
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        self.rnn = ElmanRNN(self.embed_dim, hidden, nonlinearity, device=device, dtype=dtype)
        self.out = Linear(hidden, self.num_classes, device=device, dtype=dtype)


class GRUClassifier(_RecurrentClassifier):
    """Embedding -> the course's GRU -> Linear(H, C)."""

    name, summary = "gru", "GRU written from its equations, classifies the state after the last word"

    def __init__(self, vocab_size, hidden=64, **kwargs):
        super().__init__(vocab_size, **kwargs)
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        self.rnn = GRU(self.embed_dim, hidden, device=device, dtype=dtype)
        self.out = Linear(hidden, self.num_classes, device=device, dtype=dtype)
