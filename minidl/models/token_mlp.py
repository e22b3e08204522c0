"""Word-by-word scorers: an MLP gives every word a sub-score; the review sums them.

TokenMLP:         logits = Σ_t mask_t · s_t,                s_t = MLP(x_t) ∈ R^C
SoftmaxWeighted:  logits = Σ_t α_t · s_t,  α = softmax over the review's real words of
                  a second head's per-word score (padding gets α = 0)
"""
from __future__ import annotations

from ..autograd import ops
from ..nn import Linear, Module, ReLU, Sequential
from .base import Output, SentimentModel


class WordMLP(Module):
    """The per-word trunk: x (B, T, D_in) -> features (B, T, D_last), ReLU between layers."""

    def __init__(self, input_size, hidden, device=None, dtype=None):
        super().__init__()
        layers, size = [], input_size
        for width in ([hidden] if isinstance(hidden, int) else hidden):
            layers += [Linear(size, width, device=device, dtype=dtype), ReLU()]
            size = width
        self.layers = Sequential(*layers)
        self.output_size = size

    def forward(self, x):
        return self.layers(x)


class TokenMLP(SentimentModel):
    """Each word's sub-score vector s_t = Linear(MLP(x_t)) (C classes); the review's logits
    are the sum over its real words. ``hidden``: an int or a list like [64, 32, 16]."""

    name, summary = "mlp", "per-word MLP scorer: the review's logits are the sum of its words' scores"
    course, hidden_list = True, True

    def __init__(self, vocab_size, hidden=(64, 32, 16), **kwargs):
        super().__init__(vocab_size, **kwargs)
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        self.trunk = WordMLP(self.embed_dim, hidden, device, dtype)
        self.score = Linear(self.trunk.output_size, self.num_classes, device=device, dtype=dtype)

    def token_scores(self, ids, mask):
        """(B, T, C) sub-scores, zero on padding."""
        return self.score(self.trunk(self.embed(ids))) * mask.unsqueeze(-1)

    def forward(self, ids, mask, lengths):
        scores = self.token_scores(ids, mask)
        return Output(scores.sum(axis=1), token_scores=scores)


class SoftmaxWeighted(TokenMLP):
    """TokenMLP plus a second head: per-word weight logits, softmax-normalised over the
    review's real words; logits = Σ_t α_t s_t."""

    name, summary = "softmax", "per-word scores weighted by a softmax over the review's words"

    def __init__(self, vocab_size, hidden=(64, 32, 16), **kwargs):
        super().__init__(vocab_size, hidden, **kwargs)
        self.weight_head = Linear(self.trunk.output_size, 1, device=kwargs.get("device"), dtype=kwargs.get("dtype"))

    def forward(self, ids, mask, lengths):
        features = self.trunk(self.embed(ids))                          # (B, T, D)
        scores = self.score(features) * mask.unsqueeze(-1)              # (B, T, C)
        weight_logits = self.weight_head(features).squeeze(-1)          # (B, T)
        weights = ops.softmax(ops.where(mask > 0, weight_logits, -1e9), axis=1)
        logits = (weights.unsqueeze(-1) * scores).sum(axis=1)           # (B, C)
        return Output(logits, token_scores=scores, token_weights=weights)
