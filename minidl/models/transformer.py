"""A small transformer sentiment classifier: encoder (BERT-style) or decoder (GPT-style).

    x      = dropout(E[ids] (W_in) + P[:T])                     (B, T, D)
    h      = TransformerEncoder(x, mask)                         (B, T, D)
    pooled = h[:, 0]                     pooling="cls"  (encoder default)
           = Σ_t mask_t h_t / Σ_t mask_t pooling="mean"
           = h[b, lengths_b − 1]         pooling="last" (the default, and the only sensible
                                          single position, when causal=True)
    logits = W_c dropout(pooled) + b_c                           (B, C)

"cls" reads position 0. BERT puts a special [CLS] token there; minidl's vocabularies have
none, so either prepend a reserved id to every review yourself, or simply let the first
word's state stand for the review (it attends to every word, so after a layer or two it
can summarise them). With ``causal=True`` each position sees only itself and the words
before it, so the state of the LAST REAL word is the one that has read the whole review;
padding comes after it and never changes it.

``forward_with_states(ids, mask, lengths)`` -> (Output, states, attentions) for TinyBERT-style
distillation (``minidl.compress.IntermediateMatching``): the same logits as ``forward`` plus,
in the graph, the L + 1 hidden states (B, T, D) -- ``states[0]`` the embedding output x,
``states[l]`` layer l's output -- and the L pre-dropout attention maps (B, h, T, T).

``masked_lm_logits(ids, mask, positions=None)`` (built with ``mlm_head=True``): BERT's masked-LM
head, logits over the vocabulary (B, T, V), or (N, V) at N chosen positions,
LN(GELU(h W_t + b_t)) Eᵀ + b, with the decoder tied to the input embedding table
E (V, E): no second (V, E) matrix, and E gets its
gradient through both the lookup and the output product. The tied product also trains
the padding row, which only padded positions read (they are masked everywhere).
"""
from __future__ import annotations

from .. import creation
from ..autograd import ops
from ..nn import GELU, LayerNorm, Linear, Module, Sequential, init
from ..nn.transformer import PositionEmbedding, TransformerEncoder
from .base import Output, SentimentModel

POOLINGS = ("cls", "mean", "last")


class TransformerMLMHead(Module):
    """h (B, T, D) and the embedding table E (V, E) -> logits (B, T, V) = LN(GELU(h W_t)) Eᵀ + b."""

    def __init__(self, d_model, embed_dim, vocab_size, device=None, dtype=None):
        super().__init__()
        self.transform = Sequential(Linear(d_model, embed_dim, device=device, dtype=dtype), GELU(),
                                    LayerNorm(embed_dim, device=device, dtype=dtype))
        self.bias = init.zeros((vocab_size,), device, dtype)

    def forward(self, h, embedding_weight):
        return self.logits(self.transform(h), embedding_weight)

    def logits(self, features, embedding_weight):
        """The head's features f = LN(GELU(h W_t)) (..., E) -> f Eᵀ + b (..., V)."""
        return ops.linear(features, embedding_weight.T, self.bias)


class TransformerClassifier(SentimentModel):
    name, summary = "transformer", "transformer encoder (or causal decoder), pooled, for compression"
    width_option = "d_model"

    def __init__(self, vocab_size, d_model=64, num_heads=4, num_layers=2, d_ff=128, max_len=512, pooling=None,
                 causal=False, dropout=0.1, pre_norm=True, mlm_head=False, hidden=None, **kwargs):
        d_model = hidden or d_model  # ``hidden``: what sweeps and ``minidl train --hidden`` vary
        for flag, value in (("causal", causal), ("pre_norm", pre_norm), ("mlm_head", mlm_head)):
            if not isinstance(value, bool):   # JSON's "yes" or 2 would read as True
                raise TypeError(f"TransformerClassifier: {flag} is true or false, got {value!r}")
        kwargs.setdefault("embed_dim", d_model)
        super().__init__(vocab_size, dropout=dropout, **kwargs)
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        # minidl's vocabularies have no [CLS] token, so an encoder pools the mean by default
        pooling = pooling or ("last" if causal else "mean")
        if pooling not in POOLINGS:
            raise ValueError(f"TransformerClassifier: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if causal and pooling == "cls":
            raise ValueError('TransformerClassifier: with causal=True position 0 sees only the first word; '
                             'use pooling="last" (the default) or "mean"')
        self.d_model, self.pooling, self.causal = d_model, pooling, causal
        # pretrained vectors (e.g. GloVe-100d) of another width are projected to d_model
        self.project = (Linear(self.embed_dim, d_model, device=device, dtype=dtype)
                        if self.embed_dim != d_model else None)
        self.position = PositionEmbedding(max_len, d_model, device=device, dtype=dtype)
        self.encoder = TransformerEncoder(num_layers, d_model, num_heads, d_ff, dropout, pre_norm, causal,
                                          device=device, dtype=dtype)
        self.out = Linear(d_model, self.num_classes, device=device, dtype=dtype)
        self.mlm_head = (TransformerMLMHead(d_model, self.embed_dim, vocab_size, device=device, dtype=dtype)
                         if mlm_head else None)

    def encoder_input(self, ids):
        """ids (B, T) -> the encoder's input x = dropout(E[ids] (W_in) + P[:T]) (B, T, D)."""
        x = self.embedding(ids)                                          # (B, T, E)
        if self.project is not None:
            x = self.project(x)                                          # (B, T, D)
        return self.dropout(self.position(x))

    def encode(self, ids, mask):
        """ids (B, T), mask (B, T) -> the final hidden states h (B, T, D)."""
        return self.encoder(self.encoder_input(ids), mask)

    def pool(self, h, mask, lengths):
        """h (B, T, D) -> one vector per review (B, D), read as ``self.pooling`` says."""
        if self.pooling == "cls":
            return h[:, 0]
        if self.pooling == "mean":
            mask = mask if mask.dtype == h.dtype else mask.to(dtype=h.dtype)  # a float64 mask must not promote h
            count = ops.maximum(mask.sum(axis=1, keepdims=True), 1.0)     # (B, 1); an empty review reads 0
            return (h * mask.unsqueeze(-1)).sum(axis=1) / count
        return h[creation.arange(h.shape[0], device=h.device), lengths - 1]

    def classify(self, h, mask, lengths):
        """h (B, T, D) -> logits (B, C)."""
        return self.out(self.dropout(self.pool(h, mask, lengths)))

    def forward(self, ids, mask, lengths):
        return Output(self.classify(self.encode(ids, mask), mask, lengths))

    def forward_with_states(self, ids, mask, lengths):
        """-> (Output, states: L + 1 tensors (B, T, D), attentions: L tensors (B, h, T, T))."""
        h, states, attentions = self.encoder(self.encoder_input(ids), mask, return_states=True)
        return Output(self.classify(h, mask, lengths)), states, attentions

    def masked_lm_logits(self, ids, mask, positions=None):
        """(B, T, V) logits over the vocabulary at every position, or, given ``positions`` (N,)
        flat indices b·T + t, (N, V) logits at those positions only: the head's (·, V) product
        is most of an MLM's work, and only the masked positions are scored."""
        if self.mlm_head is None:
            raise ValueError("masked_lm_logits needs the MLM head: build the model with mlm_head=True")
        h = self.encode(ids, mask)                                         # (B, T, D)
        if positions is not None:
            h = h.reshape(-1, h.shape[-1])[positions]                      # (N, D)
        return self.mlm_head(h, self.embedding.weight)
