"""Restricted self-attention before the word scorer: each word may look at its neighbours.

    h_t     = ReLU(x_t W_0 + b_0)                       per-word layer, (B, T, D)
    a, α    = WindowSelfAttention(h, mask, radius r)     each word attends to |j − t| ≤ r
    s_t     = Linear(MLP(h_t + a_t))                     per-word sub-scores, (B, T, C)
    logits  = Σ_t mask_t · s_t

The residual ``h_t + a_t`` keeps each word's own meaning while adding its context. A
negator farther than r words from the sentiment word it flips is invisible to that word.
"""
from __future__ import annotations

from ..autograd import ops
from ..nn import Linear, WindowSelfAttention
from .base import Output, SentimentModel
from .token_mlp import WordMLP


class WindowAttention(SentimentModel):
    name, summary, course = "attention", "self-attention over a window of ±r words, then per-word scores", True

    def __init__(self, vocab_size, hidden=64, radius=5, scorer_hidden=(32, 16), **kwargs):
        super().__init__(vocab_size, **kwargs)
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        self.word = Linear(self.embed_dim, hidden, device=device, dtype=dtype)
        self.attention = WindowSelfAttention(hidden, hidden, radius, device=device, dtype=dtype)
        self.trunk = WordMLP(hidden, scorer_hidden, device, dtype)
        self.score = Linear(self.trunk.output_size, self.num_classes, device=device, dtype=dtype)

    def forward(self, ids, mask, lengths):
        h = ops.relu(self.word(self.embed(ids)))                        # (B, T, D)
        context, weights = self.attention(h, mask)                      # (B, T, D), (B, T, 2r+1)
        scores = self.score(self.trunk(h + context)) * mask.unsqueeze(-1)
        return Output(scores.sum(axis=1), token_scores=scores, attention=weights)
