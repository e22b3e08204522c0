"""The transformer encoder (BERT-style) and, with ``causal=True``, decoder (GPT-style) blocks.

Everything here is a composition of minidl's ops (matmul, softmax, where, reshape/transpose,
layer_norm, gelu, dropout, and the fused scaled_dot_product_attention), so the gradients are
the ops' hand-written backwards chained by the engine; no new ``Function`` is needed.

Named dimensions: B batch, T sequence length, D = d_model, h heads, d_head = D / h,
F = d_ff (the feed-forward width).
"""
from __future__ import annotations

import math
import numbers

from ..autograd import ops
from ..autograd.engine import no_grad
from ..autograd.ops.attention import MASKED_SCORE, allowed_keys
from . import init
from .activation import GELU
from .container import ModuleList, Sequential
from .dropout import Dropout
from .layernorm import LayerNorm
from .linear import Linear
from .module import Module


class MultiHeadSelfAttention(Module):
    """Scaled dot-product self-attention with h heads.

        Q = x W_q + b_q,  K = x W_k,  V = x W_v + b_v             (B, T, D) each
        split heads:   (B, T, D) -> (B, T, h, d_head) -> (B, h, T, d_head)
        scores       = Q Kᵀ / √d_head                             (B, h, T_query, T_key)
        scores[b, :, i, j] = MASKED_SCORE  where key j is padding (mask[b, j] = 0)
                                           or, with causal=True, lies in the future (j > i)
        α            = dropout(softmax over the keys j)          (B, h, T, T)
        heads        = α V                                        (B, h, T, d_head)
        out          = merge heads (B, T, h·d_head) then W_o        (B, T, D)

    h·d_head is D when built; structured pruning (``minidl.compress.structured``) may remove
    whole heads afterwards, leaving fewer heads of the same d_head.

    ``forward(x, mask=None)``: x (B, T, D), mask (B, T) with 1.0 on real tokens (None: all
    real) -> out (B, T, D). ``self.last_weights`` gives the attention weights of the last
    call (B, h, T, T), detached, for inspection: the softmax before dropout, computed when
    first asked for from the q and k the call kept.
    ``forward(x, mask, return_weights=True)`` -> (out, probabilities): the softmax over the
    keys (B, h, T, T) BEFORE dropout and still in the graph, for losses on the attention
    maps (TinyBERT distillation).

    Two paths compute the same: by default one fused node,
    ``ops.scaled_dot_product_attention`` (attention dropout included), which never holds a
    (B, h, T, T) array; only when the probabilities are asked for, the composition of
    matmul, where, softmax and dropout above, which must form them.

    Padding queries are not masked: a padded position attends over the real tokens like any
    other (or, if its row has no real token at all, uniformly over every position), so its
    output is defined but meaningless; callers ignore it (pooling over real tokens only,
    losses masked). Real positions are unaffected by padding: padded keys get weight 0.
    """

    def __init__(self, d_model, num_heads, dropout=0.0, causal=False, device=None, dtype=None):
        super().__init__()
        init.check_sizes("MultiHeadSelfAttention", d_model=d_model, num_heads=num_heads)   # 0 heads: modulo by zero
        if d_model % num_heads:
            raise ValueError(f"MultiHeadSelfAttention: d_model={d_model} must be divisible by "
                             f"num_heads={num_heads} (each head gets d_model / num_heads features)")
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.causal = causal
        self.query = Linear(d_model, d_model, device=device, dtype=dtype)
        # no key bias: q·(k + b_k) = q·k + q·b_k adds the same amount to every score of a query,
        # which the softmax cancels, so b_k could never learn (its gradient is exactly 0)
        self.key = Linear(d_model, d_model, bias=False, device=device, dtype=dtype)
        self.value = Linear(d_model, d_model, device=device, dtype=dtype)
        self.out = Linear(d_model, d_model, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self._last = None  # the last call's weights, or its (q, k, mask): see last_weights

    def _split_heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.d_head).transpose(0, 2, 1, 3)    # (B, h, T, d_head)

    def _probabilities(self, q, k, mask):
        """softmax over the keys of the masked scores: q, k (B, h, T, d_head) -> (B, h, T, T)."""
        scores = ops.matmul(q, k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(self.d_head))
        allowed = allowed_keys(q.xp, None if mask is None else mask.data, self.causal, q.shape[2])
        if allowed is not None:
            scores = ops.where(allowed, scores, MASKED_SCORE)
        return ops.softmax(scores, axis=-1)

    @property
    def last_weights(self):
        """The attention weights (softmax before dropout) of the last call (B, h, T, T),
        detached, computed now from the q and k it kept."""
        if isinstance(self._last, tuple):
            with no_grad():
                self._last = self._probabilities(*self._last)
        return self._last

    def forward(self, x, mask=None, return_weights=False):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"MultiHeadSelfAttention(d_model={self.d_model}): expected x (B, T, "
                             f"{self.d_model}), got shape {x.shape}")
        B, T, D = x.shape
        if mask is not None and tuple(mask.shape) != (B, T):
            raise ValueError(f"MultiHeadSelfAttention: mask must be (B, T) = {(B, T)} like x, got {mask.shape}")
        q, k, v = (self._split_heads(proj(x)) for proj in (self.query, self.key, self.value))
        if return_weights:                               # the probabilities themselves are needed
            probabilities = self._probabilities(q, k, mask)
            self._last = probabilities.detach()
            heads = ops.matmul(self.dropout(probabilities), v)                      # (B, h, T, d_head)
        else:                                            # one fused node, never a (B, h, T, T) array
            p_drop = self.dropout.p if self.dropout.training else 0.0
            heads = ops.scaled_dot_product_attention(q, k, v, mask, self.causal, p_drop)
            self._last = (q.detach(), k.detach(), None if mask is None else mask.detach())
        merged = heads.transpose(0, 2, 1, 3).reshape(B, T, self.num_heads * self.d_head)  # (B, T, h·d_head)
        out = self.out(merged)
        return (out, probabilities) if return_weights else out

    def extra_repr(self):
        causal = ", causal=True" if self.causal else ""
        return f"d_model={self.d_model}, num_heads={self.num_heads}{causal}"


class PositionEmbedding(Module):
    """Learned absolute positions: x (B, T, D) -> x + P[:T], with P (max_len, D) ~ N(0, std²).

    A sequence longer than ``max_len`` has positions the model never learned, so it is an
    error rather than a silent truncation."""

    def __init__(self, max_len, d_model, std=0.02, device=None, dtype=None):
        super().__init__()
        init.check_sizes("PositionEmbedding", max_len=max_len)   # 0 read no review; -3 was NumPy's error
        self.max_len, self.d_model = max_len, d_model
        self.weight = init.normal((max_len, d_model), std, device, dtype)

    def forward(self, x):
        T = x.shape[1]
        if T > self.max_len:
            raise ValueError(f"PositionEmbedding: the batch has sequences of {T} tokens but the model "
                             f"learned only max_len={self.max_len} positions; truncate the reviews to "
                             f"{self.max_len} tokens or build the model with max_len >= {T}")
        return x + self.weight[:T]

    def extra_repr(self):
        return f"max_len={self.max_len}, d_model={self.d_model}"


class TransformerEncoderLayer(Module):
    """One block: self-attention then a GELU feed-forward, each with a residual connection.

        pre-LN  (GPT-2, default):  x = x + drop(attn(LN₁(x)));   x = x + drop(ff(LN₂(x)))
        post-LN (original, BERT):  x = LN₁(x + drop(attn(x)));   x = LN₂(x + drop(ff(x)))
        ff(x) = W₂ drop(GELU(W₁ x))                               D -> F -> D

    Pre-LN keeps an un-normalised residual path from input to output, so gradients reach
    the first layers intact and training is stable without a learning-rate warm-up.
    x (B, T, D), mask (B, T) -> (B, T, D); with ``return_attention=True`` -> (x, the
    attention's pre-dropout softmax (B, h, T, T), in the graph).
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1, pre_norm=True, causal=False, device=None,
                 dtype=None):
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = MultiHeadSelfAttention(d_model, num_heads, dropout, causal, device=device, dtype=dtype)
        self.norm1 = LayerNorm(d_model, device=device, dtype=dtype)
        self.feed_forward = Sequential(Linear(d_model, d_ff, device=device, dtype=dtype), GELU(), Dropout(dropout),
                                       Linear(d_ff, d_model, device=device, dtype=dtype))
        self.norm2 = LayerNorm(d_model, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x, mask=None, return_attention=False):
        attended = self.attention(self.norm1(x) if self.pre_norm else x, mask, return_weights=return_attention)
        if return_attention:
            attended, probabilities = attended
        if self.pre_norm:
            x = x + self.dropout(attended)
            x = x + self.dropout(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self.dropout(attended))
            x = self.norm2(x + self.dropout(self.feed_forward(x)))
        return (x, probabilities) if return_attention else x

    def extra_repr(self):
        return f"pre_norm={bool(self.pre_norm)}"


class TransformerEncoder(Module):
    """``num_layers`` TransformerEncoderLayers in a row (same arguments), plus a final
    LayerNorm for pre-LN stacks, whose residual stream is otherwise never normalised.
    x (B, T, D), mask (B, T) -> (B, T, D).

    ``forward(x, mask, return_states=True)`` -> (out, states, attentions), all in the graph:
    ``states`` the L + 1 hidden states (B, T, D) -- the input x and each layer's output (for
    pre-LN the raw residual stream, before the final LayerNorm that only ``out`` gets) --
    and ``attentions`` each layer's pre-dropout attention probabilities (B, h, T, T).
    They are collected only when asked, so the plain forward holds on to nothing more."""

    def __init__(self, num_layers, d_model, num_heads, d_ff, dropout=0.1, pre_norm=True, causal=False,
                 device=None, dtype=None):
        super().__init__()
        # -1 built no layer, silently; 0 (embeddings and pooling alone) is an ablation, and older checkpoints hold it
        if not isinstance(num_layers, numbers.Integral) or num_layers < 0:
            raise ValueError(f"TransformerEncoder takes a whole number of layers >= 0, got num_layers={num_layers!r}")
        self.layers = ModuleList(TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, pre_norm, causal,
                                                         device=device, dtype=dtype) for _ in range(num_layers))
        self.final_norm = LayerNorm(d_model, device=device, dtype=dtype) if pre_norm else None

    def forward(self, x, mask=None, return_states=False):
        states, attentions = [x], []
        for layer in self.layers:
            if return_states:    # the probabilities are asked for only here: else attention stays fused
                x, probabilities = layer(x, mask, return_attention=True)
                states.append(x)
                attentions.append(probabilities)
            else:
                x = layer(x, mask)
        out = x if self.final_norm is None else self.final_norm(x)
        return (out, states, attentions) if return_states else out
